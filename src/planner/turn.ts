/**
 * One member's turn: the plan is a promise made at one moment, so right
 * before each member (and again right before its Defragment) the executor
 * shows the planner a fresh snapshot and does what planTurn says. The rules
 * are planDefrag's; this only adds what a run in progress knows.
 */
import type { Policy, Turn, TurnContext } from '../domain/plan.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { describeMembers, leads, memberById, unfitVoters, voters } from './cluster.js';
import { planDefrag } from './plan.js';

/**
 * Decides what to do with `memberId` now.
 *
 * @example
 * const turn = planTurn(await observe(), policy, decision.memberId, { unfitAtStart: [], leaderMoved: false });
 * if (turn.action === 'defragment' && turn.moveLeaderTo) await moveLeader(turn.endpoint, turn.moveLeaderTo);
 */
export function planTurn(snapshot: ClusterSnapshot, policy: Policy, memberId: string, context: TurnContext): Turn {
  // A voter that went down since the start stops the run: taking another member out could cost quorum.
  const failing = unfitVoters(snapshot, new Set(context.unfitAtStart));
  if (failing.length > 0) return { action: 'stop', reason: describeMembers(snapshot, failing) };

  // The last look before the Defragment judges safety only: the rule and the duration limit were
  // judged moments ago on a full snapshot, and a light one may lack figures they read.
  const plan = planDefrag(snapshot, context.safetyOnly ? { ...policy, rule: null, maxDefragDurationMs: null } : policy);
  if (plan.refusal) return { action: 'stop', reason: plan.refusal.reason };

  const decision = plan.decisions.find((d) => d.memberId === memberId);
  if (decision === undefined) return { action: 'skip', decision: null, reason: 'no longer a member of the cluster' };
  if (decision.action === 'skip') return { action: 'skip', decision, reason: `${decision.reason} (re-checked before its turn)` };

  const member = memberById(snapshot, memberId);
  if (member?.status == null) return { action: 'fail', reason: `did not answer before its turn: ${member?.error ?? 'gone'}` };

  const multiVoter = voters(snapshot).length > 1;
  if (multiVoter && leads(snapshot, memberId)) {
    // Leadership came back after it was handed away: never defragment a leader, and never chase it twice.
    if (context.leaderMoved) return { action: 'fail', reason: 'it is the leader again; a leader is never defragmented while it leads' };
    if (decision.moveLeaderTo === null) return { action: 'fail', reason: 'it leads and no healthy voter can take over' };
  }
  return {
    action: 'defragment',
    decision,
    endpoint: member.endpoint,
    before: { dbSize: member.status.dbSize, dbSizeInUse: member.status.dbSizeInUse },
    moveLeaderTo: multiVoter && leads(snapshot, memberId) ? decision.moveLeaderTo : null,
    timeoutMs: decision.timeoutMs,
  };
}
