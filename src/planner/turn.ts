/**
 * One member's turn: the plan is a promise made at one moment, so right
 * before each member (and again right before its Defragment) the executor
 * shows the planner a fresh snapshot and does what planTurn says. The rules
 * are planDefrag's; this only adds what a run in progress knows.
 */
import type { Policy, Turn, TurnContext } from '../domain/plan.js';
import type { ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import { formatDuration } from '../domain/format.js';
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
  const failing = votersDown(snapshot, context.unfitAtStart);
  if (failing.length > 0) return { action: 'stop', reason: describeMembers(snapshot, failing) };
  const busy = context.busy ?? [];
  if (busy.length > 0)
    return {
      action: 'stop',
      reason: `${busy.join(', ')} ${busy.length === 1 ? 'is' : 'are'} being defragmented by someone else (etcd_disk_defrag_inflight is 1)`,
    };

  // The last look before the Defragment judges safety only: the rule and the duration limit were
  // judged moments ago on a full snapshot, and a light one may lack figures they read.
  const plan = planDefrag(
    snapshot,
    context.safetyOnly ? { ...policy, rule: null, maxDefragDurationMs: null, onlyWhileNospace: false } : policy,
  );
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
    // The last look is right before the Defragment: no time to hand leadership away now.
    if (context.safetyOnly)
      return {
        action: 'fail',
        reason: 'it became the leader right before its defragmentation; a leader is never defragmented while it leads',
      };
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

/** Voters unfit now that were fit when the run started: any one of them stops the run (after each member too). */
export function votersDown(snapshot: ClusterSnapshot, unfitAtStart: readonly string[]): MemberSnapshot[] {
  return unfitVoters(snapshot, new Set(unfitAtStart));
}

/** What became of a member after its Defragment, as the run reports it. */
export interface AfterDefrag {
  /** The Defragment got no answer: its deadline passed, or the connection was lost. */
  noAnswer: 'deadline' | 'connection-lost' | null;
  /** Its db file is smaller than before. */
  shrank: boolean;
  timeoutMs: number;
  /** Leadership was handed to this member (its short name) first; null when it was not. */
  movedTo: string | null;
  /** It leads again after its defragmentation. */
  leadsAgain: boolean;
  /** The plan's reason for defragmenting it. */
  planned: string;
}

/**
 * The verdict on a member after its Defragment: defragmented, unless it got no answer and did not shrink
 * (whatever became of it, it was not seen to finish; it is never retried).
 *
 * @example afterDefrag({ noAnswer: 'deadline', shrank: true, timeoutMs: 60_000, movedTo: null, leadsAgain: false, planned: 'rule holds' })
 * // { action: 'defragmented', reason: 'the 1m deadline passed but etcd finished on its own; consider a longer --defrag-timeout' }
 */
export function afterDefrag(r: AfterDefrag): { action: 'defragmented' | 'failed'; reason: string } {
  const action = r.noAnswer !== null && !r.shrank ? 'failed' : 'defragmented';
  const deadline = formatDuration(r.timeoutMs);
  if (r.noAnswer === 'deadline') {
    return {
      action,
      reason: r.shrank
        ? `the ${deadline} deadline passed but etcd finished on its own; consider a longer --defrag-timeout`
        : `the ${deadline} deadline passed and the member did not shrink; not retried`,
    };
  }
  if (r.noAnswer === 'connection-lost') {
    return {
      action,
      reason: r.shrank
        ? 'the connection was lost during its defragmentation, but etcd finished it'
        : 'the connection was lost during its defragmentation and the member did not shrink (did it restart?); not retried',
    };
  }
  if (r.movedTo)
    return {
      action,
      reason: `leadership moved to ${r.movedTo} first${r.leadsAgain ? '; it was elected leader again during or right after its defragmentation' : ''}`,
    };
  return { action, reason: r.planned };
}
