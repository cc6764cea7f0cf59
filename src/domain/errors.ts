/**
 * defragd's error classes. Every layer throws one of these (with a `cause`
 * where there is one); only cli/main.ts turns them into exit codes, so a
 * user's mistake prints one line and never a stack trace.
 */

/** An error's message, or the thrown value as text: the one way defragd words a caught value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export type ErrorKind = 'usage' | 'connection' | 'etcd' | 'refused' | 'failed' | 'timeout' | 'aborted';

export class DefragdError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = new.target.name;
  }
}

/** Bad flags, a bad endpoint, a bad rule, a missing file: exit 2, nothing changed. */
export class UsageError extends DefragdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('usage', message, options);
  }
}

/** A rule that does not compile or fails to evaluate. `position` is 0-based into the source when known. */
export class RuleError extends DefragdError {
  readonly position: number | null;
  constructor(message: string, position: number | null = null, options?: { cause?: unknown }) {
    super('usage', message, options);
    this.position = position;
  }
}

/** A member could not be reached at all (refused, DNS, TLS handshake, not gRPC). */
export class ConnectionError extends DefragdError {
  readonly endpoint: string;
  constructor(endpoint: string, message: string, options?: { cause?: unknown }) {
    super('connection', message, options);
    this.endpoint = endpoint;
  }
}

/**
 * What an etcd error means, decided once where the error enters (etcd/errors.ts)
 * from etcd's own error strings (etcd `api/v3rpc/rpctypes`); nothing else
 * matches message text.
 */
export type EtcdErrorReason =
  /** mvcc: database space exceeded: the cluster takes only reads and deletes. */
  | 'nospace'
  /** rpc not supported for learner. */
  | 'learner'
  /** mvcc: required revision has been compacted. */
  | 'compacted'
  /** mvcc: required revision is a future revision. */
  | 'future-revision'
  /** leader changed: a linearizable request raced a leader election or move. */
  | 'leader-changed'
  /** no leader. */
  | 'no-leader'
  /** not leader: MoveLeader sent to a member that does not lead. */
  | 'not-leader'
  /** bad leader transferee. */
  | 'bad-transferee'
  /** invalid auth token: re-authenticate. */
  | 'invalid-token'
  /** authentication failed, invalid user ID or password. */
  | 'auth-failed'
  /** user name is empty: auth is on and no user was given. */
  | 'auth-required'
  /** permission denied: the user lacks a role (Defragment needs root). */
  | 'permission-denied'
  /** requested lease not found. */
  | 'lease-not-found'
  /** request timed out (server side). */
  | 'server-timeout'
  /** corrupt cluster. */
  | 'corrupt'
  | 'other';

/** etcd answered with an error status. `grpcCode` is the gRPC status name, e.g. "FAILED_PRECONDITION". */
export class EtcdError extends DefragdError {
  readonly endpoint: string;
  readonly grpcCode: string;
  readonly reason: EtcdErrorReason;
  constructor(endpoint: string, grpcCode: string, message: string, options?: { cause?: unknown; reason?: EtcdErrorReason }) {
    super('etcd', message, options);
    this.endpoint = endpoint;
    this.grpcCode = grpcCode;
    this.reason = options?.reason ?? 'other';
  }
}

/** The reason of an EtcdError; null for anything else. */
export function etcdReason(err: unknown): EtcdErrorReason | null {
  return err instanceof EtcdError ? err.reason : null;
}

/** A call passed its deadline. For a Defragment this does NOT mean it stopped on the server. */
export class DeadlineError extends DefragdError {
  readonly endpoint: string;
  constructor(endpoint: string, message: string, options?: { cause?: unknown }) {
    super('timeout', message, options);
    this.endpoint = endpoint;
  }
}

/** The preconditions for a safe run do not hold: exit 3, nothing changed. */
export class RefusedError extends DefragdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('refused', message, options);
  }
}

export class AbortedError extends DefragdError {
  constructor(message = 'aborted', options?: { cause?: unknown }) {
    super('aborted', message, options);
  }
}

/**
 * The endpoints given reach members of more than one cluster (their response
 * headers carry different cluster IDs). Acting on the union would report on,
 * or defragment, one cluster while silently ignoring the other.
 */
export class MixedClustersError extends UsageError {
  /** Every endpoint that answered, with the hex cluster ID it answered for, in the order given. */
  readonly endpoints: readonly { endpoint: string; clusterId: string }[];
  constructor(message: string, endpoints: readonly { endpoint: string; clusterId: string }[]) {
    super(message);
    this.endpoints = endpoints;
  }
}
