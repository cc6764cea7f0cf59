/**
 * NOSPACE end to end on a real 3-member etcd 3.4 cluster with a 16 MiB quota:
 * writes fail, every member carries the alarm, `defragd defrag` without
 * compaction cannot get under the margin and says which flag would, with
 * `--compact-keep-revisions 0 --disarm-nospace` the cluster takes writes
 * again; then `defragd alarm list | disarm`.
 *
 * The tests run in order on one cluster: each starts from the state the one
 * before left (NOSPACE, then recovered, then NOSPACE again).
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import type { Plan } from '../../src/domain/plan.js';
import type { StatusJson } from '../../src/cli/printers/status.js';
import { defragmentationStatus } from '../../src/app/last.js';
import { cli, fillUntilNospace, MiB, observe, parseJson, show, sizes, tryPut, type ReportJson } from './helpers-defrag.js';
import { apartFromDefectWarnings } from '../support/etcd-version.js';

const QUOTA = 16 * MiB;
const NOSPACE = /database space exceeded/;
/** --disarm-below in the test that a defrag alone cannot reach: below what a fill to NOSPACE leaves in use. */
const MARGIN = 0.7;

describe('NOSPACE on a 3-member cluster with a 16 MiB quota', () => {
  const cluster = useCluster({ members: 3, quotaBackendBytes: QUOTA });
  const conn = () => ({ endpoints: cluster().endpoints });
  const eps = () => cluster().endpoints.join(',');

  it('writes fail with NOSPACE and `defragd status -w json` shows the alarm on every member', async () => {
    await fillUntilNospace(conn(), '/fill1/');
    const r = await cli(['status', '--endpoints', eps(), '--cluster', '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const rows = parseJson<StatusJson[]>(r);
    expect(rows.map((x) => x.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const row of rows) {
      expect(row.alarms, `${row.name}: dbSize ${row.dbSize}`).toEqual(['NOSPACE']);
      expect(row.quota).toBe(QUOTA);
      expect(row.dbSize as number).toBeGreaterThanOrEqual(QUOTA * 0.9);
    }
    const list = await cli(['alarm', 'list', '--endpoints', eps(), '-w', 'json']);
    expect(list.code, show(list)).toBe(0);
    const alarms = parseJson<{ memberId: string; alarm: string; name: string }[]>(list);
    expect(alarms.map((a) => `${a.name}:${a.alarm}`).sort()).toEqual(['m1:NOSPACE', 'm2:NOSPACE', 'm3:NOSPACE']);
    const table = await cli(['alarm', 'list', '--endpoints', eps()]);
    expect(table.stdout.match(/NOSPACE/g)).toHaveLength(3);
  });

  it('without --compact-keep-revisions, defragmentation alone cannot get under the margin: the plan and the run name the flag, NOSPACE stays', async () => {
    const before = await sizes(conn());
    // Nothing was compacted, so the old revisions stay in use: 12.6-16.5 MiB of the 16 MiB on every member
    // (how much exactly depends on bbolt's free list; 12.6 MiB seen on 3.4), so a margin of 70% is out of
    // reach of a defrag alone.
    for (const [name, s] of Object.entries(before))
      expect(s.dbSizeInUse, `${name}: ${JSON.stringify(s)}`).toBeGreaterThanOrEqual(MARGIN * QUOTA);

    const dry = await cli([
      'defrag',
      '--endpoints',
      eps(),
      '--disarm-nospace',
      '--disarm-below',
      String(MARGIN),
      '--dry-run',
      '-w',
      'json',
    ]);
    expect(dry.code, show(dry)).toBe(0);
    const plan = parseJson<{ plan: Plan }>(dry).plan;
    expect(plan.disarmNospace).toBe(true);
    const hints = plan.warnings.filter((w) => w.includes('--compact-keep-revisions'));
    expect(hints, plan.warnings.join('\n')).toHaveLength(3);
    for (const name of ['m1', 'm2', 'm3']) expect(hints.some((w) => w.includes(`${name} (`))).toBe(true);

    const r = await cli(['defrag', '--endpoints', eps(), '--disarm-nospace', '--disarm-below', String(MARGIN), '-w', 'json']);
    const report = parseJson<ReportJson>(r);
    expect(report.disarmed, show(r)).toBe(false);
    expect(report.compactedRevision).toBeNull();
    expect(report.disarmNote).toMatch(/NOSPACE left armed/);
    expect(report.disarmNote).toContain('--compact-keep-revisions');
    // Every member was defragmented, but NOSPACE was asked to go and stays: the cluster still refuses
    // writes, so the run fails (exit 1) and says why.
    expect(r.code, show(r)).toBe(1);
    expect(report.outcome).toBe('failed');
    expect(report.members.filter((m) => m.action === 'defragmented')).toHaveLength(3);
    expect(r.stderr).toContain('--compact-keep-revisions');
    expect(
      (await observe(conn())).alarms.filter((a) => a.alarm === 'NOSPACE'),
      show(r),
    ).toHaveLength(3);
    expect(await tryPut(conn(), cluster().endpoints[0] as string, '/after-defrag-only', 'x')).toMatch(NOSPACE);
    // Nor can the records of the run be written, even once more after it: one warning per member, none stored.
    const unrecorded = report.warnings.filter((w) =>
      /could not record its defragmentation at \/defragd\/members\/[0-9a-f]+\/last-defrag: .*database space exceeded/.test(w),
    );
    expect(unrecorded, report.warnings.join('\n')).toHaveLength(3);
    expect((await defragmentationStatus({ ...conn(), cluster: true })).map((m) => m.record)).toEqual(['none', 'none', 'none']);
  });

  it('`defrag --compact-keep-revisions 0 --disarm-nospace` compacts, defragments, disarms: exit 0 and writes succeed again', async () => {
    const revisionBefore = Math.max(...(await observe(conn())).members.map((m) => m.status?.revision ?? 0));
    const t0 = Date.now();
    const r = await cli(['defrag', '--endpoints', eps(), '--compact-keep-revisions', '0', '--disarm-nospace', '-w', 'json']);
    const t1 = Date.now();
    expect(r.code, show(r)).toBe(0);
    const report = parseJson<ReportJson>(r);
    expect(apartFromDefectWarnings(report.warnings)).toEqual([]);
    expect(report.outcome).toBe('success');
    expect(report.disarmed).toBe(true);
    expect(report.disarmNote).toBeNull();
    expect(report.compactedRevision).toBe(revisionBefore);
    expect(report.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
    for (const m of report.members) expect(m.after?.dbSize as number, m.name).toBeLessThan(0.9 * QUOTA);

    const list = await cli(['alarm', 'list', '--endpoints', eps(), '-w', 'json']);
    expect(list.code).toBe(0);
    expect(parseJson<unknown[]>(list)).toEqual([]);
    const table = await cli(['alarm', 'list', '--endpoints', eps()]);
    expect(table.stdout).toBe('no alarms\n');
    for (const ep of cluster().endpoints) expect(await tryPut(conn(), ep, '/after-recovery', 'x'), ep).toBeNull();
    // Refused under NOSPACE while the members were defragmented, the records were written once the run had disarmed it.
    const recorded = await defragmentationStatus({ ...conn(), cluster: true });
    for (const m of report.members) {
      const row = recorded.find((x) => x.memberId === m.memberId);
      expect(row?.lastDefrag?.revision, m.name).toBe(m.revision);
      expect(Date.parse(row?.lastDefrag?.at ?? '')).toBeGreaterThanOrEqual(t0);
      expect(Date.parse(row?.lastDefrag?.at ?? '')).toBeLessThanOrEqual(t1);
      expect(row?.reclaimedBytes).toBe(m.before!.dbSize - m.after!.dbSize);
    }
  });

  it('`alarm disarm` clears NOSPACE on every member, warns that members over the quota will raise it again, and they do', async () => {
    await fillUntilNospace(conn(), '/fill2/');
    const filled = await observe(conn());
    expect(filled.alarms, JSON.stringify(filled.members.map((m) => [m.name, m.memberId, m.status?.dbSize]))).toHaveLength(3);

    const r = await cli(['alarm', 'disarm', '--endpoints', eps(), '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const out = parseJson<{ disarmed: { memberId: string; alarm: string }[]; remaining: unknown[] }>(r);
    expect(out.disarmed.map((a) => a.alarm)).toEqual(['NOSPACE', 'NOSPACE', 'NOSPACE']);
    expect(out.remaining).toEqual([]);
    const warning = apartFromDefectWarnings(r.stderr.trimEnd().split('\n'));
    expect(warning, r.stderr).toHaveLength(1);
    expect(warning[0]).toMatch(/^defragd: warning: .*at or over its quota.*NOSPACE will come back/);

    const list = await cli(['alarm', 'list', '--endpoints', eps(), '-w', 'json']);
    expect(parseJson<unknown[]>(list)).toEqual([]);
    // As warned: the members are still over the quota, so the next write raises it again. Sent to a member
    // over it: a member under it accepts the write (each member checks its own file), as seen on 3.7 once.
    const over = filled.members.filter((m) => (m.status?.dbSize ?? 0) >= (m.status?.quota ?? Infinity));
    expect(over.length, JSON.stringify(filled.members.map((m) => [m.name, m.status?.dbSize, m.status?.quota]))).toBeGreaterThan(0);
    expect(await tryPut(conn(), over[0]!.endpoint, '/after-disarm', 'x')).toMatch(NOSPACE);
    const again = await cli(['alarm', 'disarm', '--endpoints', eps()]);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toMatch(/^disarmed \d alarm\(s\)\n$/);
  });
});
