/**
 * How often the daemon looks, and how closely: a full observation (member
 * list, alarms, a health read and /metrics per member) at least every
 * FULL_OBSERVATION_EVERY_MS; in between, when the interval is shorter, each
 * member's Status only (observe/refresh.ts), which asks for a full one at once
 * when anything in it is unusual. Each member's /metrics (its quota on etcd
 * < 3.6, its defrag count, its StopGRPCServiceOnDefrag gate) is read at a
 * full observation at least every METRICS_EVERY_MS, after each run, and
 * whenever the member's db file shrank since the observation before (someone
 * else's defragmentation); in between, its quota as last read.
 */
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { StatusReply } from '../etcd/client.js';
import { rememberQuotas } from '../observe/observe.js';
import type { ClusterAccess } from './access.js';
import type { Clock } from './clock.js';
import { METRIC_DEFRAG_COUNT, type DefragBaseline } from './external.js';

export const FULL_OBSERVATION_EVERY_MS = 30_000;
export const METRICS_EVERY_MS = 5 * 60_000;
/** After a db file shrank, every observation is full and reads /metrics this long: the count may lag the shrink. */
const RECHECK_AFTER_SHRINK_MS = 10_000;

/** Each answering member's gauges by endpoint; null: its /metrics did not answer. */
export type GaugeReads = ReadonlyMap<string, ReadonlyMap<string, number> | null>;

export interface Observation {
  snapshot: ClusterSnapshot;
  /** A full observation: when it began (before /metrics was read) and the defrag counts read with it; null when light. */
  full: { atMs: number; gauges: GaugeReads } | null;
}

export class ObservationCadence {
  /** When the last full observation began; null: the next one is full. */
  private fullAtMs: number | null = null;
  /** When every member's /metrics was last read; null: at the next full observation. */
  private metricsAtMs: number | null = null;
  private recheckUntilMs = 0;
  /** Quotas read from /metrics, by member ID, reused until every member's is read again. */
  private quotas = new Map<string, number>();

  constructor(
    private readonly access: ClusterAccess,
    private readonly quotaBytes: number | null,
    private readonly clock: Clock,
    private readonly onFullAtOnce: (reason: string) => void,
  ) {}

  /** After a run: the next observation is full and reads every member's /metrics. */
  afterRun(): void {
    this.fullAtMs = null;
    this.metricsAtMs = null;
  }

  /**
   * Observes, light when nothing asks for a full one: a full one is due, a run is in progress, or a rise of a
   * defrag count is still being told apart (`telling`). Throws what the observation throws.
   */
  async observe(
    previous: ClusterSnapshot | null,
    o: { running: boolean; baselines: ReadonlyMap<string, DefragBaseline>; signal: AbortSignal },
  ): Promise<Observation> {
    // Taken before /metrics is read: a defragmentation finishing after it is in the next window.
    const atMs = this.clock.now();
    const telling = [...o.baselines.values()].some((b) => b.pending !== null);
    const fullDue = this.fullAtMs === null || atMs - this.fullAtMs >= FULL_OBSERVATION_EVERY_MS || atMs < this.recheckUntilMs;
    if (previous !== null && !fullDue && !o.running && !telling) {
      const refreshed = await this.access.refresh(previous, { quotaBytes: this.quotaBytes, signal: o.signal });
      if (refreshed.snapshot !== null) return { snapshot: keepGates(previous, refreshed.snapshot), full: null };
      this.onFullAtOnce(refreshed.fullBecause);
    }
    this.fullAtMs = atMs;
    const metricsDue = this.metricsAtMs === null || atMs - this.metricsAtMs >= METRICS_EVERY_MS;
    const rechecking = atMs < this.recheckUntilMs;
    const sizesBefore = new Map((previous?.members ?? []).map((m) => [m.memberId, m.status?.dbSize ?? null]));
    let shrank = false;
    // The defrag counts come in the same /metrics read as the quota: one request per member.
    const found = new Map<string, ReadonlyMap<string, number> | null>();
    const only = (memberId: string, status: StatusReply): boolean => {
      if (metricsDue || rechecking) return true;
      const before = sizesBefore.get(memberId) ?? null;
      const baseline = o.baselines.get(memberId);
      if (before !== null && status.dbSize < before) shrank = true;
      // A shrunken file (someone defragmented?), a rise still being told apart, or nothing known yet.
      return before === null || status.dbSize < before || baseline === undefined || baseline.pending !== null;
    };
    const snapshot = await this.access.observe({
      quotaBytes: this.quotaBytes,
      signal: o.signal,
      gauges: { names: [METRIC_DEFRAG_COUNT], found, only },
      knownQuotas: metricsDue ? undefined : this.quotas,
      // A start-up setting of each member: read with the quota, every few minutes.
      features: metricsDue,
    });
    if (metricsDue) {
      this.metricsAtMs = atMs;
      this.quotas = new Map();
    }
    rememberQuotas(this.quotas, snapshot);
    if (shrank) this.recheckUntilMs = atMs + RECHECK_AFTER_SHRINK_MS;
    return { snapshot: keepGates(previous, snapshot), full: { atMs, gauges: found } };
  }
}

/** StopGRPCServiceOnDefrag is read with the quotas; between those reads each member keeps what it said. */
function keepGates(previous: ClusterSnapshot | null, snapshot: ClusterSnapshot): ClusterSnapshot {
  const gates = new Map((previous?.members ?? []).map((m) => [m.memberId, m.stopGrpcServiceOnDefrag]));
  for (const m of snapshot.members)
    if (m.stopGrpcServiceOnDefrag === undefined && gates.get(m.memberId) !== undefined) m.stopGrpcServiceOnDefrag = gates.get(m.memberId);
  return snapshot;
}
