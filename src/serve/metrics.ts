/**
 * The daemon's Prometheus metrics (`GET /metrics`). The daemon tells this
 * module what it saw and did (observed, runStarted, runFinished, ...); the
 * module only keeps the series in its own registry, never reads the daemon.
 *
 * Member figures are the snapshot's own numbers (unrounded), so `/metrics`
 * and `/api/v1/clusters` agree: bytes exactly, ratios up to the 4 decimals
 * the JSON rounds to. Series of members that left a cluster are removed, so
 * dashboards do not show ghosts of replaced members.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { MemberAction, RunOutcome, RunReport } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { RunTrigger } from '../store/types.js';
import { memberName } from '../domain/member-name.js';

/** What the daemon calls; one instance per daemon (its registry holds nothing else unless given one). */
export interface DaemonMetrics {
  /**
   * One observation of a cluster: `snapshot` when it answered (even partly),
   * `error` when it failed (both may be set). A failed observation keeps the
   * last known figures and counts an error. `kind` counts an observation that answered: full (member
   * list, alarms, health, /metrics) or light (each member's Status only).
   */
  observed(cluster: string, snapshot: ClusterSnapshot | null, error: string | null, kind?: 'full' | 'light'): void;
  /** The last defragmentation known for a member (ours, another replica's, or external). */
  lastDefrag(cluster: string, member: string, memberId: string, last: LastDefrag): void;
  runStarted(cluster: string, trigger: RunTrigger): void;
  runFinished(cluster: string, trigger: RunTrigger, report: RunReport): void;
  /** The next scheduled start (ms since the epoch), or null when none is scheduled. */
  nextRun(cluster: string, atMs: number | null): void;
  /** Whether this replica holds the cluster lock. */
  lockHeld(cluster: string, held: boolean): void;
  /** A write to (or read from) the store failed; `ok` when one succeeded after failures. */
  storeFailed(operation: string): void;
  storeOk(ok: boolean): void;
  /** Drops every series of a cluster (e.g. removed from the config on reload). */
  forgetCluster(cluster: string): Promise<void>;
  /** The exposition text, as `GET /metrics` answers it. */
  text(): Promise<string>;
  /** The content type of `text()`. */
  readonly contentType: string;
  /** The registry the series live in (to add process metrics, or to merge). */
  readonly registry: Registry;
}

export interface LastDefrag {
  /** When it finished, ms since the epoch. */
  atMs: number;
  durationMs: number | null;
  /** Revision in the Defragment answer; null when unknown. */
  revision: number | null;
}

const MEMBER_LABELS = ['cluster', 'member', 'member_id'] as const;
type MemberLabels = Record<(typeof MEMBER_LABELS)[number], string>;

const RUN_OUTCOMES: readonly RunOutcome[] = ['success', 'nothing-to-do', 'failed', 'refused', 'interrupted', 'dry-run'];
const MEMBER_ACTIONS: readonly MemberAction[] = ['defragmented', 'skipped', 'failed'];

const msToSeconds = (ms: number) => ms / 1000;

/**
 * Creates the daemon's metrics in `registry` (a fresh one by default; never
 * prom-client's global registry, so two daemons in one process, or tests, do
 * not share series).
 *
 * @example
 *   const metrics = createMetrics();
 *   metrics.observed('prod', snapshot, null);
 *   const body = await metrics.text(); // defragd_member_db_size_bytes{cluster="prod",...} 104857600
 */
export function createMetrics(registry: Registry = new Registry()): DaemonMetrics {
  const registers = [registry];
  const memberGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: MEMBER_LABELS, registers });

  const dbSize = memberGauge(
    'defragd_member_db_size_bytes',
    "Size of the member's backend database file (etcd's dbSize), as last observed.",
  );
  const dbSizeInUse = memberGauge(
    'defragd_member_db_size_in_use_bytes',
    "Bytes of the member's database in use (dbSizeInUse); the rest is free pages.",
  );
  const dbSizeFree = memberGauge(
    'defragd_member_db_size_free_bytes',
    'Free pages in the member database (dbSize - dbSizeInUse): what a defragmentation would reclaim.',
  );
  const fragmentation = memberGauge(
    'defragd_member_fragmentation_ratio',
    'Share of the member database that is free pages (dbSizeFree / dbSize, 0..1).',
  );
  const quota = memberGauge('defragd_member_quota_bytes', "The member's backend quota (--quota-backend-bytes), as defragd determined it.");
  const quotaUsage = memberGauge('defragd_member_quota_usage_ratio', 'dbSize / quota: at 1 etcd raises NOSPACE and refuses writes.');
  const up = memberGauge('defragd_member_up', '1 when the member answered Status and a linearizable read at the last observation, else 0.');
  const isLeader = memberGauge('defragd_member_is_leader', '1 when the member led the cluster at the last observation, else 0.');
  const isLearner = memberGauge('defragd_member_is_learner', '1 when the member is a learner (non-voting), else 0.');
  const alarm = new Gauge({
    name: 'defragd_member_alarm',
    help: '1 while etcd reports the alarm (NOSPACE, CORRUPT) raised for the member; the series disappears once cleared.',
    labelNames: [...MEMBER_LABELS, 'alarm'] as const,
    registers,
  });
  const lastDefragAt = memberGauge(
    'defragd_member_last_defrag_timestamp_seconds',
    'Unix time the last known defragmentation of the member finished (by any defragd, or external).',
  );
  const lastDefragDuration = memberGauge(
    'defragd_member_last_defrag_duration_seconds',
    'How long the last known defragmentation of the member took.',
  );
  const lastDefragRevision = memberGauge(
    'defragd_member_last_defrag_revision',
    'Store revision in the answer of the last known defragmentation of the member.',
  );

  const observationErrors = new Counter({
    name: 'defragd_observation_errors_total',
    help: 'Observations of the cluster that failed (no member answered, or the observation itself failed).',
    labelNames: ['cluster'] as const,
    registers,
  });
  const observations = new Counter({
    name: 'defragd_observations_total',
    help: 'Observations of the cluster that answered, by kind: full (member list, alarms, health, /metrics) or light (Status only).',
    labelNames: ['cluster', 'kind'] as const,
    registers,
  });
  const lastObservation = new Gauge({
    name: 'defragd_cluster_last_observation_timestamp_seconds',
    help: 'Unix time of the last observation of the cluster that answered (its snapshot time).',
    labelNames: ['cluster'] as const,
    registers,
  });
  const runs = new Counter({
    name: 'defragd_runs_total',
    help: 'Runs this replica finished, or noticed (trigger external: a defragmentation by someone else), by what started them and how they ended.',
    labelNames: ['cluster', 'trigger', 'outcome'] as const,
    registers,
  });
  const runInProgress = new Gauge({
    name: 'defragd_run_in_progress',
    help: '1 while this replica runs a defragmentation of the cluster, else 0.',
    labelNames: ['cluster'] as const,
    registers,
  });
  const lastRunAt = new Gauge({
    name: 'defragd_last_run_timestamp_seconds',
    help: 'Unix time the last run of the cluster with this outcome finished (on this replica).',
    labelNames: ['cluster', 'outcome'] as const,
    registers,
  });
  const reclaimed = new Counter({
    name: 'defragd_reclaimed_bytes_total',
    help: 'Bytes reclaimed by the runs counted in defragd_runs_total (sum of dbSize before - after over defragmented members).',
    labelNames: ['cluster'] as const,
    registers,
  });
  const memberDefrags = new Counter({
    name: 'defragd_member_results_total',
    help: 'Members handled by the runs counted in defragd_runs_total, by what happened to them (defragmented, skipped, failed).',
    labelNames: ['cluster', 'member', 'action'] as const,
    registers,
  });
  const nextRunAt = new Gauge({
    name: 'defragd_next_scheduled_run_timestamp_seconds',
    help: 'Unix time of the next scheduled start of the cluster (jitter included once drawn); absent without a schedule.',
    labelNames: ['cluster'] as const,
    registers,
  });
  const storeErrors = new Counter({
    name: 'defragd_store_errors_total',
    help: "Reads and writes of the daemon's SQLite store that failed, by what was done; observation and runs go on without it.",
    labelNames: ['operation'] as const,
    registers,
  });
  const storeUp = new Gauge({
    name: 'defragd_store_up',
    help: "1 while the daemon's last write to its store succeeded, 0 after it failed (disk full, file gone, read-only).",
    registers,
  });
  storeUp.set(1);
  const lock = new Gauge({
    name: 'defragd_lock_held',
    help: "1 while this replica holds the cluster's defragd lock, else 0.",
    labelNames: ['cluster'] as const,
    registers,
  });

  const memberSeries = [
    dbSize,
    dbSizeInUse,
    dbSizeFree,
    fragmentation,
    quota,
    quotaUsage,
    up,
    isLeader,
    isLearner,
    lastDefragAt,
    lastDefragDuration,
    lastDefragRevision,
  ];
  const statusSeries = [dbSize, dbSizeInUse, dbSizeFree, fragmentation, quota, quotaUsage];

  // Per cluster: the member label each member ID was last shown with, and the
  // alarm series shown, so that what disappears from the cluster disappears here.
  const membersShown = new Map<string, Map<string, string>>();
  const alarmsShown = new Map<string, Map<string, { labels: MemberLabels; alarm: string }>>();

  const labelsOf = (cluster: string, name: string, memberId: string): MemberLabels => ({
    cluster,
    member: memberName({ name, memberId }),
    member_id: memberId,
  });

  const shownIn = (cluster: string) => {
    let shown = membersShown.get(cluster);
    if (shown === undefined) membersShown.set(cluster, (shown = new Map()));
    return shown;
  };

  const removeMember = (cluster: string, memberId: string, memberLabel: string) => {
    const labels: MemberLabels = { cluster, member: memberLabel, member_id: memberId };
    for (const g of memberSeries) g.remove(labels);
    for (const action of MEMBER_ACTIONS) memberDefrags.remove({ cluster, member: memberLabel, action });
  };

  /** Records the label a member is shown with; when its name changed (an unnamed member started), the old series go. */
  const show = (cluster: string, labels: MemberLabels) => {
    const shown = shownIn(cluster);
    const before = shown.get(labels.member_id);
    if (before !== undefined && before !== labels.member) removeMember(cluster, labels.member_id, before);
    shown.set(labels.member_id, labels.member);
  };

  const removeAlarm = (key: string, shown: Map<string, { labels: MemberLabels; alarm: string }>) => {
    const entry = shown.get(key);
    if (entry === undefined) return;
    alarm.remove({ ...entry.labels, alarm: entry.alarm });
    shown.delete(key);
  };

  const observed = (cluster: string, snapshot: ClusterSnapshot | null, error: string | null, kind?: 'full' | 'light') => {
    // Present from the first observation, so increase() sees the first error.
    observationErrors.inc({ cluster }, error === null ? 0 : 1);
    if (kind !== undefined) observations.inc({ cluster, kind });
    if (snapshot === null) {
      // Nothing answered: the figures stay as last known, but nobody is up.
      for (const [memberId, member] of shownIn(cluster)) up.set({ cluster, member, member_id: memberId }, 0);
      return;
    }
    lastObservation.set({ cluster }, msToSeconds(Date.parse(snapshot.observedAt)));

    const present = new Set<string>();
    for (const m of snapshot.members) {
      const labels = labelsOf(cluster, m.name, m.memberId);
      show(cluster, labels);
      present.add(m.memberId);
      const s = m.status;
      if (s === null) {
        // Unknown now: no stale figures beside up=0.
        for (const g of statusSeries) g.remove(labels);
      } else {
        dbSize.set(labels, s.dbSize);
        dbSizeInUse.set(labels, s.dbSizeInUse);
        dbSizeFree.set(labels, s.dbSizeFree);
        fragmentation.set(labels, s.fragmentation);
        quota.set(labels, s.quota);
        quotaUsage.set(labels, s.quotaUsage);
      }
      up.set(labels, m.healthy ? 1 : 0);
      isLeader.set(labels, s?.isLeader ? 1 : 0);
      isLearner.set(labels, m.isLearner ? 1 : 0);
    }
    const shown = shownIn(cluster);
    for (const [memberId, member] of [...shown]) {
      if (present.has(memberId)) continue;
      removeMember(cluster, memberId, member);
      shown.delete(memberId);
    }

    let alarms = alarmsShown.get(cluster);
    if (alarms === undefined) alarmsShown.set(cluster, (alarms = new Map()));
    // Alarms of members that left go with them; when the alarm list could not
    // be read, the others stay as last known rather than look cleared.
    const names = new Map(snapshot.members.map((m) => [m.memberId, m.name]));
    const raised = new Set<string>();
    if (snapshot.alarmsError === null) {
      for (const a of snapshot.alarms) {
        // An alarm of an ID that is no member (a removed one) still blocks writes: shown under its hex ID.
        const labels = labelsOf(cluster, names.get(a.memberId) ?? '', a.memberId);
        const key = `${a.memberId}\u0000${a.alarm}`;
        raised.add(key);
        if (alarms.get(key)?.labels.member !== labels.member) removeAlarm(key, alarms);
        alarm.set({ ...labels, alarm: a.alarm }, 1);
        alarms.set(key, { labels, alarm: a.alarm });
      }
    }
    for (const [key, entry] of [...alarms]) {
      const gone = snapshot.alarmsError === null ? !raised.has(key) : !present.has(entry.labels.member_id);
      if (gone) removeAlarm(key, alarms);
    }
  };

  const lastDefrag = (cluster: string, member: string, memberId: string, last: LastDefrag) => {
    const labels = labelsOf(cluster, member, memberId);
    show(cluster, labels);
    lastDefragAt.set(labels, msToSeconds(last.atMs));
    if (last.durationMs === null) lastDefragDuration.remove(labels);
    else lastDefragDuration.set(labels, msToSeconds(last.durationMs));
    if (last.revision === null) lastDefragRevision.remove(labels);
    else lastDefragRevision.set(labels, last.revision);
  };

  /** Every outcome present (at 0) from the first run, so increase() sees the first failure. */
  const runSeries = (cluster: string, trigger: RunTrigger) => {
    for (const outcome of RUN_OUTCOMES) runs.inc({ cluster, trigger, outcome }, 0);
    reclaimed.inc({ cluster }, 0);
  };

  const runStarted = (cluster: string, trigger: RunTrigger) => {
    runSeries(cluster, trigger);
    runInProgress.set({ cluster }, 1);
  };

  const runFinished = (cluster: string, trigger: RunTrigger, report: RunReport) => {
    runSeries(cluster, trigger);
    // An external run is noticed after the fact, maybe while one of this daemon's own is in progress.
    if (trigger !== 'external') runInProgress.set({ cluster }, 0);
    runs.inc({ cluster, trigger, outcome: report.outcome });
    lastRunAt.set({ cluster, outcome: report.outcome }, msToSeconds(Date.parse(report.finishedAt)));
    // A dry run changed nothing: its plan says what would have been done.
    if (report.dryRun) return;
    if (report.reclaimedBytes > 0) reclaimed.inc({ cluster }, report.reclaimedBytes);
    for (const m of report.members) {
      const labels = labelsOf(cluster, m.name, m.memberId);
      memberDefrags.inc({ cluster, member: labels.member, action: m.action });
    }
  };

  const nextRun = (cluster: string, atMs: number | null) => {
    if (atMs === null) nextRunAt.remove({ cluster });
    else nextRunAt.set({ cluster }, msToSeconds(atMs));
  };

  const lockHeld = (cluster: string, held: boolean) => {
    lock.set({ cluster }, held ? 1 : 0);
  };

  const forgetCluster = async (cluster: string) => {
    for (const [memberId, member] of shownIn(cluster)) removeMember(cluster, memberId, member);
    membersShown.delete(cluster);
    const alarms = alarmsShown.get(cluster);
    for (const key of [...(alarms?.keys() ?? [])]) removeAlarm(key, alarms!);
    alarmsShown.delete(cluster);
    const perCluster: (Gauge<string> | Counter<string>)[] = [
      observationErrors,
      observations,
      lastObservation,
      runInProgress,
      reclaimed,
      nextRunAt,
      lock,
      runs,
      lastRunAt,
      memberDefrags,
    ];
    for (const metric of perCluster) await removeWhere(metric, cluster);
  };

  return {
    observed,
    storeFailed: (operation: string) => storeErrors.inc({ operation }),
    storeOk: (ok: boolean) => storeUp.set(ok ? 1 : 0),
    lastDefrag,
    runStarted,
    runFinished,
    nextRun,
    lockHeld,
    forgetCluster,
    text: () => registry.metrics(),
    contentType: registry.contentType,
    registry,
  };
}

/** The prefix of every series the daemon exposes, its process metrics included. */
export const METRICS_PREFIX = 'defragd_';

/**
 * Adds prom-client's process and Node.js metrics to the daemon's registry,
 * under the daemon's prefix (`defragd_process_resident_memory_bytes`,
 * `defragd_process_cpu_seconds_total`, `defragd_nodejs_eventloop_lag_p99_seconds`,
 * heap and GC figures): what an operator needs to see what the daemon itself
 * costs. Called once per process by `serve` (not by createMetrics: each call
 * starts an event-loop delay monitor and a GC observer that live as long as
 * the process). The event-loop figures are those since the previous scrape.
 *
 * @example
 *   const metrics = createMetrics();
 *   collectProcessMetrics(metrics.registry);
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });
}

/**
 * The event-loop monitor's timer, in ms. Its figures are the intervals
 * between the timer's ticks, so this is their floor (0.1 s: no delay). At
 * prom-client's default of 10 ms, the timer alone cost the daemon about 1 %
 * of a core, more than watching 10 clusters.
 */
export const EVENT_LOOP_RESOLUTION_MS = 100;

/** Removes every series of a metric whose `cluster` label is `cluster`. */
async function removeWhere(metric: Gauge<string> | Counter<string>, cluster: string): Promise<void> {
  // prom-client removes by full label set only; get() lists the series there are.
  const { values } = await metric.get();
  for (const v of values) if (v.labels['cluster'] === cluster) metric.remove(v.labels as Record<string, string>);
}
