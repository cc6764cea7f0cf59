/**
 * The daemon's scheduling decisions, as pure functions: when the next
 * scheduled start is, whether a cluster should start a run now and why
 * (NOSPACE recovery, schedule, auto), which revision retention compacts
 * to (the leader-move ration is the planner's: planner/leader-moves.ts). The
 * daemon owns the timers, the clock and the randomness and passes them in
 * (`now`, `random`); nothing here reads a clock, sleeps or does I/O, so every
 * branch is tested with a fake clock.
 *
 * Cron and daylight saving time (croner 11, what the tests pin down):
 * - A fixed-time job (seconds, minutes and hours each one value, e.g.
 *   `30 2 * * *`) runs once every day it matches, DST or not. Spring
 *   forward: 02:30 does not exist, so it runs at the first valid time after
 *   the gap (Europe/Berlin 2026-03-29: 03:00 CEST = 01:00Z). Fall back:
 *   02:30 happens twice, it runs once, on the first (CEST, 00:30Z).
 * - An interval job (a wildcard or step in those fields, e.g. `*\/30 * * * *`)
 *   follows the wall clock: times in the gap are skipped, the repeated
 *   hour runs twice. For an interval that is what an operator expects (the
 *   runs stay evenly spaced in real time).
 * - Starts are strictly after the instant given. The daemon should draw the
 *   next start after the previous *scheduled* time (not the jittered one, and
 *   not the instant the run finished), so jitter or a long run never skips or
 *   repeats a cron time; after a restart it draws after now, and a cron time
 *   missed while the daemon was down is not caught up.
 */
import { Cron, type CronOptions } from 'croner';
import type { ClusterState } from './types.js';
import { inWindow, nextWindowOpen, validateTimezone, type Window } from './window.js';
import type { StartTrigger } from '../domain/trigger.js';
import { messageOf } from '../domain/errors.js';

/**
 * croner's options for every schedule, in one place (validation, the scheduler and --check-config use
 * them): 5 or 6 fields (seconds optional, as croner reads them), not croner's 7th (years).
 */
export function cronOptions(timezone: string): CronOptions {
  return { timezone, paused: true, mode: '5-or-6-parts' };
}

/**
 * Checks a cron expression and timezone as the daemon will use them.
 *
 * @throws Error with a one-line reason, e.g. `invalid cron expression "61 * * * *": CronPattern: Invalid value for minute: 61`.
 * @example validateSchedule('0 3 * * 0', 'Europe/Berlin')
 */
export function validateSchedule(cron: string, timezone: string): void {
  validateTimezone(timezone);
  try {
    new Cron(cron, cronOptions(timezone)).nextRun(new Date(0));
  } catch (e) {
    throw new Error(`invalid cron expression "${cron}": ${messageOf(e)}`);
  }
}

/**
 * The first cron time strictly after `afterMs`, in ms; null when the
 * expression never matches again (e.g. `0 0 30 2 *`).
 *
 * @example nextScheduledStart('0 3 * * 0', 'Europe/Berlin', Date.parse('2026-11-25T00:00:00Z')) // 2026-11-29T02:00Z
 */
export function nextScheduledStart(cron: string, timezone: string, afterMs: number): number | null {
  return new Cron(cron, cronOptions(timezone)).nextRun(new Date(afterMs))?.getTime() ?? null;
}

/**
 * The next `n` cron times strictly after `afterMs` (fewer if it stops matching),
 * for `--check-config` and the API.
 *
 * @example nextScheduledStarts('0 3 * * *', 'UTC', Date.parse('2026-11-25T00:00:00Z'), 5)
 */
export function nextScheduledStarts(cron: string, timezone: string, afterMs: number, n: number): number[] {
  return new Cron(cron, cronOptions(timezone)).nextRuns(n, new Date(afterMs)).map((d) => d.getTime());
}

/**
 * How far ahead a schedule is searched for starts inside its windows (the config's check, --check-config):
 * a leap-year cycle, so a yearly or a 29 February schedule has its turns.
 */
export const WINDOW_SEARCH_MS = 4 * 366 * 86_400_000;

export type WindowedStart =
  /** A cron time inside a window (or there are none): a run starts then. */
  | { atMs: number; inWindow: true }
  /** Consecutive cron times outside every window, each skipped: the first and the last of them. */
  | { atMs: number; inWindow: false; lastMs: number };

/**
 * A schedule's cron times after `afterMs` through its windows, until `runs` of them fall inside a window:
 * those, and between them each row of skipped ones folded into one entry. A row is crossed a window at a
 * time (the first cron time at or after the next opening), not a start at a time, so an every-minute
 * schedule with one window a week costs a handful of steps. Fewer runs than asked: no more start falls
 * inside the windows within `horizonMs` (or the expression stops matching).
 *
 * @example startsThroughWindows('0 3 * * *', 'UTC', [parseWindow('Sat 01:00-05:00')], now, 5).runs // 5
 */
export function startsThroughWindows(
  cron: string,
  timezone: string,
  windows: readonly Window[],
  afterMs: number,
  runs: number,
  horizonMs: number = WINDOW_SEARCH_MS,
): { starts: WindowedStart[]; runs: number } {
  const job = new Cron(cron, cronOptions(timezone));
  const endMs = afterMs + horizonMs;
  // The first cron time at or after `ms`, null past the horizon.
  const atOrAfter = (ms: number): number | null => {
    const t = job.nextRun(new Date(ms - 1))?.getTime() ?? null;
    return t !== null && t <= endMs ? t : null;
  };
  try {
    const starts: WindowedStart[] = [];
    let found = 0;
    let t = atOrAfter(afterMs + 1);
    while (t !== null && found < runs) {
      if (inWindow(windows, timezone, t)) {
        starts.push({ atMs: t, inWindow: true });
        found++;
        t = atOrAfter(t + 1);
        continue;
      }
      // No window is open between a skipped start and the next opening: every cron time until then is skipped too.
      let next: number | null = t;
      while (next !== null && !inWindow(windows, timezone, next)) {
        const open = nextWindowOpen(windows, timezone, next);
        next = open === null ? null : atOrAfter(open);
      }
      const lastMs = job.previousRuns(1, new Date(next ?? endMs + 1))[0]?.getTime() ?? t;
      starts.push({ atMs: t, inWindow: false, lastMs: Math.max(t, lastMs) });
      t = next;
    }
    return { starts, runs: found };
  } finally {
    job.stop();
  }
}

/**
 * A scheduled start delayed by a random jitter, uniform in [0, jitterMs),
 * so a fleet on one schedule does not defragment all at once. `random`
 * returns [0, 1) like Math.random.
 *
 * @example jitteredStart(t, 10 * 60_000, Math.random) // t + 0..10 min
 */
export function jitteredStart(scheduledMs: number, jitterMs: number, random: () => number): number {
  if (jitterMs < 1) return scheduledMs;
  // Math.floor keeps a random() that rounds up to 1 inside the half-open range.
  return scheduledMs + Math.min(Math.floor(random() * jitterMs), jitterMs - 1);
}

/** A drawn scheduled start: the cron time and the instant to start at (jitter added). */
export interface PendingStart {
  scheduledMs: number;
  startMs: number;
}

/**
 * The next scheduled start after `afterMs`, jittered; null when the cron
 * expression never matches again. Pass the previous `scheduledMs` as
 * `afterMs` to chain starts (see the module header).
 *
 * @example drawScheduledStart({ cron: '0 3 * * *', jitterMs: 600_000 }, 'UTC', now, Math.random)
 */
export function drawScheduledStart(
  schedule: { cron: string; jitterMs: number },
  timezone: string,
  afterMs: number,
  random: () => number,
): PendingStart | null {
  const scheduledMs = nextScheduledStart(schedule.cron, timezone, afterMs);
  if (scheduledMs === null) return null;
  return { scheduledMs, startMs: jitteredStart(scheduledMs, schedule.jitterMs, random) };
}

/** What the scheduler knows of one cluster when it decides. */
export interface ClusterSchedulerState {
  /** A run of this cluster is in progress in this daemon. */
  running: boolean;
  /** The last observation failed (nothing answered). */
  unreachable: boolean;
  /** Some member reported NOSPACE in the last observation that answered. */
  nospace: boolean;
  nospaceMode: 'recover' | 'ignore';
  /** No NOSPACE recovery before this (the last one did not clear the alarm, or another defragd holds the claim). */
  nospaceRetryAtMs?: number | undefined;
  /** The cluster's schedule; null without one. */
  schedule: { cron: string; jitterMs: number } | null;
  /** The drawn start the daemon is waiting for; null when none is drawn. */
  pendingStart: PendingStart | null;
  /** Auto mode; null without it. */
  auto: { cooldownMs: number } | null;
  /** An auto run started now would defragment some member (policy.ts autoCheck: the plan the run would make, ration and forecasts included). */
  autoRunDue: boolean;
  /** When the last run of this cluster (any trigger, any replica) finished; null when none. */
  lastRunFinishedMs: number | null;
  /** No scheduled or auto run starts outside these; empty: always inside. */
  windows: readonly Window[];
  timezone: string;
  /** Runs in progress across the daemon (other clusters; this one is not running). */
  globalRunning: number;
  maxConcurrentRuns: number;
  /**
   * Clusters ahead of this one in the daemon's start queue (starts that fell
   * due earlier and wait for a slot; see startQueuePosition). 0 when first.
   */
  queuedAhead: number;
}

/** What the scheduler waits for, for logs, the API and the start queue. */
export type WaitingFor = 'running' | 'unreachable' | 'nospace' | 'slot' | 'window' | 'cooldown' | 'schedule' | 'rule' | 'nothing';

export type Decision =
  | { action: 'start'; trigger: StartTrigger; reason: string }
  /**
   * Nothing to start now. `nextCheckMs`: when the answer may change without a
   * new observation (the daemon decides again then, or at the next
   * observation, whichever is first); absent: only an observation or a
   * finished run changes it. With `waitingFor: 'slot'`, the cluster wants to
   * start (`trigger`) and joins the start queue, ordered by `dueMs`.
   */
  | { action: 'wait'; waitingFor: WaitingFor; reason: string; nextCheckMs?: number; trigger?: StartTrigger; dueMs?: number }
  /** The pending scheduled start is dropped (logged, not queued); draw the next one. */
  | { action: 'skip-scheduled'; reason: string };

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Decides what one cluster does now. In order:
 * 1. A run of this cluster in progress: never a second one; a scheduled
 *    start that falls due meanwhile is skipped (the run in progress did it).
 * 2. A due scheduled start late by a whole cron interval (it waited through
 *    an outage or a full queue until its successor's turn came) is skipped,
 *    rather than running at a time nobody chose.
 * 3. Unreachable: nothing starts, NOSPACE recovery included. A run needs
 *    the cluster to answer, and the NOSPACE seen before may be stale; the
 *    next observation that answers decides. A due scheduled start stays
 *    pending (a blip at 03:00 does not cost the weekly run): it starts when
 *    the cluster answers again inside the windows, and is skipped when it
 *    answers outside them or by rule 2.
 * 4. NOSPACE with `nospace: recover`: start at once, ignoring windows,
 *    cooldown, the queue and maxConcurrentRuns: the cluster takes no writes
 *    until it is recovered, which outweighs the fleet-wide spread that
 *    maxConcurrentRuns exists for; routine runs elsewhere are not stopped.
 * 5. A due scheduled start: inside the windows it starts when a slot is free
 *    (else it queues); outside them it is skipped. The cooldown does not
 *    apply: the operator chose the time.
 * 6. Auto, when the rule holds for some member: after the cooldown since
 *    the last run of this cluster finished, inside the windows, when a slot
 *    is free.
 * Windows are judged at the moment of starting, so a queued start whose
 * window closes while it waits is skipped.
 *
 * @example decide({ ...state, nospace: true }, now) // { action: 'start', trigger: 'nospace', ... }
 */
export function decide(state: ClusterSchedulerState, now: number): Decision {
  const pending = state.pendingStart;
  const due = pending !== null && pending.startMs <= now;

  if (state.running) {
    if (due)
      return {
        action: 'skip-scheduled',
        reason: `a run of this cluster was in progress at the scheduled start ${iso(pending.scheduledMs)}`,
      };
    return { action: 'wait', waitingFor: 'running', reason: 'a run of this cluster is in progress' };
  }

  if (due && state.schedule !== null) {
    const following = nextScheduledStart(state.schedule.cron, state.timezone, pending.scheduledMs);
    // Late by a whole cron interval: its successor's turn has come. Measured
    // from the jittered start, so a jitter longer than the interval is no lateness.
    if (following !== null && now - pending.startMs >= following - pending.scheduledMs) {
      return {
        action: 'skip-scheduled',
        reason: `the scheduled start ${iso(pending.scheduledMs)} waited until the next cron time's turn (${iso(following)})`,
      };
    }
  }

  if (state.unreachable) {
    return { action: 'wait', waitingFor: 'unreachable', reason: 'the cluster did not answer the last observation' };
  }

  if (state.nospace && state.nospaceMode === 'recover') {
    const retryAt = state.nospaceRetryAtMs ?? 0;
    // Nothing else starts meanwhile: any run would meet the same alarm (and another defragd's recovery).
    if (now < retryAt)
      return {
        action: 'wait',
        waitingFor: 'nospace',
        reason: `NOSPACE: the next recovery attempt at ${iso(retryAt)}`,
        nextCheckMs: retryAt,
      };
    return {
      action: 'start',
      trigger: 'nospace',
      reason: 'a member reports NOSPACE: recovering now, regardless of windows, cooldown and maxConcurrentRuns',
    };
  }

  const slotFree = state.globalRunning + state.queuedAhead < state.maxConcurrentRuns;
  const slotReason = `${state.globalRunning} run(s) in progress and ${state.queuedAhead} queued ahead, maxConcurrentRuns ${state.maxConcurrentRuns}`;

  if (due) {
    if (!inWindow(state.windows, state.timezone, now)) {
      return {
        action: 'skip-scheduled',
        reason: `the scheduled start ${iso(pending.scheduledMs)} falls outside the windows (at ${iso(now)})`,
      };
    }
    if (!slotFree)
      return {
        action: 'wait',
        waitingFor: 'slot',
        trigger: 'schedule',
        dueMs: pending.startMs,
        reason: `scheduled start queued: ${slotReason}`,
      };
    return { action: 'start', trigger: 'schedule', reason: `scheduled start ${iso(pending.scheduledMs)}` };
  }

  // Not due: when the pending start falls due is the next thing to look at.
  const pendingCheck = pending !== null ? { nextCheckMs: pending.startMs } : {};

  if (state.auto !== null && state.autoRunDue) {
    const cooldownEndMs = state.lastRunFinishedMs === null ? null : state.lastRunFinishedMs + state.auto.cooldownMs;
    if (cooldownEndMs !== null && now < cooldownEndMs) {
      return {
        action: 'wait',
        waitingFor: 'cooldown',
        reason: `the rule holds, but the last run finished ${iso(state.lastRunFinishedMs ?? 0)}: cooldown until ${iso(cooldownEndMs)}`,
        nextCheckMs: earliest(pending?.startMs, nextWindowOpen(state.windows, state.timezone, cooldownEndMs) ?? cooldownEndMs),
      };
    }
    if (!inWindow(state.windows, state.timezone, now)) {
      const openMs = nextWindowOpen(state.windows, state.timezone, now);
      return {
        action: 'wait',
        waitingFor: 'window',
        reason: `the rule holds, outside the windows${openMs === null ? '' : ` until ${iso(openMs)}`}`,
        ...(openMs === null ? pendingCheck : { nextCheckMs: earliest(pending?.startMs, openMs) }),
      };
    }
    if (!slotFree)
      return {
        action: 'wait',
        waitingFor: 'slot',
        trigger: 'auto',
        dueMs: now,
        reason: `auto start queued: ${slotReason}`,
        ...pendingCheck,
      };
    return { action: 'start', trigger: 'auto', reason: 'the rule holds for at least one member' };
  }

  if (pending !== null)
    return { action: 'wait', waitingFor: 'schedule', reason: `next scheduled start ${iso(pending.startMs)}`, ...pendingCheck };
  if (state.auto !== null) return { action: 'wait', waitingFor: 'rule', reason: 'the rule holds for no member' };
  return {
    action: 'wait',
    waitingFor: 'nothing',
    reason: state.schedule === null ? 'no schedule and no auto: observed only' : 'no scheduled start drawn',
  };
}

function earliest(a: number | undefined, b: number): number {
  return a === undefined ? b : Math.min(a, b);
}

/**
 * How many starts wait ahead of `cluster` in the start queue: entries with
 * an earlier `dueMs` (ties by name, so every replica orders alike). A cluster
 * not in the queue counts every entry.
 *
 * @example startQueuePosition([{ cluster: 'a', dueMs: 1 }, { cluster: 'b', dueMs: 2 }], 'b') // 1
 */
export function startQueuePosition(queue: readonly { cluster: string; dueMs: number }[], cluster: string): number {
  const own = queue.find((e) => e.cluster === cluster);
  if (own === undefined) return queue.length;
  return queue.filter((e) => e.cluster !== cluster && (e.dueMs < own.dueMs || (e.dueMs === own.dueMs && e.cluster < cluster))).length;
}

/**
 * What a cluster is doing, as the API says it: running > unreachable >
 * cooldown (auto mode, a run finished less than `cooldown` ago) > idle.
 *
 * @example clusterState({ running: false, unreachable: false, auto: { cooldownMs: 6 * 3_600_000 }, lastRunFinishedMs: now - 60_000 }, now) // 'cooldown'
 */
export function clusterState(
  view: Pick<ClusterSchedulerState, 'running' | 'unreachable' | 'auto' | 'lastRunFinishedMs'>,
  now: number,
): ClusterState {
  if (view.running) return 'running';
  if (view.unreachable) return 'unreachable';
  if (view.auto !== null && view.lastRunFinishedMs !== null && now < view.lastRunFinishedMs + view.auto.cooldownMs) return 'cooldown';
  return 'idle';
}

/**
 * The revision the cluster had `retainMs` ago, as etcd's periodic
 * auto-compaction keeps: the newest sample taken at or before now - retainMs.
 * Null when the samples do not reach back that far (never compact beyond
 * what is known, e.g. in the first `retain` after the store was created).
 *
 * @example retentionRevision([{ atMs: now - 2 * 3_600_000, revision: 9000 }], 3_600_000, now) // 9000
 */
export function retentionRevision(samples: readonly { atMs: number; revision: number }[], retainMs: number, now: number): number | null {
  const cutoffMs = now - retainMs;
  let best: { atMs: number; revision: number } | null = null;
  for (const s of samples) {
    if (s.atMs <= cutoffMs && s.revision > 0 && (best === null || s.atMs > best.atMs)) best = s;
  }
  return best?.revision ?? null;
}
