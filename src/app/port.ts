/**
 * The executor's ClusterPort on the real wire client: each call goes to
 * exactly the member named, with the client's deadlines unless the executor
 * gives its own.
 */
import type { EtcdClient } from '../etcd/client.js';
import { fetchGauges, METRIC_DEFRAG_COUNT, METRIC_DEFRAG_INFLIGHT } from '../etcd/metrics.js';
import type { ClusterPort } from '../executor/port.js';
import { observeCluster, rememberQuotas } from '../observe/observe.js';

export interface ObserveTarget {
  /** Discover every member from MemberList (default true: a safe run must see every voter). */
  cluster?: boolean | undefined;
  /** Quota to assume when etcd does not report it. */
  quotaBytes?: number | null | undefined;
  /** Data dirs this host can see (member name or hex ID → path), for the free-disk check. */
  dataDirs?: Readonly<Record<string, string>> | undefined;
}

/**
 * Builds the port the executor acts through. A member's quota read from its
 * /metrics (etcd < 3.6 does not tell it in Status) is read once per run and
 * kept in `quotas` (share it with the run's first observation): it is a
 * start-up flag of the member, and reading it again before every member's
 * turn was three /metrics scrapes per turn for nothing.
 */
export function clusterPort(client: EtcdClient, target: ObserveTarget = {}, quotas = new Map<string, number>()): ClusterPort {
  return {
    observe: async ({ light = false, signal } = {}) => {
      const snap = await observeCluster(client, {
        cluster: target.cluster ?? true,
        quotaBytes: target.quotaBytes ?? null,
        signal,
        knownQuotas: quotas,
        ...(light ? { alarms: false, metrics: false } : { dataDirs: target.dataDirs }),
      });
      rememberQuotas(quotas, snap);
      return snap;
    },
    defragment: async (endpoint, opts) => ({ revision: (await client.member(endpoint).defragment(opts)).revision }),
    moveLeader: async (endpoint, targetId, opts) => {
      await client.member(endpoint).moveLeader(targetId, opts);
    },
    status: async (endpoint, opts) => {
      const s = await client.member(endpoint).status(opts);
      return { dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse, revision: s.header.revision };
    },
    compact: async (endpoint, revision, opts = {}) => {
      // Never shorter than an ordinary call: a compaction is one request, never repeated.
      const timeoutMs = Math.max(opts.timeoutMs ?? 0, client.context.commandTimeoutMs);
      await client.member(endpoint).compact(revision, { physical: true, signal: opts.signal, timeoutMs });
    },
    alarmList: (endpoint, opts) => client.member(endpoint).alarmList(opts),
    alarmDisarm: async (endpoint, memberId, alarm, opts) => {
      await client.member(endpoint).alarmDisarm(memberId, alarm, opts);
    },
    defragInFlight: async (endpoint, opts) =>
      (await fetchGauges(endpoint, [METRIC_DEFRAG_INFLIGHT], client.context.httpTls, opts))?.get(METRIC_DEFRAG_INFLIGHT) ?? null,
    defragGauges: async (endpoint, opts) => {
      const g = await fetchGauges(endpoint, [METRIC_DEFRAG_INFLIGHT, METRIC_DEFRAG_COUNT], client.context.httpTls, opts);
      return g === null ? null : { inflight: g.get(METRIC_DEFRAG_INFLIGHT) ?? null, count: g.get(METRIC_DEFRAG_COUNT) ?? null };
    },
  };
}
