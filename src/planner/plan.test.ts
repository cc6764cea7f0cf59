import { describe, expect, it } from 'vitest';
import type { MemberDecision, Plan, Policy } from '../domain/plan.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { compileRule } from '../policy/rule.js';
import { aPolicy, aSnapshot, decisionFor, GiB, MiB, type SnapshotBuilder } from '../../test/builders.js';
import { mulberry32 } from '../../dev/prng.js';
import {
  afterDefrag,
  checkDisarm,
  chooseTransferee,
  defragTimeoutMs,
  leaderOrHealthyVoter,
  planDefrag,
  planTurn,
  votersHealthy,
} from './index.js';

const names = (ds: MemberDecision[]): string[] => ds.map((d) => d.name);
const toDefrag = (plan: Plan): string[] => names(plan.decisions.filter((d) => d.action === 'defragment'));
const skipped = (plan: Plan): string[] => names(plan.decisions.filter((d) => d.action === 'skip'));
const idOf = (s: ClusterSnapshot, name: string): string => s.members.find((m) => m.name === name)!.memberId;

/** Three voters with distinct free space: m1 30 MiB, m2 50 MiB, m3 10 MiB free. */
function threeVoters(): SnapshotBuilder {
  return aSnapshot()
    .withMember('m1', { dbSize: 100 * MiB, dbSizeInUse: 70 * MiB })
    .withMember('m2', { dbSize: 100 * MiB, dbSizeInUse: 50 * MiB })
    .withMember('m3', { dbSize: 100 * MiB, dbSizeInUse: 90 * MiB });
}

describe('planDefrag: order', () => {
  it.each([
    // leader, expected defragment order
    ['m1', ['m2', 'm3', 'm1']],
    ['m2', ['m1', 'm3', 'm2']],
    ['m3', ['m2', 'm1', 'm3']],
  ])('leader %s goes last, followers by dbSizeFree descending', (leader, order) => {
    const plan = planDefrag(threeVoters().withLeader(leader).build(), aPolicy());
    expect(plan.refusal).toBeNull();
    expect(toDefrag(plan)).toEqual(order);
    expect(plan.decisions.map((d) => d.code)).toEqual(['no-rule', 'no-rule', 'no-rule']);
    expect(plan.decisions.at(-1)!.isLeader).toBe(true);
  });

  it('breaks dbSizeFree ties by name', () => {
    const snapshot = aSnapshot()
      .withMember('c', { dbSizeInUse: 10 * MiB })
      .withMember('b', { dbSizeInUse: 10 * MiB })
      .withMember('a', { dbSizeInUse: 10 * MiB })
      .withMember('z', { dbSizeInUse: 5 * MiB })
      .withMember('lead')
      .withLeader('lead')
      .build();
    expect(toDefrag(planDefrag(snapshot, aPolicy()))).toEqual(['z', 'a', 'b', 'c', 'lead']);
  });

  it('puts skipped members after those to defragment, in member-list order', () => {
    const snapshot = aSnapshot()
      .withLearner('l1')
      .withMembers(5)
      .withMember('m1', { dbSize: 10 * MiB, dbSizeInUse: 9 * MiB })
      .withMember('m4', { dbSize: 10 * MiB, dbSizeInUse: 9 * MiB })
      .withLeader('m3')
      .build();
    const plan = planDefrag(snapshot, aPolicy({ rule: compileRule('dbSizeFree > 20*MiB') }));
    expect(toDefrag(plan)).toEqual(['m2', 'm5', 'm3']);
    expect(skipped(plan)).toEqual(['l1', 'm1', 'm4']);
  });
});

describe('planDefrag: the leader', () => {
  it('moves leadership to the voter with the highest applied index first', () => {
    const snapshot = threeVoters()
      .withLeader('m1')
      .withMember('m2', { raftAppliedIndex: 100 })
      .withMember('m3', { raftAppliedIndex: 105 })
      .build();
    const plan = planDefrag(snapshot, aPolicy());
    const leader = decisionFor(plan, 'm1');
    expect(leader.action).toBe('defragment');
    expect(leader.moveLeaderTo).toBe(idOf(snapshot, 'm3'));
    expect(leader.reason).toContain(`leadership moves to m3 (${idOf(snapshot, 'm3')}) first`);
    for (const d of plan.decisions.filter((x) => !x.isLeader)) expect(d.moveLeaderTo).toBeNull();
  });

  it('with --no-move-leader, skips the leader and says why', () => {
    const plan = planDefrag(threeVoters().withLeader('m2').build(), aPolicy({ moveLeader: false }));
    const leader = decisionFor(plan, 'm2');
    expect(leader).toMatchObject({ action: 'skip', code: 'leader-no-move', moveLeaderTo: null });
    expect(leader.reason).toContain('--no-move-leader');
    expect(leader.reason).toContain('never defragmented while it leads');
    expect(toDefrag(plan)).toEqual(['m1', 'm3']);
    expect(skipped(plan)).toEqual(['m2']);
  });

  it('skips the leader when no other voter is healthy (skip-health-check)', () => {
    const snapshot = aSnapshot().withMembers(3).withLeader('m1').unreachable('m2').unhealthy('m3').build();
    const plan = planDefrag(snapshot, aPolicy({ skipHealthCheck: true }));
    expect(plan.refusal).toBeNull();
    expect(decisionFor(plan, 'm1')).toMatchObject({ action: 'skip', code: 'leader-no-transferee' });
    expect(toDefrag(plan)).toEqual([]);
    expect(plan.compaction).toBeNull();
  });

  it('a rule that is false for the leader skips it like anyone else', () => {
    const snapshot = threeVoters().withLeader('m3').build();
    const plan = planDefrag(snapshot, aPolicy({ rule: compileRule('isLeader == false') }));
    expect(decisionFor(plan, 'm3')).toMatchObject({ action: 'skip', code: 'rule-false', ruleResult: false });
    expect(toDefrag(plan)).toEqual(['m2', 'm1']);
  });

  describe('single voter', () => {
    it.each([true, false])('defragments it anyway with a warning (moveLeader %s)', (moveLeader) => {
      const snapshot = aSnapshot().withMembers(1).withLearner('l1').build();
      const plan = planDefrag(snapshot, aPolicy({ moveLeader }));
      expect(plan.refusal).toBeNull();
      expect(decisionFor(plan, 'm1')).toMatchObject({ action: 'defragment', isLeader: true, moveLeaderTo: null });
      expect(decisionFor(plan, 'l1')).toMatchObject({ action: 'skip', code: 'learner' });
      expect(plan.warnings.join('\n')).toMatch(/m1 .* is the only voter: .*whole cluster stalls/);
    });

    it('gives no warning when the rule skips it', () => {
      const plan = planDefrag(aSnapshot().withMembers(1).build(), aPolicy({ rule: compileRule('dbSize > 10*GiB') }));
      expect(plan.decisions.map((d) => d.code)).toEqual(['rule-false']);
      expect(plan.warnings).toEqual([]);
    });
  });
});

describe('planDefrag: learners', () => {
  it('never defragments a learner, even one that is unreachable or has NOSPACE', () => {
    const snapshot = aSnapshot().withMembers(3).withLearner('l1').withLearner('l2').unreachable('l2').withAlarm('l1', 'NOSPACE').build();
    const plan = planDefrag(snapshot, aPolicy());
    expect(plan.refusal).toBeNull();
    for (const name of ['l1', 'l2']) {
      expect(decisionFor(plan, name)).toMatchObject({ action: 'skip', code: 'learner', isLearner: true });
    }
    expect(decisionFor(plan, 'l1').reason).toContain('etcd rejects Defragment on learners');
  });

  it('treats a member whose status says learner as a learner', () => {
    const snapshot = aSnapshot().withMembers(3).build();
    const m3 = snapshot.members[2]!;
    const changed = {
      ...snapshot,
      members: [snapshot.members[0]!, snapshot.members[1]!, { ...m3, status: { ...m3.status!, isLearner: true } }],
    };
    expect(decisionFor(planDefrag(changed, aPolicy()), 'm3').code).toBe('learner');
  });
});

describe('planDefrag: preconditions', () => {
  it.each([
    [
      'unreachable',
      (b: SnapshotBuilder) => b.unreachable('m3', 'dial tcp 10.0.0.3:2379: connect: connection refused'),
      /m3 \(https:\/\/10\.0\.0\.3:2379\) is unreachable: dial tcp/,
    ],
    ['unhealthy', (b: SnapshotBuilder) => b.unhealthy('m3'), /m3 \(https:\/\/10\.0\.0\.3:2379\) is unhealthy: context deadline exceeded/],
  ])('refuses when a voter is %s, listing every member as skip', (_, breakIt, pattern) => {
    const snapshot = breakIt(aSnapshot().withMembers(3).withLeader('m1')).build();
    const plan = planDefrag(snapshot, aPolicy());
    expect(plan.refusal).not.toBeNull();
    expect(plan.refusal!.reason).toMatch(pattern);
    expect(plan.refusal!.reason).toContain('--skip-health-check');
    expect(plan.refusal!.memberIds).toEqual([idOf(snapshot, 'm3')]);
    expect(plan.decisions.map((d) => d.action)).toEqual(['skip', 'skip', 'skip']);
    // The would-be order and reasons survive for a dry run.
    expect(names(plan.decisions)).toEqual(['m2', 'm1', 'm3']);
    expect(decisionFor(plan, 'm2').reason).toMatch(/^run refused; would defragment: no rule/);
    expect(decisionFor(plan, 'm1').moveLeaderTo).toBeNull();
    expect(decisionFor(plan, 'm3').code).toBe('unreachable');
    expect(plan).toMatchObject({ compaction: null, disarmNospace: false, expectedReclaimBytes: 0 });
  });

  it('names every failing member', () => {
    const snapshot = aSnapshot().withMembers(5).unreachable('m2').unhealthy('m4').build();
    const plan = planDefrag(snapshot, aPolicy());
    expect(plan.refusal!.reason).toMatch(/m2 .*unreachable.*; m4 .*unhealthy/);
    expect(plan.refusal!.memberIds).toEqual([idOf(snapshot, 'm2'), idOf(snapshot, 'm4')]);
  });

  it('with --skip-health-check, skips unreachable and unhealthy voters with warnings', () => {
    const snapshot = aSnapshot().withMembers(5).withLeader('m5').unreachable('m2').unhealthy('m4').build();
    const plan = planDefrag(snapshot, aPolicy({ skipHealthCheck: true }));
    expect(plan.refusal).toBeNull();
    expect(toDefrag(plan)).toEqual(['m1', 'm3', 'm5']);
    expect(decisionFor(plan, 'm2')).toMatchObject({ action: 'skip', code: 'unreachable', dbSize: null });
    expect(decisionFor(plan, 'm4')).toMatchObject({ action: 'skip', code: 'unreachable' });
    expect(decisionFor(plan, 'm4').reason).toContain('unhealthy');
    expect(plan.warnings).toHaveLength(2);
    expect(plan.warnings[0]).toMatch(/m2 .* is unreachable: connection refused: skipped \(--skip-health-check\)/);
  });

  it('allows NOSPACE on every member', () => {
    const plan = planDefrag(aSnapshot().withMembers(3).withAlarm('*', 'NOSPACE').build(), aPolicy());
    expect(plan.refusal).toBeNull();
    expect(toDefrag(plan)).toHaveLength(3);
  });

  it.each([false, true])('refuses on CORRUPT, whatever --skip-health-check (%s) says', (skipHealthCheck) => {
    const snapshot = aSnapshot().withMembers(3).withAlarm('m2', 'CORRUPT').withAlarm('*', 'NOSPACE').build();
    const plan = planDefrag(snapshot, aPolicy({ skipHealthCheck }));
    expect(plan.refusal!.reason).toMatch(/m2 \(https:\/\/10\.0\.0\.2:2379\) has alarm CORRUPT/);
    expect(plan.refusal!.reason).not.toContain('--skip-health-check');
    expect(plan.refusal!.memberIds).toEqual([idOf(snapshot, 'm2')]);
    expect(skipped(plan)).toHaveLength(3);
  });

  it('refuses on CORRUPT raised for a learner or for an ID not in the member list', () => {
    const onLearner = aSnapshot().withMembers(3).withLearner('l1').withAlarm('l1', 'CORRUPT').build();
    expect(planDefrag(onLearner, aPolicy()).refusal?.reason).toMatch(/l1 .* has alarm CORRUPT/);
    const orphan = aSnapshot().withMembers(3).withOrphanAlarm('deadbeefdeadbeef', 'CORRUPT').build();
    const plan = planDefrag(orphan, aPolicy({ skipHealthCheck: true }));
    expect(plan.refusal?.reason).toMatch(/alarm CORRUPT is raised for deadbeefdeadbeef/);
    expect(plan.refusal?.memberIds).toEqual(['deadbeefdeadbeef']);
  });

  it('refuses on an alarm it does not know', () => {
    const plan = planDefrag(aSnapshot().withMembers(3).withAlarm('m1', 'SOMETHING_NEW').build(), aPolicy());
    expect(plan.refusal?.reason).toMatch(/has alarm SOMETHING_NEW/);
  });

  it('refuses when no leader is known', () => {
    const plan = planDefrag(aSnapshot().withMembers(3).withLeader(null).build(), aPolicy());
    expect(plan.refusal?.reason).toMatch(/no leader is known/);
    expect(plan.refusal?.memberIds).toEqual([]);
    expect(skipped(plan)).toEqual(['m1', 'm2', 'm3']);
  });

  it('refuses when the agreed leader is not a member', () => {
    const snapshot = { ...aSnapshot().withMembers(3).build(), leaderId: '1234abcd' };
    expect(planDefrag(snapshot, aPolicy()).refusal?.reason).toMatch(/leader 1234abcd is not in the member list/);
  });

  it('with --skip-health-check and no leader known, goes ahead with a warning', () => {
    const plan = planDefrag(aSnapshot().withMembers(3).withLeader(null).build(), aPolicy({ skipHealthCheck: true }));
    expect(plan.refusal).toBeNull();
    expect(toDefrag(plan)).toHaveLength(3);
    expect(plan.decisions.some((d) => d.isLeader)).toBe(false);
    expect(plan.warnings[0]).toMatch(/no leader is known: going ahead/);
  });

  it('with --skip-health-check and no agreed leader, still treats a member that claims to lead as the leader', () => {
    const base = aSnapshot().withMembers(3).withLeader('m2').build();
    const snapshot = { ...base, leaderId: null };
    const plan = planDefrag(snapshot, aPolicy({ skipHealthCheck: true }));
    expect(plan.decisions.at(-1)).toMatchObject({ name: 'm2', isLeader: true, action: 'defragment' });
    expect(plan.decisions.at(-1)!.moveLeaderTo).not.toBeNull();
    expect(plan.warnings[0]).toMatch(/m2 .* says it leads/);
  });

  it('a healthy cluster gives no warnings', () => {
    expect(planDefrag(aSnapshot().withMembers(3).build(), aPolicy()).warnings).toEqual([]);
  });
});

describe('planDefrag: rules', () => {
  it('marks each member by its own rule result', () => {
    const snapshot = aSnapshot()
      .withMember('m1', { dbSize: 12 * MiB, dbSizeInUse: 10.8 * MiB, quota: 2 * GiB })
      .withMember('m2', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB })
      .withMember('m3', { dbSize: 200 * MiB, dbSizeInUse: 200 * MiB })
      .withLeader('m1')
      .build();
    const rule = compileRule('dbSizeFree >= 1*MiB');
    const plan = planDefrag(snapshot, aPolicy({ rule }));
    expect(plan.refusal).toBeNull();
    expect(decisionFor(plan, 'm2')).toMatchObject({ action: 'defragment', code: 'rule-true', ruleResult: true });
    expect(decisionFor(plan, 'm2').reason).toBe('rule is true (dbSize 300.0 MiB, dbSizeFree 200.0 MiB, dbQuotaUsage 14.6%)');
    expect(decisionFor(plan, 'm1')).toMatchObject({ action: 'defragment', code: 'rule-true' });
    expect(decisionFor(plan, 'm3')).toMatchObject({ action: 'skip', code: 'rule-false', ruleResult: false });
  });

  it('refuses the run when the rule fails for a member, naming it: a broken rule is never a silent "no"', () => {
    const snapshot = aSnapshot()
      .withMember('m1', { dbSize: 12 * MiB, dbSizeInUse: 10.8 * MiB, quota: 2 * GiB })
      .withMember('m2', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB })
      .withMember('m3', { dbSize: 200 * MiB, dbSizeInUse: 200 * MiB })
      .withLeader('m1')
      .build();
    const plan = planDefrag(snapshot, aPolicy({ rule: compileRule('200*MiB / dbSizeFree >= 1') }));
    expect(plan.refusal?.reason).toMatch(
      /^refusing to defragment: the rule failed for m3 \(.*\): rule failed at column 1: division by zero$/,
    );
    expect(plan.refusal?.memberIds).toEqual([idOf(snapshot, 'm3')]);
    expect(decisionFor(plan, 'm3')).toMatchObject({ action: 'skip', code: 'rule-error', ruleResult: null });
    // --skip-health-check does not make it go away.
    expect(planDefrag(snapshot, aPolicy({ rule: compileRule('200*MiB / dbSizeFree >= 1'), skipHealthCheck: true })).refusal).not.toBeNull();
  });

  it('says the figures when the rule is false', () => {
    const snapshot = aSnapshot()
      .withMembers(3)
      .withMember('m3', { dbSize: 12 * MiB, dbSizeInUse: 10.8 * MiB })
      .build();
    const plan = planDefrag(snapshot, aPolicy({ rule: compileRule('dbSizeFree > 100*MiB') }));
    expect(decisionFor(plan, 'm3')).toMatchObject({ action: 'skip', code: 'rule-false', ruleResult: false });
    expect(decisionFor(plan, 'm3').reason).toBe('rule is false (dbSize 12.0 MiB, dbSizeFree 1.2 MiB, dbQuotaUsage 0.6%)');
  });

  it('sees isLeader and memberName', () => {
    const snapshot = aSnapshot().withMembers(3).withLeader('m2').build();
    expect(toDefrag(planDefrag(snapshot, aPolicy({ rule: compileRule('isLeader') })))).toEqual(['m2']);
    expect(toDefrag(planDefrag(snapshot, aPolicy({ rule: compileRule('memberName == "m1"') })))).toEqual(['m1']);
  });

  it('without a rule, defragments every healthy voter (no-rule)', () => {
    const plan = planDefrag(aSnapshot().withMembers(5).withLearner('l1').build(), aPolicy());
    expect(plan.decisions.filter((d) => d.code === 'no-rule')).toHaveLength(5);
    expect(plan.decisions.every((d) => d.code !== 'no-rule' || d.ruleResult === null)).toBe(true);
  });
});

describe('planDefrag: figures', () => {
  it('expects to reclaim the free space of the members it defragments', () => {
    const plan = planDefrag(threeVoters().build(), aPolicy({ rule: compileRule('dbSizeFree >= 30*MiB') }));
    expect(plan.expectedReclaimBytes).toBe(80 * MiB);
  });

  it('gives bigger members longer deadlines', () => {
    const snapshot = aSnapshot()
      .withMember('m1', { dbSize: 200 * MiB, dbSizeInUse: 100 * MiB })
      .withMember('m2', { dbSize: 8 * GiB, dbSizeInUse: 4 * GiB })
      .withMember('m3', { dbSize: 20 * MiB, dbSizeInUse: 1 * MiB })
      .build();
    const plan = planDefrag(snapshot, aPolicy());
    expect(decisionFor(plan, 'm3').timeoutMs).toBe(60_100);
    expect(decisionFor(plan, 'm1').timeoutMs).toBe(70_000);
    expect(decisionFor(plan, 'm2').timeoutMs).toBe(60_000 + 409_600);
    const fixed = planDefrag(snapshot, aPolicy({ defragTimeoutMs: 5_000 }));
    expect(fixed.decisions.map((d) => d.timeoutMs)).toEqual([5_000, 5_000, 5_000]);
  });
});

describe('planDefrag: compaction', () => {
  const withRevisions = (): SnapshotBuilder =>
    aSnapshot()
      .withMembers(3)
      .withLeader('m2')
      .withMember('m1', { revision: 9_990 })
      .withMember('m2', { revision: 10_000 })
      .withMember('m3', { revision: 10_005 });

  it("compacts to the leader's revision minus keep", () => {
    const plan = planDefrag(withRevisions().build(), aPolicy({ compactKeepRevisions: 1_000 }));
    expect(plan.compaction).toEqual({ keepRevisions: 1_000, revision: 9_000 });
  });

  it('compacts to the current revision with keep 0', () => {
    expect(planDefrag(withRevisions().build(), aPolicy({ compactKeepRevisions: 0 })).compaction?.revision).toBe(10_000);
  });

  it('uses the highest reachable revision when the leader did not answer', () => {
    const snapshot = withRevisions().unreachable('m2').build();
    const plan = planDefrag(snapshot, aPolicy({ compactKeepRevisions: 5, skipHealthCheck: true }));
    expect(plan.compaction).toEqual({ keepRevisions: 5, revision: 10_000 });
  });

  it('does not compact when keep reaches back past revision 1, and says so', () => {
    const plan = planDefrag(withRevisions().build(), aPolicy({ compactKeepRevisions: 10_000 }));
    expect(plan.compaction).toBeNull();
    expect(plan.warnings.join('\n')).toMatch(/no compaction: the current revision 10000 is not above --compact-keep-revisions 10000/);
  });

  it('does not compact when nothing is defragmented, or when not asked', () => {
    const rule = compileRule('dbSize > 10*GiB');
    expect(planDefrag(withRevisions().build(), aPolicy({ compactKeepRevisions: 10, rule })).compaction).toBeNull();
    expect(planDefrag(withRevisions().build(), aPolicy()).compaction).toBeNull();
  });
});

describe('planDefrag: NOSPACE', () => {
  const full = (): SnapshotBuilder =>
    aSnapshot()
      .withMembers(3)
      .withMember('m1', { dbSize: 2 * GiB, dbSizeInUse: 1.9 * GiB })
      .withMember('m2', { dbSize: 2 * GiB, dbSizeInUse: 0.5 * GiB })
      .withMember('m3', { dbSize: 2 * GiB, dbSizeInUse: 0.5 * GiB })
      .withAlarm('*', 'NOSPACE');

  it('plans a disarm only when asked and NOSPACE is raised', () => {
    expect(planDefrag(full().build(), aPolicy({ disarmNospace: true })).disarmNospace).toBe(true);
    expect(planDefrag(full().build(), aPolicy({ disarmNospace: false })).disarmNospace).toBe(false);
    expect(planDefrag(aSnapshot().withMembers(3).build(), aPolicy({ disarmNospace: true })).disarmNospace).toBe(false);
  });

  it('warns when defragmentation alone cannot get a member under the margin, and suggests compaction', () => {
    const plan = planDefrag(full().build(), aPolicy({ disarmNospace: true }));
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toBe(
      'defragmentation alone cannot bring m1 (https://10.0.0.1:2379) under the disarm margin: 1.9 GiB is in use, ' +
        'at or above 90.0% of its 2.0 GiB quota (1.8 GiB), so NOSPACE would stay armed; ' +
        '--compact-keep-revisions N would (compaction frees the old revisions first)',
    );
  });

  it('does not warn about the margin when compaction is planned', () => {
    const plan = planDefrag(full().build(), aPolicy({ disarmNospace: true, compactKeepRevisions: 100 }));
    expect(plan.warnings).toEqual([]);
    expect(plan.compaction).not.toBeNull();
  });

  it('warns when a member over the margin will not be defragmented', () => {
    const snapshot = full()
      .withLearner('l1', { dbSize: 1.95 * GiB, dbSizeInUse: 0.1 * GiB })
      .withAlarm('l1', 'NOSPACE')
      .build();
    const plan = planDefrag(snapshot, aPolicy({ disarmNospace: true, compactKeepRevisions: 100 }));
    expect(plan.warnings).toEqual([
      expect.stringMatching(/^l1 .* is not defragmented \(learner\) and its dbSize 1\.9 GiB is at or above 90\.0%/),
    ]);
  });
});

describe('chooseTransferee', () => {
  it.each([
    [{ m2: 10, m3: 20, m4: 15 }, 'm3'],
    [{ m2: 20, m3: 20, m4: 15 }, 'm2'],
    [{ m2: 5, m3: 5, m4: 5 }, 'm2'],
  ])('picks the highest applied index, ties by name: %j', (applied, expected) => {
    let b = aSnapshot().withMembers(4).withLeader('m1').withMember('m1', { raftAppliedIndex: 1_000 });
    for (const [name, raftAppliedIndex] of Object.entries(applied)) b = b.withMember(name, { raftAppliedIndex });
    const snapshot = b.build();
    expect(chooseTransferee(snapshot)).toBe(idOf(snapshot, expected));
  });

  it('never picks the leader, a learner, excludeId, or an unhealthy or alarmed voter', () => {
    const snapshot = aSnapshot()
      .withMembers(5)
      .withLeader('m1')
      .withMember('m1', { raftAppliedIndex: 999 })
      .withLearner('l1', { raftAppliedIndex: 999 })
      .withMember('m2', { raftAppliedIndex: 50 })
      .withMember('m3', { raftAppliedIndex: 60 })
      .withMember('m4', { raftAppliedIndex: 70 })
      .withMember('m5', { raftAppliedIndex: 80 })
      .unhealthy('m5')
      .withAlarm('m4', 'CORRUPT')
      .build();
    expect(chooseTransferee(snapshot)).toBe(idOf(snapshot, 'm3'));
    expect(chooseTransferee(snapshot, idOf(snapshot, 'm3'))).toBe(idOf(snapshot, 'm2'));
    expect(chooseTransferee(aSnapshot().withMembers(1).build())).toBeNull();
  });

  it('accepts a voter with NOSPACE', () => {
    const snapshot = aSnapshot().withMembers(2).withAlarm('*', 'NOSPACE').build();
    expect(chooseTransferee(snapshot)).toBe(idOf(snapshot, 'm2'));
  });
});

describe('defragTimeoutMs', () => {
  it.each([
    [0, 60_000],
    [10 * MiB, 61_000],
    [100 * MiB, 70_000],
    [3.8e9, 422_396],
    [8 * GiB, 879_200],
    [1, 60_000],
    [-5, 60_000],
  ])('%d bytes in use → %d ms', (inUse, ms) => {
    expect(defragTimeoutMs(inUse, null)).toBe(ms);
  });

  it('grows with size and is a whole number of ms', () => {
    let last = 0;
    for (let inUse = 0; inUse < 10 * GiB; inUse += 123_456_789) {
      const t = defragTimeoutMs(inUse, null);
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });

  it('lets an override win', () => {
    expect(defragTimeoutMs(8 * GiB, 30_000)).toBe(30_000);
  });
});

describe('votersHealthy', () => {
  it('is ok for healthy voters with NOSPACE and a broken learner', () => {
    const snapshot = aSnapshot().withMembers(3).withLearner('l1').unreachable('l1').withAlarm('*', 'NOSPACE').build();
    expect(votersHealthy(snapshot)).toEqual({ ok: true, failing: [] });
  });

  it('lists unreachable, unhealthy and CORRUPT voters, except exceptId', () => {
    const snapshot = aSnapshot().withMembers(5).unreachable('m2').unhealthy('m3').withAlarm('m4', 'CORRUPT').build();
    const result = votersHealthy(snapshot);
    expect(result.ok).toBe(false);
    expect(result.failing.map((m) => m.name)).toEqual(['m2', 'm3', 'm4']);
    expect(votersHealthy(snapshot, idOf(snapshot, 'm2')).failing.map((m) => m.name)).toEqual(['m3', 'm4']);
  });
});

describe('checkDisarm', () => {
  it('is ok when every member is under the margin', () => {
    const snapshot = aSnapshot()
      .withMembers(3)
      .withMember('m1', { dbSize: 1.7 * GiB })
      .withAlarm('*', 'NOSPACE')
      .build();
    expect(checkDisarm(snapshot, 0.9)).toEqual({ ok: true, blockers: [], alarms: ['NOSPACE'] });
  });

  it('lists members at or above the margin with their figures', () => {
    const snapshot = aSnapshot()
      .withMembers(3)
      .withMember('m1', { dbSize: 1.8 * GiB, dbSizeInUse: 1 * GiB })
      .withLearner('l1', { dbSize: 1.9 * GiB, dbSizeInUse: 1 * GiB })
      .withAlarm('m1', 'NOSPACE')
      .withAlarm('m2', 'CORRUPT')
      .build();
    const check = checkDisarm(snapshot, 0.9);
    expect(check.ok).toBe(false);
    expect(check.blockers.map(({ name, dbSize, limit }) => ({ name, dbSize, limit }))).toEqual([
      { name: 'm1', dbSize: 1.8 * GiB, limit: 0.9 * 2 * GiB },
      { name: 'l1', dbSize: 1.9 * GiB, limit: 0.9 * 2 * GiB },
    ]);
    expect(check.blockers[0]!.reason).toBe('m1 (https://10.0.0.1:2379) dbSize 1.8 GiB is at or above 90.0% of its 2.0 GiB quota (1.8 GiB)');
    expect(check.alarms).toEqual(['NOSPACE', 'CORRUPT']);
  });

  it('is blocked by a member that does not answer', () => {
    const check = checkDisarm(aSnapshot().withMembers(3).unreachable('m3').build(), 0.9);
    expect(check.ok).toBe(false);
    expect(check.blockers).toHaveLength(1);
    expect(check.blockers[0]).toMatchObject({ name: 'm3', reason: 'm3 (https://10.0.0.3:2379) is unreachable: connection refused' });
    expect(check.blockers[0]!.dbSize).toBeNaN();
  });
});

// --- Invariants over generated shapes ---------------------------------------

const RULES = [
  null,
  'dbSizeFree > 100*MiB',
  'fragmentation >= 0.45 && dbSize >= 100*MiB',
  'isLeader == false',
  'dbSize / dbSizeFree > 1',
  'dbQuotaUsage > 0.8 || dbSize - dbSizeInUse > 200*1024*1024',
];

function generate(seed: number): { snapshot: ClusterSnapshot; policy: Policy } {
  const rnd = mulberry32(seed); // deterministic, so a failure reproduces
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const voterCount = pick([1, 2, 3, 3, 5, 5, 7]);
  const learnerCount = pick([0, 0, 1, 2]);
  let b = aSnapshot().withMembers(voterCount);
  for (let i = 1; i <= learnerCount; i++) b = b.withLearner(`l${i}`);
  const all = [
    ...Array.from({ length: voterCount }, (_, i) => `m${i + 1}`),
    ...Array.from({ length: learnerCount }, (_, i) => `l${i + 1}`),
  ];
  for (const name of all) {
    const dbSize = Math.round(rnd() * 2 * GiB);
    b = b.withMember(name, {
      dbSize,
      dbSizeInUse: Math.round(rnd() * dbSize),
      raftAppliedIndex: 1_000 + Math.floor(rnd() * 10),
      revision: Math.floor(rnd() * 5_000),
    });
    const r = rnd();
    if (r < 0.08) b = b.unreachable(name);
    else if (r < 0.14) b = b.unhealthy(name);
    if (rnd() < 0.05) b = b.withAlarm(name, 'CORRUPT');
  }
  if (rnd() < 0.3) b = b.withAlarm('*', 'NOSPACE');
  b = b.withLeader(rnd() < 0.1 ? null : `m${1 + Math.floor(rnd() * voterCount)}`);
  const rule = pick(RULES);
  const policy = aPolicy({
    rule: rule === null ? null : compileRule(rule),
    moveLeader: rnd() < 0.8,
    skipHealthCheck: rnd() < 0.5,
    compactKeepRevisions: pick([null, 0, 100, 10_000]),
    disarmNospace: rnd() < 0.5,
  });
  const snapshot = b.build();
  // Drawn last, so the shapes above stay those of the seeds before forecasts existed.
  if (rnd() < 0.7) {
    policy.defragHistory = Object.fromEntries(
      snapshot.members
        .filter(() => rnd() < 0.7)
        .map((m) => [
          m.memberId,
          Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => ({
            dbSizeInUse: Math.round(rnd() * GiB),
            durationMs: Math.round(rnd() * 60_000),
          })),
        ]),
    );
  }
  policy.maxDefragDurationMs = pick([undefined, null, 5_000, 30_000, 120_000]);
  return { snapshot, policy };
}

describe('planDefrag: invariants over generated clusters', () => {
  const cases = Array.from({ length: 500 }, (_, seed) => ({ seed, ...generate(seed) }));

  it('covers refused and accepted plans, single and multi-voter clusters', () => {
    const plans = cases.map(({ snapshot, policy }) => planDefrag(snapshot, policy));
    expect(plans.filter((p) => p.refusal !== null).length).toBeGreaterThan(50);
    expect(
      plans.filter((p) => p.refusal === null && p.decisions.some((d) => d.isLeader && d.action === 'defragment')).length,
    ).toBeGreaterThan(50);
    expect(plans.filter((p) => p.refusal === null && p.decisions.some((d) => d.code === 'over-max-duration')).length).toBeGreaterThan(30);
    expect(
      plans.filter((p) => p.refusal === null && p.decisions.some((d) => d.code === 'over-max-duration' && d.isLeader)).length,
    ).toBeGreaterThan(5);
  });

  it.each(cases)('seed $seed', ({ snapshot, policy }) => {
    const plan = planDefrag(snapshot, policy);
    const defrag = plan.decisions.filter((d) => d.action === 'defragment');
    const voterCount = snapshot.members.filter((m) => !m.isLearner).length;

    // Every member exactly once.
    expect(plan.decisions.map((d) => d.memberId).sort()).toEqual(snapshot.members.map((m) => m.memberId).sort());
    // Those to defragment come first.
    const firstSkip = plan.decisions.findIndex((d) => d.action === 'skip');
    if (firstSkip >= 0) expect(plan.decisions.slice(firstSkip).every((d) => d.action === 'skip')).toBe(true);
    // The leader is last among them, and moves away first unless it is the only voter.
    const leaderAt = defrag.findIndex((d) => d.isLeader);
    if (leaderAt >= 0) {
      expect(leaderAt).toBe(defrag.length - 1);
      if (voterCount > 1) expect(defrag[leaderAt]!.moveLeaderTo).not.toBeNull();
    }
    // Followers by dbSizeFree descending.
    const followers = defrag.filter((d) => !d.isLeader).map((d) => d.dbSizeFree ?? -1);
    expect(followers).toEqual([...followers].sort((a, b) => b - a));
    // Never a learner, never an unreachable, unhealthy or alarmed member.
    for (const d of defrag) {
      const m = snapshot.members.find((x) => x.memberId === d.memberId)!;
      expect(d.isLearner).toBe(false);
      expect(m.reachable && m.healthy && !m.alarms.includes('CORRUPT')).toBe(true);
      expect(d.timeoutMs).toBeGreaterThanOrEqual(60_000);
    }
    for (const d of plan.decisions) if (d.isLearner) expect(d.code).toBe('learner');
    // A refused plan does nothing.
    if (plan.refusal !== null) {
      expect(defrag).toEqual([]);
      expect(plan.compaction).toBeNull();
      expect(plan.expectedReclaimBytes).toBe(0);
    }
    // CORRUPT always refuses.
    if (snapshot.alarms.some((a) => a.alarm === 'CORRUPT')) expect(plan.refusal).not.toBeNull();
    // Without --skip-health-check, an unreachable voter or unknown leader refuses.
    if (!policy.skipHealthCheck && (snapshot.leaderId === null || !votersHealthy(snapshot).ok)) expect(plan.refusal).not.toBeNull();
    // Compaction only with something to defragment, and never at or below 0.
    if (plan.compaction !== null) {
      expect(defrag.length).toBeGreaterThan(0);
      expect(plan.compaction.revision).toBeGreaterThan(0);
    }
    expect(plan.expectedReclaimBytes).toBe(defrag.reduce((s, d) => s + (d.dbSizeFree ?? 0), 0));
    // Every member has a forecast or says why not; none goes over the maximum, and a member skipped for it had one over it.
    const maxMs = policy.maxDefragDurationMs ?? null;
    for (const d of plan.decisions) {
      expect(d.forecastMs === null).toBe(d.forecastBasis.source === 'none');
      if (policy.defragHistory === undefined) expect(d.forecastBasis).toEqual({ source: 'none', why: 'history-not-given' });
      if (d.code === 'over-max-duration') {
        expect(maxMs).not.toBeNull();
        expect(d.forecastMs).toBeGreaterThan(maxMs!);
        expect(d.moveLeaderTo).toBeNull();
      }
    }
    for (const d of defrag) if (maxMs !== null && d.forecastMs !== null) expect(d.forecastMs).toBeLessThanOrEqual(maxMs);
    // JSON-safe (the CLI prints it with -w json).
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);

    // planTurn for the first member, on the same snapshot, agrees with the plan.
    const unfitAtStart = plan.decisions.filter((d) => d.code === 'unreachable').map((d) => d.memberId);
    const first = defrag[0];
    if (plan.refusal !== null) {
      for (const m of snapshot.members)
        expect(planTurn(snapshot, policy, m.memberId, { unfitAtStart, leaderMoved: false }).action).toBe('stop');
    } else if (first !== undefined) {
      const turn = planTurn(snapshot, policy, first.memberId, { unfitAtStart, leaderMoved: false });
      expect(turn).toMatchObject({ action: 'defragment', decision: first, moveLeaderTo: first.moveLeaderTo, timeoutMs: first.timeoutMs });
    }
    // And every member the plan skips is skipped by its turn too.
    if (plan.refusal === null) {
      for (const d of plan.decisions.filter((x) => x.action === 'skip')) {
        expect(planTurn(snapshot, policy, d.memberId, { unfitAtStart, leaderMoved: false }).action, d.code).toBe('skip');
      }
    }
  });
});

describe('alarms that could not be read', () => {
  it('refuse: a CORRUPT alarm cannot be ruled out, and --skip-health-check does not change that', () => {
    const snap = aSnapshot().withMembers(3).withLeader('m1').alarmsUnknown('etcdserver: permission denied').build();
    for (const skipHealthCheck of [false, true]) {
      const plan = planDefrag(snap, aPolicy({ skipHealthCheck }));
      expect(plan.refusal?.reason).toMatch(/alarm list could not be read \(etcdserver: permission denied\)/);
      expect(plan.decisions.every((d) => d.action === 'skip')).toBe(true);
    }
  });
});

describe('checkDisarm with a guessed quota', () => {
  it('does not disarm when a member reported no quota (the 2 GiB default is only a guess)', () => {
    const snap = aSnapshot()
      .withMembers(3)
      .withMember('m2', { quotaSource: 'default', dbSize: 10 * MiB, dbSizeInUse: 10 * MiB })
      .withAlarm('*', 'NOSPACE')
      .build();
    const check = checkDisarm(snap, 0.9);
    expect(check.ok).toBe(false);
    expect(check.blockers.map((b) => b.name)).toEqual(['m2']);
    expect(check.blockers[0]?.reason).toMatch(/give --quota-bytes/);
    const flagged = aSnapshot()
      .withMembers(3)
      .withMember('m2', { quotaSource: 'flag', dbSize: 10 * MiB, dbSizeInUse: 10 * MiB })
      .build();
    expect(checkDisarm(flagged, 0.9).ok).toBe(true);
  });
});

describe('leaderOrHealthyVoter', () => {
  it('is the leader; without one a healthy voter, never a learner', () => {
    expect(leaderOrHealthyVoter(aSnapshot().withMembers(3).withLeader('m2').build())?.name).toBe('m2');
    const noLeader = aSnapshot().withLearner('m0').withMembers(3).withLeader(null).unhealthy('m1').build();
    expect(leaderOrHealthyVoter(noLeader)?.name).toBe('m2');
    expect(leaderOrHealthyVoter(aSnapshot().withLearner('m0').withLeader(null).build())).toBeUndefined();
  });
});

describe('planTurn', () => {
  const ctx = { unfitAtStart: [] as string[], leaderMoved: false };

  it('stops when a voter went down since the start, naming it; not when it was already down at the start', () => {
    const snapshot = threeVoters().withLeader('m1').unreachable('m3').build();
    const m2 = idOf(snapshot, 'm2');
    expect(planTurn(snapshot, aPolicy({ skipHealthCheck: true }), m2, ctx)).toMatchObject({
      action: 'stop',
      reason: expect.stringMatching(/^m3 \(.*\) is unreachable/),
    });
    expect(planTurn(snapshot, aPolicy({ skipHealthCheck: true }), m2, { ...ctx, unfitAtStart: [idOf(snapshot, 'm3')] }).action).toBe(
      'defragment',
    );
  });

  it('stops when someone else is defragmenting a member right now, naming them', () => {
    const snapshot = threeVoters().withLeader('m1').build();
    expect(planTurn(snapshot, aPolicy(), idOf(snapshot, 'm2'), { ...ctx, busy: ['m3'] })).toEqual({
      action: 'stop',
      reason: 'm3 is being defragmented by someone else (etcd_disk_defrag_inflight is 1)',
    });
    expect(planTurn(snapshot, aPolicy(), idOf(snapshot, 'm2'), { ...ctx, busy: ['m2', 'm3'] })).toMatchObject({
      action: 'stop',
      reason: expect.stringMatching(/^m2, m3 are being/),
    });
  });

  it('at the last look, fails a member that became the leader rather than handing leadership away then', () => {
    const snapshot = threeVoters().withLeader('m2').build();
    expect(planTurn(snapshot, aPolicy(), idOf(snapshot, 'm2'), { ...ctx, safetyOnly: true })).toEqual({
      action: 'fail',
      reason: 'it became the leader right before its defragmentation; a leader is never defragmented while it leads',
    });
  });

  it('hands the leader over first, and fails it when it leads again after the move', () => {
    const snapshot = threeVoters().withLeader('m1').build();
    const m1 = idOf(snapshot, 'm1');
    expect(planTurn(snapshot, aPolicy(), m1, ctx)).toMatchObject({ action: 'defragment', moveLeaderTo: chooseTransferee(snapshot) });
    expect(planTurn(snapshot, aPolicy(), m1, { ...ctx, leaderMoved: true })).toMatchObject({
      action: 'fail',
      reason: expect.stringMatching(/leader again/),
    });
  });

  it('skips a member whose rule became false, and one that left the cluster', () => {
    const snapshot = threeVoters().withLeader('m1').build();
    const rule = compileRule('dbSizeFree > 40*MiB');
    expect(planTurn(snapshot, aPolicy({ rule }), idOf(snapshot, 'm3'), ctx)).toMatchObject({
      action: 'skip',
      reason: expect.stringMatching(/rule is false .*\(re-checked before its turn\)$/),
    });
    expect(planTurn(snapshot, aPolicy({ rule }), 'ffffffffffffffff', ctx)).toEqual({
      action: 'skip',
      decision: null,
      reason: 'no longer a member of the cluster',
    });
  });

  it('safetyOnly leaves the rule out (a light snapshot may not know the quota) but keeps every safety check', () => {
    const snapshot = threeVoters().withLeader('m1').build();
    const rule = compileRule('dbSizeFree > 40*MiB');
    const m3 = idOf(snapshot, 'm3');
    expect(planTurn(snapshot, aPolicy({ rule }), m3, { ...ctx, safetyOnly: true }).action).toBe('defragment');
    expect(
      planTurn(threeVoters().withLeader('m1').unhealthy('m2').build(), aPolicy({ rule }), m3, { ...ctx, safetyOnly: true }).action,
    ).toBe('stop');
  });
});

describe('planDefrag: the user', () => {
  it('refuses a user without the root role (etcd needs it for Defragment and MoveLeader), whatever the flags', () => {
    const snapshot = { ...threeVoters().withLeader('m1').build(), auth: { user: 'alice', roles: ['rw'], error: null } };
    for (const skipHealthCheck of [false, true]) {
      const plan = planDefrag(snapshot, aPolicy({ skipHealthCheck }));
      expect(plan.refusal?.reason).toMatch(/user alice does not have the root role, .*\(its roles: rw\)$/);
      expect(plan.refusal?.reason).not.toMatch(/--skip-health-check would/);
    }
  });

  it('goes ahead for root, and with a warning when the roles could not be read', () => {
    const base = threeVoters().withLeader('m1').build();
    expect(planDefrag({ ...base, auth: { user: 'root', roles: ['root'], error: null } }, aPolicy()).refusal).toBeNull();
    const unknown = planDefrag({ ...base, auth: { user: 'bob', roles: null, error: 'deadline exceeded' } }, aPolicy());
    expect(unknown.refusal).toBeNull();
    expect(unknown.warnings).toContain(
      'the roles of user bob could not be read (deadline exceeded); a missing root role would show only at the first Defragment',
    );
  });
});

describe('planDefrag: free disk', () => {
  const withDisk = (freeBytes: number | null) => {
    const snap = threeVoters().withLeader('m1').build();
    const m2 = snap.members.find((m) => m.name === 'm2')!;
    m2.disk = { path: '/var/lib/etcd', freeBytes, error: freeBytes === null ? 'ENOENT' : null };
    return snap;
  };

  it('skips a member without room for dbSizeInUse + 10% + 64 MiB, and says the figures', () => {
    // m2 has 50 MiB in use: it needs 55 MiB + 64 MiB.
    const plan = planDefrag(withDisk(100 * MiB), aPolicy());
    expect(decisionFor(plan, 'm2')).toMatchObject({
      action: 'skip',
      code: 'low-disk',
      disk: { path: '/var/lib/etcd', freeBytes: 100 * MiB, neededBytes: Math.ceil(55 * MiB) + 64 * MiB },
    });
    expect(decisionFor(plan, 'm2').reason).toBe(
      'not enough free disk for the copy a defrag writes: 100.0 MiB free in /var/lib/etcd, needs 119.0 MiB (50.0 MiB in use + 10% + 64 MiB for the WAL)',
    );
    expect(decisionFor(plan, 'm3').disk).toBeNull();
  });

  it('goes ahead with room, and warns (without skipping) when the dir cannot be read', () => {
    expect(decisionFor(planDefrag(withDisk(120 * MiB), aPolicy()), 'm2').action).toBe('defragment');
    const unreadable = planDefrag(withDisk(null), aPolicy());
    expect(decisionFor(unreadable, 'm2').action).toBe('defragment');
    expect(unreadable.warnings).toContainEqual(expect.stringMatching(/^free disk of m2 .* not checked: \/var\/lib\/etcd: ENOENT$/));
  });
});

describe('planDefrag: a leader move rationed by the daemon', () => {
  const NOW = Date.parse('2026-12-07T10:00:00Z');
  const MINUTE = 60_000;

  it('skips the leader, with the numbers, when two moves were made in the last 15 minutes; followers go ahead', () => {
    const plan = planDefrag(
      threeVoters().withLeader('m1').build(),
      aPolicy({ leaderMoves: { movedAtMs: [NOW - 2 * MINUTE, NOW - 5 * MINUTE], nowMs: NOW } }),
    );
    expect(decisionFor(plan, 'm1')).toMatchObject({
      action: 'skip',
      code: 'leader-move-rationed',
      moveLeaderTo: null,
      reason:
        'leader: leadership was moved 2 times in the last 15 min (the ration is 2; etcdHighNumberOfLeaderChanges fires at 4); ' +
        'the next move fits at 2026-12-07T10:10:00.000Z, and a leader is never defragmented while it leads',
    });
    expect(
      plan.decisions
        .filter((d) => d.action === 'defragment')
        .map((d) => d.name)
        .sort(),
    ).toEqual(['m2', 'm3']);
  });

  it.each<[string, number[], { max?: number; perMs?: number }]>([
    ['one move in the span', [NOW - MINUTE], {}],
    ['two moves, one older than the span', [NOW - MINUTE, NOW - 16 * MINUTE], {}],
    ['a ration of 3', [NOW - MINUTE, NOW - 2 * MINUTE], { max: 3 }],
  ])('moves leadership when a move fits: %s', (_name, movedAtMs, ration) => {
    const plan = planDefrag(threeVoters().withLeader('m1').build(), aPolicy({ leaderMoves: { movedAtMs, nowMs: NOW, ...ration } }));
    expect(decisionFor(plan, 'm1')).toMatchObject({ action: 'defragment', code: expect.not.stringMatching(/^leader-/) });
    expect(decisionFor(plan, 'm1').moveLeaderTo).not.toBeNull();
  });

  it('a single voter needs no move, so the ration does not hold it back', () => {
    const single = aSnapshot()
      .withMember('m1', { dbSize: 100 * MiB, dbSizeInUse: 10 * MiB })
      .withLeader('m1')
      .build();
    const plan = planDefrag(single, aPolicy({ leaderMoves: { movedAtMs: [NOW - MINUTE, NOW - 2 * MINUTE], nowMs: NOW } }));
    expect(decisionFor(plan, 'm1').action).toBe('defragment');
  });

  it('--no-move-leader still says so when the ration is spent too', () => {
    const plan = planDefrag(
      threeVoters().withLeader('m1').build(),
      aPolicy({ moveLeader: false, leaderMoves: { movedAtMs: [NOW - MINUTE, NOW - 2 * MINUTE], nowMs: NOW } }),
    );
    expect(decisionFor(plan, 'm1')).toMatchObject({ action: 'skip', code: 'leader-no-move' });
  });
});

describe('planDefrag: duration forecast and maxDefragDuration', () => {
  /** A history for each named member: one past defrag at `mibPerSecond`. */
  const history = (snap: ClusterSnapshot, mibPerSecond: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(mibPerSecond).map(([name, rate]) => [
        idOf(snap, name),
        [{ dbSizeInUse: 100 * MiB, durationMs: (100 / rate) * 1_000 }],
      ]),
    );
  // m1 (leader) 70 MiB, m2 50 MiB, m3 90 MiB in use.
  const snap = threeVoters().withLeader('m1').build();

  it('forecasts every member from its own past throughput, and says where it came from', () => {
    const plan = planDefrag(snap, aPolicy({ defragHistory: history(snap, { m1: 10, m2: 5 }) }));
    expect(decisionFor(plan, 'm1')).toMatchObject({
      forecastMs: 7_000,
      forecastBasis: { source: 'history', defrags: 1, bytesPerSecond: 10 * MiB },
    });
    expect(decisionFor(plan, 'm2')).toMatchObject({
      forecastMs: 10_000,
      forecastBasis: { source: 'history', defrags: 1, bytesPerSecond: 5 * MiB },
    });
    expect(decisionFor(plan, 'm3')).toMatchObject({ forecastMs: null, forecastBasis: { source: 'none', why: 'no-history' } });
    expect(toDefrag(plan)).toEqual(['m2', 'm3', 'm1']);
  });

  it('without history every forecast is unknown and nothing is skipped for its duration', () => {
    const plan = planDefrag(snap, aPolicy({ maxDefragDurationMs: 1 }));
    expect(plan.decisions.map((d) => [d.forecastMs, d.forecastBasis])).toEqual(
      Array(3).fill([null, { source: 'none', why: 'history-not-given' }]),
    );
    expect(toDefrag(plan)).toEqual(['m2', 'm3', 'm1']);
    expect(plan.warnings).toContain(
      'max defrag duration 1ms not applied: no defrag history was given (--store), so no duration can be forecast',
    );
  });

  it('skips a follower whose forecast is over the maximum, saying why in figures', () => {
    // m2: 50 MiB at 0.5 MiB/s = 100 s; m3: 90 MiB at 10 MiB/s = 9 s.
    const plan = planDefrag(snap, aPolicy({ defragHistory: history(snap, { m2: 0.5, m3: 10 }), maxDefragDurationMs: 60_000 }));
    expect(toDefrag(plan)).toEqual(['m3', 'm1']);
    expect(decisionFor(plan, 'm2')).toMatchObject({ action: 'skip', code: 'over-max-duration', forecastMs: 100_000 });
    expect(decisionFor(plan, 'm2').reason).toBe(
      'forecast ~1m40s is over the max defrag duration 1m0s (50.0 MiB in use at 512.0 KiB/s, its last defrag): ' +
        'every request to the member would block that long, long enough for a liveness probe to restart it',
    );
    expect(decisionFor(plan, 'm3')).toMatchObject({ action: 'defragment', forecastMs: 9_000 });
    // m1 has no history: unknown never skips, and the plan says the limit does not hold it.
    expect(decisionFor(plan, 'm1')).toMatchObject({ action: 'defragment', forecastMs: null });
    expect(plan.warnings).toEqual([
      expect.stringMatching(/^max defrag duration 1m0s not applied to m1 \(.*\): no past defrag to forecast from$/),
    ]);
  });

  it('a forecast exactly at the maximum is not over it', () => {
    const plan = planDefrag(snap, aPolicy({ defragHistory: history(snap, { m2: 1 }), maxDefragDurationMs: 50_000 }));
    expect(decisionFor(plan, 'm2').action).toBe('defragment');
  });

  it('skips a leader over the maximum without handing leadership away', () => {
    const plan = planDefrag(snap, aPolicy({ defragHistory: history(snap, { m1: 1, m2: 100, m3: 100 }), maxDefragDurationMs: 60_000 }));
    expect(toDefrag(plan)).toEqual(['m2', 'm3']);
    expect(decisionFor(plan, 'm1')).toMatchObject({
      action: 'skip',
      code: 'over-max-duration',
      isLeader: true,
      moveLeaderTo: null,
      forecastMs: 70_000,
    });
  });

  it('the member turn agrees, and the last look before the Defragment (safety only) does not judge it again', () => {
    const policy = aPolicy({ defragHistory: history(snap, { m2: 0.5 }), maxDefragDurationMs: 60_000 });
    const m2 = idOf(snap, 'm2');
    expect(planTurn(snap, policy, m2, { unfitAtStart: [], leaderMoved: false })).toMatchObject({
      action: 'skip',
      reason: expect.stringMatching(/^forecast ~1m40s is over .*\(re-checked before its turn\)$/),
    });
    expect(planTurn(snap, policy, m2, { unfitAtStart: [], leaderMoved: false, safetyOnly: true }).action).toBe('defragment');
  });

  it('warns when a forecast is longer than the defrag deadline', () => {
    const plan = planDefrag(snap, aPolicy({ defragHistory: history(snap, { m2: 0.5, m3: 10 }), defragTimeoutMs: 30_000 }));
    expect(plan.warnings).toEqual([
      expect.stringMatching(
        /^m2 \(.*\) is expected to take ~1m40s, longer than its defrag deadline 30s: the deadline would pass while etcd goes on \(never re-sent\)/,
      ),
    ]);
    expect(toDefrag(plan)).toEqual(['m2', 'm3', 'm1']);
    // Skipped for its duration: nothing to warn about.
    expect(
      planDefrag(snap, aPolicy({ defragHistory: history(snap, { m2: 0.5 }), defragTimeoutMs: 30_000, maxDefragDurationMs: 60_000 }))
        .warnings,
    ).not.toContainEqual(expect.stringMatching(/deadline/));
  });

  it('a refused run still shows each forecast', () => {
    const refused = threeVoters().withLeader('m1').unreachable('m3').build();
    const plan = planDefrag(refused, aPolicy({ defragHistory: history(refused, { m2: 10 }) }));
    expect(plan.refusal).not.toBeNull();
    expect(decisionFor(plan, 'm2').forecastMs).toBe(5_000);
    expect(decisionFor(plan, 'm3').forecastBasis).toEqual({ source: 'none', why: 'no-status' });
  });
});

describe('refusals as a typed list', () => {
  it('names each cause with its kind and member, in the order found; the hint follows the kinds', () => {
    const snap = aSnapshot().withMembers(3).unreachable('m2').withMember('m3', { version: '3.5.2' }).withAlarm('m1', 'CORRUPT').build();
    const refusal = planDefrag(snap, aPolicy()).refusal;
    expect(refusal?.causes.map((c) => [c.kind, c.memberId])).toEqual([
      ['alarm', snap.members[0]!.memberId],
      ['unhealthy', snap.members[1]!.memberId],
      ['known-defect', snap.members[2]!.memberId],
    ]);
    expect(refusal?.reason).toBe(
      `refusing to defragment: ${refusal?.causes.map((c) => c.text).join('; ')} (upgrade the member, or pass --allow-known-defects to defragment it anyway)`,
    );
    expect(refusal?.memberIds).toEqual(snap.members.map((m) => m.memberId));

    // Only unfit voters: --skip-health-check is the way out, and the sentence says so.
    const unfit = planDefrag(aSnapshot().withMembers(3).unreachable('m2').build(), aPolicy()).refusal;
    expect(unfit?.causes.map((c) => c.kind)).toEqual(['unhealthy']);
    expect(unfit?.reason).toMatch(/\(--skip-health-check would skip unreachable and unhealthy members and go ahead\)$/);
  });
});

describe('afterDefrag: the verdict on a member after its Defragment', () => {
  const base = { noAnswer: null, shrank: true, timeoutMs: 90_000, movedTo: null, leadsAgain: false, planned: 'rule is true' } as const;
  it.each<[string, Partial<Parameters<typeof afterDefrag>[0]>, ReturnType<typeof afterDefrag>]>([
    ["answered: the plan's reason", {}, { action: 'defragmented', reason: 'rule is true' }],
    ['answered, though it did not shrink (nothing to reclaim)', { shrank: false }, { action: 'defragmented', reason: 'rule is true' }],
    ['leadership moved first', { movedTo: 'm2' }, { action: 'defragmented', reason: 'leadership moved to m2 first' }],
    [
      'and it leads again',
      { movedTo: 'm2', leadsAgain: true },
      {
        action: 'defragmented',
        reason: 'leadership moved to m2 first; it was elected leader again during or right after its defragmentation',
      },
    ],
    [
      'deadline passed, shrank',
      { noAnswer: 'deadline' },
      { action: 'defragmented', reason: 'the 1m30s deadline passed but etcd finished on its own; consider a longer --defrag-timeout' },
    ],
    [
      'deadline passed, did not shrink',
      { noAnswer: 'deadline', shrank: false },
      { action: 'failed', reason: 'the 1m30s deadline passed and the member did not shrink; not retried' },
    ],
    [
      'connection lost, shrank',
      { noAnswer: 'connection-lost' },
      { action: 'defragmented', reason: 'the connection was lost during its defragmentation, but etcd finished it' },
    ],
    [
      'connection lost, did not shrink',
      { noAnswer: 'connection-lost', shrank: false },
      {
        action: 'failed',
        reason: 'the connection was lost during its defragmentation and the member did not shrink (did it restart?); not retried',
      },
    ],
  ])('%s', (_name, o, expected) => {
    expect(afterDefrag({ ...base, ...o })).toEqual(expected);
  });
});

describe('planDefrag: a NOSPACE recovery decided before someone else recovered the cluster', () => {
  it('defragments every member while NOSPACE is raised', () => {
    const plan = planDefrag(
      threeVoters().withLeader('m1').withAlarm('*', 'NOSPACE').build(),
      aPolicy({ onlyWhileNospace: true, disarmNospace: true }),
    );
    expect(plan.decisions.filter((d) => d.action === 'defragment')).toHaveLength(3);
  });

  it('skips every member, saying why, once NOSPACE is gone', () => {
    const plan = planDefrag(threeVoters().withLeader('m1').build(), aPolicy({ onlyWhileNospace: true, disarmNospace: true }));
    expect(plan.decisions.map((d) => [d.action, d.code])).toEqual([
      ['skip', 'nospace-cleared'],
      ['skip', 'nospace-cleared'],
      ['skip', 'nospace-cleared'],
    ]);
    expect(plan.decisions[0]!.reason).toBe('NOSPACE is no longer raised: the cluster was recovered since this recovery was decided');
  });
});
