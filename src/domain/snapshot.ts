/**
 * Plain data types shared by every layer of defragd. No behaviour lives here:
 * observe produces a ClusterSnapshot, plan turns it and a Policy into a Plan,
 * execute turns a Plan into StepEvents, and a RunReport summarises a run.
 *
 * Member IDs are uint64 and exceed 2^53, so they are kept as lower-case hex
 * strings (as etcdctl prints them) everywhere in the domain; the wire client
 * converts to and from decimal strings.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** etcd's default `--quota-backend-bytes`. */
export const DEFAULT_QUOTA_BYTES = 2 * GiB;

export type AlarmType = 'NOSPACE' | 'CORRUPT' | string;

/** Where a member's quota figure came from. */
export type QuotaSource = 'status' | 'metrics' | 'flag' | 'default';

/** A member as the cluster's MemberList describes it. */
export interface MemberInfo {
  /** Hex member ID, as etcdctl prints it. */
  memberId: string;
  /** Empty for a member that was added but has not started yet. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** What one member's Status (plus derived figures) said. */
export interface MemberStatus {
  version: string;
  /** etcd 3.6+ only; null when the server does not send it. */
  storageVersion: string | null;
  /** bbolt's allocated size: what the quota is checked against. */
  dbSize: number;
  /** dbSize minus free pages (etcd 3.4+). */
  dbSizeInUse: number;
  /** dbSize - dbSizeInUse: what a defrag would reclaim. */
  dbSizeFree: number;
  /** dbSizeFree / dbSize, 0 when dbSize is 0. */
  fragmentation: number;
  quota: number;
  quotaSource: QuotaSource;
  /** dbSize / quota. */
  quotaUsage: number;
  /** The store revision in the response header. */
  revision: number;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  /** Hex ID of the leader this member believes in; null when it knows none. */
  leaderId: string | null;
  isLeader: boolean;
  isLearner: boolean;
  /** Status `errors`, e.g. "memberID:... alarm:NOSPACE". */
  errors: string[];
}

/** One member as observed at one moment. */
export interface MemberSnapshot extends MemberInfo {
  /** The client URL defragd talks to for this member. */
  endpoint: string;
  /** Status answered. */
  reachable: boolean;
  /** A linearizable read went through (PermissionDenied counts as healthy). */
  healthy: boolean;
  /** Alarms raised for this member (from AlarmList). */
  alarms: AlarmType[];
  /** Null when Status failed. */
  status: MemberStatus | null;
  /** First error met while observing this member; null when none. */
  error: string | null;
  /** Free space where the member's data dir lives, when defragd was told the dir (--data-dir); absent otherwise. */
  disk?: DiskView | undefined;
  /**
   * Whether the member stops its gRPC services while it is defragmented (etcd's StopGRPCServiceOnDefrag:
   * its gRPC health service then reports NOT_SERVING, and clients that check health fail over), from
   * its /metrics (etcd 3.6+ exports its feature gates); null when the member does not tell (3.5's
   * `--experimental-stop-grpc-service-on-defrag` cannot be read). Absent when not asked for.
   */
  stopGrpcServiceOnDefrag?: boolean | null | undefined;
}

/** A data dir's filesystem as seen from here; `freeBytes` is null when it could not be read (`error` says why). */
export interface DiskView {
  path: string;
  freeBytes: number | null;
  error: string | null;
}

export interface ClusterAlarm {
  memberId: string;
  alarm: AlarmType;
}

export interface ClusterSnapshot {
  /** ISO time the observation finished. */
  observedAt: string;
  /** Hex cluster ID from a response header; null when no member answered. */
  clusterId: string | null;
  /** Hex ID of the leader most reachable members agree on; null when unknown. */
  leaderId: string | null;
  members: MemberSnapshot[];
  alarms: ClusterAlarm[];
  /** Why the alarm list could not be read (then `alarms` is empty but unknown); null when it was read. */
  alarmsError: string | null;
  /**
   * The user defragd authenticates as and its roles, when auth is used and the
   * roles were asked for (observeCluster's `userRoles`); absent otherwise.
   */
  auth?: UserView | null;
}

/** A user's roles as etcd reported them; `roles` is null when they could not be read (`error` says why). */
export interface UserView {
  user: string;
  roles: string[] | null;
  error: string | null;
}
