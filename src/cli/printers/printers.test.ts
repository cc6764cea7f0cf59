import { describe, expect, it } from 'vitest';
import { aPolicy, aSnapshot, MiB } from '../../../test/builders.js';
import { planDefrag } from '../../planner/index.js';
import { dryRunReport } from '../../app/defragment.js';
import type { RunReport } from '../../domain/run.js';
import { eventLine, planRows, printDryRun, printPlan, printReport, reportJson } from './defrag.js';
import { printStatus, statusJson, statusRows, STATUS_HEAD } from './status.js';

const snap = aSnapshot().withMembers(3).withLeader('m2').withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB }).unreachable('m3').build();

describe('status printers', () => {
  it('JSON: stable keys, hex IDs, null for what an unreachable member did not say', () => {
    const rows = statusJson(snap);
    expect(rows.map((r) => r.name)).toEqual(['m1', 'm2', 'm3']);
    const m1 = rows[0]!;
    expect(m1.dbSizeFree).toBe(200 * MiB);
    expect(m1.fragmentation).toBeCloseTo(2 / 3, 4);
    expect(m1.memberId).toMatch(/^[0-9a-f]+$/);
    const m3 = rows[2]!;
    expect(m3.dbSize).toBeNull();
    expect(m3.healthy).toBe(false);
    expect(m3.error).not.toBeNull();
    expect(JSON.parse(printStatus(snap, 'json'))).toEqual(rows);
  });

  it('table: one row per member, sizes human-readable, errors shown', () => {
    const rows = statusRows(snap);
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r).toHaveLength(STATUS_HEAD.length);
    const col = (name: string) => STATUS_HEAD.indexOf(name);
    expect(rows[0]![col('DB SIZE')]).toBe('300.0 MiB');
    expect(rows[0]![col('FRAG')]).toBe('66.7%');
    expect(rows[1]![col('LEADER')]).toBe('true');
    expect(rows[2]![col('DB SIZE')]).toBe('-');
    expect(rows[2]![col('ERRORS')]).not.toBe('-');
  });
});

const executed: RunReport = {
  outcome: 'success',
  dryRun: false,
  plan: null,
  message: null,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:02.000Z',
  compactedRevision: null,
  disarmed: false,
  disarmNote: null,
  reclaimedBytes: 200 * MiB,
  warnings: [],
  members: [
    {
      endpoint: 'http://127.0.0.1:2379', memberId: '8e9e05c52164694d', name: 'm2', action: 'defragmented', reason: 'no rule', wasLeader: false, movedLeaderTo: null,
      before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB }, after: { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB }, durationMs: 1234, revision: 42, deadlinePassed: false, connectionLost: false,
    },
  ],
};

describe('defrag printers', () => {
  const healthy = aSnapshot().withMembers(3).withLeader('m1').withMember('m2', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB }).build();
  const plan = planDefrag(healthy, aPolicy());

  it('plan rows number the members to defragment in order, leader last with its transferee', () => {
    const rows = planRows(plan);
    expect(rows.map((r) => r[0])).toEqual(['1', '2', '3']);
    expect(rows[0]![1]).toBe('m2');
    expect(rows[2]![1]).toBe('m1');
    expect(rows[2]![5]).toMatch(/^yes, move to m[23]$/);
    expect(printPlan(plan)).toMatch(/^Dry run: nothing will be changed\./);
  });

  it('a dry-run report changes nothing and says what would happen, in the same shape for the CLI and the library', () => {
    const report = dryRunReport(plan, '2026-01-01T00:00:00.000Z');
    expect(report.outcome).toBe('dry-run');
    expect(report.dryRun).toBe(true);
    expect(report.plan).toEqual(plan);
    const json = JSON.parse(printDryRun(report, 'json'));
    expect(json).toMatchObject({ outcome: 'dry-run', dryRun: true, plan: { decisions: plan.decisions } });
    expect(printDryRun(report, 'table')).toBe(printPlan(plan));
    expect(report.message).toMatch(/3 member\(s\) would be defragmented/);
    expect(report.members.every((m) => m.action === 'skipped' && m.reason.startsWith('dry run: would defragment'))).toBe(true);
  });

  it('report JSON has the documented shape', () => {
    const report = executed;
    const j = reportJson(report) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(expect.arrayContaining(['outcome', 'compactedRevision', 'disarmed', 'members']));
    const m = (j['members'] as Record<string, unknown>[])[0]!;
    expect(Object.keys(m)).toEqual(expect.arrayContaining(['endpoint', 'memberId', 'action', 'reason', 'wasLeader', 'movedLeaderTo', 'before', 'after', 'durationMs', 'revision']));
    expect(m['after']).toEqual({ dbSize: 100 * MiB, dbSizeInUse: 100 * MiB });
    expect(m['durationMs']).toBe(1234);
    const table = printReport(report, 'table');
    expect(table).toMatch(/defragmented 1 member\(s\), reclaimed 200\.0 MiB/);
    expect(table).toMatch(/300\.0 MiB \(100\.0 MiB used\)/);
  });

  it('the run-started line gives the order and the leader hand-over', () => {
    expect(eventLine({ type: 'run-started', at: 'x', plan })).toMatch(/^plan: 3 member\(s\) to defragment, one at a time: m2 → m3 → m1 \(leader: hands leadership over first\)$/);
  });

  it('event lines never claim a retry after a Defragment got no answer, and say which way it got none', () => {
    expect(eventLine({ type: 'member-no-answer', memberId: 'a', name: 'm1', why: 'deadline', timeoutMs: 5_000, detail: 'x' })).toMatch(/deadline of 5s passed.*NOT retrying/);
    const lost = eventLine({ type: 'member-no-answer', memberId: 'a', name: 'm1', why: 'connection-lost', timeoutMs: 75_000, detail: 'connection reset' });
    expect(lost).toMatch(/connection lost during its defragmentation \(connection reset\).*NOT retrying/);
    expect(lost).not.toMatch(/deadline/);
    expect(eventLine({ type: 'run-finished', report: dryRunReport(plan, 'x') })).toBeNull();
  });
});
