/**
 * The defragmentation records on a real 3-member etcd 3.4 cluster: a run
 * leaves `<prefix>/members/<id>/last-defrag` for each member it defragmented,
 * and `defragd last` (the built executable, a second process) reads them
 * back; a dry run, a refused run and `--no-record` write nothing; a member
 * never defragmented shows null; a value that is not a record is shown as
 * unknown with a warning. The tests share one cluster and run in order.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { acquireLock, connect, defragment, defragmentationStatus, type MemberDefragStatus } from '../../src/index.js';
import { cli, ensureFragmented, MiB, parseJson, show, type ReportJson } from './helpers-defrag.js';
import { apartFromDefectWarnings, defectWarnings, ETCD_VERSION } from '../support/etcd-version.js';
import { defectsOf } from '../../src/domain/known-defects.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const FRAGMENT = { bytes: 8 * MiB, passes: 2, minFree: 4 * MiB, members: 3 } as const;

/** The built executable, as an operator runs it (async: the harness's etcd processes keep logging meanwhile). */
async function defragd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [MAIN, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env['PATH'] ?? '' },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('defragmentation records and `defragd last`', () => {
  const cluster = useCluster({ members: 3 });
  const conn = () => ({ endpoints: cluster().endpoints });
  const eps = () => cluster().endpoints.join(',');

  beforeAll(async () => {
    if (existsSync(fileURLToPath(new URL('../../dist/cli/commands/last.js', import.meta.url)))) return;
    const r = await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (!existsSync(MAIN)) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
  }, 150_000);

  /** Every key under a prefix, as etcdctl get --prefix would list them. */
  async function keysUnder(prefix: string): Promise<string[]> {
    const client = connect(conn());
    try {
      const end = Buffer.from(prefix);
      end[end.length - 1]! += 1;
      const r = await client.member(cluster().endpoints[0] as string).range(prefix, { rangeEnd: end });
      return r.kvs.map((kv) => kv.key.toString());
    } finally {
      client.close();
    }
  }

  it('a member never defragmented shows null: lastDefrag, age and reclaimed; its free space now is shown', async () => {
    await ensureFragmented(conn(), FRAGMENT);
    const r = await defragd(['last', '--endpoints', eps(), '--cluster', '-w', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as MemberDefragStatus[];
    expect(rows.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const m of rows) {
      expect(m.memberId).toMatch(/^[0-9a-f]{1,16}$/);
      expect(m).toMatchObject({ lastDefrag: null, record: 'none', ageSeconds: null, reclaimedBytes: null, error: null });
      expect(m.dbSizeFree as number).toBeGreaterThanOrEqual(FRAGMENT.minFree);
    }
    const table = await defragd(['last', '--endpoints', eps(), '--cluster']);
    expect(table.code).toBe(0);
    expect(table.stdout.match(/never \(no record\)/g)).toHaveLength(3);
  });

  it('a dry run, a refused run and `--no-record` write nothing under the prefix', async () => {
    const dry = await cli(['defrag', '--endpoints', eps(), '--dry-run', '-w', 'json']);
    expect(dry.code, show(dry)).toBe(0);
    expect(await keysUnder('/defragd/')).toEqual([]);

    // Another run holds the cluster lock: this one is refused before anything is done.
    const client = connect(conn());
    const lock = await acquireLock({ connection: client, holder: 'the other run' });
    try {
      const refused = await cli(['defrag', '--endpoints', eps(), '-w', 'json']);
      expect(refused.code, show(refused)).toBe(3);
    } finally {
      await lock.release();
      client.close();
    }
    expect(await keysUnder('/defragd/')).toEqual([]);

    const run = await cli(['defrag', '--endpoints', eps(), '--no-record', '-w', 'json']);
    expect(run.code, show(run)).toBe(0);
    expect(parseJson<ReportJson>(run).members.filter((m) => m.action === 'defragmented')).toHaveLength(3);
    expect(await keysUnder('/defragd/')).toEqual([]);
  });

  it("after `defrag`, `defragd last -w json` from another process shows each member with the run's revision, time and reclaimed bytes", async () => {
    await ensureFragmented(conn(), FRAGMENT);
    const t0 = Date.now();
    const run = await cli(['defrag', '--endpoints', eps(), '-w', 'json']);
    const t1 = Date.now();
    expect(run.code, show(run)).toBe(0);
    const report = parseJson<ReportJson>(run);
    expect(apartFromDefectWarnings(report.warnings)).toEqual([]);
    // On a release with known defrag defects, the run says so for each member (3.4.23: three each).
    expect(defectWarnings(report.warnings)).toBe(defectsOf(ETCD_VERSION).length > 0 ? 3 : 0);
    expect(await keysUnder('/defragd/')).toHaveLength(3);

    const r = await defragd(['last', '--endpoints', eps(), '--cluster', '-w', 'json']);
    expect(r.code, r.stderr).toBe(0);
    // `last` warns about the members' releases too, as every command that observes the cluster does.
    const stderr = r.stderr.split('\n').filter(Boolean);
    expect(apartFromDefectWarnings(stderr)).toEqual([]);
    expect(defectWarnings(stderr)).toBe(defectsOf(ETCD_VERSION).length > 0 ? 3 : 0);
    const rows = JSON.parse(r.stdout) as MemberDefragStatus[];
    expect(rows).toHaveLength(3);
    expect(rows.map((x) => x.version)).toEqual([ETCD_VERSION, ETCD_VERSION, ETCD_VERSION]);
    for (const m of report.members) {
      const row = rows.find((x) => x.memberId === m.memberId) as MemberDefragStatus;
      expect(row, m.name).toBeDefined();
      expect(row.record).toBe('found');
      const rec = row.lastDefrag!;
      expect(rec.revision).toBe(m.revision);
      expect(Date.parse(rec.at)).toBeGreaterThanOrEqual(t0);
      expect(Date.parse(rec.at)).toBeLessThanOrEqual(t1);
      expect(rec.before).toEqual(m.before);
      expect(rec.after).toEqual(m.after);
      expect(rec.durationMs).toBe(m.durationMs);
      expect(row.reclaimedBytes).toBe(m.before!.dbSize - m.after!.dbSize);
      expect(row.reclaimedBytes as number).toBeGreaterThan(0);
      expect(rec.trigger).toBe('manual');
      // The CLI ran in this process (cli() is in-process).
      expect(rec.by).toBe(`${hostname()}:${process.pid}`);
      expect(row.ageSeconds as number).toBeLessThanOrEqual(Math.ceil((Date.now() - t0) / 1_000));
    }
    expect(rows.reduce((n, x) => n + (x.reclaimedBytes ?? 0), 0)).toBe(report.reclaimedBytes);

    const table = await defragd(['last', '--endpoints', eps(), '--cluster']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/NAME .* LAST DEFRAG .* AGE/);
    expect(table.stdout.match(/\d+s ago/g)).toHaveLength(3);
    expect(table.stdout.match(/ manual /g)).toHaveLength(3);
  });

  it('the library: defragment() with its own prefix, trigger and by; defragmentationStatus() reads them', async () => {
    const report = await defragment({
      connection: conn(),
      policy: { rule: `memberName == "m2"` },
      record: { prefix: '/ops/defragd/', trigger: 'schedule', by: 'nightly-job' },
    });
    expect(report.outcome).toBe('success');
    const m2 = report.members.find((m) => m.name === 'm2')!;
    const status = await defragmentationStatus({ connection: conn(), cluster: true, recordPrefix: '/ops/defragd' });
    expect(status.find((m) => m.name === 'm2')).toMatchObject({
      record: 'found',
      lastDefrag: { trigger: 'schedule', by: 'nightly-job', revision: m2.revision },
    });
    // m1 and m3 were skipped by the rule: no record under this prefix.
    expect(status.filter((m) => m.name !== 'm2').map((m) => m.lastDefrag)).toEqual([null, null]);
    expect(await keysUnder('/ops/')).toEqual([`/ops/defragd/members/${m2.memberId}/last-defrag`]);
  });

  it('a member that does not answer: its row says so, the others are shown, exit 1', async () => {
    const srv = net.createServer();
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
    const dead = `127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    const r = await defragd(['last', '--endpoints', `${eps()},${dead}`, '--dial-timeout', '1s', '-w', 'json']);
    expect(r.code, r.stderr).toBe(1);
    const rows = JSON.parse(r.stdout) as MemberDefragStatus[];
    expect(rows).toHaveLength(4);
    expect(rows.filter((m) => m.record === 'found')).toHaveLength(3);
    const down = rows.find((m) => m.endpoint.includes(dead))!;
    expect(down).toMatchObject({ dbSizeFree: null, lastDefrag: null });
    expect(down.error).not.toBeNull();
    // One line for it, naming its endpoint once (the error already starts with it).
    const lines = r.stderr
      .trimEnd()
      .split('\n')
      .filter((l) => l.includes(dead));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]!.split(dead)).toHaveLength(2);
  });

  it('a value that is not a record: shown as unknown with a warning on stderr, exit 0, no crash; an empty prefix is a usage error', async () => {
    const client = connect(conn());
    try {
      const status = await defragmentationStatus({ connection: client, cluster: true });
      const victim = status[0]!;
      await client.member(cluster().endpoints[0] as string).put(`/bad/members/${victim.memberId}/last-defrag`, 'not json {');
    } finally {
      client.close();
    }
    const r = await defragd(['last', '--endpoints', eps(), '--cluster', '--record-prefix', '/bad', '-w', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as MemberDefragStatus[];
    expect(rows.map((m) => m.record).sort()).toEqual(['invalid', 'none', 'none']);
    const lines = apartFromDefectWarnings(r.stderr.trimEnd().split('\n'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^defragd: warning: .*\/bad\/members\/[0-9a-f]+\/last-defrag: not valid JSON/);
    const table = await defragd(['last', '--endpoints', eps(), '--cluster', '--record-prefix', '/bad']);
    expect(table.stdout).toContain('unknown (bad record)');

    const bad = await defragd(['last', '--endpoints', eps(), '--record-prefix', '']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe('defragd: --record-prefix: the record prefix must not be empty\n');
  });
});
