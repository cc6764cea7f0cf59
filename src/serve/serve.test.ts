import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../domain/errors.js';
import { OWN_START } from '../store/index.js';
import { parseConfig } from './config.js';
import { createLogger, lockStoreFile, serve } from './serve.js';

const dir = mkdtempSync(join(tmpdir(), 'defragd-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('one daemon per store file', () => {
  it('a second lock on the same store is refused naming the pid; released, it can be taken again', () => {
    const store = join(dir, 'a.sqlite');
    const release = lockStoreFile(store);
    expect(readFileSync(`${store}.lock`, 'utf8').trim()).toBe(`${process.pid} ${OWN_START}`);
    expect(() => lockStoreFile(store)).toThrow(UsageError);
    expect(() => lockStoreFile(store)).toThrow(
      `store ${store} is in use by another defragd serve (pid ${process.pid}); one daemon per store file`,
    );
    release();
    expect(existsSync(`${store}.lock`)).toBe(false);
    lockStoreFile(store)();
  });

  it('a lock left by a process that is gone is taken over', () => {
    const store = join(dir, 'b.sqlite');
    writeFileSync(`${store}.lock`, '2147483646\n');
    const release = lockStoreFile(store);
    expect(readFileSync(`${store}.lock`, 'utf8').trim()).toBe(`${process.pid} ${OWN_START}`);
    release();
  });

  it('a lock left by an earlier process with the same pid (pid 1 in a restarted container) is taken over (it used to refuse every restart)', () => {
    const store = join(dir, 'c.sqlite');
    // The daemon's last incarnation: pid 1, started at another time (or before the last boot).
    lockStoreFile(store, { pid: 1, start: 'boot-a:1000' });
    expect(() => lockStoreFile(store, { pid: 1, start: 'boot-a:1000' })).toThrow('is in use by another defragd serve (pid 1)');
    const release = lockStoreFile(store, { pid: 1, start: 'boot-a:2000' });
    expect(readFileSync(`${store}.lock`, 'utf8').trim()).toBe('1 boot-a:2000');
    release();
    expect(existsSync(`${store}.lock`)).toBe(false);
    // A lock written before the start was recorded (a pid alone), naming this very pid: not this process's.
    writeFileSync(`${store}.lock`, `${process.pid}\n`);
    lockStoreFile(store)();
  });

  it('nothing to lock for :memory:: two daemons on in-memory stores share no file, and none is written', () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const first = lockStoreFile(':memory:');
      expect(() => lockStoreFile(':memory:')()).not.toThrow();
      expect(existsSync(join(dir, ':memory:.lock'))).toBe(false);
      first();
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('start-up', () => {
  it("logs the config's warnings before anything else", async () => {
    const config = parseConfig(
      'listen: 127.0.0.1:0\nstore: ":memory:"\napiTokenFile: /t\nclusters: [{ name: a, endpoints: ["127.0.0.1:1"], dialTimeout: 1s }]\n',
      {},
      dir,
      { readFile: () => 'tok-1234567890abcdef', fileMode: () => 0o640 },
    );
    expect(config.warnings).toHaveLength(1);
    const lines: { level: number; msg: string }[] = [];
    const ac = new AbortController();
    await serve(config, {
      logger: createLogger({ level: 'info', format: 'json', write: (l) => void lines.push(JSON.parse(l)) }),
      signal: ac.signal,
      onListening: () => ac.abort(),
      dashboardDir: dir,
    });
    expect(lines[0]).toMatchObject({ level: 40, msg: config.warnings[0] });
  });
});
