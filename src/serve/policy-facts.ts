/**
 * What a cluster's run policy is made from besides its config (policy.ts's
 * PolicyFacts): each member's defrag history and the retention's revisions
 * to keep, both read from the store, with the leader moves the loop made. A
 * run reads them afresh; the auto check at every observation reuses them for
 * a minute (and not past a run or a noticed defragmentation). A store that
 * cannot be read leaves the history out (every forecast unknown; the plan
 * warns that the limit was not applied) rather than stopping the loop.
 */
import type { Policy } from '../domain/plan.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { currentRevision, DEFAULT_FORECAST_SAMPLES } from '../planner/index.js';
import type { Store } from '../store/index.js';
import type { StoreHealth } from './store-health.js';
import type { Clock } from './clock.js';
import type { CompactionConfig } from './config.js';
import type { PolicyFacts } from './policy.js';
import { retentionRevision } from './schedule.js';
import type { DaemonLogger } from './types.js';

/** The auto check's facts are read at most this often. */
const FACTS_TTL_MS = 60_000;

export class PolicyFactsReader {
  private cached: { atMs: number; facts: PolicyFacts } | null = null;

  constructor(
    private readonly cluster: string,
    private readonly base: Policy,
    private readonly compaction: CompactionConfig | null,
    private readonly deps: { store: Store; storeHealth: StoreHealth; logger: DaemonLogger; clock: Clock },
  ) {}

  /** The next read goes to the store (a run finished, a defragmentation was noticed). */
  invalidate(): void {
    this.cached = null;
  }

  read(o: { fresh: boolean; snapshot: ClusterSnapshot | null; leaderMovesMs: readonly number[] }): PolicyFacts {
    const now = this.deps.clock.now();
    const c = this.cached;
    if (!o.fresh && c !== null && now - c.atMs < FACTS_TTL_MS && now >= c.atMs)
      return { ...c.facts, leaderMovesMs: o.leaderMovesMs, nowMs: now };
    const facts: PolicyFacts = {
      base: this.base,
      defragHistory: this.tryRead('the defrag history could not be read: durations are not forecast', () =>
        this.deps.store.defragHistory({ cluster: this.cluster, limit: DEFAULT_FORECAST_SAMPLES }),
      ),
      leaderMovesMs: o.leaderMovesMs,
      nowMs: now,
      keepRevisions:
        this.tryRead('the samples could not be read: no compaction by the retention this time', () =>
          this.keepRevisions(o.snapshot, now),
        ) ?? null,
    };
    this.cached = { atMs: now, facts };
    return facts;
  }

  /** A read the policy can do without: a failing store is the store's condition (StoreHealth), and the policy says what it lacks. */
  private tryRead<T>(warning: string, read: () => T): T | undefined {
    const failed = Symbol('failed');
    const value = this.deps.storeHealth.read<T | typeof failed>('read the policy facts', read, failed, { cluster: this.cluster });
    if (value !== failed) return value;
    this.deps.logger.warn({ cluster: this.cluster }, warning);
    return undefined;
  }

  /** Revisions to keep by the compaction retention; null when there is none (or it reaches beyond what is known). */
  private keepRevisions(snapshot: ClusterSnapshot | null, now: number): number | null {
    const c = this.compaction;
    if (c === null) return null;
    if ('retainRevisions' in c) return c.retainRevisions;
    const current = snapshot ? currentRevision(snapshot) : null;
    if (current === null) return null;
    const samples = this.deps.store.samples({ cluster: this.cluster, from: new Date(now - c.retainMs * 2).toISOString() });
    const points = samples.filter((s) => s.isLeader).map((s) => ({ atMs: Date.parse(s.at), revision: s.revision }));
    const target = retentionRevision(points, c.retainMs, now);
    return target === null ? null : Math.max(0, current - target);
  }
}
