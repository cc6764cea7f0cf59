/**
 * Warnings about a condition that lasts (a cluster that does not answer is
 * warned of at every observation, every second with a short interval): the
 * same warning (same message, cluster and error text) is logged at most once
 * a minute, the next line saying how many were left out (`repeated`). What
 * changes is logged at once: a different error, and the end of the condition
 * (once, at info). The clock is passed in, so tests drive it.
 */
import type { Clock } from './clock.js';
import type { DaemonLogger } from './types.js';

/** The same warning is logged at most this often. */
export const REPEATED_WARNING_EVERY_MS = 60_000;

/** One condition of one cluster, from its first warning until it ends. */
interface Episode {
  err: string;
  sinceMs: number;
  /** Warnings of this episode, logged or not. */
  occurrences: number;
  loggedAtMs: number;
  /** Warnings left out since the last line. */
  suppressed: number;
}

/**
 * @example
 * const repeats = new RepeatedWarnings(logger, clock);
 * repeats.warn('observation failed', 'prod', 'connection refused'); // logged
 * repeats.warn('observation failed', 'prod', 'connection refused'); // counted; logged with repeated: N a minute later
 * repeats.ended('observation failed', 'prod', 'observation succeeded again'); // info, once
 */
export class RepeatedWarnings {
  private readonly episodes = new Map<string, Episode>();

  constructor(
    private readonly logger: DaemonLogger,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly everyMs = REPEATED_WARNING_EVERY_MS,
  ) {}

  /** The condition `msg` of `cluster` happened (again) with `err`: logged now, or counted for the next line. */
  warn(msg: string, cluster: string, err: string): void {
    const key = keyOf(msg, cluster);
    const now = this.clock.now();
    const e = this.episodes.get(key);
    if (e === undefined || e.err !== err) {
      // New, or a different error: said at once (the episode, for the end's line, goes on).
      this.episodes.set(key, { err, sinceMs: e?.sinceMs ?? now, occurrences: (e?.occurrences ?? 0) + 1, loggedAtMs: now, suppressed: 0 });
      this.logger.warn({ cluster, err }, msg);
      return;
    }
    e.occurrences++;
    // A clock that went back counts as time passed: better a line too many than a condition kept quiet.
    if (now >= e.loggedAtMs && now - e.loggedAtMs < this.everyMs) {
      e.suppressed++;
      return;
    }
    this.logger.warn({ cluster, err, ...(e.suppressed > 0 ? { repeated: e.suppressed } : {}) }, msg);
    e.loggedAtMs = now;
    e.suppressed = 0;
  }

  /** The condition `msg` of `cluster` is over: `endMsg` is logged once at info, when it had been warned of. */
  ended(msg: string, cluster: string, endMsg: string): void {
    const key = keyOf(msg, cluster);
    const e = this.episodes.get(key);
    if (e === undefined) return;
    this.episodes.delete(key);
    this.logger.info({ cluster, failures: e.occurrences, since: new Date(e.sinceMs).toISOString() }, endMsg);
  }
}

function keyOf(msg: string, cluster: string): string {
  return JSON.stringify([msg, cluster]);
}
