/**
 * `defragd defrag` and the library against a real 3-member etcd 3.4 cluster
 * that the tests in this file share: the order (followers first, the leader
 * last after handing leadership away, never while it leads), that nothing
 * but the free pages changes (sizes, HashKV), rules, the dry run and
 * --no-move-leader.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { buildPolicy, connect, prepareRun, runDefrag, type RunReport } from '../../src/internals.js';
import type { Plan } from '../../src/domain/plan.js';
import type { StepEvent } from '../../src/domain/run.js';
import { cli, dbSizes, ensureFragmented, fragmentAndWait, MiB, parseJson, show, sizes, type ReportJson } from './helpers-defrag.js';

const FRAGMENT = { bytes: 8 * MiB, passes: 2, minFree: 4 * MiB, members: 3 } as const;

describe('defrag on a shared 3-member cluster', () => {
  const cluster = useCluster({ members: 3 });
  const conn = () => ({ endpoints: cluster().endpoints });
  const eps = () => cluster().endpoints.join(',');

  it('followers first (most free space first), then the leader after leadership moved: no member is defragmented while it leads', async () => {
    await fragmentAndWait(conn(), FRAGMENT);
    const client = connect(conn());
    try {
      // Give the followers different amounts to reclaim, against their name order: defragment the
      // follower whose name sorts first beforehand, so it has (almost) nothing left and must go second.
      const initial = await sizes(conn());
      const [firstByName, secondByName] = Object.keys(initial)
        .filter((n) => !initial[n]?.isLeader)
        .sort() as [string, string];
      await client.member(initial[firstByName]?.endpoint as string).defragment({ timeoutMs: 60_000 });

      const run = await prepareRun(client, buildPolicy({}), { observe: { cluster: true } });
      const originalLeader = run.snapshot.leaderId as string;
      expect(originalLeader).toBe(initial[Object.keys(initial).find((n) => initial[n]?.isLeader) as string]?.memberId);
      const planned = run.plan.decisions.filter((d) => d.action === 'defragment');
      expect(planned.map((d) => d.name).sort()).toEqual(['m1', 'm2', 'm3']);
      const [f1, f2, last] = planned as [(typeof planned)[0], (typeof planned)[0], (typeof planned)[0]];
      expect([f1.isLeader, f2.isLeader, last.isLeader]).toEqual([false, false, true]);
      expect([f1.name, f2.name]).toEqual([secondByName, firstByName]);
      expect(f1.dbSizeFree as number).toBeGreaterThan(f2.dbSizeFree as number);
      expect(last.memberId).toBe(originalLeader);
      expect(last.moveLeaderTo).not.toBeNull();
      expect(last.moveLeaderTo).not.toBe(originalLeader);
      const endpointOf = (id: string) => run.snapshot.members.find((m) => m.memberId === id)?.endpoint as string;

      const events: StepEvent[] = [];
      const checkedBeforeDefrag: string[] = [];
      const gen = run.execute();
      for (;;) {
        const next = await gen.next();
        if (next.done) break;
        const e = next.value;
        events.push(e);
        if (e.type === 'leader-move-started') {
          // Right before the hand-over, the member it is taken from does lead.
          const st = await client.member(endpointOf(e.from)).status();
          expect(st.leader).toBe(e.from);
        }
        if (e.type === 'member-started') {
          // The executor sends Defragment when it is resumed by the next next(): this is the last moment before it.
          const self = await client.member(e.decision.endpoint).status();
          expect(self.header.memberId).toBe(e.decision.memberId);
          expect(self.leader, `${e.decision.name} leads right before its Defragment`).not.toBe(e.decision.memberId);
          expect(self.leader).not.toBeNull();
          // ... and the member it follows says it leads.
          const leader = await client.member(endpointOf(self.leader as string)).status();
          expect(leader.leader).toBe(self.leader);
          checkedBeforeDefrag.push(e.decision.name);
        }
      }
      const finished = events.at(-1);
      expect(finished?.type).toBe('run-finished');
      const report = (finished as Extract<StepEvent, { type: 'run-finished' }>).report;
      expect(report.outcome, JSON.stringify(report, null, 2)).toBe('success');

      // Every member was checked, in the planned order.
      expect(checkedBeforeDefrag).toEqual(planned.map((d) => d.name));
      const types = events.map((e) => e.type);
      const moveStarted = types.indexOf('leader-move-started');
      const moveFinished = types.indexOf('leader-move-finished');
      const leaderStarted = events.findIndex((e) => e.type === 'member-started' && e.decision.memberId === originalLeader);
      expect(moveStarted).toBeGreaterThan(-1);
      expect(moveFinished).toBeGreaterThan(moveStarted);
      expect(leaderStarted).toBeGreaterThan(moveFinished);
      expect(types.filter((t) => t === 'leader-move-started')).toHaveLength(1);
      const move = events[moveStarted] as Extract<StepEvent, { type: 'leader-move-started' }>;
      expect(move.from).toBe(originalLeader);
      expect(move.to).not.toBe(originalLeader);
      // Both followers were done before leadership moved.
      const followerFinishes = events.filter(
        (e, i) => e.type === 'member-finished' && e.result.memberId !== originalLeader && i < moveStarted,
      );
      expect(followerFinishes).toHaveLength(2);

      expect(report.members.map((m) => m.name)).toEqual(planned.map((d) => d.name));
      for (const m of report.members) expect(m.action, m.reason).toBe('defragmented');
      const [r1, r2, r3] = report.members as [(typeof report.members)[0], (typeof report.members)[0], (typeof report.members)[0]];
      expect([r1.wasLeader, r2.wasLeader]).toEqual([false, false]);
      expect([r1.movedLeaderTo, r2.movedLeaderTo]).toEqual([null, null]);
      expect(r3.memberId).toBe(originalLeader);
      expect(r3.wasLeader).toBe(true);
      expect(r3.movedLeaderTo).toBeTruthy();
      expect(r3.movedLeaderTo).not.toBe(originalLeader);
      expect(r3.movedLeaderTo).toBe((events[moveFinished] as Extract<StepEvent, { type: 'leader-move-finished' }>).to);

      // Afterwards the old leader follows.
      const now = await client.member(endpointOf(originalLeader)).status();
      expect(now.leader).not.toBe(originalLeader);
    } finally {
      client.close();
    }
  });

  it('after a run every dbSize is close to its in-use size, and HashKV at the same revision is unchanged and equal on every member', async () => {
    const revision = await fragmentAndWait(conn(), FRAGMENT);
    const before = await sizes(conn());
    for (const s of Object.values(before)) expect(s.dbSize - s.dbSizeInUse).toBeGreaterThanOrEqual(4 * MiB);
    const client = connect(conn());
    try {
      const hashes = async () => Promise.all(cluster().endpoints.map(async (ep) => (await client.member(ep).hashKV(revision)).hash));
      const hashesBefore = await hashes();
      expect(new Set(hashesBefore).size, `HashKV(${revision}) before: ${hashesBefore.join(', ')}`).toBe(1);

      const r = await cli(['defrag', '--endpoints', eps(), '-w', 'json']);
      expect(r.code, show(r)).toBe(0);
      const report = parseJson<ReportJson>(r);
      expect(report.outcome).toBe('success');
      expect(report.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
      expect(report.reclaimedBytes).toBeGreaterThan(3 * 4 * MiB);

      const after = await sizes(conn());
      expect(Object.keys(after).sort()).toEqual(['m1', 'm2', 'm3']);
      for (const [name, s] of Object.entries(after)) {
        expect(s.dbSize, `${name}: dbSize ${s.dbSize}, in use ${s.dbSizeInUse}`).toBeLessThanOrEqual(s.dbSizeInUse * 1.1 + MiB);
        expect(s.dbSize).toBeLessThan((before[name] as (typeof before)[string]).dbSize);
        // The report's "after" is what the member said when it caught up (later applied entries may grow it a little).
        const reported = report.members.find((m) => m.name === name)?.after;
        expect(reported, name).toBeTruthy();
        expect(Math.abs((reported?.dbSize as number) - s.dbSize), name).toBeLessThanOrEqual(MiB);
      }

      const hashesAfter = await hashes();
      expect(hashesAfter, `HashKV(${revision}) after`).toEqual(hashesBefore);
    } finally {
      client.close();
    }
  });

  it('--dry-run -w json changes nothing and lists every member with its rule result and reason', async () => {
    await ensureFragmented(conn(), FRAGMENT);
    const before = await sizes(conn());
    const leaderBefore = Object.entries(before).find(([, s]) => s.isLeader)?.[0];

    const r = await cli(['defrag', '--endpoints', eps(), '--dry-run', '--rule', 'memberName == "m1" && dbSizeFree > 1*MiB', '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const report = parseJson<{ dryRun: boolean; outcome: string; plan: Plan }>(r);
    expect(report).toMatchObject({ dryRun: true, outcome: 'dry-run' });
    const plan = report.plan;
    expect(plan.refusal).toBeNull();
    expect(plan.decisions.map((d) => d.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const d of plan.decisions) {
      expect(d.ruleResult, d.name).toBe(d.name === 'm1');
      expect(d.action).toBe(d.name === 'm1' ? 'defragment' : 'skip');
      expect(d.code).toBe(d.name === 'm1' ? 'rule-true' : 'rule-false');
      expect(d.reason).toMatch(d.name === 'm1' ? /^rule is true \(dbSize .*dbSizeFree/ : /^rule is false \(dbSize .*dbSizeFree/);
      expect(d.dbSize).toBe(before[d.name]?.dbSize);
    }

    const table = await cli(['defrag', '--endpoints', eps(), '--dry-run']);
    expect(table.code, show(table)).toBe(0);
    expect(table.stdout).toMatch(/^Dry run: nothing will be changed\./);

    // Nothing moved: sizes and leadership are as they were.
    const after = await sizes(conn());
    for (const [name, s] of Object.entries(before)) expect(after[name]?.dbSize, name).toBe(s.dbSize);
    expect(Object.entries(after).find(([, s]) => s.isLeader)?.[0]).toBe(leaderBefore);
  });

  it('a rule false for every member: nothing done, exit 0, nothing-to-do, each member skipped naming the rule', async () => {
    await ensureFragmented(conn(), FRAGMENT);
    const before = await dbSizes(conn());
    const r = await cli(['defrag', '--endpoints', eps(), '--rule', 'dbSize > 100*GiB', '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const report = parseJson<ReportJson>(r);
    expect(report.outcome).toBe('nothing-to-do');
    expect(report.reclaimedBytes).toBe(0);
    expect(report.members.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const m of report.members) {
      expect(m.action).toBe('skipped');
      expect(m.reason).toMatch(/^rule is false \(dbSize \d+\.\d MiB/);
      expect(m.after).toBeNull();
    }
    expect(await dbSizes(conn())).toEqual(before);

    const table = await cli(['defrag', '--endpoints', eps(), '--rule', 'dbSize > 100*GiB']);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('nothing to do');
  });

  it('an invalid rule is a usage error: exit 2, one line on stderr naming the column, nothing changed', async () => {
    await ensureFragmented(conn(), FRAGMENT);
    const before = await dbSizes(conn());
    const r = await cli(['defrag', '--endpoints', eps(), '--rule', 'dbSize >', '-w', 'json']);
    expect(r.code, show(r)).toBe(2);
    // -w json always prints one JSON object.
    expect(parseJson<{ outcome: string; message: string }>(r)).toMatchObject({
      outcome: 'refused',
      message: expect.stringMatching(/column/),
    });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^defragd: /);
    expect(lines[0]).toContain('column');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await dbSizes(conn())).toEqual(before);
  });

  it('--no-move-leader: the leader is skipped naming the flag, the followers are defragmented, the leader keeps its size and its leadership', async () => {
    await ensureFragmented(conn(), FRAGMENT);
    const before = await sizes(conn());
    const leader = Object.entries(before).find(([, s]) => s.isLeader)?.[0] as string;
    expect(leader).toBeTruthy();

    const r = await cli(['defrag', '--endpoints', eps(), '--no-move-leader', '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const report = parseJson<ReportJson>(r);
    expect(report.outcome).toBe('success');
    const byName = Object.fromEntries(report.members.map((m) => [m.name, m]));
    expect(byName[leader]?.action).toBe('skipped');
    expect(byName[leader]?.wasLeader).toBe(true);
    expect(byName[leader]?.reason).toContain('--no-move-leader');
    const followers = Object.keys(before).filter((n) => n !== leader);
    for (const f of followers) {
      expect(byName[f]?.action, byName[f]?.reason).toBe('defragmented');
      expect(byName[f]?.movedLeaderTo).toBeNull();
    }

    const after = await sizes(conn());
    expect(after[leader]?.dbSize).toBe(before[leader]?.dbSize);
    expect(after[leader]?.isLeader).toBe(true);
    for (const f of followers) expect(after[f]?.dbSize as number).toBeLessThan(before[f]?.dbSize as number);
  });
  it("reads each member's quota from /metrics once per run, not again before every member's turn", async () => {
    await fragmentAndWait(conn(), FRAGMENT);
    // GET /metrics answered by the members: etcd before 3.6 tells no quota in Status, so defragd reads it
    // there, with the StopGRPCServiceOnDefrag gate (3.6+ export it) in the same request.
    const scrapes = async () => {
      let n = 0;
      for (const m of cluster().members)
        n += (await cluster().memberMetrics(m.name)).get('promhttp_metric_handler_requests_total{code="200"}') ?? 0;
      return n;
    };
    const before = await scrapes();
    const client = connect(conn());
    let report: RunReport | undefined;
    try {
      report = await runDefrag(client, buildPolicy({}), { observe: { cluster: true }, record: false });
    } finally {
      client.close();
    }
    const during = (await scrapes()) - before - 3; // this test's own first reading is counted by the second
    expect(report.outcome).toBe('success');
    expect(report.members.filter((m) => m.action === 'defragmented')).toHaveLength(3);
    // The quota and the gate at the first observation (3), before each of the 3 Defragment calls every member's
    // defrag gauges (in flight and count, one read: 3 × 3), and the counts once more after the last member (3: someone
    // else's defrag meanwhile is warned about). Reading the quotas again at every turn's observation made it 21 or more.
    expect(during).toBe(3 + 3 * 3 + 3);
  });
});
