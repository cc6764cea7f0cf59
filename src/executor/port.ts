/**
 * Everything the executor may do to a cluster, and nothing more. Built where
 * the client is made (src/app) and faked in unit tests, so the executor never
 * depends on the wire client and a test fake needs no casts.
 */
import type { ClusterAlarm, ClusterSnapshot } from '../domain/snapshot.js';

export interface PortCall {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface ClusterPort {
  /**
   * Observes the cluster afresh, as the plan was made. `light` polls skip the
   * alarm list (a raft round trip in etcd 3.4) and /metrics, and so report the
   * quota only as far as Status or the flags tell it.
   */
  observe(opts?: { light?: boolean; signal?: AbortSignal | undefined }): Promise<ClusterSnapshot>;
  /** One Defragment of one member; resolves with the revision in the response header (0 when etcd leaves it empty). */
  defragment(endpoint: string, opts: PortCall & { timeoutMs: number }): Promise<{ revision: number }>;
  /** Asks `leaderEndpoint` (which must lead) to hand leadership to `targetId`. */
  moveLeader(leaderEndpoint: string, targetId: string, opts?: PortCall): Promise<void>;
  /** One member's sizes and revision, from its Status. */
  status(endpoint: string, opts?: PortCall): Promise<{ dbSize: number; dbSizeInUse: number; revision: number }>;
  /** Physical compaction to `revision`, sent through `endpoint`. */
  compact(endpoint: string, revision: number, opts?: PortCall): Promise<void>;
  alarmList(endpoint: string, opts?: PortCall): Promise<ClusterAlarm[]>;
  alarmDisarm(endpoint: string, memberId: string, alarm: string, opts?: PortCall): Promise<void>;
  /** etcd_disk_defrag_inflight from the member's /metrics; null when it cannot be read. */
  defragInFlight(endpoint: string, opts?: PortCall): Promise<number | null>;
  /** From one read of the member's /metrics: defrags in flight and finished (its process's count); null when it cannot be read. */
  defragGauges(endpoint: string, opts?: PortCall): Promise<{ inflight: number | null; count: number | null } | null>;
}

/** One URL's answer to one readiness check. */
export interface UrlAnswer {
  readonly url: string;
  /** It answered 200. */
  readonly ready: boolean;
  /** What it answered, e.g. "200", "500: [-]etcd failed: reason withheld", "connection refused". */
  readonly detail: string;
  /**
   * An answer no wait changes: refused credentials (401, 403), no such path (404), a certificate that does
   * not check. The run stops at once rather than wait out the timeout. Absent: false.
   */
  readonly final?: boolean;
}

/**
 * What the run waits for before its first member and between members besides the cluster itself:
 * URLs of the cluster's own clients (every kube-apiserver's /readyz) that must answer 200
 * (--wait-for-url). Built in src/app (urlReadiness); faked in unit tests.
 */
export interface ReadinessPort {
  readonly urls: readonly string[];
  /** How long the URLs may stay unready before the run stops. */
  readonly timeoutMs: number;
  /** Asks every URL once, at the same time; never rejects (a failed request is an answer that is not ready). */
  check(signal?: AbortSignal): Promise<readonly UrlAnswer[]>;
}
