/**
 * The daemon: one loop per cluster (cluster-loop.ts) that observes it every
 * interval, asks the scheduler whether a run is due (NOSPACE recovery, a cron
 * start, the rule in auto mode), runs it through the same runDefrag the CLI
 * uses (cluster lock, planner, executor), and remembers: samples and runs in
 * the store, series in the metrics, every StepEvent to whoever subscribed.
 * It decides nothing about members itself; the scheduler says when, the
 * planner says what. This class holds the loops: start, reload, stop, and
 * what the HTTP API and the metrics read (DaemonView).
 *
 * Clusters are independent: each has its own client, loop and deadlines, so
 * one that is down or slow never delays another. Runs across the daemon are
 * capped by maxConcurrentRuns (NOSPACE recovery excepted: writes are down).
 */
import { hostname } from 'node:os';
import { setMaxListeners } from 'node:events';
import type { MemberDefragStatus } from '../domain/record.js';
import type { Store } from '../store/index.js';
import type { Sample, StoredRun, StoredRunDetail } from '../store/types.js';
import { etcdAccess, type ClusterAccess } from './access.js';
import { systemClock, type Clock } from './clock.js';
import { ClusterLoop, type Fleet, type LoopDeps } from './cluster-loop.js';
import type { ServeClusterConfig } from './config.js';
import { EventBus } from './events.js';
import { RepeatedWarnings } from './repeated-warnings.js';
import { StoreHealth } from './store-health.js';
import type { DaemonMetrics } from './metrics.js';
import type { ClusterView, DaemonEvent, DaemonLogger, DaemonView, StartRunResult } from './types.js';

export type { DaemonLogger } from './types.js';

/** What the daemon needs of one cluster's configuration: the config loader's per-cluster part. */
export type DaemonClusterConfig = ServeClusterConfig;

export interface DaemonConfig {
  clusters: readonly DaemonClusterConfig[];
  maxConcurrentRuns: number;
}

export interface DaemonDeps {
  store: Store;
  metrics: DaemonMetrics;
  logger: DaemonLogger;
  /** The time and the timers (default the process's). */
  clock?: Clock;
  /** [0, 1), like Math.random (default): the schedule's jitter. */
  random?: () => number;
  /** Each cluster's access (default a client of its own on the cluster's connection). */
  connect?: (config: DaemonClusterConfig) => ClusterAccess;
  /** Who runs are recorded as (default host:pid). */
  by?: string;
  /** How long a run waits for the cluster lock before giving up until the next trigger (default 1 minute). */
  lockWaitMs?: number;
}

/**
 * How long a daemon's run waits for another's cluster lock before it records nothing and waits for the
 * next trigger (the CLI's --lock-wait defaults to 0: refuse at once).
 */
const SERVE_LOCK_WAIT_MS = 60_000;

/**
 * The daemon. start() begins observing every cluster; stop() stops starting
 * runs, lets a run in progress finish its current member and stop, and
 * closes the clients.
 *
 * @example
 * const daemon = new Daemon(config, { store, metrics, logger });
 * daemon.start();
 * process.once('SIGTERM', () => void daemon.stop());
 */
export class Daemon implements DaemonView {
  private readonly loops = new Map<string, ClusterLoop>();
  private readonly stopping = new AbortController();
  private readonly bus: EventBus;
  private readonly fleet: Fleet;
  private readonly loopDeps: LoopDeps;
  private readonly connect: (config: DaemonClusterConfig) => ClusterAccess;
  /** The reload in progress (or the last one): the next waits for it. */
  private reloading: Promise<unknown> = Promise.resolve();

  constructor(
    private config: DaemonConfig,
    private readonly deps: DaemonDeps,
  ) {
    setMaxListeners(1_000, this.stopping.signal);
    this.bus = new EventBus((err) => deps.logger.warn({ err }, 'an event listener failed'));
    this.connect = deps.connect ?? ((c) => etcdAccess(c.connection));
    this.fleet = {
      stopping: this.stopping.signal,
      maxConcurrentRuns: () => this.config.maxConcurrentRuns,
      runsInProgress: () => [...this.loops.values()].filter((l) => l.running !== null).length,
      queue: new Map(),
    };
    const clock = deps.clock ?? systemClock;
    this.loopDeps = {
      store: deps.store,
      storeHealth: new StoreHealth({ metrics: deps.metrics, logger: deps.logger, clock, fileProblem: () => deps.store.fileProblem() }),
      metrics: deps.metrics,
      logger: deps.logger,
      clock,
      random: deps.random ?? Math.random,
      repeats: new RepeatedWarnings(deps.logger, clock),
      by: deps.by ?? `${hostname()}:${process.pid}`,
      lockWaitMs: deps.lockWaitMs ?? SERVE_LOCK_WAIT_MS,
      emit: (e) => this.bus.emit(e),
    };
    for (const c of config.clusters) this.loops.set(c.name, this.newLoop(c));
  }

  private newLoop(config: DaemonClusterConfig): ClusterLoop {
    return new ClusterLoop(config, this.connect, this.fleet, this.loopDeps);
  }

  start(): void {
    for (const l of this.loops.values()) l.start();
  }

  /**
   * Takes a new config (SIGHUP): clusters whose settings are unchanged keep
   * their loop and state; changed ones get a new loop once their run in
   * progress, if any, has finished; removed ones stop; new ones start.
   */
  reload(config: DaemonConfig): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    // One at a time, each against what the one before left: SIGHUPs in a row (while a changed cluster's run
    // finishes) end with one loop per cluster, never one per signal.
    const done = this.reloading.then(() => this.applyReload(config));
    this.reloading = done.catch(() => undefined);
    return done;
  }

  private async applyReload(config: DaemonConfig): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const next = new Map(config.clusters.map((c) => [c.name, c]));
    const removed = [...this.loops.keys()].filter((name) => !next.has(name));
    const changed = [...this.loops]
      .filter(([name, l]) => next.has(name) && JSON.stringify(next.get(name)) !== JSON.stringify(l.config))
      .map(([name]) => name);
    const added = [...next.keys()].filter((name) => !this.loops.has(name));
    this.config = config;
    await Promise.all(
      [...removed, ...changed].map(async (name) => {
        const l = this.loops.get(name) as ClusterLoop;
        await l.retire();
        l.access.close();
        this.loops.delete(name);
        this.fleet.queue.delete(name);
        if (removed.includes(name)) await this.deps.metrics.forgetCluster(name);
      }),
    );
    for (const name of [...changed, ...added]) {
      const l = this.newLoop(next.get(name) as DaemonClusterConfig);
      this.loops.set(name, l);
      if (!this.stopping.signal.aborted) l.start();
    }
    return { added, changed, removed };
  }

  /** Stops starting runs; a run in progress finishes its current member and is recorded as interrupted. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const l of this.loops.values()) l.nudge();
    await Promise.allSettled([...this.loops.values()].map((l) => l.settled()));
    for (const l of this.loops.values()) l.access.close();
  }

  // --- DaemonView -------------------------------------------------------------

  ready(): { ok: boolean; reason: string | null } {
    const waiting = [...this.loops.values()].filter((l) => !l.observed).map((l) => l.name);
    if (waiting.length > 0) return { ok: false, reason: `not observed yet: ${waiting.join(', ')}` };
    const store = this.loopDeps.storeHealth.problem();
    return store === null ? { ok: true, reason: null } : { ok: false, reason: store };
  }

  clusters(): ClusterView[] {
    return [...this.loops.values()].map((l) => this.view(l));
  }

  cluster(name: string): ClusterView | undefined {
    const l = this.loops.get(name);
    return l ? this.view(l) : undefined;
  }

  history(name: string, limit: number, since?: string): StoredRun[] {
    return this.deps.store.runs({ cluster: name, limit, since });
  }

  samples(name: string, from: string): Sample[] {
    return this.deps.store.samples({ cluster: name, from });
  }

  runDetail(id: number): StoredRunDetail | null {
    return this.deps.store.run(id);
  }

  async defragmentationStatus(name: string, signal?: AbortSignal): Promise<MemberDefragStatus[]> {
    const l = this.loops.get(name);
    if (!l) return [];
    return l.access.defragmentationStatus(l.config.record === false ? undefined : l.config.record.prefix, signal);
  }

  async startRun(name: string, opts: { dryRun: boolean }): Promise<StartRunResult> {
    const l = this.loops.get(name);
    if (!l) return { ok: false, status: 404, reason: `no cluster named ${name}` };
    if (opts.dryRun) return { ok: true, runId: 0, dryRun: true, report: await l.dryRun() };
    if (l.running) return { ok: false, status: 409, reason: `a run of ${name} is in progress (run ${l.running.runId ?? 'starting'})` };
    if (this.stopping.signal.aborted) return { ok: false, status: 409, reason: 'the daemon is stopping' };
    const launched = l.launch('api');
    const started = await launched.started;
    if (started === null) {
      const report = await launched.running.done;
      // It threw before a report (endpoints of two clusters): the API answers with what it threw.
      if (report === null && launched.running.failure !== null) throw launched.running.failure;
      return { ok: false, status: 409, reason: report?.message ?? 'the run did not start' };
    }
    return { ok: true, runId: started.runId, dryRun: false, ...(started.waiting === undefined ? {} : { waiting: started.waiting }) };
  }

  subscribe(listener: (e: DaemonEvent) => void): () => void {
    return this.bus.subscribe(listener);
  }

  private view(l: ClusterLoop): ClusterView {
    return l.view(
      this.loopDeps.storeHealth.read('read the last run', () => this.deps.store.runs({ cluster: l.name, limit: 1 })[0] ?? null, null),
    );
  }
}
