/**
 * The daemon's (`defragd serve`) shapes, shared by its parts: the scheduler
 * decides when, the daemon runs and remembers, the metrics and the HTTP API
 * only read what the daemon shows them through DaemonView. No behaviour here.
 */
import type { MemberDefragStatus } from '../domain/record.js';
import type { RunReport, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { RunTrigger, Sample, StoredRun, StoredRunDetail } from '../store/types.js';

/** What a cluster is doing now, as the dashboard and /api/v1/clusters say it. */
export type ClusterState = 'idle' | 'running' | 'cooldown' | 'unreachable';

export interface ClusterView {
  name: string;
  state: ClusterState;
  /** The latest observation; null before the first one answered. */
  snapshot: ClusterSnapshot | null;
  /** When the cluster was last observed (answered or not); null before the first observation. */
  observedAt: string | null;
  /** Why the last observation failed; null when it answered. */
  observeError: string | null;
  /** The newest run of this cluster in the store (any trigger); null when none. */
  lastRun: StoredRun | null;
  /** The next scheduled start (jitter included once drawn); null without a schedule. */
  nextRun: { at: string; trigger: RunTrigger } | null;
  schedule: string | null;
  timezone: string;
  windows: string[];
  /** The run in progress, when state is running. */
  runningRunId: number | null;
  /** The member being defragmented now, when state is running. */
  currentMember: { memberId: string; name: string; startedAt: string } | null;
  /** This replica holds the cluster lock. */
  lockHeld: boolean;
}

/** Whether the dashboard may offer the mutating actions (dry run, defragment now), and why not (`GET /api/v1/clusters`). */
export interface ActionsJson {
  enabled: boolean;
  reason: string | null;
}

/** One StepEvent of one cluster's run, as the SSE stream carries it. */
export interface DaemonEvent {
  cluster: string;
  runId: number | null;
  at: string;
  event: StepEvent;
}

export type StartRunResult =
  /** runId: null when the store could not record the run (it goes on unrecorded; /readyz says why). */
  | {
      ok: true;
      runId: number | null;
      dryRun: boolean;
      report?: RunReport | undefined;
      /** The run waits for the cluster lock another run holds: what for, and how long at most. */
      waiting?: string | undefined;
    }
  | { ok: false; status: 404 | 409; reason: string };

/** What the daemon shows the HTTP API and the metrics. */
export interface DaemonView {
  /** Ready once the store is open and every cluster was observed once (reachable or not). */
  ready(): { ok: boolean; reason: string | null };
  clusters(): ClusterView[];
  cluster(name: string): ClusterView | undefined;
  /** Runs newest first; with `since` (ISO), only those running or finished since. */
  history(name: string, limit: number, since?: string): StoredRun[];
  /** The stored samples of a cluster from an ISO time on, oldest first (the dashboard's chart). */
  samples(name: string, from: string): Sample[];
  runDetail(id: number): StoredRunDetail | null;
  /** The defragmentation status read from the cluster's in-cluster records (`defragd last`). */
  defragmentationStatus(name: string, signal?: AbortSignal): Promise<MemberDefragStatus[]>;
  /**
   * Starts a run of a cluster now (trigger `api`). A dry run plans and answers
   * with its report at once; a real run is started in the background and its
   * id returned. 409 when a run of that cluster is in progress here or the
   * cluster lock is held elsewhere; 404 for an unknown cluster. Throws what
   * kept a run or a dry run from being planned at all (a MixedClustersError:
   * the endpoints reach two clusters), as defragmentationStatus does.
   */
  startRun(name: string, opts: { dryRun: boolean }): Promise<StartRunResult>;
  /** Every StepEvent of every cluster, as it happens. Returns the unsubscribe. */
  subscribe(listener: (e: DaemonEvent) => void): () => void;
}

/** A pino-like logger: one JSON object per line, context first. */
export interface DaemonLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}
