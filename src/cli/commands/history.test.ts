/**
 * `defragd history` and `defrag --store` where no etcd is needed: what the
 * table shows per run, and that every bad input is one line and a non-zero
 * exit (a missing file is not created; a newer store is not touched).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli } from '../../../test/support/cli.js';
import { openStore, SCHEMA_VERSION, type StoredRun } from '../../store/index.js';
import { historyRows } from '../printers/history.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-history-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** One line on stderr, starting "defragd: ", nothing on stdout, no stack trace. */
function expectOneLine(r: { code: number; stdout: string; stderr: string }, code: number, message: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^defragd: /);
  expect(r.stderr).toMatch(message);
}

describe('history rows', () => {
  const run: StoredRun = {
    id: 7,
    cluster: 'prod',
    trigger: 'schedule',
    by: 'h:1',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:05.000Z',
    outcome: 'failed',
    message: 'm2: deadline passed',
    dryRun: false,
    compactedRevision: null,
    disarmed: false,
    reclaimedBytes: 300 * 1024 * 1024,
    membersTotal: 3,
    membersDefragmented: 1,
    membersFailed: 1,
    durationMs: 65_000,
  };

  it('say when, which cluster, why, how it ended, members defragmented of all, bytes reclaimed, how long and the message', () => {
    const [row] = historyRows([run]);
    expect(row?.slice(0, 5)).toEqual(['2026-01-01T00:00:00.000Z', 'prod', 'schedule', 'failed', '1/3']);
    expect(row?.[5]).toMatch(/^300(\.0)? MiB$/);
    expect(row?.[6]).not.toBe('-');
    expect(row?.[7]).toBe('m2: deadline passed');
  });

  it('show a run still going with no duration and no message as "-"', () => {
    const [row] = historyRows([{ ...run, outcome: 'running', finishedAt: null, durationMs: null, message: null }]);
    expect([row?.[3], row?.[6], row?.[7]]).toEqual(['running', '-', '-']);
  });
});

describe('history: bad input', () => {
  it('a missing store file: one line saying so, exit 2, and the file is not created', async () => {
    const file = join(dir, 'none.db');
    expectOneLine(await cli(['history', '--store', file]), 2, new RegExp(`store ${file}: does not exist`));
    expect(existsSync(file)).toBe(false);
  });

  it('no --store at all, and bad --limit values: one line naming the flag, exit 2', async () => {
    const file = join(dir, 'h.db');
    openStore(file).close();
    expectOneLine(await cli(['history']), 2, /history needs --store FILE/);
    for (const limit of ['0', '-1', 'ten', '1.5', '100000']) {
      expectOneLine(
        await cli(['history', '--store', file, '--limit', limit]),
        2,
        new RegExp(`--limit: expected a whole number from 1 to \\d+, got "${limit}"`),
      );
    }
    expectOneLine(await cli(['history', '--store', file, '-w', 'yaml']), 2, /--write-out: unknown format "yaml"/);
  });

  it('a store from a newer defragd, or a file that is not one: one line naming the file, exit 2', async () => {
    const newer = join(dir, 'newer.db');
    openStore(newer).close();
    const db = new Database(newer);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expectOneLine(
      await cli(['history', '--store', newer]),
      2,
      new RegExp(
        `store ${newer}: was written by a newer defragd \\(schema version ${SCHEMA_VERSION + 1}; this defragd knows up to version ${SCHEMA_VERSION}\\)`,
      ),
    );
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a database\n'.repeat(100));
    expectOneLine(await cli(['history', '--store', text]), 2, new RegExp(`store ${text}: is not a defragd store`));
  });

  it('an empty store lists nothing: an empty JSON array, a table with only its head', async () => {
    const file = join(dir, 'empty.db');
    openStore(file).close();
    const j = await cli(['history', '--store', file, '-w', 'json']);
    expect(j.code, j.stderr).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual([]);
    const t = await cli(['history', '--store', file]);
    expect(t.stdout).toMatch(/STARTED.*CLUSTER.*TRIGGER.*OUTCOME/);
  });
});

describe('history on a read-only file system', () => {
  // A read-only bind mount needs root (CI runs as root); another user cannot make one.
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(
    'reads a store it cannot write (a read-only mount): the runs are listed, exit 0, nothing written [skipped unless root: a read-only bind mount needs root]',
    async () => {
      const rw = join(dir, 'rw');
      const ro = join(dir, 'ro');
      mkdirSync(rw);
      mkdirSync(ro);
      const file = join(rw, 'h.db');
      const store = openStore(file);
      const id = store.startRun({ cluster: 'prod', trigger: 'manual', by: 'ops' });
      store.appendEvent(id, { type: 'warning', message: 'x' });
      store.close();
      execFileSync('mount', ['--bind', rw, ro]);
      try {
        execFileSync('mount', ['-o', 'remount,ro,bind', ro]);
        const r = await cli(['history', '--store', join(ro, 'h.db'), '-w', 'json']);
        expect(r.code, r.stderr).toBe(0);
        expect((JSON.parse(r.stdout) as StoredRun[]).map((x) => [x.id, x.cluster])).toEqual([[id, 'prod']]);
        expect(r.stderr).toBe('');
      } finally {
        execFileSync('umount', [ro]);
      }
    },
  );
});

describe('defrag --store: bad input stops the run before etcd is contacted', () => {
  it('an unusable store file: one line naming it, exit 2, no connection error', async () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a database\n'.repeat(100));
    // 127.0.0.1:1 refuses: had the run got as far as dialling, the error would say so.
    expectOneLine(
      await cli(['defrag', '--endpoints', '127.0.0.1:1', '--store', text]),
      2,
      new RegExp(`store ${text}: is not a defragd store`),
    );
    expectOneLine(await cli(['defrag', '--endpoints', '127.0.0.1:1', '--store', '']), 2, /--store: the store file must not be empty/);
    expectOneLine(
      await cli(['defrag', '--endpoints', '127.0.0.1:1', '--store', join(dir, 'x.db'), '--store-cluster', ' ']),
      2,
      /--store-cluster: the cluster name must not be empty/,
    );
  });

  it('a run refused for want of etcd is recorded as refused, not left running', async () => {
    const file = join(dir, 'refused.db');
    const r = await cli(['defrag', '--endpoints', '127.0.0.1:1', '--dial-timeout', '200ms', '--store', file, '--store-cluster', 'lab']);
    expect(r.code, r.stderr).toBe(3);
    const store = openStore(file, { mustExist: true });
    try {
      expect(store.runs().map((x) => [x.cluster, x.outcome, x.trigger])).toEqual([['lab', 'refused', 'manual']]);
    } finally {
      store.close();
    }
  });
});
