/**
 * A run's listener that writes it to the store: the executor's events as they
 * come, the report at the end. A store that fails (a full disk, a lock held
 * too long) must never stop a defrag half-way, so with `onError` given,
 * failures once the run has started are reported there once and recording
 * stops; without it they throw. Inserting the run always throws: nothing has
 * been done yet, and a run the operator asked to record should not go
 * unrecorded from its first step.
 */
import type { RunReport, StepEvent } from '../domain/run.js';
import type { Store } from './store.js';
import type { RunTrigger } from './types.js';

export interface RecordRunOptions {
  cluster: string;
  trigger: RunTrigger;
  by: string;
  /** ISO time; default now. */
  startedAt?: string | undefined;
  dryRun?: boolean | undefined;
  /** Called once with the first store error after the start; recording then stops and the run goes on. */
  onError?: ((err: unknown) => void) | undefined;
}

export interface StoredRunWriter {
  /** The run's id in the store. */
  readonly runId: number;
  onEvent(event: StepEvent): void;
  /** Writes the outcome and member results; later calls do nothing. */
  finish(report: RunReport): void;
}

/**
 * Inserts the run as `running` now and returns the listener that completes it.
 *
 * @example
 * const rec = recordRun(store, { cluster: 'prod', trigger: 'manual', by: `${hostname()}:${process.pid}` });
 * const report = await runDefrag(client, policy, { onEvent: (e) => rec.onEvent(e) });
 * rec.finish(report);
 */
export function recordRun(store: Store, o: RecordRunOptions): StoredRunWriter {
  let failed = false;
  let finished = false;
  const guard = (fn: () => void) => {
    if (failed || finished) return;
    try {
      fn();
    } catch (err) {
      if (!o.onError) throw err;
      failed = true;
      o.onError(err);
    }
  };
  const runId = store.startRun({ cluster: o.cluster, trigger: o.trigger, by: o.by, startedAt: o.startedAt, dryRun: o.dryRun });
  return {
    runId,
    onEvent(event) {
      guard(() => store.appendEvent(runId, event));
    },
    finish(report) {
      guard(() => store.finishRun(runId, report));
      finished = true;
    },
  };
}
