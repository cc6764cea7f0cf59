import { describe, expect, it } from 'vitest';
import { aPolicy, aSnapshot, MiB } from '../../../test/builders.js';
import { planDefrag } from '../../planner/index.js';
import { dryRunReport } from '../../app/defragment.js';
import type { RunReport } from '../../domain/run.js';
import { formatDuration } from '../../domain/format.js';
import { eventLine, PLAN_HEAD, planRows, printDryRun, printPlan, printReport, reportJson } from './defrag.js';
import { printStatus, statusJson, statusRows, STATUS_HEAD, stopGrpcLine } from './status.js';

const snap = aSnapshot()
  .withMembers(3)
  .withLeader('m2')
  .withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB })
  .unreachable('m3')
  .build();

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
      endpoint: 'http://127.0.0.1:2379',
      memberId: '8e9e05c52164694d',
      name: 'm2',
      action: 'defragmented',
      reason: 'no rule',
      wasLeader: false,
      movedLeaderTo: null,
      before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB },
      after: { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB },
      durationMs: 1234,
      revision: 42,
      deadlinePassed: false,
      connectionLost: false,
    },
  ],
};

describe('defrag printers', () => {
  const healthy = aSnapshot()
    .withMembers(3)
    .withLeader('m1')
    .withMember('m2', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB })
    .build();
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
    expect(Object.keys(m)).toEqual(
      expect.arrayContaining([
        'endpoint',
        'memberId',
        'action',
        'reason',
        'wasLeader',
        'movedLeaderTo',
        'before',
        'after',
        'durationMs',
        'revision',
      ]),
    );
    expect(m['after']).toEqual({ dbSize: 100 * MiB, dbSizeInUse: 100 * MiB });
    expect(m['durationMs']).toBe(1234);
    const table = printReport(report, 'table');
    expect(table).toMatch(/defragmented 1 member\(s\), reclaimed 200\.0 MiB/);
    expect(table).toMatch(/300\.0 MiB \(100\.0 MiB used\)/);
  });

  it('the run-started line gives the order and the leader hand-over', () => {
    expect(eventLine({ type: 'run-started', at: 'x', plan })).toMatch(
      /^plan: 3 member\(s\) to defragment, one at a time: m2 → m3 → m1 \(leader: hands leadership over first\)$/,
    );
  });

  describe('the expected duration', () => {
    const id = (name: string) => healthy.members.find((m) => m.name === name)!.memberId;
    // m2 has 100 MiB in use, m1 and m3 the builder's default.
    const forecast = planDefrag(
      healthy,
      aPolicy({
        defragHistory: {
          [id('m1')]: [{ dbSizeInUse: 10 * MiB, durationMs: 1_000 }],
          [id('m2')]: [{ dbSizeInUse: 10 * MiB, durationMs: 2_000 }],
        },
      }),
    );
    const col = PLAN_HEAD.indexOf('EXPECTED');

    it('is a column of the plan table: "~20s", or unknown and why', () => {
      const rows = planRows(forecast);
      expect(rows.map((r) => [r[1], r[col]])).toEqual([
        ['m2', '~20s'],
        ['m3', 'unknown: no history'],
        ['m1', `~${formatDuration(forecast.decisions[2]!.forecastMs!)}`],
      ]);
      expect(planRows(plan).map((r) => r[col])).toEqual(Array(3).fill('unknown: no --store'));
      const unreachable = planDefrag(snap, aPolicy({ defragHistory: {} }));
      expect(planRows(unreachable).find((r) => r[1] === 'm3')![col]).toBe('unknown: no status');
    });

    it('the table sums it when every member has one', () => {
      const known = planDefrag(
        healthy,
        aPolicy({
          defragHistory: Object.fromEntries(['m1', 'm2', 'm3'].map((n) => [id(n), [{ dbSizeInUse: 100 * MiB, durationMs: 10_000 }]])),
        }),
      );
      expect(printPlan(known)).toMatch(/\nExpected defrag time ~\d+(\.\d)?s in all, from each member's own past defrags/);
      expect(printPlan(forecast)).not.toMatch(/Expected defrag time/);
    });

    it('shows in the live plan line and when a member starts, and not when unknown', () => {
      expect(eventLine({ type: 'run-started', at: 'x', plan: forecast })).toMatch(
        /^plan: 3 member\(s\) to defragment, one at a time: m2 ~20s → m3 → m1 ~[\d.]+m?s \(leader: hands leadership over first\)$/,
      );
      const m2 = forecast.decisions[0]!;
      expect(
        eventLine({
          type: 'member-started',
          decision: m2,
          before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB },
          timeoutMs: 70_000,
          index: 1,
          total: 3,
        }),
      ).toBe('m2: defragmenting (1/3, 300.0 MiB, expected ~20s, deadline 1m10s)');
      const m3 = forecast.decisions[1]!;
      expect(
        eventLine({
          type: 'member-started',
          decision: m3,
          before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB },
          timeoutMs: 70_000,
          index: 2,
          total: 3,
        }),
      ).toBe('m3: defragmenting (2/3, 300.0 MiB, deadline 1m10s)');
    });

    it('-w json carries forecastMs and its basis on every decision', () => {
      const json = JSON.parse(printDryRun(dryRunReport(forecast, 'x'), 'json'));
      expect(json.plan.decisions[0]).toMatchObject({
        name: 'm2',
        forecastMs: 20_000,
        forecastBasis: { source: 'history', defrags: 1, bytesPerSecond: 5 * MiB },
      });
      expect(json.plan.decisions[1]).toMatchObject({ name: 'm3', forecastMs: null, forecastBasis: { source: 'none', why: 'no-history' } });
    });
  });

  it('event lines never claim a retry after a Defragment got no answer, and say which way it got none', () => {
    expect(eventLine({ type: 'member-no-answer', memberId: 'a', name: 'm1', why: 'deadline', timeoutMs: 5_000, detail: 'x' })).toMatch(
      /deadline of 5s passed.*NOT retrying/,
    );
    const lost = eventLine({
      type: 'member-no-answer',
      memberId: 'a',
      name: 'm1',
      why: 'connection-lost',
      timeoutMs: 75_000,
      detail: 'connection reset',
    });
    expect(lost).toMatch(/connection lost during its defragmentation \(connection reset\).*NOT retrying/);
    expect(lost).not.toMatch(/deadline/);
    expect(eventLine({ type: 'run-finished', report: dryRunReport(plan, 'x') })).toBeNull();
  });
});

describe('status: the StopGRPCServiceOnDefrag line', () => {
  it('says on, off and unknown per member, and why unknown: before 3.6, or /metrics did not say', () => {
    const snap = (gates: Record<string, [boolean | null, string]>) =>
      Object.entries(gates)
        .reduce((b, [name, [gate, version]]) => b.withMember(name, { stopGrpcServiceOnDefrag: gate, version }), aSnapshot())
        .build();
    expect(stopGrpcLine(aSnapshot().withMembers(3).build())).toBeNull();
    expect(stopGrpcLine(snap({ m1: [true, '3.6.17'], m2: [false, '3.6.17'], m3: [null, '3.5.36'] }))).toBe(
      'StopGRPCServiceOnDefrag: on on m1; off on m2; unknown on m3 (etcd before 3.6 does not export its feature gates)',
    );
    expect(stopGrpcLine(snap({ m1: [null, '3.7.4'], m2: [false, '3.7.4'] }))).toBe(
      'StopGRPCServiceOnDefrag: off on m2; unknown on m1 (their /metrics did not say)',
    );
    expect(stopGrpcLine(snap({ m1: [null, '3.7.4'], m2: [null, '3.5.36'] }))).toBe(
      "StopGRPCServiceOnDefrag: unknown on m1, m2 (etcd before 3.6 does not export its feature gates; the others' /metrics did not say)",
    );
  });
});
