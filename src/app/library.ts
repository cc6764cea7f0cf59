/**
 * The library's verbs, in one calling style: each takes one options object,
 * and where it talks to etcd, `connection` is either connection options (the
 * verb opens its own client and closes it) or an open client from connect()
 * (the caller closes it). The CLI and the daemon use the same functions
 * underneath (app/defragment.ts, app/last.ts, observe, planner, lock).
 */
import type { Plan } from '../domain/plan.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { EtcdClient } from '../etcd/client.js';
import type { ConnectionOptions } from '../etcd/options.js';
import { acquireLock as acquireWith, type ClusterLock, type LockOptions } from '../lock/lock.js';
import { observeCluster } from '../observe/observe.js';
import { planDefrag } from '../planner/index.js';
import { buildPolicy, type PolicyOptions } from './defragment.js';
import { defragmentationStatus as statusWith, type DefragmentationStatusOptions } from './last.js';
import type { MemberDefragStatus } from '../domain/record.js';

/** Connection options (a client is opened and closed for the call), or an open client from connect(). */
export type Connection = ConnectionOptions | EtcdClient;

/**
 * Opens a client for a cluster, to share between calls. Nothing is dialled until the first call; close() it when done.
 *
 * @example
 * const client = connect({ endpoints: ['https://10.0.0.1:2379'], tls: { caFile: 'ca.pem' }, auth: { user: 'root', password: 's3cret' } });
 */
export function connect(options: ConnectionOptions): EtcdClient {
  return new EtcdClient(options);
}

/** Runs `fn` with a client: the one given, or one opened (and closed) for it. */
export async function withClient<T>(connection: Connection, fn: (client: EtcdClient) => Promise<T>): Promise<T> {
  if (connection instanceof EtcdClient) return fn(connection);
  const client = new EtcdClient(connection);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export interface ObserveOptions {
  connection: Connection;
  /** Every member from MemberList, as etcdctl --cluster (default true); false: only the endpoints given. */
  cluster?: boolean | undefined;
  /** Quota to assume where etcd does not tell it (etcd < 3.6 with /metrics unreachable); default 2 GiB. */
  quotaBytes?: number | null | undefined;
  /** Data dirs this host can see (member name or hex ID → path), for the free-disk check. */
  dataDirs?: Readonly<Record<string, string>> | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * One look at the cluster: every member's sizes, quota, health, alarms, leader and release, as the planner reads them.
 *
 * @example const snapshot = await observe({ connection: { endpoints: ['127.0.0.1:2379'] } });
 */
export function observe(o: ObserveOptions): Promise<ClusterSnapshot> {
  return withClient(o.connection, (client) =>
    observeCluster(client, {
      cluster: o.cluster ?? true,
      quotaBytes: o.quotaBytes ?? null,
      dataDirs: o.dataDirs,
      features: true,
      signal: o.signal,
    }),
  );
}

export interface PlanOptions {
  snapshot: ClusterSnapshot;
  /** The same policy defragment() takes; absent: every member, leader last. */
  policy?: PolicyOptions | undefined;
}

/**
 * What a run would do with the cluster as `snapshot` shows it: a decision and a reason per member, in order,
 * or the refusal. Pure. Throws RuleError for a bad rule.
 *
 * @example plan({ snapshot, policy: { rule: 'dbSizeFree > 100*MiB' } }).decisions
 */
export function plan(o: PlanOptions): Plan {
  return planDefrag(o.snapshot, buildPolicy(o.policy));
}

export interface StatusOptions extends Omit<DefragmentationStatusOptions, 'now'> {
  connection: Connection;
}

/**
 * Per member: its last recorded defragmentation (null when none is known), how long ago, what it reclaimed,
 * and the free space and fragmentation now (`defragd last`).
 *
 * @example for (const m of await defragmentationStatus({ connection: { endpoints: ['127.0.0.1:2379'] }, cluster: true })) console.log(m.name, m.lastDefrag?.at ?? 'never');
 */
export function defragmentationStatus(o: StatusOptions): Promise<MemberDefragStatus[]> {
  const { connection, ...opts } = o;
  return withClient(connection, (client) => statusWith(client, opts));
}

export interface AcquireLockOptions extends LockOptions {
  /** An open client (connect()): the lock lives as long as its lease, kept alive through this client. */
  connection: EtcdClient;
}

/**
 * Takes defragd's cluster lock (what `defragd defrag` and `defragd serve` take), so that maintenance of one's own
 * does not overlap theirs. Throws LockBusyError when another holds it after `waitMs`.
 *
 * @example
 * const lock = await acquireLock({ connection: client, holder: 'backup job', waitMs: 60_000 });
 * try { await backup(); } finally { await lock.release(); }
 */
export function acquireLock(o: AcquireLockOptions): Promise<ClusterLock> {
  const { connection, ...opts } = o;
  return acquireWith(connection, opts);
}
