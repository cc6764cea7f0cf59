/**
 * What the daemon does to and reads from one cluster, as one interface: the
 * seam its unit tests drive with a fake cluster (test/fakes/cluster-access.ts)
 * and `etcdAccess` puts on a real client. Each call is what the CLI does for
 * the same purpose (observeCluster, refreshCluster, runDefrag, dryRun,
 * defragmentationStatus); nothing is decided here.
 */
import { dryRun, runDefrag, type RunOptions } from '../app/defragment.js';
import { defragmentationStatus, memberStatuses, readRecords } from '../app/last.js';
import type { Policy } from '../domain/plan.js';
import type { DefragRecord, MemberDefragStatus } from '../domain/record.js';
import { onFirstAnswering, recordEndpoints, recordKey } from '../app/record.js';
import type { RunReport } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { DEFAULT_LOCK_KEY } from '../domain/defaults.js';
import { EtcdClient } from '../etcd/client.js';
import { prepareNospaceClaim } from '../lock/nospace-claim.js';
import type { ConnectionOptions } from '../etcd/options.js';
import { observeCluster, type ObserveOptions } from '../observe/observe.js';
import { refreshCluster, type Refresh, type RefreshOptions } from '../observe/refresh.js';

export interface ClusterAccess {
  /** The client's per-call deadline. */
  readonly commandTimeoutMs: number;
  /** A full observation of every member (MemberList, Status, health, alarms, /metrics as asked). */
  observe(opts: Omit<ObserveOptions, 'cluster'>): Promise<ClusterSnapshot>;
  /** Each member's Status only, on top of `previous`; says when a full observation is needed instead. */
  refresh(previous: ClusterSnapshot, opts: RefreshOptions): Promise<Refresh>;
  /** One run: observe, plan, lock, execute, record (runDefrag). */
  run(policy: Policy, opts: RunOptions): Promise<RunReport>;
  /** What a run would do now (dryRun). */
  dryRun(policy: Policy, opts: Pick<RunOptions, 'observe' | 'signal'>): Promise<RunReport>;
  /** Every member's last defragmentation from the in-cluster records (`defragd last`). */
  defragmentationStatus(recordPrefix: string | undefined, signal?: AbortSignal): Promise<MemberDefragStatus[]>;
  /** The in-cluster records of the members of `snapshot`, as statuses at `now`. */
  memberRecords(
    snapshot: ClusterSnapshot,
    prefix: string,
    now: Date,
    call: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<MemberDefragStatus[]>;
  /** Writes one member's in-cluster record through the members of `snapshot` (the leader first); throws what etcd answers. */
  putRecord(
    snapshot: ClusterSnapshot,
    prefix: string,
    memberId: string,
    record: DefragRecord,
    call: { signal?: AbortSignal },
  ): Promise<void>;
  /** Puts the NOSPACE recovery claim when it is missing (lock/nospace-claim.ts); throws what etcd answers. */
  prepareNospaceClaim(): Promise<void>;
  close(): void;
}

/**
 * The daemon's access to a real cluster, through one client of its own.
 *
 * @example const access = etcdAccess({ endpoints: ['127.0.0.1:2379'] });
 */
export function etcdAccess(connection: ConnectionOptions): ClusterAccess {
  const client = new EtcdClient(connection);
  return {
    commandTimeoutMs: client.context.commandTimeoutMs,
    observe: (opts) => observeCluster(client, { ...opts, cluster: true }),
    refresh: (previous, opts) => refreshCluster(client, previous, opts),
    run: (policy, opts) => runDefrag(client, policy, opts),
    dryRun: (policy, opts) => dryRun(client, policy, opts),
    defragmentationStatus: (recordPrefix, signal) => defragmentationStatus(client, { cluster: true, recordPrefix, signal }),
    memberRecords: async (snapshot, prefix, now, call) =>
      memberStatuses(snapshot, prefix, await readRecords(client, snapshot, prefix, call), now),
    putRecord: async (snapshot, prefix, memberId, record, call) => {
      await onFirstAnswering(recordEndpoints(snapshot), (ep) =>
        client.member(ep).put(recordKey(prefix, memberId), JSON.stringify(record), { signal: call.signal }),
      );
    },
    prepareNospaceClaim: () => prepareNospaceClaim(client, { lockKey: DEFAULT_LOCK_KEY }),
    close: () => client.close(),
  };
}
