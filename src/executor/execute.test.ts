/**
 * Unit tests of the executor against a scripted in-memory cluster
 * (test/fakes/cluster.ts): what it sends to which member and in what order,
 * and what the report tells an operator. Real etcd runs in test/integration.
 *
 * Every test's fake also watches the safety promises (no Defragment on the
 * member leading at that moment, none while another member catches up, one
 * at a time, MoveLeader only to the leader, only NOSPACE disarmed); afterEach
 * fails the test when one was broken.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionError, DeadlineError, EtcdError } from '../domain/errors.js';
import type { Policy } from '../domain/plan.js';
import type { MemberResult, RunReport, StepEvent } from '../domain/run.js';
import { planDefrag } from '../planner/index.js';
import { compileRule } from '../policy/rule.js';
import { aPolicy, MiB } from '../../test/builders.js';
import { FakeCluster, type FakeMember } from '../../test/fakes/cluster.js';
import { executePlan } from './execute.js';
import type { ExecuteOptions } from './options.js';
import type { ReadinessPort } from './port.js';

const FAST: ExecuteOptions = {
  pollIntervalMs: 5,
  catchUpTimeoutMs: 1_000,
  leaderMoveTimeoutMs: 150,
  recoveryTimeoutMs: 1_000,
};

let current: FakeCluster | null = null;

afterEach(async () => {
  const fake = current;
  current = null;
  expect(fake?.violations ?? []).toEqual([]);
});

/**
 * Three voters, m1 leading. Free space: m1 400 MiB, m2 100 MiB, m3 300 MiB,
 * so the order is m3, m2 (by free space, not by name), then the leader m1.
 */
function threeVoters(overrides: Record<string, Partial<FakeMember>> = {}, leader: string | null = 'm1'): FakeCluster {
  const fake = new FakeCluster(
    [
      { dbSize: 500 * MiB, dbSizeInUse: 100 * MiB, ...overrides['m1'] },
      { dbSize: 500 * MiB, dbSizeInUse: 400 * MiB, ...overrides['m2'] },
      { dbSize: 500 * MiB, dbSizeInUse: 200 * MiB, ...overrides['m3'] },
      ...Object.entries(overrides)
        .filter(([name]) => !['m1', 'm2', 'm3'].includes(name))
        .map(([name, o]) => ({ name, ...o })),
    ],
    leader,
  );
  current = fake;
  return fake;
}

interface Run {
  report: RunReport;
  events: StepEvent[];
}

/** Plans from what the fake shows now, runs the plan, and hands every event to onEvent before going on. */
async function run(
  fake: FakeCluster,
  policy: Policy = aPolicy(),
  options: ExecuteOptions = {},
  extra: { signal?: AbortSignal; onEvent?: (e: StepEvent) => void } = {},
): Promise<Run> {
  const plan = planDefrag(await fake.observe(), policy);
  const events: StepEvent[] = [];
  const gen = executePlan(plan, fake.port, policy, { ...FAST, ...options }, extra.signal);
  for (;;) {
    const next = await gen.next();
    if (next.done) {
      const last = events.at(-1);
      expect(last?.type).toBe('run-finished');
      if (last?.type === 'run-finished') expect(last.report).toEqual(next.value);
      return { report: next.value, events };
    }
    events.push(next.value);
    extra.onEvent?.(next.value);
  }
}

function result(report: RunReport, name: string): MemberResult {
  const r = report.members.find((m) => m.name === name);
  if (!r) throw new Error(`no result for ${name}`);
  return r;
}

const actions = (report: RunReport): Record<string, string> => Object.fromEntries(report.members.map((m) => [m.name, m.action]));
const ofType = <T extends StepEvent['type']>(events: StepEvent[], type: T) =>
  events.filter((e): e is Extract<StepEvent, { type: T }> => e.type === type);
const finishedOf = (events: StepEvent[], name: string) => ofType(events, 'member-finished').filter((e) => e.result.name === name);

describe('executePlan: the happy path', () => {
  it('defragments followers by free space, then hands off leadership and defragments the old leader, once each', async () => {
    const fake = threeVoters();
    const { report, events } = await run(fake);

    expect(report.outcome).toBe('success');
    expect(report.message).toBeNull();
    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    expect(report.members.map((m) => [m.name, m.action])).toEqual([
      ['m3', 'defragmented'],
      ['m2', 'defragmented'],
      ['m1', 'defragmented'],
    ]);

    // MoveLeader went to the leader's endpoint, naming another voter, before the leader's Defragment.
    const moves = fake.callsOf('moveLeader');
    expect(moves).toHaveLength(1);
    const move = moves[0]!;
    expect(move.endpoint).toBe(fake.m('m1').endpoint);
    expect(move.args[0]).toBe(fake.idOf('m2'));
    const m1Defrag = fake.callsOf('defragment').find((c) => c.member === 'm1')!;
    expect(move.seq).toBeLessThan(m1Defrag.seq);
    // Nobody was defragmented while it led (the fake records that too).
    for (const c of fake.callsOf('defragment')) expect(c.leaderAtCall, c.member).not.toBe(c.member);

    const m1 = result(report, 'm1');
    expect(m1).toMatchObject({
      wasLeader: true,
      movedLeaderTo: fake.idOf('m2'),
      deadlinePassed: false,
      reason: 'leadership moved to m2 first',
    });
    expect(m1.before).toEqual({ dbSize: 500 * MiB, dbSizeInUse: 100 * MiB });
    expect(m1.after).toEqual({ dbSize: 100 * MiB, dbSizeInUse: 100 * MiB });
    expect(result(report, 'm3')).toMatchObject({
      wasLeader: false,
      movedLeaderTo: null,
      after: { dbSize: 200 * MiB, dbSizeInUse: 200 * MiB },
    });
    expect(report.reclaimedBytes).toBe(400 * MiB + 100 * MiB + 300 * MiB);

    // Nothing timed out, so no member was polled with Status, and nothing was compacted or disarmed.
    expect(fake.callsOf('status')).toEqual([]);
    expect(fake.callsOf('compact')).toEqual([]);
    expect(fake.callsOf('alarmDisarm')).toEqual([]);
    expect(report).toMatchObject({ compactedRevision: null, disarmed: false, disarmNote: null });

    expect(ofType(events, 'member-started').map((e) => [e.decision.name, e.index, e.total])).toEqual([
      ['m3', 1, 3],
      ['m2', 2, 3],
      ['m1', 3, 3],
    ]);
    expect(ofType(events, 'leader-move-started')).toEqual([
      { type: 'leader-move-started', from: fake.idOf('m1'), fromName: 'm1', to: fake.idOf('m2'), toName: 'm2' },
    ]);
    expect(ofType(events, 'leader-move-finished').map((e) => e.to)).toEqual([fake.idOf('m2')]);
    expect(ofType(events, 'member-no-answer')).toEqual([]);
  });

  it('waits for each member to catch up before the next Defragment', async () => {
    const fake = threeVoters();
    fake.lagAfterDefrag = 4;
    const { report } = await run(fake);
    expect(report.outcome).toBe('success');
    // A Defragment while another member lagged would be a violation (checked in afterEach).
    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
  });

  it('a member that does not catch up in time fails the run before the next one', async () => {
    const fake = threeVoters();
    fake.lagAfterDefrag = 1_000_000;
    const { report } = await run(fake, aPolicy(), { catchUpTimeoutMs: 50 });
    expect(report.outcome).toBe('failed');
    expect(fake.defragmented()).toEqual(['m3']);
    expect(result(report, 'm3')).toMatchObject({
      action: 'failed',
      reason: expect.stringMatching(/gave up waiting 50ms for m3 to catch up/),
    });
    expect(result(report, 'm2')).toMatchObject({ action: 'skipped', reason: expect.stringMatching(/^not attempted/) });
    expect(result(report, 'm1').action).toBe('skipped');
  });
});

describe('executePlan: the leader', () => {
  it('a leader that is leader again after the move is not defragmented', async () => {
    const fake = threeVoters();
    // The move takes (the first light poll sees m2 lead), then leadership flips back before m1's Defragment.
    let flipBack = false;
    let pollsAfterMove = 0;
    fake.onMoveLeader = async (_from, to) => {
      fake.leader = to.name;
      flipBack = true;
    };
    fake.onObserve = () => {
      if (flipBack && ++pollsAfterMove === 2) {
        fake.leader = 'm1';
        flipBack = false;
      }
    };
    const { report } = await run(fake);

    expect(fake.callsOf('moveLeader')).toHaveLength(1);
    expect(fake.defragmented()).toEqual(['m3', 'm2']);
    expect(result(report, 'm1')).toMatchObject({
      action: 'failed',
      wasLeader: true,
      reason: expect.stringMatching(/leader again; a leader is never defragmented while it leads/),
    });
    expect(report.outcome).toBe('failed');
  });

  it('a leadership transfer that never takes fails the leader after the wait, with no Defragment on it', async () => {
    const fake = threeVoters();
    fake.onMoveLeader = async () => undefined; // accepted, but m1 keeps leading
    const t0 = Date.now();
    const { report } = await run(fake, aPolicy(), { leaderMoveTimeoutMs: 60 });
    expect(Date.now() - t0).toBeLessThan(2_000);

    expect(fake.defragmented()).toEqual(['m3', 'm2']);
    expect(result(report, 'm1')).toMatchObject({
      action: 'failed',
      wasLeader: true,
      reason: expect.stringMatching(/^moving leadership to m2 failed: gave up waiting 60ms for leadership to move/),
    });
    expect(report.outcome).toBe('failed');
  });

  it('MoveLeader rejected by etcd fails the leader, naming the transfer, and sends no Defragment to it', async () => {
    const fake = threeVoters();
    fake.onMoveLeader = async (from) => {
      throw new EtcdError(from.endpoint, 'FAILED_PRECONDITION', 'etcdserver: leader transfer failed');
    };
    const { report, events } = await run(fake);

    expect(fake.callsOf('moveLeader')).toHaveLength(1);
    expect(fake.defragmented()).toEqual(['m3', 'm2']);
    expect(result(report, 'm1')).toMatchObject({
      action: 'failed',
      wasLeader: true,
      movedLeaderTo: null,
      reason: 'moving leadership to m2 failed: etcdserver: leader transfer failed',
    });
    expect(finishedOf(events, 'm1')).toHaveLength(1);
    expect(ofType(events, 'leader-move-finished')).toEqual([]);
    expect(report.outcome).toBe('failed');
    expect(report.reclaimedBytes).toBe(300 * MiB + 100 * MiB);
  });

  it('a follower that became leader before its turn is handed off first', async () => {
    const fake = threeVoters();
    const { report } = await run(
      fake,
      aPolicy(),
      {},
      {
        onEvent: (e) => {
          // While m3 was being defragmented, m2 (next in line) was elected.
          if (e.type === 'member-finished' && e.result.name === 'm3') fake.leader = 'm2';
        },
      },
    );
    expect(report.outcome).toBe('success');
    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    // m2 handed leadership to m1; then m1, leading again at its turn, handed it on.
    expect(fake.callsOf('moveLeader').map((c) => [c.member, c.args[0]])).toEqual([
      ['m2', fake.idOf('m1')],
      ['m1', fake.idOf('m2')],
    ]);
    expect(result(report, 'm2')).toMatchObject({ wasLeader: true, movedLeaderTo: fake.idOf('m1') });
    expect(result(report, 'm1')).toMatchObject({ wasLeader: true, movedLeaderTo: fake.idOf('m2') });
  });
});

describe('executePlan: a Defragment that fails', () => {
  it('rejected by etcd: the member fails at once, is not retried, and the run stops', async () => {
    const fake = threeVoters();
    fake.onDefragment = async (m) => {
      throw new EtcdError(m.endpoint, 'PERMISSION_DENIED', 'etcdserver: permission denied', { reason: 'permission-denied' });
    };
    const { report, events } = await run(fake);

    expect(fake.defragmented()).toEqual(['m3']);
    expect(fake.callsOf('status')).toEqual([]);
    expect(ofType(events, 'member-waiting')).toEqual([]);
    expect(ofType(events, 'member-no-answer')).toEqual([]);
    expect(result(report, 'm3')).toMatchObject({
      action: 'failed',
      reason: 'defragment failed: etcdserver: permission denied',
      before: { dbSize: 500 * MiB, dbSizeInUse: 200 * MiB },
      after: null,
      deadlinePassed: false,
    });
    expect(report.members.map((m) => [m.name, m.action, m.reason])).toEqual([
      ['m3', 'failed', 'defragment failed: etcdserver: permission denied'],
      ['m2', 'skipped', 'not attempted: an earlier member failed'],
      ['m1', 'skipped', 'not attempted: an earlier member failed'],
    ]);
    expect(fake.callsOf('moveLeader')).toEqual([]);
    expect(report.outcome).toBe('failed');
    expect(report.reclaimedBytes).toBe(0);
  });

  it('with continueOnError the next members are attempted and the run still fails', async () => {
    const fake = threeVoters();
    fake.onDefragment = async (m) => {
      if (m.name === 'm3')
        throw new EtcdError(m.endpoint, 'PERMISSION_DENIED', 'etcdserver: permission denied', { reason: 'permission-denied' });
      fake.shrink(m);
    };
    const { report } = await run(fake, aPolicy(), { continueOnError: true });

    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    expect(actions(report)).toEqual({ m3: 'failed', m2: 'defragmented', m1: 'defragmented' });
    expect(report.outcome).toBe('failed');
    expect(report.reclaimedBytes).toBe(100 * MiB + 400 * MiB);
  });

  it('past its deadline: sent once, waited for until Status answers, recorded as defragmented when it shrank', async () => {
    const fake = threeVoters();
    let statusFailures = 0;
    fake.onDefragment = async (m) => {
      if (m.name === 'm3') {
        // etcd goes on and finishes after the client gave up; the member is busy for a while.
        fake.shrink(m);
        statusFailures = 3;
        throw new DeadlineError(m.endpoint, `${m.endpoint}: Defragment passed its deadline`);
      }
      fake.shrink(m);
    };
    fake.onStatus = async (m) => {
      if (m.name === 'm3' && statusFailures > 0) {
        statusFailures--;
        throw new DeadlineError(m.endpoint, 'Status passed its deadline');
      }
    };
    const { report, events } = await run(fake, aPolicy({ defragTimeoutMs: 1_234 }));

    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    expect(fake.callsOf('defragment').filter((c) => c.member === 'm3')).toHaveLength(1);
    const statusCalls = fake.callsOf('status').filter((c) => c.member === 'm3');
    expect(statusCalls).toHaveLength(4); // three failed, the fourth answered
    expect(ofType(events, 'member-no-answer')).toEqual([
      {
        type: 'member-no-answer',
        memberId: fake.idOf('m3'),
        name: 'm3',
        why: 'deadline',
        timeoutMs: 1_234,
        detail: expect.stringMatching(/deadline/),
      },
    ]);
    // The wait came after the deadline and before the next member.
    const m2Defrag = fake.callsOf('defragment').find((c) => c.member === 'm2')!;
    expect(statusCalls.at(-1)!.seq).toBeLessThan(m2Defrag.seq);
    expect(result(report, 'm3')).toMatchObject({
      action: 'defragmented',
      deadlinePassed: true,
      after: { dbSize: 200 * MiB, dbSizeInUse: 200 * MiB },
      reason: expect.stringMatching(/deadline passed but etcd finished on its own/),
    });
    expect(report.outcome).toBe('success');
    expect(report.reclaimedBytes).toBe(800 * MiB);
  });

  it('past its deadline and not shrunk: failed, not retried, and the run stops', async () => {
    const fake = threeVoters();
    fake.onDefragment = async (m) => {
      throw new DeadlineError(m.endpoint, `${m.endpoint}: Defragment passed its deadline`);
    };
    const { report, events } = await run(fake);

    expect(fake.defragmented()).toEqual(['m3']);
    expect(ofType(events, 'member-no-answer')).toHaveLength(1);
    expect(fake.callsOf('status').length).toBeGreaterThanOrEqual(1);
    expect(result(report, 'm3')).toMatchObject({
      action: 'failed',
      deadlinePassed: true,
      after: { dbSize: 500 * MiB, dbSizeInUse: 200 * MiB },
      reason: expect.stringMatching(/deadline passed and the member did not shrink; not retried/),
    });
    expect(result(report, 'm2')).toMatchObject({ action: 'skipped', reason: 'not attempted: an earlier member failed' });
    expect(result(report, 'm1')).toMatchObject({ action: 'skipped', reason: 'not attempted: an earlier member failed' });
    expect(report.outcome).toBe('failed');
  });

  it('a failed member is not followed by a --wait-between pause before the run stops', async () => {
    const fake = threeVoters();
    fake.onDefragment = async (m) => {
      throw new DeadlineError(m.endpoint, `${m.endpoint}: Defragment passed its deadline`);
    };
    const { report, events } = await run(fake, aPolicy(), { waitBetweenMs: 60_000 });
    expect(report.outcome).toBe('failed');
    expect(ofType(events, 'pause')).toEqual([]);
  });

  it('a lost connection is waited for like a passed deadline, never re-sent, and said to be a lost connection', async () => {
    const fake = threeVoters();
    let statusFailures = 0;
    fake.onDefragment = async (m) => {
      if (m.name === 'm3') {
        fake.shrink(m);
        statusFailures = 2;
        throw new ConnectionError(m.endpoint, `${m.endpoint}: connection reset`);
      }
      fake.shrink(m);
    };
    fake.onStatus = async (m) => {
      if (m.name === 'm3' && statusFailures > 0) {
        statusFailures--;
        throw new ConnectionError(m.endpoint, 'connection refused');
      }
    };
    const { report, events } = await run(fake);

    expect(fake.callsOf('defragment').filter((c) => c.member === 'm3')).toHaveLength(1);
    expect(fake.callsOf('status').filter((c) => c.member === 'm3')).toHaveLength(3);
    expect(ofType(events, 'member-no-answer').map((e) => [e.name, e.why])).toEqual([['m3', 'connection-lost']]);
    expect(result(report, 'm3')).toMatchObject({ action: 'defragmented', deadlinePassed: false, connectionLost: true });
    expect(result(report, 'm3').reason).toMatch(/connection was lost during its defragmentation, but etcd finished it/);
    expect(report.outcome).toBe('success');
  });

  it('when the member never answers after its deadline, it is recorded as failed and the run stops', async () => {
    const fake = threeVoters();
    fake.onDefragment = async (m) => {
      throw new DeadlineError(m.endpoint, `${m.endpoint}: Defragment passed its deadline`);
    };
    fake.onStatus = async (m) => {
      throw new DeadlineError(m.endpoint, 'Status passed its deadline');
    };
    const { report } = await run(fake, aPolicy(), { recoveryTimeoutMs: 60, continueOnError: true });

    expect(fake.defragmented()).toEqual(['m3']);
    expect(result(report, 'm3')).toMatchObject({
      action: 'failed',
      deadlinePassed: true,
      reason: expect.stringMatching(/m3 did not answer within 60ms after its defragment deadline passed/),
    });
    expect(result(report, 'm2')).toMatchObject({ action: 'skipped', reason: expect.stringMatching(/^not attempted: /) });
    expect(result(report, 'm1')).toMatchObject({ action: 'skipped', reason: expect.stringMatching(/^not attempted: /) });
    expect(report.members).toHaveLength(3);
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(/m3 did not answer within 60ms/);
  });
});

describe('executePlan: between members', () => {
  it("someone else's defrag during the run (etcdctl beside it) is a warning naming the member; the run's own are not", async () => {
    const quiet = await run(threeVoters());
    expect(quiet.report.outcome).toBe('success');
    expect(quiet.report.warnings).toEqual([]);

    for (const when of ['m2', 'm1'] as const) {
      const fake = threeVoters();
      // Order m3, m2, m1: m3 is defragmented by etcdctl too while this run does `when` (its count rises by one more).
      const { report, events } = await run(
        fake,
        aPolicy(),
        {},
        {
          onEvent: (e) => {
            if (e.type === 'member-started' && e.decision.name === when) fake.foreignDefrags.set('m3', 1);
          },
        },
      );
      expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
      expect(report.outcome, when).toBe('success');
      const warning = "m3 was defragmented by someone else during this run (etcd's defrag count rose from 1 to 2)";
      expect(
        report.warnings.filter((w) => w.startsWith(warning)),
        when,
      ).toHaveLength(1);
      expect(ofType(events, 'warning').filter((e) => e.message.startsWith(warning))).toHaveLength(1);
    }
  });

  it('no member answering the look before the next member (an election after a leader died) stops the run before it, naming it', async () => {
    const fake = threeVoters();
    let cut = false;
    const port = {
      ...fake.port,
      observe: (opts: Parameters<typeof fake.port.observe>[0]) =>
        cut
          ? Promise.reject(new ConnectionError('a,b,c', "cannot list the cluster's members: etcdserver: leader changed"))
          : fake.port.observe(opts),
    };
    const policy = aPolicy();
    const plan = planDefrag(await fake.observe(), policy);
    let report: RunReport | null = null;
    for await (const e of executePlan(plan, port, policy, FAST)) {
      if (e.type === 'member-finished' && e.result.name === 'm3') cut = true;
      if (e.type === 'run-finished') report = e.report;
    }
    const r = report as unknown as RunReport;
    expect(fake.defragmented()).toEqual(['m3']);
    expect(r.outcome).toBe('failed');
    expect(r.message).toBe("stopped before m2: cannot list the cluster's members: etcdserver: leader changed");
    expect(result(r, 'm2')).toMatchObject({ action: 'skipped', reason: `not attempted: ${r.message}` });
  });

  it('a voter that becomes unreachable stops the run before the next member', async () => {
    const fake = threeVoters();
    const { report, events } = await run(
      fake,
      aPolicy(),
      {},
      {
        onEvent: (e) => {
          if (e.type === 'member-finished' && e.result.name === 'm3') {
            fake.m('m3').reachable = false;
            fake.m('m3').healthy = false;
            fake.m('m3').error = 'connection refused';
          }
        },
      },
    );

    expect(fake.defragmented()).toEqual(['m3']);
    expect(fake.callsOf('moveLeader')).toEqual([]);
    expect(report.outcome).toBe('failed');
    expect(report.message).toBe('stopped before m2: m3 (http://127.0.0.1:3) is unreachable: connection refused');
    expect(result(report, 'm3').action).toBe('defragmented');
    for (const name of ['m2', 'm1']) {
      expect(result(report, name), name).toMatchObject({ action: 'skipped', reason: `not attempted: ${report.message}` });
    }
    expect(ofType(events, 'warning').map((e) => e.message)).toContain(report.message);
  });

  it('a CORRUPT alarm raised on a voter mid-run stops the run', async () => {
    const fake = threeVoters();
    const { report } = await run(
      fake,
      aPolicy(),
      {},
      {
        onEvent: (e) => {
          if (e.type === 'member-finished' && e.result.name === 'm2') fake.m('m3').alarms.push('CORRUPT');
        },
      },
    );
    expect(fake.defragmented()).toEqual(['m3', 'm2']);
    expect(fake.callsOf('moveLeader')).toEqual([]);
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(/^stopped before m1: .*CORRUPT/);
    expect(result(report, 'm1')).toMatchObject({ action: 'skipped', reason: expect.stringMatching(/^not attempted: .*CORRUPT/) });
  });

  it('a CORRUPT alarm on a learner (or a removed member) stops the run too', async () => {
    const fake = threeVoters({ m4: { isLearner: true } });
    const { report } = await run(
      fake,
      aPolicy(),
      {},
      {
        onEvent: (e) => {
          if (e.type === 'member-finished' && e.result.name === 'm3') fake.m('m4').alarms.push('CORRUPT');
        },
      },
    );
    expect(fake.defragmented()).toEqual(['m3']);
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(/^stopped before m2: refusing to defragment: m4 .* has alarm CORRUPT/);
    expect(actions(report)).toEqual({ m4: 'skipped', m3: 'defragmented', m2: 'skipped', m1: 'skipped' });
  });

  it('the rule is evaluated again before each member', async () => {
    const fake = threeVoters();
    const policy = aPolicy({ rule: compileRule('dbSizeFree > 50*MiB') });
    const { report, events } = await run(
      fake,
      policy,
      {},
      {
        onEvent: (e) => {
          // By m2's turn most of its free pages have been reused.
          if (e.type === 'member-finished' && e.result.name === 'm3') fake.m('m2').dbSizeInUse = 480 * MiB;
        },
      },
    );

    expect(fake.defragmented()).toEqual(['m3', 'm1']);
    const m2 = result(report, 'm2');
    expect(m2.action).toBe('skipped');
    expect(m2.reason).toMatch(/^rule is false \(.*dbSizeFree 20(\.0)? MiB.*\) \(re-checked before its turn\)$/);
    expect(ofType(events, 'member-skipped').map((e) => e.reason)).toEqual([m2.reason]);
    expect(report.outcome).toBe('success');
  });

  it('an abort after the first member leaves the rest not attempted', async () => {
    const fake = threeVoters();
    const ac = new AbortController();
    const { report } = await run(
      fake,
      aPolicy(),
      {},
      {
        signal: ac.signal,
        onEvent: (e) => {
          if (e.type === 'member-finished') ac.abort();
        },
      },
    );

    expect(fake.defragmented()).toEqual(['m3']);
    expect(fake.callsOf('moveLeader')).toEqual([]);
    expect(report.outcome).toBe('interrupted');
    expect(report.message).toMatch(/^interrupted/);
    expect(result(report, 'm3').action).toBe('defragmented');
    for (const name of ['m2', 'm1']) {
      expect(result(report, name), name).toMatchObject({ action: 'skipped', reason: expect.stringMatching(/^not attempted: interrupted/) });
    }
  });

  it('an abort during a Defragment lets it finish (it is not cancelled), records it, and sends nothing more', async () => {
    const fake = threeVoters();
    const ac = new AbortController();
    let cancellable: boolean | null = null;
    fake.onDefragment = async (m, opts) => {
      cancellable = opts.signal !== undefined;
      ac.abort();
      await new Promise((resolve) => setTimeout(resolve, 20));
      fake.shrink(m);
    };
    const { report, events } = await run(fake, aPolicy(), {}, { signal: ac.signal });

    expect(cancellable).toBe(false);
    expect(fake.defragmented()).toEqual(['m3']);
    expect(report.outcome).toBe('interrupted');
    expect(result(report, 'm3')).toMatchObject({
      action: 'defragmented',
      reason: 'interrupted after its defragmentation finished; not waited for to catch up',
    });
    // Progress printers and onEvent listeners hear about it too, not only the report.
    expect(finishedOf(events, 'm3')).toHaveLength(1);
    expect(result(report, 'm2')).toMatchObject({ action: 'skipped', reason: expect.stringMatching(/^not attempted: interrupted/) });
    expect(result(report, 'm1').action).toBe('skipped');
  });
});

describe('executePlan: --wait-between', () => {
  it('pauses after each member but the last', async () => {
    const fake = threeVoters();
    const { report, events } = await run(fake, aPolicy(), { waitBetweenMs: 10 });
    expect(report.outcome).toBe('success');
    expect(events.filter((e) => e.type === 'pause' || e.type === 'member-finished').map((e) => e.type)).toEqual([
      'member-finished',
      'pause',
      'member-finished',
      'pause',
      'member-finished',
    ]);
  });

  it('an abort during the pause stops the run before the next member', async () => {
    const fake = threeVoters();
    const ac = new AbortController();
    const t0 = Date.now();
    const { report } = await run(
      fake,
      aPolicy(),
      { waitBetweenMs: 5_000 },
      {
        signal: ac.signal,
        onEvent: (e) => {
          if (e.type === 'pause') setTimeout(() => ac.abort(), 10);
        },
      },
    );
    // The pause ends with the abort, not after its 5 s.
    expect(Date.now() - t0).toBeLessThan(2_500);
    expect(fake.defragmented()).toEqual(['m3']);
    expect(report.outcome).toBe('interrupted');
    expect(report.message).toMatch(/^interrupted/);
    expect(actions(report)).toEqual({ m3: 'defragmented', m2: 'skipped', m1: 'skipped' });
  });
});

describe('executePlan: etcd_disk_defrag_inflight', () => {
  it('a defrag someone else runs stops the run before the next Defragment', async () => {
    const fake = threeVoters();
    fake.onDefragInFlight = (m) => (m.name === 'm2' ? 1 : 0);
    const { report } = await run(fake);

    expect(fake.callsOf('defragment')).toEqual([]);
    expect(fake.callsOf('defragInFlight').filter((c) => c.member === 'm2').length).toBeGreaterThanOrEqual(1);
    expect(report.outcome).toBe('failed');
    expect(report.message).toBe('stopped before m3: m2 is being defragmented by someone else (etcd_disk_defrag_inflight is 1)');
    expect(report.members.every((m) => m.action === 'skipped' && m.reason.startsWith('not attempted'))).toBe(true);
  });

  it('after a passed deadline, waits until the member no longer reports a defrag in flight, even though Status answers', async () => {
    let busy = 0;
    const fake = threeVoters();
    fake.onDefragInFlight = (m) => (m.name === 'm3' && busy > 0 ? (busy--, 1) : 0);
    fake.onDefragment = async (m) => {
      fake.shrink(m);
      if (m.name === 'm3') {
        busy = 3; // etcd goes on for three more looks at /metrics
        throw new DeadlineError(m.endpoint, `${m.endpoint}: Defragment passed its deadline`);
      }
    };
    const { report } = await run(fake);

    // Status answered at once every time, so only the gauge kept the executor waiting: one Status per look.
    expect(fake.callsOf('status').filter((c) => c.member === 'm3')).toHaveLength(4);
    expect(busy).toBe(0);
    expect(fake.callsOf('defragment').filter((c) => c.member === 'm3')).toHaveLength(1);
    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    expect(result(report, 'm3')).toMatchObject({ action: 'defragmented', deadlinePassed: true });
    expect(report.outcome).toBe('success');
  });
});

describe('executePlan: a refused plan', () => {
  it('changes nothing', async () => {
    const fake = threeVoters({ m2: { reachable: false, healthy: false, error: 'connection refused' } });
    const { report, events } = await run(fake, aPolicy({ compactKeepRevisions: 100, disarmNospace: true }));

    expect(report.outcome).toBe('refused');
    expect(report.message).toMatch(/^refusing to defragment: m2 .* is unreachable/);
    expect(report.members.every((m) => m.action === 'skipped')).toBe(true);
    expect(fake.calls).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['run-started', 'run-finished']);
  });
});

describe('executePlan: compaction', () => {
  it('compacts once, physically, to revision - N, before the first Defragment', async () => {
    const fake = threeVoters({ m1: { revision: 10_000 }, m2: { revision: 10_000 }, m3: { revision: 10_000 } });
    const { report, events } = await run(fake, aPolicy({ compactKeepRevisions: 1_000 }));

    const compacts = fake.callsOf('compact');
    expect(compacts).toHaveLength(1);
    expect(compacts[0]!.args[0]).toBe(9_000);
    // The port always compacts physically (src/app/port.ts); the executor gives it a long deadline.
    expect(compacts[0]!.args[1]).toMatchObject({ timeoutMs: 60_000 });
    expect(compacts[0]!.member).toBe('m1');
    expect(compacts[0]!.seq).toBeLessThan(fake.callsOf('defragment')[0]!.seq);
    expect(report.compactedRevision).toBe(9_000);
    expect(ofType(events, 'compaction-finished')).toMatchObject([{ revision: 9_000, note: null }]);
    expect(report.outcome).toBe('success');
  });

  it('with no leader and no healthy member to send it to, the run fails with a report instead of crashing', async () => {
    const fake = threeVoters({ m1: { revision: 10_000 }, m2: { revision: 10_000 }, m3: { revision: 10_000 } });
    fake.onObserve = (n) => {
      if (n === 2) {
        fake.leader = null;
        for (const m of fake.members) m.healthy = false;
      }
    };
    const { report } = await run(fake, aPolicy({ compactKeepRevisions: 1_000 }));
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(/no leader and no healthy member to send the compaction to/);
    expect(fake.callsOf('compact')).toEqual([]);
    expect(fake.callsOf('defragment')).toEqual([]);
  });

  it('does not compact when nothing is to be defragmented', async () => {
    const fake = threeVoters();
    const { report } = await run(fake, aPolicy({ compactKeepRevisions: 1_000, rule: compileRule('dbSizeFree > 1*GiB') }));
    expect(fake.callsOf('compact')).toEqual([]);
    expect(fake.callsOf('defragment')).toEqual([]);
    expect(report.compactedRevision).toBeNull();
    expect(report.outcome).toBe('nothing-to-do');
  });

  it('a revision that was already compacted is a note, not a failure', async () => {
    const fake = threeVoters();
    fake.onCompact = async () => {
      throw new EtcdError(fake.m('m1').endpoint, 'OUT_OF_RANGE', 'etcdserver: mvcc: required revision has been compacted', {
        reason: 'compacted',
      });
    };
    const { report, events } = await run(fake, aPolicy({ compactKeepRevisions: 1_000 }));
    expect(fake.callsOf('compact')).toHaveLength(1);
    expect(report.compactedRevision).toBeNull();
    expect(ofType(events, 'compaction-finished')[0]?.note).toBe('revision 9000 was already compacted');
    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    expect(report.outcome).toBe('success');
  });

  it('a failed compaction stops the run before any Defragment', async () => {
    const fake = threeVoters();
    fake.onCompact = async () => {
      throw new EtcdError(fake.m('m1').endpoint, 'PERMISSION_DENIED', 'etcdserver: permission denied', { reason: 'permission-denied' });
    };
    const { report } = await run(fake, aPolicy({ compactKeepRevisions: 1_000 }));
    expect(fake.callsOf('defragment')).toEqual([]);
    expect(report.outcome).toBe('failed');
    expect(report.members.every((m) => m.action === 'skipped' && m.reason.startsWith('not attempted'))).toBe(true);
  });
});

describe('executePlan: --disarm-nospace', () => {
  /** Quota 200 MiB (margin 180 MiB at 0.9), every dbSize 190 MiB unless given, NOSPACE raised on every member. */
  function full(inUse: Record<string, number> = {}, dbSize = 190 * MiB): FakeCluster {
    const size = (name: string): Partial<FakeMember> => ({
      quota: 200 * MiB,
      dbSize,
      dbSizeInUse: inUse[name] ?? 50 * MiB,
      alarms: ['NOSPACE'],
    });
    const fake = new FakeCluster([size('m1'), size('m2'), size('m3')], 'm1');
    current = fake;
    return fake;
  }

  it('disarms every NOSPACE alarm once every member is under the margin', async () => {
    const fake = full();
    const { report, events } = await run(fake, aPolicy({ disarmNospace: true }));

    expect(fake.defragmented()).toHaveLength(3);
    const disarms = fake.callsOf('alarmDisarm');
    expect(disarms.map((c) => [c.args[0], c.args[1]]).sort()).toEqual(['m1', 'm2', 'm3'].map((n) => [fake.idOf(n), 'NOSPACE']).sort());
    // After the last Defragment.
    const lastDefrag = fake.callsOf('defragment').at(-1)!;
    expect(disarms.every((c) => c.seq > lastDefrag.seq)).toBe(true);
    expect(fake.allAlarms()).toEqual([]);
    expect(report).toMatchObject({ outcome: 'success', disarmed: true, disarmNote: null });
    expect(ofType(events, 'alarm-disarmed')).toHaveLength(1);
  });

  it('leaves NOSPACE armed and fails when a member stays above the margin', async () => {
    const fake = full({ m3: 185 * MiB });
    const { report } = await run(fake, aPolicy({ disarmNospace: true }));

    expect(fake.defragmented()).toHaveLength(3);
    expect(fake.callsOf('alarmDisarm')).toEqual([]);
    expect(report.disarmed).toBe(false);
    expect(report.disarmNote).toMatch(/^NOSPACE left armed: m3 .*185(\.0)? MiB is at or above 90(\.0)?%/);
    expect(report.disarmNote).toMatch(/--compact-keep-revisions/);
    expect(report.outcome).toBe('failed');
    expect(report.message).toBe(report.disarmNote);
    expect(fake.allAlarms()).toHaveLength(3);
  });

  it('never disarms CORRUPT, even when it shows up after the last member', async () => {
    const fake = full();
    const { report } = await run(
      fake,
      aPolicy({ disarmNospace: true }),
      {},
      {
        onEvent: (e) => {
          if (e.type === 'member-finished' && e.result.name === 'm1') fake.m('m2').alarms.push('CORRUPT');
        },
      },
    );
    expect(fake.callsOf('alarmDisarm').map((c) => c.args[1])).toEqual(['NOSPACE', 'NOSPACE', 'NOSPACE']);
    expect(fake.allAlarms()).toEqual([{ memberId: fake.idOf('m2'), alarm: 'CORRUPT' }]);
    expect(report.disarmed).toBe(true);
  });

  it('does nothing after a failed run, even when every member is under the margin', async () => {
    // NOSPACE stays raised after space was freed (e.g. by a compaction) until someone disarms it.
    const fake = full({}, 170 * MiB);
    fake.onDefragment = async (m) => {
      throw new EtcdError(m.endpoint, 'UNAVAILABLE', 'etcdserver: request timed out', { reason: 'server-timeout' });
    };
    const { report } = await run(fake, aPolicy({ disarmNospace: true }));
    expect(fake.callsOf('alarmDisarm')).toEqual([]);
    expect(report.disarmed).toBe(false);
    expect(report.outcome).toBe('failed');
  });
});

describe('executePlan: warnings', () => {
  it("every plan warning is an event, so it reaches the terminal in a real run, not only in a dry run's output", async () => {
    const fake = threeVoters();
    const { report, events } = await run(fake, aPolicy({ compactKeepRevisions: 999_999_999 }));
    const planWarnings = report.plan?.warnings ?? [];
    expect(planWarnings.some((w) => /no compaction/.test(w))).toBe(true);
    expect(ofType(events, 'warning').map((e) => e.message)).toEqual(expect.arrayContaining(planWarnings));
    expect(report.warnings).toEqual(planWarnings);
  });
});

describe('executePlan: reasons', () => {
  it("a defragmented member's reason is its rule's, not the safety-only last look's", async () => {
    const fake = threeVoters();
    const { report, events } = await run(fake, aPolicy({ rule: compileRule('dbSizeFree > 10*MiB') }));
    expect(result(report, 'm3').reason).toMatch(/^rule is true \(/);
    expect(ofType(events, 'member-started').map((e) => e.decision.code)).toEqual(['rule-true', 'rule-true', 'rule-true']);
  });
});

describe('executePlan: timings', () => {
  it('the report says, per member in turn order, when its Defragment was sent and what the checks, the leader move and the catch-up took', async () => {
    const fake = threeVoters();
    const { report, events } = await run(fake);
    const t = report.timings;
    expect(t?.members.map((m) => m.name)).toEqual(['m3', 'm2', 'm1']);
    const started = ofType(events, 'member-started').map((e) => e.decision.name);
    expect(started).toEqual(['m3', 'm2', 'm1']);
    for (const m of t?.members ?? []) {
      expect(Date.parse(m.defragmentStartedAt), m.name).toBeGreaterThanOrEqual(Date.parse(m.turnStartedAt));
      expect(m.checksMs, m.name).toBeGreaterThanOrEqual(0);
      expect(m.catchUpMs, m.name).not.toBeNull();
    }
    // Only the leader's turn has a hand-over.
    expect(t?.members.filter((m) => m.leaderMoveMs > 0).every((m) => m.name === 'm1')).toBe(true);
    expect(t?.finishMs).not.toBeNull();
  });
});

describe("executePlan: --wait-for-url (readiness of the cluster's clients)", () => {
  /** A readiness port whose URLs answer as `answer` says, given how many defrags the fake has had; every check is logged. */
  function readiness(fake: FakeCluster, answer: (defrags: number, check: number) => boolean, timeoutMs = 400) {
    const checks: number[] = [];
    const port: ReadinessPort = {
      urls: ['https://apiserver-1:6443/readyz'],
      timeoutMs,
      check: async () => {
        const defrags = fake.defragmented().length;
        checks.push(defrags);
        const ready = answer(defrags, checks.length);
        return [{ url: 'https://apiserver-1:6443/readyz', ready, detail: ready ? '200' : '500: [-]etcd failed: reason withheld' }];
      },
    };
    return { port, checks };
  }

  const readyWaits = (events: StepEvent[]) => ofType(events, 'member-waiting').filter((e) => e.what.includes('/readyz'));

  it('asks before anything is changed and before each next member, and goes on when every URL answers 200', async () => {
    const fake = threeVoters();
    const { port, checks } = readiness(fake, () => true);
    const { report, events } = await run(fake, aPolicy({ compactKeepRevisions: 0 }), { readiness: port });
    expect(report.outcome).toBe('success');
    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    // Once before the first member (and the compaction), once before each next one; none after the last.
    expect(checks).toEqual([0, 1, 2]);
    expect(fake.calls.findIndex((c) => c.method === 'compact')).toBeGreaterThanOrEqual(0);
    expect(readyWaits(events)).toEqual([]);
    expect(report.warnings).toEqual([]);
  });

  it('waits between members until the URLs are ready again, and says so in the report', async () => {
    const fake = threeVoters();
    // Unready for the first two checks after m3's defrag.
    const { port } = readiness(fake, (defrags, n) => !(defrags === 1 && n <= 3));
    const { report, events } = await run(fake, aPolicy(), { readiness: port });
    expect(report.outcome).toBe('success');
    expect(fake.defragmented()).toEqual(['m3', 'm2', 'm1']);
    const waits = readyWaits(events);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ name: 'm2', limitMs: 400 });
    expect(waits[0]?.what).toContain('https://apiserver-1:6443/readyz to answer 200 (500: [-]etcd failed');
    expect(report.warnings).toHaveLength(1);
    expect(report.warnings[0]).toMatch(/^waited \S+ before m2 until https:\/\/apiserver-1:6443\/readyz \(500: .*\) answered 200$/);
  });

  it('a URL that stays unready stops the run before the next member, naming it and what it answered', async () => {
    const fake = threeVoters();
    const { port } = readiness(fake, (defrags) => defrags === 0, 150);
    const { report } = await run(fake, aPolicy(), { readiness: port });
    expect(fake.defragmented()).toEqual(['m3']);
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(
      /^stopped before m2: not ready for \S+: https:\/\/apiserver-1:6443\/readyz \(500: \[-\]etcd failed: reason withheld\)/,
    );
    expect(actions(report)).toEqual({ m3: 'defragmented', m2: 'skipped', m1: 'skipped' });
    expect(result(report, 'm2').reason).toMatch(/^not attempted: stopped before m2: not ready/);
    expect(fake.callsOf('moveLeader')).toEqual([]);
  });

  it('an answer no wait changes (401) stops the run at once, before anything is changed', async () => {
    const fake = threeVoters();
    let checks = 0;
    const port: ReadinessPort = {
      urls: ['https://apiserver-1:6443/readyz'],
      timeoutMs: 60_000,
      check: async () => {
        checks += 1;
        return [{ url: 'https://apiserver-1:6443/readyz', ready: false, detail: '401: Unauthorized', final: true }];
      },
    };
    const t0 = Date.now();
    const { report } = await run(fake, aPolicy({ compactKeepRevisions: 0 }), { readiness: port });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(checks).toBe(1);
    expect(report.outcome).toBe('failed');
    expect(report.message).toBe('stopped before m3: https://apiserver-1:6443/readyz (401: Unauthorized), which waiting does not change');
    expect(fake.defragmented()).toEqual([]);
    expect(fake.callsOf('compact')).toEqual([]);
  });

  it('unready from the start: nothing is changed, not even the compaction', async () => {
    const fake = threeVoters();
    const { port } = readiness(fake, () => false, 100);
    const { report } = await run(fake, aPolicy({ compactKeepRevisions: 0 }), { readiness: port });
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(/^stopped before m3: not ready/);
    expect(fake.defragmented()).toEqual([]);
    expect(fake.callsOf('compact')).toEqual([]);
    expect(fake.callsOf('moveLeader')).toEqual([]);
  });

  it('an interrupt during the wait stops the run at once as interrupted', async () => {
    const fake = threeVoters();
    const { port } = readiness(fake, (defrags) => defrags === 0, 60_000);
    const ac = new AbortController();
    const { report } = await run(
      fake,
      aPolicy(),
      { readiness: port },
      {
        signal: ac.signal,
        onEvent: (e) => e.type === 'member-waiting' && setTimeout(() => ac.abort(), 20),
      },
    );
    expect(report.outcome).toBe('interrupted');
    expect(fake.defragmented()).toEqual(['m3']);
  });
});
