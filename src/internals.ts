/**
 * `defragd/internals`: the parts under the library's verbs, for tests, the
 * project's own tools and those who need a lower level: the wire client, the
 * executor and its port, the planner's per-member answers, the run's steps.
 * No promise that they stay as they are between releases. Everything `defragd`
 * exports is here too.
 */
export * from './index.js';
export { EtcdClient, MemberClient } from './etcd/client.js';
export type { StatusReply, MemberEntry, AlarmEntry, ResponseHeader, KeyValue } from './etcd/client.js';
export type { CallOptions } from './etcd/options.js';
export { observeCluster, type ObserveOptions as ObserveClusterOptions } from './observe/observe.js';
export { planDefrag, planTurn, forecastDefragMs, memberForecast, describeForecast } from './planner/index.js';
export { executePlan } from './executor/execute.js';
export type { ClusterPort, PortCall } from './executor/port.js';
export { clusterPort } from './app/port.js';
export { runDefrag, dryRun, prepareRun, buildPolicy, type PreparedRun } from './app/defragment.js';
export { acquireLock as acquireLockWith } from './lock/lock.js';
export { withClient } from './app/library.js';
