/**
 * One cluster in the daemon: its loop (observe, ask the scheduler, start a
 * run, sleep until the next observation or the pending scheduled start) and
 * what the loop remembers between turns. The scheduler (schedule.ts) says
 * when, the policy (policy.ts) and the planner say what; this carries it out.
 * Its cluster access, clock and randomness come from outside, so unit tests
 * drive it with a fake cluster and fake timers.
 */
import { buildPolicy } from '../app/defragment.js';
import { messageOf } from '../domain/errors.js';
import type { Policy } from '../domain/plan.js';
import type { RunReport, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { DefragTrigger } from '../domain/trigger.js';
import { DEFAULT_LEADER_MOVES_PER_MS, nospaceRaised, rationedBecause, versionWarnings } from '../planner/index.js';
import type { ClusterAccess } from './access.js';
import { Sleeper } from './clock.js';
import type { ServeClusterConfig as DaemonClusterConfig } from './config.js';
import { ExternalNoticer } from './external-noticer.js';
import { launchRun, type LaunchDeps, type RunInProgress, type Started } from './launch.js';
import { NospaceState } from './nospace-state.js';
import { ObservationCadence } from './observation.js';
import { autoCheck, policyFor, type PolicyFacts } from './policy.js';
import { PolicyFactsReader } from './policy-facts.js';
import { Reconciler } from './reconcile.js';
import type { RepeatedWarnings } from './repeated-warnings.js';
import { clusterState, decide, startQueuePosition, type Decision } from './schedule.js';
import { ScheduledStarts } from './scheduled-starts.js';
import type { ClusterView } from './types.js';

/** Where a wake-up comes at the latest, so a clock jump never stalls a loop. */
const MAX_SLEEP_MS = 60_000;

/** What every cluster's loop shares: the daemon's stop, its run cap and its start queue. */
export interface Fleet {
  readonly stopping: AbortSignal;
  maxConcurrentRuns(): number;
  /** Runs in progress across the daemon. */
  runsInProgress(): number;
  /** Clusters waiting for a free run slot, with when their start fell due. */
  readonly queue: Map<string, number>;
}

export interface LoopDeps extends LaunchDeps {
  random: () => number;
  /** Warnings of lasting conditions (a cluster that does not answer), at most once a minute each. */
  repeats: RepeatedWarnings;
}

/** Logged at most once a minute while it lasts, and its end once. */
const OBSERVATION_FAILED = 'observation failed';

export class ClusterLoop {
  readonly access: ClusterAccess;
  private readonly policyFacts: PolicyFactsReader;
  private readonly cadence: ObservationCadence;
  private readonly noticer: ExternalNoticer;
  private readonly reconciler: Reconciler;
  private snapshot: ClusterSnapshot | null = null;
  private observedAt: string | null = null;
  private observeError: string | null = null;
  private observedOnce = false;
  private readonly starts: ScheduledStarts;
  private runningRun: RunInProgress | null = null;
  private lastRunFinishedMs: number | null;
  /** When this daemon moved this cluster's leadership (the ration's input), the last hour or so. */
  private leaderMovesMs: number[] = [];
  private readonly nospace: NospaceState;
  private readonly sleeper: Sleeper;
  /** Aborted when this cluster leaves the config (a reload): its loop ends, a run in progress finishes. */
  private readonly retired = new AbortController();
  private loopDone: Promise<void> | null = null;
  /** The cluster ID this name means (undefined: not read from the store yet; null: never seen). */
  private knownClusterId: string | null | undefined = undefined;
  /** The version warnings last logged: each is logged when it appears, not at every observation. */
  private versionWarned = new Set<string>();

  constructor(
    readonly config: DaemonClusterConfig,
    connect: (config: DaemonClusterConfig) => ClusterAccess,
    private readonly fleet: Fleet,
    private readonly deps: LoopDeps,
  ) {
    this.access = connect(config);
    this.sleeper = new Sleeper(deps.clock);
    this.nospace = new NospaceState(config.name, deps.logger);
    this.starts = new ScheduledStarts(config.schedule, config.timezone, deps.random, (atMs) => deps.metrics.nextRun(config.name, atMs));
    this.policyFacts = new PolicyFactsReader(config.name, buildPolicy(config.policy), config.compaction, deps);
    this.cadence = new ObservationCadence(this.access, config.observe.quotaBytes, deps.clock, (reason) =>
      deps.logger.debug({ cluster: config.name, reason }, 'a full observation at once'),
    );
    this.noticer = new ExternalNoticer(config.name, config.record, this.access, deps);
    this.reconciler = new Reconciler(config.name, config.record, this.access, deps);
    // Cooldown counts from the last run of this cluster, also one recorded before this process started.
    const last = deps.storeHealth.read('read the last run', () => deps.store.runs({ cluster: config.name, limit: 1 })[0], undefined, {
      cluster: config.name,
    });
    this.lastRunFinishedMs = last?.finishedAt ? Date.parse(last.finishedAt) : null;
  }

  get name(): string {
    return this.config.name;
  }

  get running(): RunInProgress | null {
    return this.runningRun;
  }

  get observed(): boolean {
    return this.observedOnce;
  }

  start(): void {
    this.loopDone = this.loop();
  }

  /** Ends the loop (a run in progress finishes its member and stops only when the daemon stops) and waits for both. */
  async retire(): Promise<void> {
    this.retired.abort();
    this.sleeper.wake();
    await this.settled();
  }

  /** Wakes the loop now (the daemon is stopping). */
  nudge(): void {
    this.sleeper.wake();
  }

  /** Resolves when the loop and any run in progress have ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([this.loopDone, this.runningRun?.done]);
  }

  view(lastRun: ClusterView['lastRun']): ClusterView {
    const r = this.runningRun;
    return {
      name: this.name,
      state: clusterState(
        {
          running: r !== null,
          unreachable: this.observedOnce && this.snapshot === null,
          auto: this.config.auto,
          lastRunFinishedMs: this.lastRunFinishedMs,
        },
        this.deps.clock.now(),
      ),
      snapshot: this.snapshot,
      observedAt: this.observedAt,
      observeError: this.observeError,
      lastRun,
      nextRun: this.starts.pending === null ? null : { at: new Date(this.starts.pending.startMs).toISOString(), trigger: 'schedule' },
      schedule: this.config.schedule?.cron ?? null,
      timezone: this.config.timezone,
      windows: this.config.windows.map((w) => w.text),
      runningRunId: r?.runId ?? null,
      currentMember: r?.currentMember ?? null,
      lockHeld: r?.started === true,
    };
  }

  /** What a run started now would do (the API's dry run), with the policy such a run would have. */
  dryRun(): Promise<RunReport> {
    return this.access.dryRun(policyFor('api', this.facts(true)), {
      observe: { cluster: true, quotaBytes: this.config.observe.quotaBytes },
    });
  }

  /** Starts a run now in the background; `started` resolves once it got going (null: it did not). */
  launch(trigger: DefragTrigger): { started: Promise<Started>; running: RunInProgress } {
    const facts = this.facts(true);
    const policy = policyFor(trigger, facts);
    this.logPolicy(trigger, facts, policy);
    const { running, started } = launchRun(
      {
        cluster: this.name,
        trigger,
        policy,
        access: this.access,
        options: {
          observe: { cluster: true, quotaBytes: this.config.observe.quotaBytes },
          execute: this.config.execute,
          record: this.config.record,
          takeOverNospaceClaim: this.nospace.takeOver(this.deps.clock.now()),
        },
        signal: this.fleet.stopping,
        defragCountOf: (memberId) => this.noticer.counts.get(memberId)?.count ?? null,
        onStep: (event) => this.afterStep(event),
        onRecorded: (report) => this.afterRun(trigger, report),
        onNotStarted: (report) => this.nospace.notStarted(trigger, report, this.deps.clock.now()),
        onSettled: () => {
          const ran = running.started;
          this.runningRun = null;
          // After a run, the next observation comes at once (full, with /metrics). A run that never got going
          // (lock busy, claim taken) waits for the next turn of the grid: waking would start it again at once.
          if (ran) this.sleeper.wake();
        },
      },
      this.deps,
    );
    this.runningRun = running;
    return { started, running };
  }

  // --- The loop ---------------------------------------------------------------

  private async loop(): Promise<void> {
    const stopping = this.fleet.stopping;
    const ended = () => stopping.aborted || this.retired.signal.aborted;
    while (!ended()) {
      await this.observe();
      // A stop or reload that came during the observation: no start, and no sleep it would have to wait out.
      if (ended()) break;
      this.starts.draw(this.deps.clock.now());
      this.act(this.decide());
      await this.sleeper.sleep(this.sleepMs());
    }
  }

  private decide(): Decision {
    const now = this.deps.clock.now();
    const queue = this.fleet.queue;
    const verdict = decide(
      {
        running: this.runningRun !== null,
        unreachable: this.snapshot === null,
        nospace: this.snapshot !== null && nospaceRaised(this.snapshot),
        nospaceMode: this.config.nospace,
        nospaceRetryAtMs: this.nospace.retryAtMs,
        schedule: this.config.schedule,
        pendingStart: this.starts.pending,
        auto: this.config.auto,
        // Planned only where it decides something (auto mode), with the policy the run would have.
        autoRunDue: this.config.auto !== null && this.snapshot !== null && autoCheck(this.snapshot, this.facts(false)).due,
        lastRunFinishedMs: this.lastRunFinishedMs,
        windows: this.config.windows,
        timezone: this.config.timezone,
        globalRunning: this.fleet.runsInProgress(),
        maxConcurrentRuns: this.fleet.maxConcurrentRuns(),
        queuedAhead: queue.has(this.name)
          ? startQueuePosition(
              [...queue].map(([cluster, dueMs]) => ({ cluster, dueMs })),
              this.name,
            )
          : 0,
      },
      now,
    );
    if (verdict.action === 'wait' && verdict.waitingFor === 'slot') {
      if (!queue.has(this.name)) queue.set(this.name, verdict.dueMs ?? now);
    } else {
      queue.delete(this.name);
    }
    return verdict;
  }

  private act(verdict: Decision): void {
    if (verdict.action === 'start') {
      this.deps.logger.info({ cluster: this.name, trigger: verdict.trigger, reason: verdict.reason }, 'starting a run');
      if (verdict.trigger === 'schedule') this.starts.done();
      this.launch(verdict.trigger);
    } else if (verdict.action === 'skip-scheduled') {
      this.deps.logger.info({ cluster: this.name, reason: verdict.reason }, 'scheduled start skipped');
      this.starts.done();
      this.starts.draw(this.deps.clock.now());
    }
  }

  /**
   * Until the next observation, or the pending scheduled start if that comes first. Observations fall
   * on a grid of the interval (multiples of it since the epoch): clusters with the same interval are
   * observed in the same moment, so the process wakes once per interval rather than once per cluster,
   * and the samples of its clusters line up in time. The period is the interval, not the interval plus
   * the observation's own time.
   */
  private sleepMs(): number {
    const now = this.deps.clock.now();
    const interval = this.config.observeIntervalMs;
    const untilObserve = interval - (now % interval);
    const pending = this.starts.pending;
    const untilStart = pending === null ? Infinity : Math.max(0, pending.startMs - now);
    return Math.min(untilObserve, untilStart, MAX_SLEEP_MS);
  }

  private async observe(): Promise<void> {
    const { metrics, store, clock } = this.deps;
    try {
      const seen = await this.cadence.observe(this.snapshot, {
        running: this.runningRun !== null,
        baselines: this.noticer.counts,
        signal: this.fleet.stopping,
      });
      this.checkIdentity(seen.snapshot);
      this.warnVersions(seen.snapshot);
      this.snapshot = seen.snapshot;
      this.observeError = null;
      this.deps.repeats.ended(OBSERVATION_FAILED, this.name, 'observation succeeded again');
      // The history's loss, never the observation's: a failing store does not make a cluster look down.
      this.deps.storeHealth.write('record samples', () => store.recordSamples(this.name, seen.snapshot), undefined, { cluster: this.name });
      metrics.observed(this.name, seen.snapshot, null, seen.full === null ? 'light' : 'full');
      // Judged on full observations only: a light one does not read the alarm list.
      if (seen.full !== null && !nospaceRaised(seen.snapshot))
        await this.nospace.clear(() => this.access.prepareNospaceClaim(), this.runningRun !== null);
      // What a run that died with this daemon's last process left unsaid, before anything else is judged.
      if (seen.full !== null && this.runningRun === null) {
        if (await this.reconciler.reconcile(seen.snapshot, seen.full.gauges, this.fleet.stopping)) this.policyFacts.invalidate();
      }
      if (seen.full !== null) {
        const recorded = await this.noticer.notice(seen.snapshot, seen.full.atMs, seen.full.gauges, {
          running: () => this.runningRun !== null,
          signal: this.fleet.stopping,
        });
        if (recorded > 0) this.policyFacts.invalidate();
      }
    } catch (err) {
      if (this.fleet.stopping.aborted) return;
      this.snapshot = null;
      this.observeError = messageOf(err);
      metrics.observed(this.name, null, this.observeError);
      this.deps.repeats.warn(OBSERVATION_FAILED, this.name, this.observeError);
    } finally {
      this.observedAt = new Date(clock.now()).toISOString();
      this.observedOnce = true;
    }
  }

  /**
   * The endpoints must reach the cluster this name has meant in the history (its ID, remembered the
   * first time): another cluster under the same name would be observed, scheduled and recorded as if
   * it were the first. Throws (the observation fails, no run starts) until the config is put right.
   */
  private checkIdentity(snapshot: ClusterSnapshot): void {
    const id = snapshot.clusterId;
    if (id === null) return;
    if (this.knownClusterId === undefined)
      this.knownClusterId =
        this.deps.storeHealth.read('read the cluster ID', () => this.deps.store.clusterId(this.name), null, { cluster: this.name })
          ?.clusterId ?? null;
    if (this.knownClusterId === null) {
      this.knownClusterId = id;
      this.deps.storeHealth.write('record the cluster ID', () => this.deps.store.rememberClusterId(this.name, id), undefined, {
        cluster: this.name,
      });
      return;
    }
    if (id !== this.knownClusterId)
      throw new Error(
        `the endpoints now reach etcd cluster ${id}, but "${this.name}" is cluster ${this.knownClusterId} in this daemon's history: ` +
          'nothing is observed or run under this name until its endpoints reach that cluster again (a new cluster, or one restored from a snapshot, needs a new name: its history starts there)',
      );
  }

  private warnVersions(snapshot: ClusterSnapshot): void {
    const warnings = versionWarnings(snapshot);
    for (const w of warnings) if (!this.versionWarned.has(w)) this.deps.logger.warn({ cluster: this.name, warning: w }, 'etcd version');
    this.versionWarned = new Set(warnings);
  }

  // --- Runs -------------------------------------------------------------------

  private afterStep(event: StepEvent): void {
    const now = this.deps.clock.now();
    if (event.type === 'member-finished' && event.result.action === 'defragmented') {
      const m = event.result;
      this.deps.metrics.lastDefrag(this.name, m.name, m.memberId, { atMs: now, durationMs: m.durationMs, revision: m.revision });
    } else if (event.type === 'leader-move-finished') {
      // Kept a little longer than the ration counts them: enough to judge the next move.
      this.leaderMovesMs = [...this.leaderMovesMs.filter((t) => t > now - 4 * DEFAULT_LEADER_MOVES_PER_MS), now];
    }
  }

  private afterRun(trigger: DefragTrigger, report: RunReport): void {
    const now = this.deps.clock.now();
    this.lastRunFinishedMs = now;
    this.cadence.afterRun();
    this.policyFacts.invalidate();
    if (trigger === 'nospace') this.nospace.recovered(report, now);
  }

  /** What the policy leaves out that an operator reading the log should know. */
  private logPolicy(trigger: DefragTrigger, facts: PolicyFacts, policy: Policy): void {
    if (trigger === 'nospace' && facts.keepRevisions === null) {
      this.deps.logger.warn({ cluster: this.name }, 'NOSPACE recovery without a compaction retention: compacting to the newest revision');
    }
    const rationed = policy.leaderMoves === undefined ? null : rationedBecause(policy.leaderMoves);
    if (rationed !== null)
      this.deps.logger.info({ cluster: this.name, reason: rationed }, 'leader moves rationed: the leader is skipped this run');
  }

  private facts(fresh: boolean): PolicyFacts {
    return this.policyFacts.read({ fresh, snapshot: this.snapshot, leaderMovesMs: this.leaderMovesMs });
  }
}
