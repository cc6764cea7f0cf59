/**
 * What a run emits while it goes (StepEvent) and what it leaves behind
 * (RunReport). The terminal printer and any library caller read these;
 * none reaches into the executor.
 */
import type { MemberDecision, Plan } from './plan.js';

export interface Sizes {
  dbSize: number;
  dbSizeInUse: number;
}

export type MemberAction = 'defragmented' | 'skipped' | 'failed';

export interface MemberResult {
  endpoint: string;
  memberId: string;
  name: string;
  action: MemberAction;
  /** Why it was skipped or failed, or a note on success (e.g. "leadership moved to m2 first"). */
  reason: string;
  /** The member led the cluster when its turn came. */
  wasLeader: boolean;
  /** Hex ID of the member leadership was handed to before this one was defragmented. */
  movedLeaderTo: string | null;
  before: Sizes | null;
  after: Sizes | null;
  /** Duration of the Defragment call (or until the member answered again). */
  durationMs: number | null;
  /** Revision in the Defragment response header. */
  revision: number | null;
  /** The client deadline passed while etcd went on defragmenting. */
  deadlinePassed: boolean;
  /** The connection to the member was lost during its Defragment (e.g. the member died or restarted). */
  connectionLost: boolean;
}

/**
 * Where one member's turn spent its time, by the executor's clock. Only the
 * Defragment and the leader move are etcd's work; the rest is defragd looking
 * and waiting, which is what these make visible.
 */
export interface MemberTimings {
  memberId: string;
  name: string;
  /** When the turn began (its first observation). */
  turnStartedAt: string;
  /** Observations and checks before the Defragment (first look and plan, in-flight check, last look), leader move excluded. */
  checksMs: number;
  /** Handing leadership away until the move was seen; 0 when it was not the leader. */
  leaderMoveMs: number;
  /** When the Defragment was sent. */
  defragmentStartedAt: string;
  /** From the Defragment's answer (or the member answering again) until it was seen caught up; null when it was not. */
  catchUpMs: number | null;
}

/** Where a whole run spent its time outside the members' turns, ms; null where that part did not happen. */
export interface RunTimings {
  /** The first observation and plan, before anything was written. */
  observeMs: number | null;
  /** Taking the cluster lock (and, after a wait, the fresh observation). */
  lockMs: number | null;
  /** After the last member: the final observation and disarm. */
  finishMs: number | null;
  /** Releasing the cluster lock after the run. */
  releaseMs: number | null;
  /** Each member's turn that reached its Defragment, in order. */
  members: MemberTimings[];
}

/**
 * - `success`: at least one member was defragmented (or NOSPACE disarmed) and nothing failed;
 * - `nothing-to-do`: no member needed it;
 * - `failed`: a member failed, a voter went down, or the run stopped early (exit 1);
 * - `refused`: the preconditions did not hold; nothing was changed (exit 3);
 * - `interrupted`: stopped by the caller's signal (Ctrl-C) after the current step (exit 130);
 * - `dry-run`: only planned; nothing was changed (the plan is in `plan`).
 */
export type RunOutcome = 'success' | 'nothing-to-do' | 'failed' | 'refused' | 'interrupted' | 'dry-run';

export interface RunReport {
  outcome: RunOutcome;
  /** True when nothing was executed: the report shows what the plan would do. */
  dryRun: boolean;
  /** Why the run refused, failed or stopped early (naming the failed members); null otherwise. */
  message: string | null;
  startedAt: string;
  finishedAt: string;
  /** Revision compacted to before the first defrag; null when no compaction was done. */
  compactedRevision: number | null;
  /** NOSPACE alarms were disarmed after the run. */
  disarmed: boolean;
  /** Why NOSPACE was not disarmed although --disarm-nospace was given; null otherwise. */
  disarmNote: string | null;
  /** Sum over defragmented members of before.dbSize - after.dbSize. */
  reclaimedBytes: number;
  members: MemberResult[];
  warnings: string[];
  /** The plan the run started from; null when the run was refused before a plan was made (e.g. a busy lock). */
  plan: Plan | null;
  /** Where the run and each member's turn spent their time; absent when nothing was executed. */
  timings?: RunTimings;
}

export type StepEvent =
  | { type: 'run-started'; at: string; plan: Plan }
  | { type: 'compaction-started'; revision: number; keepRevisions: number }
  | { type: 'compaction-finished'; revision: number; durationMs: number; note: string | null }
  | { type: 'member-skipped'; decision: MemberDecision; reason: string }
  | { type: 'leader-move-started'; from: string; fromName: string; to: string; toName: string }
  | { type: 'leader-move-finished'; from: string; to: string; durationMs: number }
  | { type: 'member-started'; decision: MemberDecision; before: Sizes; timeoutMs: number; index: number; total: number }
  /**
   * The Defragment call ended without an answer: its deadline passed (`deadline`), or the connection
   * to the member was lost (`connection-lost`, e.g. the member died). Either way etcd may still be
   * defragmenting; the call is never re-sent.
   */
  | { type: 'member-no-answer'; memberId: string; name: string; why: 'deadline' | 'connection-lost'; timeoutMs: number; detail: string }
  /** The executor waits for something about a member, for at most `limitMs`. */
  | { type: 'member-waiting'; memberId: string; name: string; what: string; at: string; limitMs: number }
  | { type: 'member-finished'; result: MemberResult }
  | { type: 'pause'; ms: number }
  | { type: 'alarm-disarmed'; alarms: { memberId: string; alarm: string }[] }
  | { type: 'disarm-skipped'; reason: string }
  | { type: 'warning'; message: string }
  | { type: 'run-finished'; report: RunReport };
