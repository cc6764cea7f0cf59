/**
 * A hand-written DaemonView for the HTTP API's tests (and the dashboard's):
 * clusters, runs and answers are set by the test; `emit` plays a daemon event
 * to every subscriber; calls are recorded.
 *
 *   const view = new FakeDaemonView().withCluster(aClusterView('prod', { snapshot }));
 *   view.startRunAnswer = { ok: false, status: 409, reason: 'a run of prod is in progress' };
 */
import type { MemberDefragStatus } from '../../src/domain/record.js';
import type { ClusterView, DaemonEvent, DaemonView, StartRunResult } from '../../src/serve/types.js';
import type { Sample, StoredRun, StoredRunDetail } from '../../src/store/types.js';

export function aClusterView(name: string, overrides: Partial<ClusterView> = {}): ClusterView {
  return {
    name,
    state: 'idle',
    snapshot: null,
    observedAt: null,
    observeError: null,
    lastRun: null,
    nextRun: null,
    schedule: null,
    timezone: 'UTC',
    windows: [],
    runningRunId: null,
    currentMember: null,
    lockHeld: false,
    ...overrides,
  };
}

export function aStoredRun(id: number, cluster: string, overrides: Partial<StoredRun> = {}): StoredRun {
  return {
    id,
    cluster,
    trigger: 'schedule',
    by: 'host:1',
    startedAt: '2024-05-01T03:00:00.000Z',
    finishedAt: '2024-05-01T03:02:00.000Z',
    outcome: 'success',
    message: null,
    dryRun: false,
    compactedRevision: null,
    disarmed: false,
    reclaimedBytes: 0,
    membersTotal: 3,
    membersDefragmented: 3,
    membersFailed: 0,
    durationMs: 120_000,
    ...overrides,
  };
}

export class FakeDaemonView implements DaemonView {
  readiness: { ok: boolean; reason: string | null } = { ok: true, reason: null };
  readonly clusterViews = new Map<string, ClusterView>();
  readonly runs = new Map<number, StoredRunDetail>();
  readonly histories = new Map<string, StoredRun[]>();
  readonly statuses = new Map<string, MemberDefragStatus[]>();
  /** Per cluster, its samples oldest first (what the store would hold). */
  readonly sampleLists = new Map<string, Sample[]>();
  startRunAnswer: StartRunResult = { ok: true, runId: 7, dryRun: false };
  /** Thrown by every call when set: the daemon failing unexpectedly. */
  failWith: Error | null = null;
  /** Thrown by the named call only (e.g. `defragmentationStatus`, `startRun`): what the daemon throws for one cluster. */
  readonly failures = new Map<string, Error>();
  readonly calls: { method: string; args: unknown[] }[] = [];
  private readonly listeners = new Set<(e: DaemonEvent) => void>();

  withCluster(view: ClusterView): this {
    this.clusterViews.set(view.name, view);
    return this;
  }

  /** Subscribers right now (an SSE client that went away must not be one). */
  get subscribers(): number {
    return this.listeners.size;
  }

  emit(e: DaemonEvent): void {
    for (const l of [...this.listeners]) l(e);
  }

  private call(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failWith !== null) throw this.failWith;
    const failure = this.failures.get(method);
    if (failure !== undefined) throw failure;
  }

  ready(): { ok: boolean; reason: string | null } {
    this.call('ready');
    return this.readiness;
  }

  clusters(): ClusterView[] {
    this.call('clusters');
    return [...this.clusterViews.values()];
  }

  cluster(name: string): ClusterView | undefined {
    this.call('cluster', name);
    return this.clusterViews.get(name);
  }

  history(name: string, limit: number, since?: string): StoredRun[] {
    if (since === undefined) this.call('history', name, limit);
    else this.call('history', name, limit, since);
    const runs = this.histories.get(name) ?? [];
    const kept = since === undefined ? runs : runs.filter((r) => r.finishedAt === null || r.finishedAt >= since);
    return kept.slice(0, limit);
  }

  samples(name: string, from: string): Sample[] {
    this.call('samples', name, from);
    return (this.sampleLists.get(name) ?? []).filter((s) => s.at >= from);
  }

  runDetail(id: number): StoredRunDetail | null {
    this.call('run', id);
    return this.runs.get(id) ?? null;
  }

  async defragmentationStatus(name: string): Promise<MemberDefragStatus[]> {
    this.call('defragmentationStatus', name);
    return this.statuses.get(name) ?? [];
  }

  async startRun(name: string, opts: { dryRun: boolean }): Promise<StartRunResult> {
    this.call('startRun', name, opts);
    return this.startRunAnswer;
  }

  subscribe(listener: (e: DaemonEvent) => void): () => void {
    this.call('subscribe');
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
