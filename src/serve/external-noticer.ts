/**
 * Noticing defragmentations someone else did (another defragd, etcdctl), for
 * one cluster: each member's defrag count from its /metrics against the last
 * full observation; a rise that no run of this daemon explains is recorded as
 * an `external` run of its own, as the other defragd's (its in-cluster record)
 * or unknown. The judging is external.ts's (pure); this reads what it needs,
 * records, counts, streams and logs. Never throws.
 */
import { recordPrefix } from '../app/record.js';
import { DEFAULT_RECORD_PREFIX } from '../domain/defaults.js';
import { messageOf } from '../domain/errors.js';
import type { MemberDefragStatus } from '../domain/record.js';
import type { RunReport } from '../domain/run.js';
import type { ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import type { Store } from '../store/index.js';
import type { StoreHealth } from './store-health.js';
import type { StoredRun } from '../store/types.js';
import type { ClusterAccess } from './access.js';
import type { Clock } from './clock.js';
import {
  countRose,
  decideExternal,
  externalMemberResult,
  METRIC_DEFRAG_COUNT,
  ownRunTouched,
  type DefragBaseline,
  type ExternalEntry,
} from './external.js';
import type { DaemonMetrics } from './metrics.js';
import type { GaugeReads } from './observation.js';
import type { RepeatedWarnings } from './repeated-warnings.js';
import type { DaemonEvent, DaemonLogger } from './types.js';

/** Tried again at every full observation while it fails: logged at most once a minute. */
const NOTICING_FAILED = 'noticing defragmentations by others failed';

export interface NoticerDeps {
  store: Store;
  storeHealth: StoreHealth;
  metrics: DaemonMetrics;
  logger: DaemonLogger;
  clock: Clock;
  repeats: RepeatedWarnings;
  /** Who this daemon records its runs as: its own runs explain a rise. */
  by: string;
  emit(e: DaemonEvent): void;
}

export class ExternalNoticer {
  /** Per member ID: its defrag count as last observed. */
  private baselines = new Map<string, DefragBaseline>();
  private readonly prefix: string;

  constructor(
    private readonly cluster: string,
    record: false | { prefix: string },
    private readonly access: ClusterAccess,
    private readonly deps: NoticerDeps,
  ) {
    this.prefix = recordPrefix(record === false ? DEFAULT_RECORD_PREFIX : record.prefix);
  }

  /** What the observations compare with (a rise still being told apart keeps them full). */
  get counts(): ReadonlyMap<string, DefragBaseline> {
    return this.baselines;
  }

  /**
   * Compares the counts read at `atMs` with the baselines and records what someone else did. Not while a
   * run of this cluster is in progress (`running()`): the baseline stays, and the run is told apart
   * afterwards. Returns how many defragmentations were recorded.
   */
  async notice(
    snapshot: ClusterSnapshot,
    atMs: number,
    gauges: GaugeReads,
    o: { running: () => boolean; signal: AbortSignal },
  ): Promise<number> {
    if (o.running()) return 0;
    try {
      // Members that did not answer Status have no count, as when /metrics fails.
      const counts = snapshot.members.map((m) => ({
        m,
        count: (m.endpoint ? gauges.get(m.endpoint)?.get(METRIC_DEFRAG_COUNT) : null) ?? null,
      }));
      const rose = counts.filter(({ m, count }) => countRose(this.baselines.get(m.memberId) ?? null, count));
      let statuses: MemberDefragStatus[] = [];
      let own: { run: StoredRun; report: RunReport | null }[] = [];
      if (rose.length > 0) {
        const call = { timeoutMs: this.access.commandTimeoutMs, signal: o.signal };
        statuses = await this.access.memberRecords(snapshot, this.prefix, new Date(this.deps.clock.now()), call);
        if (o.running() || o.signal.aborted) return 0;
        own = this.ownRunsSince(Math.min(...rose.map(({ m }) => this.baselines.get(m.memberId)?.atMs ?? atMs)));
      }
      const next = new Map<string, DefragBaseline>();
      const entries: { m: MemberSnapshot; e: ExternalEntry }[] = [];
      for (const { m, count } of counts) {
        const previous = this.baselines.get(m.memberId) ?? null;
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
            ownRun: previous !== null && ownRunTouched(own, this.deps.by, m.memberId, previous.atMs),
          },
          { ourBy: this.deps.by },
        );
        if (d.baseline) next.set(m.memberId, d.baseline);
        entries.push(...d.entries.map((e) => ({ m, e })));
      }
      // Remembered before writing: an entry the store fails to write is lost, never recorded twice.
      this.baselines = next;
      for (const { m, e } of entries) this.record(m, e);
      this.deps.repeats.ended(NOTICING_FAILED, this.cluster, 'noticing defragmentations by others works again');
      return entries.length;
    } catch (err) {
      this.deps.repeats.warn(NOTICING_FAILED, this.cluster, messageOf(err));
      return 0;
    }
  }

  /** This daemon's own runs that may have touched a member since `sinceMs`. */
  private ownRunsSince(sinceMs: number): { run: StoredRun; report: RunReport | null }[] {
    return this.deps.storeHealth
      .read('read the recent runs', () => this.deps.store.runs({ cluster: this.cluster, limit: 10 }), [], { cluster: this.cluster })
      .filter(
        (run) => run.by === this.deps.by && run.trigger !== 'external' && (run.finishedAt === null || Date.parse(run.finishedAt) > sinceMs),
      )
      .map((run) => ({ run, report: this.deps.store.run(run.id)?.report ?? null }));
  }

  /** Recorded, counted and streamed like a run of its own, so /metrics and the dashboard show every run of the cluster. */
  private record(m: MemberSnapshot, e: ExternalEntry): void {
    const { store, metrics, logger, clock } = this.deps;
    // A store that cannot record it is the store's condition: the metrics and the log still tell.
    const runId = this.deps.storeHealth.write(
      'record a defragmentation by someone else',
      () =>
        store.recordExternal({
          cluster: this.cluster,
          by: e.by,
          startedAt: e.startedAt,
          finishedAt: e.finishedAt,
          message: e.message,
          member: externalMemberResult(e),
        }),
      null,
      { cluster: this.cluster },
    );
    metrics.lastDefrag(this.cluster, m.name, m.memberId, {
      atMs: Date.parse(e.finishedAt),
      durationMs: e.durationMs,
      revision: e.revision,
    });
    const report = runId === null ? null : (this.deps.storeHealth.read('read a run', () => store.run(runId), null)?.report ?? null);
    if (report) {
      metrics.runFinished(this.cluster, 'external', report);
      this.deps.emit({ cluster: this.cluster, runId, at: new Date(clock.now()).toISOString(), event: { type: 'run-finished', report } });
    }
    logger.info(
      { cluster: this.cluster, member: m.name, by: e.by, trigger: e.trigger, runId, message: e.message },
      'a defragmentation by someone else noticed',
    );
  }
}
