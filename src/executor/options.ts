/**
 * The executor's own options and their defaults, in one place. Connection
 * deadlines belong to the client, rules and safety switches to the Policy;
 * these say only how the run paces and how long it waits.
 */

import type { ReadinessPort } from './port.js';

export interface ExecuteOptions {
  /** Pause after each member has caught up (--wait-between). */
  waitBetweenMs?: number | undefined;
  /** Go on with the next member after one fails (the run still fails). */
  continueOnError?: boolean | undefined;
  /** How long a defragmented member may take to answer and catch up with the leader. */
  catchUpTimeoutMs?: number | undefined;
  /** How long a leadership transfer may take to be seen. */
  leaderMoveTimeoutMs?: number | undefined;
  /**
   * How long to wait for a member whose Defragment got no answer (deadline
   * passed, connection lost) to answer again with no defrag in flight; null:
   * as long as that member's defrag deadline, at least a minute (--recovery-timeout).
   */
  recoveryTimeoutMs?: number | null | undefined;
  /** Longest poll interval while waiting (catch-up, leader move): polls start at firstPollMs and double up to it. */
  pollIntervalMs?: number | undefined;
  /**
   * First poll interval while waiting. A member usually catches up, and a leader move is usually seen,
   * within tens of milliseconds: a fixed 250 ms poll added up to a quarter second per wait for nothing.
   */
  firstPollMs?: number | undefined;
  /** Deadline of the physical compaction before the first member. */
  compactTimeoutMs?: number | undefined;
  /**
   * URLs that must answer 200 before the first member and before each next one (--wait-for-url, e.g.
   * every kube-apiserver's /readyz), and how long they may take; null: none. urlReadiness() builds it.
   */
  readiness?: ReadinessPort | null | undefined;
}

export type ResolvedExecuteOptions = { readonly [K in keyof ExecuteOptions]-?: Exclude<ExecuteOptions[K], undefined> };

export const EXECUTE_DEFAULTS: ResolvedExecuteOptions = Object.freeze({
  waitBetweenMs: 0,
  continueOnError: false,
  catchUpTimeoutMs: 60_000,
  leaderMoveTimeoutMs: 15_000,
  recoveryTimeoutMs: null,
  pollIntervalMs: 250,
  firstPollMs: 20,
  // A physical compaction of a large history takes a while; it is one request, never repeated.
  compactTimeoutMs: 60_000,
  readiness: null,
});

/** Fills in the defaults; undefined means "default", null is kept where it has a meaning. */
export function resolveExecuteOptions(options: ExecuteOptions = {}): ResolvedExecuteOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return Object.freeze({ ...EXECUTE_DEFAULTS, ...given });
}
