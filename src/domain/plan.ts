/**
 * The planner's inputs and outputs: a Policy says what the operator asked for,
 * a Plan says what will be done to which member and why. Both are plain data
 * so a dry run is just the Plan printed.
 */
import type { AlarmType } from './snapshot.js';

/** Variables a rule sees; names follow ahrtr/etcd-defrag so its rules work verbatim. */
export interface RuleVariables {
  dbSize: number;
  dbSizeInUse: number;
  dbSizeFree: number;
  dbQuota: number;
  dbQuotaUsage: number;
  fragmentation: number;
  isLeader: boolean;
  isLearner: boolean;
  memberName: string;
  version: string;
}

/** A compiled rule. evaluate() is pure; it throws RuleError when the expression fails at run time. */
export interface Rule {
  readonly source: string;
  evaluate(vars: RuleVariables): boolean;
}

export interface Policy {
  /** Null: defragment every member. */
  rule: Rule | null;
  /** Hand leadership to another voter before defragmenting the leader (default true). */
  moveLeader: boolean;
  /**
   * The leader moves made lately (the daemon's): when the ration is spent, the leader is skipped
   * (code `leader-move-rationed`) rather than moved once more. Absent: no ration (the CLI).
   */
  leaderMoves?: LeaderMoveHistory | undefined;
  /**
   * A NOSPACE recovery: defragment only while NOSPACE is raised. A recovery decided on an observation
   * taken before someone else recovered the cluster then skips every member (`nospace-cleared`)
   * instead of defragmenting them all a second time. Default false.
   */
  onlyWhileNospace?: boolean | undefined;
  /** Go ahead although some members are unreachable or unhealthy (they are skipped). */
  skipHealthCheck: boolean;
  /**
   * Go ahead although a voter runs an etcd release whose known defrag defect is marked `refuse`
   * (domain/known-defects, e.g. etcd#14685 on 3.5.0-3.5.5); it is then a warning. Default false.
   */
  allowKnownDefects?: boolean | undefined;
  /** Compact (physically) to revision - N once before the first defrag; null: never compact. */
  compactKeepRevisions: number | null;
  /** Disarm NOSPACE after the run when every member is under disarmBelow * quota. */
  disarmNospace: boolean;
  /** Fraction of the quota every member's dbSize must be under before NOSPACE is disarmed. */
  disarmBelow: number;
  /** Per-member defrag deadline; null: grow it with the member's size (defragTimeoutMs). */
  defragTimeoutMs: number | null;
  /**
   * Each member's own recent successful defrags (by hex member ID, oldest
   * first), from which its duration is forecast. Absent: no history was given
   * (the CLI without --store), so every forecast is unknown.
   */
  defragHistory?: Readonly<Record<string, readonly PastDefrag[]>> | undefined;
  /**
   * Skip a member whose forecast defrag duration is over this (a defrag
   * blocks every request to the member: kubeadm's liveness probe restarts a
   * member whose /livez blocks for about 80-95 s). An unknown forecast never
   * skips. Null or absent: no limit.
   */
  maxDefragDurationMs?: number | null | undefined;
}

/** Leader moves made lately, for the ration (planner/leader-moves.ts). */
export interface LeaderMoveHistory {
  /** When each move was made, ms since the epoch. */
  movedAtMs: readonly number[];
  /** The caller's now, ms since the epoch: the planner reads no clock. */
  nowMs: number;
  /** At most this many moves in `perMs` (default 2 in 15 minutes). */
  max?: number | undefined;
  perMs?: number | undefined;
}

/** One of a member's past successful defrags, as the forecast reads it. */
export interface PastDefrag {
  /** dbSizeInUse before that defrag: what it copied. */
  dbSizeInUse: number;
  durationMs: number;
}

/**
 * Where a member's forecast came from: the median throughput (bytes in use
 * per second) of its own last `defrags` successful defrags; or why there is
 * none: `no-history` (history was given, none for this member),
 * `no-status` (the member sent no status, so its size is unknown),
 * `history-not-given` (the caller passed no history at all).
 */
export type ForecastBasis =
  | { source: 'history'; defrags: number; bytesPerSecond: number }
  | { source: 'none'; why: 'no-history' | 'no-status' | 'history-not-given' };

export type DecisionAction = 'defragment' | 'skip';

/** Machine-readable reason codes; `reason` carries the sentence for people. */
export type DecisionCode =
  | 'rule-true'
  | 'no-rule'
  | 'rule-false'
  | 'rule-error'
  | 'learner'
  | 'unreachable'
  | 'leader-no-move'
  | 'leader-no-transferee'
  | 'leader-move-rationed'
  | 'nospace-cleared'
  | 'low-disk'
  | 'over-max-duration';

export interface MemberDecision {
  memberId: string;
  name: string;
  endpoint: string;
  action: DecisionAction;
  code: DecisionCode;
  /** One sentence an operator can read, e.g. "rule is false (dbSizeFree 12 MiB)". */
  reason: string;
  /** The rule's value for this member; null when there is no rule or it was not evaluated. */
  ruleResult: boolean | null;
  isLeader: boolean;
  isLearner: boolean;
  /** For the leader: the hex ID of the voter leadership will move to first; null otherwise. */
  moveLeaderTo: string | null;
  /** Copied from the snapshot for display; null when the member did not answer. */
  dbSize: number | null;
  dbSizeInUse: number | null;
  dbSizeFree: number | null;
  /** Deadline for this member's Defragment call. */
  timeoutMs: number;
  /** How long its Defragment is expected to take (its dbSizeInUse at its own past throughput); null: unknown. */
  forecastMs: number | null;
  /** What forecastMs is based on, or why it is unknown. */
  forecastBasis: ForecastBasis;
  /**
   * The free-disk check: free bytes where the member's data dir lives and what a defrag needs there;
   * null when defragd cannot see the member's disk (no --data-dir for it), so the check was not made.
   */
  disk: { path: string; freeBytes: number | null; neededBytes: number } | null;
}

/**
 * Why a run is refused, by kind: `alarm` (CORRUPT or an unknown alarm), `alarms-unknown` (the alarm list
 * could not be read), `unhealthy` (a voter unreachable or unhealthy), `no-leader`, `no-root-role`,
 * `rule-error`, `known-defect` (a release whose defrag can break the member). Only `unhealthy` and
 * `no-leader` give way to --skip-health-check; `known-defect` to --allow-known-defects; the rest to no flag.
 */
export type RefusalKind = 'alarm' | 'alarms-unknown' | 'unhealthy' | 'no-leader' | 'no-root-role' | 'rule-error' | 'known-defect';

/** One reason a run is refused: its kind, its sentence, and the member it is about (null: the cluster). */
export interface RefusalCause {
  kind: RefusalKind;
  text: string;
  memberId: string | null;
}

export interface Refusal {
  /** One sentence for people: every cause, and the flag that would help when one would. */
  reason: string;
  /** Members that made the run unsafe. */
  memberIds: string[];
  /** Every cause, in the order found. */
  causes: RefusalCause[];
}

export interface Plan {
  /** Non-null: the run must not start (exit 3); nothing is changed. */
  refusal: Refusal | null;
  warnings: string[];
  /** Every member: those to defragment first, in execution order (followers, leader last), then the skipped. */
  decisions: MemberDecision[];
  /** Physical compaction before the first defrag; null when not asked for or nothing will be defragmented. */
  compaction: { keepRevisions: number; revision: number } | null;
  /** NOSPACE will be disarmed after the run if it is safe then. */
  disarmNospace: boolean;
  /** Sum of dbSizeFree over the members to defragment. */
  expectedReclaimBytes: number;
}

/** Whether the NOSPACE alarm may be disarmed given current sizes. */
export interface DisarmCheck {
  ok: boolean;
  /** Members at or above the limit, with their figures. */
  blockers: {
    memberId: string;
    name: string;
    /** NaN (JSON null) when the member did not answer. */
    dbSize: number;
    limit: number;
    /** One sentence for people, e.g. "m1 (…) dbSize 1.9 GiB is at or above 90.0% of its 2.0 GiB quota (1.8 GiB)". */
    reason?: string;
  }[];
  alarms: AlarmType[];
}

/** What the executor knows about the run so far that the planner needs for one member's turn. */
export interface TurnContext {
  /** Members already unfit when the run started (let through by --skip-health-check): not held against the run. */
  unfitAtStart: readonly string[];
  /** Leadership was already moved away from this member in this turn; if it leads again, it is not tried twice. */
  leaderMoved: boolean;
  /**
   * Only the safety checks (voters fit, still a voting member, not the leader), not the rule: for the
   * last look right before the Defragment, on a light snapshot that may not know every member's quota.
   */
  safetyOnly?: boolean;
  /** Members someone else is defragmenting right now (their etcd_disk_defrag_inflight is 1), by name: never a second one. */
  busy?: readonly string[] | undefined;
}

/**
 * The planner's answer for one member, right before it is acted on:
 * - `defragment`: go ahead; when `moveLeaderTo` is set, hand leadership to that voter first and ask again;
 * - `skip`: leave this member, go on with the next (the rule is now false, it became a learner, ...);
 * - `fail`: this member cannot be done safely now; the run fails (the next member may still be tried with --continue-on-error);
 * - `stop`: the cluster is not safe to touch; stop the run before this member.
 */
export type Turn =
  | {
      action: 'defragment';
      decision: MemberDecision;
      endpoint: string;
      before: { dbSize: number; dbSizeInUse: number };
      moveLeaderTo: string | null;
      timeoutMs: number;
    }
  | { action: 'skip'; decision: MemberDecision | null; reason: string }
  | { action: 'fail'; reason: string }
  | { action: 'stop'; reason: string };
