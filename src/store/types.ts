/** What the run history store takes and gives back: plain data with stable field names (the JSON of `defragd history`). */
import type { MemberResult, RunOutcome, RunReport, StepEvent } from '../domain/run.js';

export { RUN_TRIGGERS, type RunTrigger } from '../domain/trigger.js';
import type { RunTrigger } from '../domain/trigger.js';

/** `runs()` without a limit (here, not in store.ts, so the CLI can show it without loading SQLite). */
export const DEFAULT_RUNS_LIMIT = 20;

/** A run's outcome as stored: `running` until it finishes (or its process is found dead: then `interrupted`). */
export type StoredOutcome = RunOutcome | 'running';

export interface StartRun {
  /** The operator's name for the cluster (several clusters may share one store). */
  cluster: string;
  trigger: RunTrigger;
  /** Who ran it, for people: host:pid, or a user. */
  by: string;
  /** ISO time; default now. */
  startedAt?: string | undefined;
  dryRun?: boolean | undefined;
}

/**
 * A defragmentation someone else did (another defragd, etcdctl), noticed by
 * the daemon and recorded as a finished run with trigger `external`: one
 * member, its result as observed.
 */
export interface ExternalRun {
  cluster: string;
  /** The other defragd's `by`, or who is known to have done it. */
  by: string;
  /** ISO times (the window it happened in when the exact times are unknown). */
  startedAt: string;
  finishedAt: string;
  /** How it was noticed, for people. */
  message: string;
  /** The member, action `defragmented`, with its sizes as observed (or as the other defragd recorded them). */
  member: MemberResult;
}

/** One run, as `defragd history` lists it. */
export interface StoredRun {
  id: number;
  cluster: string;
  trigger: RunTrigger;
  by: string;
  startedAt: string;
  /** Null while running. */
  finishedAt: string | null;
  outcome: StoredOutcome;
  message: string | null;
  dryRun: boolean;
  compactedRevision: number | null;
  disarmed: boolean;
  reclaimedBytes: number;
  /** Members in the run's results (every member of the plan, skipped ones included). */
  membersTotal: number;
  membersDefragmented: number;
  membersFailed: number;
  /** finishedAt - startedAt; null while running. */
  durationMs: number | null;
}

export interface StoredEvent {
  seq: number;
  /** ISO time the store received it. */
  at: string;
  event: StepEvent;
}

/** A run with its report (null while it runs) and every event it emitted, in order. */
export interface StoredRunDetail {
  run: StoredRun;
  report: RunReport | null;
  events: StoredEvent[];
}

/** One member's figures at one moment. */
export interface Sample {
  cluster: string;
  memberId: string;
  memberName: string;
  /** ISO time of the observation. */
  at: string;
  dbSize: number;
  dbSizeInUse: number;
  quota: number;
  revision: number;
  isLeader: boolean;
}

export interface SampleQuery {
  cluster: string;
  memberId?: string | undefined;
  /** ISO time, inclusive. */
  from?: string | undefined;
  /** ISO time, inclusive. */
  to?: string | undefined;
}

export interface DownsampleOptions {
  /** Samples younger than this keep every point (default 24 h). */
  fullResolutionMs?: number | undefined;
  /** Older samples keep one point per member per bucket (default 5 min). */
  bucketMs?: number | undefined;
  /** Samples, and finished runs with their member results and events, older than this are deleted (default 90 days). */
  retentionMs?: number | undefined;
}

export interface DownsampleResult {
  /** Points merged away (older than full resolution, not the last of their bucket). */
  thinned: number;
  /** Points older than the retention. */
  expired: number;
  /** Runs (with their member results and events) that finished before the retention. */
  expiredRuns: number;
}

/** A member of a run whose process died, to check against the cluster (Store.runsToReconcile). */
export interface MemberToReconcile {
  /** As recorded when the run was found dead: defragmented, or failed with IN_FLIGHT_REASON while in flight. */
  result: MemberResult;
  /** Its Defragment was sent and never answered: whether it completed is not known. */
  inFlight: boolean;
  /** ISO: when its Defragment was sent (in flight) or when it finished (defragmented). */
  at: string;
  /** etcd's defrag count of the member when its Defragment was sent; null when not known. */
  countAtStart: number | null;
}

export interface RunToReconcile {
  runId: number;
  cluster: string;
  trigger: RunTrigger;
  by: string;
  members: MemberToReconcile[];
}
