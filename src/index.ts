/**
 * defragd as a library: the same verbs the CLI uses.
 *
 * @example
 * import { connect, observeCluster, planDefrag, buildPolicy, defragment } from 'defragd';
 *
 * const client = connect({ endpoints: ['127.0.0.1:2379'] });
 * const snapshot = await observeCluster(client, { cluster: true });
 * const plan = planDefrag(snapshot, buildPolicy({ rule: 'fragmentation > 0.45' }));
 * console.log(plan.decisions.map((d) => `${d.name}: ${d.action} (${d.reason})`));
 * client.close();
 *
 * const report = await defragment({ connection: { endpoints: ['127.0.0.1:2379'] }, policy: { rule: 'dbSizeFree > 100*MiB' } });
 */
import { EtcdClient } from './etcd/client.js';
import type { ConnectionOptions } from './etcd/options.js';

export * from './domain/snapshot.js';
export * from './domain/plan.js';
export * from './domain/run.js';
export * from './domain/errors.js';
export * from './domain/record.js';
export { DEFAULT_DISARM_BELOW, DEFAULT_ENDPOINT, DEFAULT_LOCK_KEY, DEFAULT_RECORD_PREFIX } from './domain/defaults.js';
export { formatBytes, formatDuration, formatPercent } from './domain/format.js';
export type { ConnectionOptions, TlsOptions, AuthOptions, CallOptions } from './etcd/options.js';
export { EtcdClient, MemberClient } from './etcd/client.js';
export type { StatusReply, MemberEntry, AlarmEntry, ResponseHeader, KeyValue } from './etcd/client.js';
export { observeCluster, type ObserveOptions } from './observe/observe.js';
export { planDefrag, planTurn, forecastDefragMs, memberForecast, describeForecast } from './planner/index.js';
export { compileRule } from './policy/index.js';
export { executePlan } from './executor/execute.js';
export type { ExecuteOptions } from './executor/options.js';
export type { ClusterPort, PortCall } from './executor/port.js';
export { clusterPort, type ObserveTarget } from './app/port.js';
export { defragment, runDefrag, dryRun, prepareRun, buildPolicy, type DefragmentOptions, type RunOptions, type PolicyOptions, type PreparedRun } from './app/defragment.js';
export { defragmentationStatus, type DefragmentationStatusOptions } from './app/last.js';
export { recordKey, type RecordOptions } from './app/record.js';
export { acquireLock, LockBusyError, type ClusterLock, type LockOptions } from './lock/lock.js';
export { VERSION } from './version.js';

/**
 * Opens a client for a cluster. Nothing is dialled until the first call;
 * close() it when done.
 *
 * @example
 * const client = connect({ endpoints: ['https://10.0.0.1:2379'], tls: { caFile: 'ca.pem' }, auth: { user: 'root', password: 's3cret' } });
 */
export function connect(options: ConnectionOptions): EtcdClient {
  return new EtcdClient(options);
}
