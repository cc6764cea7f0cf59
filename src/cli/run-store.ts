/**
 * `defrag --store`: the CLI's run, recorded as it goes. The store is opened
 * before anything is sent to etcd, so an unusable file stops the run before
 * it changes anything; a store that fails later only warns, and the defrag
 * goes on (a half-done defrag is worse than a gap in the history).
 */
import { hostname } from 'node:os';
import type { PastDefrag } from '../domain/plan.js';
import { DEFAULT_FORECAST_SAMPLES } from '../planner/index.js';
import { openStore, recordRun, type StoredRunWriter } from '../store/index.js';
import type { DefragStoreConfig } from './config/defrag-flags.js';
import type { CliIO } from './io.js';
import { messageOf } from '../domain/errors.js';

export interface CliRunWriter extends StoredRunWriter {
  /** Each member's recent successful defrags in this store, under the run's cluster name: what the duration forecast is made from. */
  defragHistory(): Readonly<Record<string, readonly PastDefrag[]>>;
  close(): void;
}

/**
 * @example
 * const rec = recordCliRun({ path: 'history.db', cluster: 'prod' }, false, io);
 * try { rec.finish(await runDefrag(client, policy, { onEvent: (e) => rec.onEvent(e) })); } finally { rec.close(); }
 */
export function recordCliRun(config: DefragStoreConfig, dryRun: boolean, io: CliIO): CliRunWriter {
  const store = openStore(config.path);
  try {
    const rec = recordRun(store, {
      cluster: config.cluster,
      trigger: 'manual',
      by: `${hostname()}:${process.pid}`,
      dryRun,
      onError: (err) => io.stderr(`defragd: warning: ${messageOf(err)}; the run goes on unrecorded\n`),
    });
    return {
      runId: rec.runId,
      onEvent: (e) => rec.onEvent(e),
      finish: (r) => rec.finish(r),
      defragHistory: () => store.defragHistory({ cluster: config.cluster, limit: DEFAULT_FORECAST_SAMPLES }),
      close: () => store.close(),
    };
  } catch (err) {
    store.close();
    throw err;
  }
}
