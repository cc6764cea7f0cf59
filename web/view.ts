/** What the pages share: the app's state, and the shape of a page. */
import type { ClustersAnswer, DaemonEvent } from './api.js';
import type { RunProgress } from './progress.js';

export interface AppState {
  /** The last answer of GET /api/v1/clusters; null before the first. */
  clusters: ClustersAnswer | null;
  /** Why the last poll failed; null when it answered. */
  error: string | null;
  /** Runs in progress, by cluster, folded from their events. */
  progress: Map<string, RunProgress>;
}

export interface View {
  /** The clusters answer or a run's progress changed. */
  update(state: AppState): void;
  /** A live StepEvent (after the state has taken it). */
  onEvent?(e: DaemonEvent, state: AppState): void;
  destroy(): void;
}

export interface AppContext {
  state: AppState;
  /** Polls the clusters now (after a run was started or finished). */
  refresh(): Promise<void>;
  /** Sets the breadcrumb after "defragd". */
  crumbs(...items: (string | { text: string; href: string })[]): void;
}
