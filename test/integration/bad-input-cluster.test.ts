/**
 * Bad endpoints and operator mistakes through the built executable against a
 * real 3-member cluster: each gives the documented exit code, one line saying
 * what was wrong, no stack trace, one JSON object with `defrag -w json`, and
 * changes nothing (etcd's own defrag counters, sizes and the lock key are
 * compared before and after).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { blackHolePort, closedPort, notEtcdHttpServer, type FaultEndpoint } from '../../dev/harness/faults.js';
import { connect, DEFAULT_LOCK_KEY } from '../../src/index.js';
import { dbSizes, defragCount } from './helpers-defrag.js';
import { apartFromDefectWarnings } from '../support/etcd-version.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = `${ROOT}dist/cli/main.js`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

// Asynchronous on purpose: the fault endpoints live in this process and must keep answering.
function defragd(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 40_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

const show = (r: Run) => `exit ${r.code} after ${r.ms} ms\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

function noStack(r: Run): void {
  for (const s of [r.stdout, r.stderr]) {
    expect(s, show(r)).not.toMatch(/^\s+at /m);
    expect(s, show(r)).not.toMatch(/\.(js|ts):\d+/);
    expect(s, show(r)).not.toMatch(/TimeoutOverflowWarning|\(node\)/);
  }
}

function oneStderrLine(r: Run, pattern: RegExp): void {
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, show(r)).toHaveLength(1);
  expect(lines[0], show(r)).toMatch(/^defragd: /);
  expect(lines[0], show(r)).toMatch(pattern);
  noStack(r);
}

/** `-w json` of defrag: stdout is exactly one JSON object. */
function oneJsonObject(r: Run): {
  outcome: string;
  message: string | null;
  members: { name: string; action: string; reason: string }[];
  warnings: string[];
} {
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    throw new Error(`stdout is not one JSON value:\n${show(r)}`);
  }
  expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), show(r)).toBe(true);
  return parsed as ReturnType<typeof oneJsonObject>;
}

describe('bad endpoints and operator mistakes, through the binary, against a real cluster', () => {
  const cluster = useCluster({ members: 3 });
  const eps = () => cluster().endpoints;

  /**
   * What "nothing changed" is compared on: each member's Defragment count and dbSize, the cluster's
   * revision (no write, no lock taken and given back), and the lock key.
   */
  async function state(): Promise<{ defrags: (number | null)[]; sizes: Record<string, number>; revision: number; lock: number }> {
    const client = connect({ endpoints: eps() });
    try {
      const r = await client.member(eps()[0] as string).range(DEFAULT_LOCK_KEY);
      return {
        defrags: await Promise.all(eps().map((e) => defragCount(e))),
        sizes: await dbSizes({ endpoints: eps() }),
        revision: r.header.revision,
        lock: r.count,
      };
    } finally {
      client.close();
    }
  }

  async function expectNothingChanged(before: Awaited<ReturnType<typeof state>>, what: string): Promise<void> {
    const after = await state();
    expect(after.defrags, `${what}: etcd_disk_backend_defrag_duration_seconds_count per member`).toEqual(before.defrags);
    expect(after.revision, `${what}: the cluster's revision`).toBe(before.revision);
    // A defrag or a compaction would shrink a file. etcd's own bookkeeping (its consistent index, committed
    // on its own) can grow a fresh member's file by a page with nothing written (3.4.23: m3 24576 → 32768).
    for (const [m, size] of Object.entries(after.sizes))
      expect(size, `${what}: dbSize of ${m} (before ${before.sizes[m]})`).toBeGreaterThanOrEqual(before.sizes[m] ?? 0);
    expect(after.lock, `${what}: ${DEFAULT_LOCK_KEY}`).toBe(0);
  }

  beforeAll(() => {
    if (!existsSync(BIN)) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT });
  });

  describe('endpoints that are not a healthy etcd', () => {
    let hole: FaultEndpoint;
    let closed: FaultEndpoint;
    let notEtcd: FaultEndpoint;
    beforeAll(async () => {
      [hole, closed, notEtcd] = await Promise.all([blackHolePort(), closedPort(), notEtcdHttpServer()]);
    });
    afterAll(async () => {
      await Promise.all([hole?.close(), closed?.close(), notEtcd?.close()]);
    });

    const cases = (): { name: string; args: string[]; says: RegExp }[] => [
      { name: 'a port speaking HTTP/1.1, not etcd', args: ['--endpoints', notEtcd.url], says: /does not speak etcd's gRPC API/ },
      {
        name: 'a black hole with --dial-timeout 1s',
        args: ['--endpoints', hole.url, '--dial-timeout', '1s'],
        says: /could not connect within 1s \(--dial-timeout\)/,
      },
      { name: 'a closed port', args: ['--endpoints', closed.url], says: /connection refused/ },
    ];

    it('status: exit 1, one line on stderr naming the endpoint and what is wrong, JSON rows with -w json; bounded wall time', async () => {
      for (const c of cases()) {
        const table = await defragd(['status', ...c.args]);
        expect(table.code, `${c.name}\n${show(table)}`).toBe(1);
        oneStderrLine(table, c.says);
        expect(table.stderr).toContain(c.args[1] as string);
        // Generous: it must not hang (the black hole is bounded by --dial-timeout 1s).
        expect(table.ms, c.name).toBeLessThan(20_000);

        const json = await defragd(['status', ...c.args, '-w', 'json']);
        expect(json.code, `${c.name}\n${show(json)}`).toBe(1);
        oneStderrLine(json, c.says);
        const rows = JSON.parse(json.stdout) as { endpoint: string; error: string | null; healthy: boolean }[];
        expect(rows, show(json)).toHaveLength(1);
        expect(rows[0]).toMatchObject({ endpoint: c.args[1], healthy: false });
        expect(rows[0]?.error).toMatch(c.says);
      }
    });

    it('defrag: exit 3 (refused), the reason in one line, one JSON object with -w json, nothing changed, bounded wall time', async () => {
      const before = await state();
      for (const c of cases()) {
        const table = await defragd(['defrag', ...c.args]);
        expect(table.code, `${c.name}\n${show(table)}`).toBe(3);
        // Table output: the report (one REFUSED line) is on stdout; nothing else is said.
        const lines = table.stdout.trimEnd().split('\n');
        expect(lines, show(table)).toHaveLength(1);
        expect(lines[0]).toMatch(/^REFUSED: nothing was changed: /);
        expect(lines[0]).toMatch(c.says);
        expect(table.stderr, show(table)).toBe('');
        noStack(table);
        expect(table.ms, c.name).toBeLessThan(20_000);

        const json = await defragd(['defrag', ...c.args, '-w', 'json']);
        expect(json.code, `${c.name}\n${show(json)}`).toBe(3);
        const report = oneJsonObject(json);
        expect(report.outcome).toBe('refused');
        expect(report.message).toMatch(c.says);
        expect(report.members).toEqual([]);
        oneStderrLine(json, /^defragd: refused: /);
        expect(json.stderr).toMatch(c.says);
        expect(json.ms, c.name).toBeLessThan(20_000);
      }
      await expectNothingChanged(before, 'bad endpoints');
    });

    it('a black hole next to a live member: defrag --dry-run plans all three members from the live one and never hangs', async () => {
      // The live member gives the membership; the black hole is not a member, so it must not hold the run up for long.
      const r = await defragd(['defrag', '--endpoints', `${hole.url},${eps()[0]}`, '--dial-timeout', '1s', '--dry-run', '-w', 'json']);
      expect(r.ms).toBeLessThan(20_000);
      noStack(r);
      expect(r.code, show(r)).toBe(0);
      const report = oneJsonObject(r);
      expect(report.outcome).toBe('dry-run');
      expect(report.members.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
      for (const m of report.members) expect(m.reason).toMatch(/^dry run: would defragment/);
    });
  });

  it('the same endpoint twice: one row in status, and defrag defragments each member exactly once', async () => {
    const ep = eps()[0] as string;
    const status = await defragd(['status', '--endpoints', `${ep},${ep}`, '-w', 'json']);
    expect(status.code, show(status)).toBe(0);
    expect(apartFromDefectWarnings(status.stderr.split('\n').filter(Boolean))).toEqual([]);
    expect((JSON.parse(status.stdout) as unknown[]).length).toBe(1);

    const table = await defragd(['status', '--endpoints', `${ep},${ep}`]);
    expect(table.code, show(table)).toBe(0);
    expect(table.stdout.split('\n').filter((l) => l.includes(ep))).toHaveLength(1);

    const before = await Promise.all(eps().map((e) => defragCount(e)));
    const r = await defragd(['defrag', '--endpoints', `${ep},${ep}`, '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const report = oneJsonObject(r);
    expect(report.outcome).toBe('success');
    expect(report.members.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(
      report.members.every((m) => m.action === 'defragmented'),
      show(r),
    ).toBe(true);
    const after = await Promise.all(eps().map((e) => defragCount(e)));
    expect(after.map((a, i) => (a as number) - (before[i] as number))).toEqual([1, 1, 1]);

    const hashes = await cluster().hashKV();
    expect(new Set(hashes.map((h) => h.hash)).size).toBe(1);
  });

  describe('operator findings', () => {
    it('a rule that fails at run time for one member: refused (exit 3) naming the member and the error, never "nothing to do"', async () => {
      const before = await state();
      // Fine on the compile-time samples (memberName "sample..."), a division by zero for m2 only.
      const rule = 'memberName == "m2" ? dbSize / (dbSize - dbSize) > 1 : dbSizeFree > 0';
      const table = await defragd(['defrag', '--endpoints', eps().join(','), '--rule', rule]);
      expect(table.code, show(table)).toBe(3);
      expect(`${table.stdout}${table.stderr}`).toMatch(/the rule failed for m2\b.*division by zero/);
      expect(table.stdout).not.toMatch(/nothing to do/i);
      noStack(table);

      const json = await defragd(['defrag', '--endpoints', eps().join(','), '--rule', rule, '-w', 'json']);
      expect(json.code, show(json)).toBe(3);
      const report = oneJsonObject(json);
      expect(report.outcome).toBe('refused');
      expect(report.message).toMatch(/the rule failed for m2\b.*division by zero/);
      noStack(json);
      await expectNothingChanged(before, 'rule failing for m2');
    });

    it('a rule that fails at run time for every member: refused (exit 3), not "nothing to do"', async () => {
      const before = await state();
      // No sample member's name starts with "m", so it compiles; every real one does.
      const rule = 'memberName.startsWith("m") && dbSize / (dbSizeInUse - dbSizeInUse) > 1';
      const json = await defragd(['defrag', '--endpoints', eps()[1] as string, '--rule', rule, '-w', 'json']);
      expect(json.code, show(json)).toBe(3);
      const report = oneJsonObject(json);
      expect(report.outcome).toBe('refused');
      expect(report.message).toMatch(/the rule failed for m[123]\b.*division by zero/);
      oneStderrLine(json, /refused: .*rule failed/);
      await expectNothingChanged(before, 'rule failing for all');
    });

    it('a rule that fails whatever the member, and an empty rule: exit 2 at start-up, one line, nothing changed', async () => {
      const before = await state();
      for (const [rule, says] of [
        ['dbSize / 0 > 1', /invalid rule at column \d+: division by zero \(whatever the member\)/],
        ['fragmentation > 1/0', /invalid rule at column \d+: division by zero \(whatever the member\)/],
        ['', /invalid rule: it is empty/],
        ['   ', /invalid rule: it is empty/],
      ] as const) {
        for (const w of [[], ['-w', 'json']]) {
          const r = await defragd(['defrag', '--endpoints', eps().join(','), '--rule', rule, ...w]);
          expect(r.code, `--rule '${rule}' ${w.join(' ')}\n${show(r)}`).toBe(2);
          oneStderrLine(r, says);
          if (w.length === 0) expect(r.stdout).toBe('');
          else expect(oneJsonObject(r).outcome).toBe('refused');
        }
      }
      await expectNothingChanged(before, 'rules refused at start-up');
    });

    it('a plan warning is shown on the terminal in a real run, not only with --dry-run or -w json', async () => {
      const before = await Promise.all(eps().map((e) => defragCount(e)));
      const r = await defragd(['defrag', '--endpoints', eps()[2] as string, '--compact-keep-revisions', '999999999']);
      expect(r.code, show(r)).toBe(0);
      expect(`${r.stdout}${r.stderr}`).toMatch(
        /warning: no compaction: the current revision \d+ is not above --compact-keep-revisions 999999999/,
      );
      noStack(r);
      const after = await Promise.all(eps().map((e) => defragCount(e)));
      expect(after.map((a, i) => (a as number) - (before[i] as number))).toEqual([1, 1, 1]);
    });

    it('out-of-range or unit-less durations (and --user without a password): exit 2, one line naming the limit or the missing unit, one JSON object with -w json, no TimeoutOverflowWarning, nothing changed', async () => {
      const before = await state();
      for (const [flag, value, says] of [
        ['--defrag-timeout', '999999999h', /--defrag-timeout: 999999999h is more than the maximum of 24h/],
        ['--command-timeout', '999999999h', /--command-timeout: 999999999h is more than the maximum of 1h/],
        ['--dial-timeout', '9999h', /--dial-timeout: 9999h is more than the maximum of 1h/],
        ['--defrag-timeout', '5', /--defrag-timeout: "5" has no unit; write 5s/],
        // Not a duration, but refused by the same connection-flag check that runs before the defrag flags.
        ['--user', 'root', /--user given without a password/],
      ] as const) {
        for (const w of [[], ['-w', 'json']]) {
          const r = await defragd(['defrag', '--endpoints', eps().join(','), flag, value, ...w]);
          expect(r.code, `${flag} ${value} ${w.join(' ')}\n${show(r)}`).toBe(2);
          oneStderrLine(r, says);
          if (w.length === 0) expect(r.stdout).toBe('');
          else expect(oneJsonObject(r).outcome).toBe('refused');
        }
      }
      await expectNothingChanged(before, 'bad durations');
    });

    it('ETCDCTL_DEBUG=maybe: status exits 2 naming ETCDCTL_DEBUG', async () => {
      const r = await defragd(['status', '--endpoints', eps()[0] as string], { ETCDCTL_DEBUG: 'maybe' });
      expect(r.code, show(r)).toBe(2);
      oneStderrLine(r, /ETCDCTL_DEBUG: expected true or false, got "maybe"/);
      expect(r.stdout).toBe('');
    });
  });
});
