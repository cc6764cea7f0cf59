import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../domain/errors.js';
import { lockStoreFile } from './serve.js';

const dir = mkdtempSync(join(tmpdir(), 'defragd-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('one daemon per store file', () => {
  it('a second lock on the same store is refused naming the pid; released, it can be taken again', () => {
    const store = join(dir, 'a.sqlite');
    const release = lockStoreFile(store);
    expect(readFileSync(`${store}.lock`, 'utf8').trim()).toBe(String(process.pid));
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
    expect(readFileSync(`${store}.lock`, 'utf8').trim()).toBe(String(process.pid));
    release();
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
