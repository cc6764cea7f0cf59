/**
 * defragd as a library: the verbs the CLI uses, in one calling style (one
 * options object each; `connection` is connection options or an open client
 * from connect()), and the shapes they return. The wire client, the executor
 * and the planner's per-turn answers are internals: `defragd/internals`, with
 * no promise that they stay as they are. test/api-surface.json lists every
 * export; a test fails when it changes by accident.
 *
 * @example
 * import { observe, plan, defragment } from 'defragd';
 *
 * const connection = { endpoints: ['127.0.0.1:2379'] };
 * const snapshot = await observe({ connection });
 * console.log(plan({ snapshot, policy: { rule: 'fragmentation > 0.45' } }).decisions.map((d) => `${d.name}: ${d.action} (${d.reason})`));
 * const report = await defragment({ connection, policy: { rule: 'dbSizeFree > 100*MiB' } });
 */
export * from './domain/snapshot.js';
export * from './domain/plan.js';
export * from './domain/run.js';
export * from './domain/errors.js';
export * from './domain/record.js';
export { DEFAULT_DISARM_BELOW, DEFAULT_ENDPOINT, DEFAULT_LOCK_KEY, DEFAULT_RECORD_PREFIX } from './domain/defaults.js';
export { formatBytes, formatDuration, formatPercent } from './domain/format.js';
export type { ConnectionOptions, TlsOptions, AuthOptions } from './etcd/options.js';
export type { EtcdClient } from './etcd/client.js';
export {
  connect,
  observe,
  plan,
  defragmentationStatus,
  acquireLock,
  type Connection,
  type ObserveOptions,
  type PlanOptions,
  type StatusOptions,
  type AcquireLockOptions,
} from './app/library.js';
export { defragment, type DefragmentOptions, type RunOptions, type PolicyOptions } from './app/defragment.js';
export type { ExecuteOptions } from './executor/options.js';
export type { ReadinessPort, UrlAnswer } from './executor/port.js';
export { urlReadiness, type UrlReadiness, type WaitForUrlOptions } from './app/readiness.js';
export type { ObserveTarget } from './app/port.js';
export { compileRule } from './policy/index.js';
export { recordKey, type RecordOptions } from './app/record.js';
export { LockBusyError, type ClusterLock, type LockOptions } from './lock/lock.js';
export { VERSION } from './version.js';
