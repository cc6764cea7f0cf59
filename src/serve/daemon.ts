/**
 * The daemon: one loop per cluster that observes it every interval, asks the
 * scheduler whether a run is due (NOSPACE recovery, a cron start, the rule in
 * auto mode), runs it through the same runDefrag the CLI uses (cluster lock,
 * planner, executor), and remembers: samples and runs in the store, series
 * in the metrics, every StepEvent to whoever subscribed. It decides nothing
 * about members itself; the scheduler says when, the planner says what.
 *
 * Clusters are independent: each has its own client, loop and deadlines, so
 * one that is down or slow never delays another. Runs across the daemon are
 * capped by maxConcurrentRuns (NOSPACE recovery excepted: writes are down).
 */
import { hostname } from 'node:os';
import { setMaxListeners } from 'node:events';
import { buildPolicy, dryRun, runDefrag } from '../app/defragment.js';
import { defragmentationStatus, memberStatuses, readRecords } from '../app/last.js';
import { recordPrefix } from '../app/record.js';
import { DEFAULT_RECORD_PREFIX } from '../domain/defaults.js';
import type { MemberDefragStatus } from '../domain/record.js';
import type { RunReport, StepEvent } from '../domain/run.js';
import type { DefragTrigger } from '../domain/trigger.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { EtcdClient, type StatusReply } from '../etcd/client.js';
import { observeCluster, rememberQuotas } from '../observe/observe.js';
import { refreshCluster } from '../observe/refresh.js';
import { currentRevision, DEFAULT_FORECAST_SAMPLES, planDefrag, versionWarnings } from '../planner/index.js';
import { recordRun, type RunRecorder, type Store } from '../store/index.js';
import type { RunTrigger, Sample, StoredRun, StoredRunDetail } from '../store/types.js';
import { clusterState, decide, drawScheduledStart, leaderMovesAllowed, retentionRevision, startQueuePosition, type PendingStart } from './schedule.js';
import type { ServeClusterConfig } from './config.js';
import { countRose, decideExternal, externalMemberResult, METRIC_DEFRAG_COUNT, ownRunTouched, type DefragBaseline, type ExternalEntry } from './external.js';
import type { DaemonMetrics } from './metrics.js';
import type { ClusterView, DaemonEvent, DaemonView, StartRunResult } from './types.js';
import { messageOf } from '../domain/errors.js';

/** What the daemon needs of one cluster's configuration: the config loader's per-cluster part. */
export type DaemonClusterConfig = ServeClusterConfig;

export interface DaemonConfig {
  clusters: readonly DaemonClusterConfig[];
  maxConcurrentRuns: number;
}

/** A pino-like logger: one JSON object per line, context first. */
export interface DaemonLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface DaemonDeps {
  store: Store;
  metrics: DaemonMetrics;
  logger: DaemonLogger;
  now?: () => number;
  random?: () => number;
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
/** After a NOSPACE recovery that did not clear the alarm, the next attempt waits this long (it would fail the same way). */
const NOSPACE_RETRY_MS = 5 * 60_000;
/** Where a daemon-wide wake-up check comes at the latest, so a clock jump never stalls a loop. */
const MAX_SLEEP_MS = 60_000;
/**
 * A full observation (member list, alarms, a health read and /metrics per
 * member) at least this often; in between, when the interval is shorter,
 * each member's Status only (see refresh.ts), which asks for a full one at
 * once when anything in it is unusual.
 */
export const FULL_OBSERVATION_EVERY_MS = 30_000;
/**
 * Each member's /metrics (its quota on etcd < 3.6, its defrag counter) is
 * read at a full observation at least this often, after each run, and
 * whenever the member's db file shrank since the observation before (a
 * defragmentation by someone else); in between, its quota as last read.
 */
export const METRICS_EVERY_MS = 5 * 60_000;
const AUTO_POLICY_TTL_MS = 60_000;
const RECHECK_AFTER_SHRINK_MS = 10_000;

interface Runner {
  config: DaemonClusterConfig;
  client: EtcdClient;
  policy: ReturnType<typeof buildPolicy>;
  snapshot: ClusterSnapshot | null;
  observedAt: string | null;
  observeError: string | null;
  observedOnce: boolean;
  /** The drawn (jittered) scheduled start this cluster waits for. */
  pendingStart: PendingStart | null;
  /** The cron time the last start was drawn for: the next is drawn after it, so none is lost or doubled. */
  lastScheduledMs: number | null;
  running: { runId: number | null; trigger: RunTrigger; currentMember: ClusterView['currentMember']; done: Promise<RunReport | null> } | null;
  lastRunFinishedMs: number | null;
  leaderMovesMs: number[];
  /** No NOSPACE recovery before this time (the last one did not clear the alarm). */
  nospaceRetryAtMs: number;
  timer: NodeJS.Timeout | null;
  wake: (() => void) | null;
  /** Aborted when this cluster leaves the config (a reload): its loop ends, a run in progress finishes. */
  retired: AbortController;
  /** The loop's promise. */
  loop: Promise<void> | null;
  /** Per member ID: its defrag count (from /metrics) as last observed, to notice defragmentations of others. */
  defragCounts: Map<string, DefragBaseline>;
  /** When the last full observation began; null: the next one is full (first, or after a run). */
  fullAtMs: number | null;
  /** When every member's /metrics was last read; null: at the next full observation. */
  metricsAtMs: number | null;
  /** Until then every observation is full and reads every member's /metrics (set when a db file shrank). */
  recheckUntilMs: number;
  /** Quotas read from /metrics, by member ID, reused until the next read of every member. */
  quotas: Map<string, number>;
  /** The version warnings (known defects, mid-upgrade) last logged: each is logged when it appears, not at every observation. */
  versionWarned: Set<string>;
  /** The auto decision's planning policy (with the store's defrag history) and when it was read. */
  autoPolicy: { atMs: number; policy: ReturnType<typeof buildPolicy> } | null;
}

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
  private readonly runners = new Map<string, Runner>();
  private readonly listeners = new Set<(e: DaemonEvent) => void>();
  private readonly stopping = new AbortController();
  /** Clusters waiting for a free run slot, with when their start fell due (first seen), shared by all loops. */
  private readonly queue = new Map<string, number>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly by: string;

  constructor(
    private config: DaemonConfig,
    private readonly deps: DaemonDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.by = deps.by ?? `${hostname()}:${process.pid}`;
    setMaxListeners(1_000, this.stopping.signal);
    for (const c of config.clusters) this.runners.set(c.name, this.newRunner(c));
  }

  private newRunner(config: DaemonClusterConfig): Runner {
    // Cooldown counts from the last run of this cluster, also one recorded before this process started.
    const last = this.deps.store.runs({ cluster: config.name, limit: 1 })[0];
    return {
      config,
      client: new EtcdClient(config.connection),
      policy: buildPolicy(config.policy),
      snapshot: null,
      observedAt: null,
      observeError: null,
      observedOnce: false,
      pendingStart: null,
      lastScheduledMs: null,
      running: null,
      lastRunFinishedMs: last?.finishedAt ? Date.parse(last.finishedAt) : null,
      leaderMovesMs: [],
      nospaceRetryAtMs: 0,
      timer: null,
      wake: null,
      retired: new AbortController(),
      loop: null,
      defragCounts: new Map(),
      fullAtMs: null,
      metricsAtMs: null,
      quotas: new Map(),
      versionWarned: new Set(),
      recheckUntilMs: 0,
      autoPolicy: null,
    };
  }

  start(): void {
    for (const r of this.runners.values()) r.loop = this.loop(r);
  }

  /**
   * Takes a new config (SIGHUP): clusters whose settings are unchanged keep
   * their loop and state; changed ones get a new loop once their run in
   * progress, if any, has finished; removed ones stop; new ones start.
   */
  async reload(config: DaemonConfig): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const next = new Map(config.clusters.map((c) => [c.name, c]));
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    for (const [name, r] of this.runners) {
      const c = next.get(name);
      if (c === undefined) removed.push(name);
      else if (JSON.stringify(c) !== JSON.stringify(r.config)) changed.push(name);
    }
    for (const name of next.keys()) if (!this.runners.has(name)) added.push(name);
    this.config = config;
    await Promise.all(
      [...removed, ...changed].map(async (name) => {
        const r = this.runners.get(name) as Runner;
        r.retired.abort();
        r.wake?.();
        await Promise.allSettled([r.loop, r.running?.done]);
        r.client.close();
        this.runners.delete(name);
        this.queue.delete(name);
        if (removed.includes(name)) await this.deps.metrics.forgetCluster(name);
      }),
    );
    for (const name of [...changed, ...added]) {
      const r = this.newRunner(next.get(name) as DaemonClusterConfig);
      this.runners.set(name, r);
      if (!this.stopping.signal.aborted) r.loop = this.loop(r);
    }
    return { added, changed, removed };
  }

  /** Stops starting runs; a run in progress finishes its current member and is recorded as interrupted. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const r of this.runners.values()) r.wake?.();
    await Promise.allSettled([...this.runners.values()].map((r) => r.loop));
    await Promise.allSettled([...this.runners.values()].map((r) => r.running?.done));
    for (const r of this.runners.values()) r.client.close();
  }

  // --- DaemonView -------------------------------------------------------------

  ready(): { ok: boolean; reason: string | null } {
    const waiting = [...this.runners.values()].filter((r) => !r.observedOnce).map((r) => r.config.name);
    return waiting.length === 0 ? { ok: true, reason: null } : { ok: false, reason: `not observed yet: ${waiting.join(', ')}` };
  }

  clusters(): ClusterView[] {
    return [...this.runners.values()].map((r) => this.view(r));
  }

  cluster(name: string): ClusterView | undefined {
    const r = this.runners.get(name);
    return r ? this.view(r) : undefined;
  }

  history(name: string, limit: number, since?: string): StoredRun[] {
    return this.deps.store.runs({ cluster: name, limit, since });
  }

  samples(name: string, from: string): Sample[] {
    return this.deps.store.samples({ cluster: name, from });
  }

  run(id: number): StoredRunDetail | null {
    return this.deps.store.run(id);
  }

  async defragmentationStatus(name: string, signal?: AbortSignal): Promise<MemberDefragStatus[]> {
    const r = this.runners.get(name);
    if (!r) return [];
    return defragmentationStatus(r.client, { cluster: true, recordPrefix: r.config.record === false ? undefined : r.config.record.prefix, signal });
  }

  async startRun(name: string, opts: { dryRun: boolean }): Promise<StartRunResult> {
    const r = this.runners.get(name);
    if (!r) return { ok: false, status: 404, reason: `no cluster named ${name}` };
    if (opts.dryRun) {
      const report = await dryRun(r.client, this.planningPolicy(r), { observe: { cluster: true, quotaBytes: r.config.observe.quotaBytes } });
      return { ok: true, runId: 0, dryRun: true, report };
    }
    if (r.running) return { ok: false, status: 409, reason: `a run of ${name} is in progress (run ${r.running.runId ?? 'starting'})` };
    if (this.stopping.signal.aborted) return { ok: false, status: 409, reason: 'the daemon is stopping' };
    const started = this.launch(r, 'api');
    const runId = await started.runId;
    if (runId === null) {
      const report = await started.done;
      return { ok: false, status: 409, reason: report?.message ?? 'the run did not start' };
    }
    return { ok: true, runId, dryRun: false };
  }

  subscribe(listener: (e: DaemonEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // --- The loop ---------------------------------------------------------------

  private view(r: Runner): ClusterView {
    const now = this.now();
    const lastRun = this.deps.store.runs({ cluster: r.config.name, limit: 1 })[0] ?? null;
    return {
      name: r.config.name,
      state: clusterState({ running: r.running !== null, unreachable: r.observedOnce && r.snapshot === null, auto: r.config.auto, lastRunFinishedMs: r.lastRunFinishedMs }, now),
      snapshot: r.snapshot,
      observedAt: r.observedAt,
      observeError: r.observeError,
      lastRun,
      nextRun: r.pendingStart === null ? null : { at: new Date(r.pendingStart.startMs).toISOString(), trigger: 'schedule' },
      schedule: r.config.schedule?.cron ?? null,
      timezone: r.config.timezone,
      windows: r.config.windows.map((w) => w.text),
      runningRunId: r.running?.runId ?? null,
      currentMember: r.running?.currentMember ?? null,
      lockHeld: r.running?.runId !== null && r.running !== null,
    };
  }

  private async loop(r: Runner): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted && !r.retired.signal.aborted) {
      await this.observe(r);
      if (r.retired.signal.aborted) break;
      this.schedule(r);
      const name = r.config.name;
      const verdict = decide(
        {
          running: r.running !== null,
          unreachable: r.snapshot === null,
          nospace: (r.snapshot?.alarms.some((a) => a.alarm === 'NOSPACE') ?? false) && this.now() >= r.nospaceRetryAtMs,
          nospaceMode: r.config.nospace,
          schedule: r.config.schedule,
          pendingStart: r.pendingStart,
          auto: r.config.auto,
          // With the forecast: a cluster whose every candidate is over maxDefragDuration starts no auto run that would skip them all.
          // Planned only where it decides something: auto mode.
          ruleHoldsForSome: r.config.auto !== null && r.snapshot !== null && planDefrag(r.snapshot, this.autoPolicy(r)).decisions.some((d) => d.action === 'defragment'),
          lastRunFinishedMs: r.lastRunFinishedMs,
          windows: r.config.windows,
          timezone: r.config.timezone,
          globalRunning: [...this.runners.values()].filter((x) => x.running !== null).length,
          maxConcurrentRuns: this.config.maxConcurrentRuns,
          queuedAhead: this.queue.has(name) ? startQueuePosition([...this.queue].map(([cluster, dueMs]) => ({ cluster, dueMs })), name) : 0,
        },
        this.now(),
      );
      if (verdict.action === 'wait' && verdict.waitingFor === 'slot') {
        if (!this.queue.has(name)) this.queue.set(name, verdict.dueMs ?? this.now());
      } else {
        this.queue.delete(name);
      }
      if (verdict.action === 'start') {
        this.deps.logger.info({ cluster: name, trigger: verdict.trigger, reason: verdict.reason }, 'starting a run');
        if (verdict.trigger === 'schedule') r.pendingStart = null;
        this.launch(r, verdict.trigger);
      } else if (verdict.action === 'skip-scheduled') {
        this.deps.logger.info({ cluster: name, reason: verdict.reason }, 'scheduled start skipped');
        r.pendingStart = null;
        this.schedule(r);
      }
      await this.sleep(r, this.sleepMs(r));
    }
  }

  /**
   * Until the next observation, or the pending scheduled start if that comes first. Observations fall
   * on a grid of the interval (multiples of it since the epoch): clusters with the same interval are
   * observed in the same moment, so the process wakes once per interval rather than once per cluster,
   * and the samples of its clusters line up in time. The period is the interval, not the interval plus
   * the observation's own time.
   */
  private sleepMs(r: Runner): number {
    const now = this.now();
    const interval = r.config.observeIntervalMs;
    const untilObserve = interval - (now % interval);
    const untilStart = r.pendingStart === null ? Infinity : Math.max(0, r.pendingStart.startMs - now);
    return Math.min(untilObserve, untilStart, MAX_SLEEP_MS);
  }

  private sleep(r: Runner, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (r.timer) clearTimeout(r.timer);
        r.timer = null;
        r.wake = null;
        resolve();
      };
      r.wake = done;
      r.timer = setTimeout(done, ms);
    });
  }

  /** Draws the next scheduled start (jitter included) when none is pending. */
  private schedule(r: Runner): void {
    const s = r.config.schedule;
    if (!s || r.pendingStart !== null) return;
    // After the cron time of the previous start, so a start is never lost or doubled; after now on the first draw.
    r.pendingStart = drawScheduledStart(s, r.config.timezone, Math.max(r.lastScheduledMs ?? 0, this.now() - 1), this.random);
    if (r.pendingStart) r.lastScheduledMs = r.pendingStart.scheduledMs;
    this.deps.metrics.nextRun(r.config.name, r.pendingStart?.startMs ?? null);
  }

  private async observe(r: Runner): Promise<void> {
    try {
      // Taken before /metrics is read: a defragmentation finishing after it is in the next window.
      const atMs = this.now();
      // Light unless a full one is due, a run is in progress or a rise of a defrag count is still being told apart.
      const telling = [...r.defragCounts.values()].some((b) => b.pending !== null);
      if (r.snapshot !== null && r.fullAtMs !== null && atMs - r.fullAtMs < FULL_OBSERVATION_EVERY_MS && r.running === null && !telling && atMs >= r.recheckUntilMs) {
        const refreshed = await refreshCluster(r.client, r.snapshot, { quotaBytes: r.config.observe.quotaBytes, signal: this.stopping.signal });
        if (refreshed.snapshot !== null) {
          this.accept(r, refreshed.snapshot);
          return;
        }
        this.deps.logger.debug({ cluster: r.config.name, reason: refreshed.fullBecause }, 'a full observation at once');
      }
      r.fullAtMs = atMs;
      const metricsDue = r.metricsAtMs === null || atMs - r.metricsAtMs >= METRICS_EVERY_MS;
      const previous = new Map((r.snapshot?.members ?? []).map((m) => [m.memberId, m.status?.dbSize ?? null]));
      let shrank = false;
      // The defrag counters come in the same /metrics read as the quota: one request per member.
      const gauges = {
        names: [METRIC_DEFRAG_COUNT],
        found: new Map<string, ReadonlyMap<string, number> | null>(),
        only: (memberId: string, status: StatusReply): boolean => {
          if (metricsDue || atMs < r.recheckUntilMs) return true;
          const before = previous.get(memberId) ?? null;
          const baseline = r.defragCounts.get(memberId);
          // A shrunken file (someone defragmented?), a rise still being told apart, or nothing known yet.
          if (before !== null && status.dbSize < before) shrank = true;
          return before === null || status.dbSize < before || baseline === undefined || baseline.pending !== null;
        },
      };
      const snapshot = await observeCluster(r.client, {
        cluster: true,
        quotaBytes: r.config.observe.quotaBytes,
        signal: this.stopping.signal,
        gauges,
        knownQuotas: metricsDue ? undefined : r.quotas,
        // A start-up setting of each member: read with the quota, every few minutes.
        features: metricsDue,
      });
      if (metricsDue) {
        r.metricsAtMs = atMs;
        r.quotas = new Map();
      }
      rememberQuotas(r.quotas, snapshot);
      // The count may be read a moment before the defragmentation that shrank the file counts itself: read again for a while.
      if (shrank) r.recheckUntilMs = atMs + RECHECK_AFTER_SHRINK_MS;
      this.accept(r, snapshot);
      await this.noticeExternal(r, snapshot, atMs, gauges.found);
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      r.snapshot = null;
      r.observeError = messageOf(err);
      this.deps.metrics.observed(r.config.name, null, r.observeError);
      this.deps.logger.warn({ cluster: r.config.name, err: r.observeError }, 'observation failed');
    } finally {
      r.observedAt = new Date(this.now()).toISOString();
      r.observedOnce = true;
    }
  }

  /** An observation's snapshot (light or full) becomes the cluster's: kept, sampled into the store, exported. */
  private accept(r: Runner, snapshot: ClusterSnapshot): void {
    // StopGRPCServiceOnDefrag is read with the quotas; between those reads each member keeps what it said.
    const gates = new Map((r.snapshot?.members ?? []).map((m) => [m.memberId, m.stopGrpcServiceOnDefrag]));
    for (const m of snapshot.members) if (m.stopGrpcServiceOnDefrag === undefined && gates.get(m.memberId) !== undefined) m.stopGrpcServiceOnDefrag = gates.get(m.memberId);
    const warnings = versionWarnings(snapshot);
    for (const w of warnings) if (!r.versionWarned.has(w)) this.deps.logger.warn({ cluster: r.config.name, warning: w }, 'etcd version');
    r.versionWarned = new Set(warnings);
    r.snapshot = snapshot;
    r.observeError = null;
    this.deps.store.recordSamples(r.config.name, snapshot);
    this.deps.metrics.observed(r.config.name, snapshot, null);
  }

  /**
   * Defragmentations someone else did (another defragd, etcdctl): each
   * member's defrag count from its /metrics against the last observation; a
   * rise that no run of this daemon explains is recorded as an `external` run
   * of its own, as the other defragd's (its in-cluster record) or unknown
   * (see external.ts). Not while a run of this cluster is in progress (the
   * baseline stays, and the run is told apart afterwards). Never throws.
   */
  private async noticeExternal(r: Runner, snapshot: ClusterSnapshot, atMs: number, gauges: ReadonlyMap<string, ReadonlyMap<string, number> | null>): Promise<void> {
    if (r.running) return;
    const name = r.config.name;
    try {
      const call = { timeoutMs: r.client.context.commandTimeoutMs, signal: this.stopping.signal };
      // Read by observeCluster (members that did not answer Status have none: no count, as when /metrics fails).
      const counts = snapshot.members.map((m) => ({ m, count: (m.endpoint ? gauges.get(m.endpoint)?.get(METRIC_DEFRAG_COUNT) : null) ?? null }));
      if (r.running || this.stopping.signal.aborted) return;
      const rose = counts.filter(({ m, count }) => countRose(r.defragCounts.get(m.memberId) ?? null, count));
      let statuses: MemberDefragStatus[] = [];
      let own: { run: StoredRun; report: RunReport | null }[] = [];
      if (rose.length > 0) {
        const prefix = recordPrefix(r.config.record === false ? DEFAULT_RECORD_PREFIX : r.config.record.prefix);
        statuses = memberStatuses(snapshot, prefix, await readRecords(r.client, snapshot, prefix, call), new Date(this.now()));
        const since = Math.min(...rose.map(({ m }) => r.defragCounts.get(m.memberId)?.atMs ?? atMs));
        own = this.deps.store
          .runs({ cluster: name, limit: 10 })
          .filter((run) => run.by === this.by && run.trigger !== 'external' && (run.finishedAt === null || Date.parse(run.finishedAt) > since))
          .map((run) => ({ run, report: this.deps.store.run(run.id)?.report ?? null }));
      }
      const next = new Map<string, DefragBaseline>();
      const entries: { m: (typeof counts)[number]['m']; e: ExternalEntry }[] = [];
      for (const { m, count } of counts) {
        const previous = r.defragCounts.get(m.memberId) ?? null;
        const status = statuses.find((s) => s.memberId === m.memberId);
        const d = decideExternal(
          {
            memberId: m.memberId,
            name: m.name,
            endpoint: m.endpoint,
            previous,
            count,
            atMs,
            sizes: m.status ? { dbSize: m.status.dbSize, dbSizeInUse: m.status.dbSizeInUse } : null,
            record: status?.lastDefrag ?? null,
            recordError: status?.record === 'unreadable' ? status.error : null,
            ownRun: previous !== null && ownRunTouched(own, this.by, m.memberId, previous.atMs),
          },
          { ourBy: this.by },
        );
        if (d.baseline) next.set(m.memberId, d.baseline);
        entries.push(...d.entries.map((e) => ({ m, e })));
      }
      // Remembered before writing: an entry the store fails to write is lost, never recorded twice.
      r.defragCounts = next;
      for (const { m, e } of entries) {
        const runId = this.deps.store.recordExternal({ cluster: name, by: e.by, startedAt: e.startedAt, finishedAt: e.finishedAt, message: e.message, member: externalMemberResult(e) });
        r.autoPolicy = null;
        this.deps.metrics.lastDefrag(name, m.name, m.memberId, { atMs: Date.parse(e.finishedAt), durationMs: e.durationMs, revision: e.revision });
        // Counted and streamed like a run of its own, so /metrics and the dashboard show every run of the cluster.
        const report = this.deps.store.run(runId)?.report ?? null;
        if (report) {
          this.deps.metrics.runFinished(name, 'external', report);
          this.emit({ cluster: name, runId, at: new Date(this.now()).toISOString(), event: { type: 'run-finished', report } });
        }
        this.deps.logger.info({ cluster: name, member: m.name, by: e.by, trigger: e.trigger, runId, message: e.message }, 'a defragmentation by someone else noticed');
      }
    } catch (err) {
      this.deps.logger.warn({ cluster: name, err: messageOf(err) }, 'noticing defragmentations by others failed');
    }
  }

  /**
   * The planning policy for the auto decision at every observation, read from
   * the store at most once a minute (and again after each run): it changes
   * only when a defrag is recorded. Runs and dry runs read it afresh.
   */
  private autoPolicy(r: Runner): ReturnType<typeof buildPolicy> {
    const now = this.now();
    if (r.autoPolicy === null || now - r.autoPolicy.atMs >= AUTO_POLICY_TTL_MS || now < r.autoPolicy.atMs) r.autoPolicy = { atMs: now, policy: this.planningPolicy(r) };
    return r.autoPolicy.policy;
  }

  /**
   * The cluster's policy with each member's past defrags from the store, so
   * the plan forecasts every member's duration and applies maxDefragDuration.
   * A store that cannot be read leaves the history out (every forecast
   * unknown; the plan warns that the limit was not applied) rather than
   * stopping the cluster's loop.
   */
  private planningPolicy(r: Runner): ReturnType<typeof buildPolicy> {
    try {
      return { ...r.policy, defragHistory: this.deps.store.defragHistory({ cluster: r.config.name, limit: DEFAULT_FORECAST_SAMPLES }) };
    } catch (err) {
      this.deps.logger.warn({ cluster: r.config.name, err: messageOf(err) }, 'the defrag history could not be read: durations are not forecast');
      return r.policy;
    }
  }

  /** The policy of one run: NOSPACE recovery compacts and disarms; retention compacts; rationed leader moves. */
  private runPolicy(r: Runner, trigger: RunTrigger): ReturnType<typeof buildPolicy> {
    const base = this.planningPolicy(r);
    const keep = this.keepRevisions(r);
    const moves = leaderMovesAllowed(r.leaderMovesMs, this.now(), {});
    const policy = moves.ok
      ? base
      : { ...base, moveLeader: false, moveLeaderOffReason: 'leadership was already moved twice in the last 15 minutes (etcdHighNumberOfLeaderChanges fires at 4)' };
    if (!moves.ok) this.deps.logger.info({ cluster: r.config.name }, 'leadership moved twice in the last 15 minutes: the leader is skipped this run');
    if (trigger === 'nospace') {
      if (keep === null) this.deps.logger.warn({ cluster: r.config.name }, 'NOSPACE recovery without a compaction retention: compacting to the newest revision');
      // Recovery defragments every member whatever the rule says: writes are down until every dbSize is under the margin.
      return { ...policy, rule: null, compactKeepRevisions: keep ?? 0, disarmNospace: true };
    }
    return keep === null ? policy : { ...policy, compactKeepRevisions: keep };
  }

  /** Revisions to keep by the compaction retention; null when there is none (or it reaches beyond what is known). */
  private keepRevisions(r: Runner): number | null {
    const c = r.config.compaction;
    if (c === null) return null;
    if ('retainRevisions' in c) return c.retainRevisions;
    const current = r.snapshot ? currentRevision(r.snapshot) : null;
    if (current === null) return null;
    const samples = this.deps.store.samples({ cluster: r.config.name, from: new Date(this.now() - c.retainMs * 2).toISOString() });
    const points = samples.filter((s) => s.isLeader).map((s) => ({ atMs: Date.parse(s.at), revision: s.revision }));
    const target = retentionRevision(points, c.retainMs, this.now());
    return target === null ? null : Math.max(0, current - target);
  }

  /** Starts a run in the background; runId resolves once the store knows it (null when nothing was started). */
  private launch(r: Runner, trigger: DefragTrigger): { runId: Promise<number | null>; done: Promise<RunReport | null> } {
    let announce: (id: number | null) => void = () => undefined;
    const runId = new Promise<number | null>((resolve) => (announce = resolve));
    let recorder: RunRecorder | null = null;
    const name = r.config.name;
    const running: NonNullable<Runner['running']> = { runId: null, trigger, currentMember: null, done: Promise.resolve(null) };
    r.running = running;
    this.deps.metrics.runStarted(name, trigger);
    running.done = (async () => {
      try {
        const report = await runDefrag(r.client, this.runPolicy(r, trigger), {
          observe: { cluster: true, quotaBytes: r.config.observe.quotaBytes },
          execute: r.config.execute,
          lock: { waitMs: this.deps.lockWaitMs ?? SERVE_LOCK_WAIT_MS, holder: `${this.by} (defragd serve)` },
          record: r.config.record === false ? false : { prefix: r.config.record.prefix, trigger, by: this.by },
          signal: this.stopping.signal,
          onEvent: (event) => {
            // A run is recorded from its first event: a run that found the lock busy records nothing.
            if (recorder === null) {
              recorder = recordRun(this.deps.store, {
                cluster: name,
                trigger,
                by: this.by,
                onError: (err) => this.deps.logger.error({ cluster: name, err: String(err) }, 'the store failed; the run goes on unrecorded'),
              });
              running.runId = recorder.runId;
              announce(recorder.runId);
              this.deps.metrics.lockHeld(name, true);
            }
            recorder.onEvent(event);
            this.track(r, running, event);
            this.emit({ cluster: name, runId: running.runId, at: new Date(this.now()).toISOString(), event });
          },
        });
        if (recorder === null) {
          this.deps.logger.info({ cluster: name, trigger, outcome: report.outcome, reason: report.message }, 'run not started');
        } else {
          (recorder as RunRecorder).finish(report);
          r.lastRunFinishedMs = this.now();
          r.fullAtMs = null;
          r.metricsAtMs = null;
          r.autoPolicy = null;
          if (trigger === 'nospace' && !report.disarmed) {
            r.nospaceRetryAtMs = this.now() + NOSPACE_RETRY_MS;
            this.deps.logger.error({ cluster: name, message: report.message }, 'NOSPACE recovery did not clear the alarm; the next attempt waits 5 minutes');
          }
          this.deps.logger.info({ cluster: name, trigger, runId: running.runId, outcome: report.outcome, reclaimedBytes: report.reclaimedBytes, message: report.message }, 'run finished');
        }
        this.deps.metrics.runFinished(name, trigger, report);
        return report;
      } catch (err) {
        this.deps.logger.error({ cluster: name, trigger, err: messageOf(err) }, 'run failed to start');
        return null;
      } finally {
        announce(null);
        r.running = null;
        this.deps.metrics.lockHeld(name, false);
        r.wake?.();
      }
    })();
    return { runId, done: running.done };
  }

  private track(r: Runner, running: NonNullable<Runner['running']>, event: StepEvent): void {
    if (event.type === 'member-started') {
      running.currentMember = { memberId: event.decision.memberId, name: event.decision.name, startedAt: new Date(this.now()).toISOString() };
    } else if (event.type === 'member-finished') {
      running.currentMember = null;
      const m = event.result;
      if (m.action === 'defragmented') this.deps.metrics.lastDefrag(r.config.name, m.name, m.memberId, { atMs: this.now(), durationMs: m.durationMs, revision: m.revision });
    } else if (event.type === 'leader-move-finished') {
      r.leaderMovesMs.push(this.now());
      r.leaderMovesMs = r.leaderMovesMs.filter((t) => t > this.now() - 3_600_000);
    }
  }

  private emit(e: DaemonEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.deps.logger.warn({ err: String(err) }, 'an event listener failed');
      }
    }
  }
}
