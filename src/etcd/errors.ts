/** Maps gRPC failures to defragd's domain errors with one readable line each. */
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { AbortedError, ConnectionError, DeadlineError, DefragdError, EtcdError, type EtcdErrorReason } from '../domain/errors.js';
import { formatDuration } from '../domain/format.js';

const codeName = (code: number): string => (GrpcStatus[code] as string | undefined) ?? `CODE_${code}`;

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'number';
}

/** etcd's error strings (after "etcdserver: "), in etcd `api/v3rpc/rpctypes/error.go`, and what they mean. */
const REASONS: readonly [RegExp, EtcdErrorReason][] = [
  [/database space exceeded/i, 'nospace'],
  [/not supported for learner/i, 'learner'],
  [/required revision has been compacted/i, 'compacted'],
  [/required revision is a future revision/i, 'future-revision'],
  [/leader changed/i, 'leader-changed'],
  [/no leader/i, 'no-leader'],
  [/bad leader transferee/i, 'bad-transferee'],
  [/not leader/i, 'not-leader'],
  [/invalid auth token/i, 'invalid-token'],
  [/authentication failed/i, 'auth-failed'],
  [/user name is empty/i, 'auth-required'],
  [/permission denied/i, 'permission-denied'],
  [/requested lease not found/i, 'lease-not-found'],
  [/request timed out/i, 'server-timeout'],
  [/corrupt cluster/i, 'corrupt'],
];

/** Classifies an etcd error's text once, where it enters. */
export function classifyEtcdError(details: string): EtcdErrorReason {
  return REASONS.find(([re]) => re.test(details))?.[1] ?? 'other';
}

/** True when etcd says the auth token expired or is unknown (re-authenticate once). */
export function isInvalidToken(err: unknown): boolean {
  return err instanceof EtcdError && err.reason === 'invalid-token';
}

/**
 * The domain error for a failed call. A CANCELLED status is our own interruption only when the
 * caller's signal was aborted (`abortedByUs`), and the deadline when it came after the call's deadline
 * (`deadlinePassed`: etcd resets the stream then). Otherwise something else ended the call (the server's
 * "context canceled", or grpc-js cancelling calls on a connection it gave up): the call's fate is
 * unknown, as when a connection is lost, so it is a ConnectionError (a Defragment is then waited for,
 * never re-sent), never mistaken for an operator's Ctrl-C that stops the whole run.
 */
export function mapGrpcError(
  endpoint: string,
  method: string,
  err: unknown,
  timeoutMs: number,
  { abortedByUs = false, deadlinePassed = false }: { abortedByUs?: boolean; deadlinePassed?: boolean } = {},
): DefragdError {
  if (err instanceof DefragdError) return err;
  if (!isServiceError(err)) {
    return new ConnectionError(endpoint, `${endpoint}: ${method} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const details = (err.details || err.message || '').replace(/\s+/g, ' ').trim();
  switch (err.code) {
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new DeadlineError(endpoint, `${endpoint}: ${method} got no answer within ${formatDuration(timeoutMs)} (deadline exceeded)`, {
        cause: err,
      });
    case GrpcStatus.CANCELLED:
      if (abortedByUs) return new AbortedError(`${endpoint}: ${method} cancelled`, { cause: err });
      // etcd (grpc-go) resets the stream (RST_STREAM CANCEL) when the call's deadline passes on its side;
      // that can reach us before our own deadline timer fires: it is the deadline, not a lost connection.
      if (deadlinePassed)
        return new DeadlineError(
          endpoint,
          `${endpoint}: ${method} got no answer within ${formatDuration(timeoutMs)} (deadline exceeded; etcd cancelled the call)`,
          { cause: err },
        );
      return new ConnectionError(endpoint, `${endpoint}: ${method} was cancelled, not by defragd (${details || 'no details'})`, {
        cause: err,
      });
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.UNIMPLEMENTED:
      if (looksLikeTransport(details)) return new ConnectionError(endpoint, `${endpoint}: ${describeTransport(details)}`, { cause: err });
      break;
    default:
      break;
  }
  const reason = classifyEtcdError(details);
  const hint =
    reason === 'auth-required'
      ? ' (auth is enabled on this cluster: give --user)'
      : reason === 'permission-denied' && ROOT_ONLY.has(method)
        ? ` (${method} needs a user with the root role)`
        : '';
  return new EtcdError(endpoint, codeName(err.code), `${endpoint}: ${method}: ${stripPrefix(details)}${hint}`, { cause: err, reason });
}

/** Maintenance calls etcd allows only to the root role. */
const ROOT_ONLY = new Set(['Defragment', 'MoveLeader', 'HashKV', 'Snapshot']);

function looksLikeTransport(details: string): boolean {
  return /No connection established|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|Connection dropped|Protocol error|HTTP status code|Received RST_STREAM|certificate|SSL|TLS|handshake|failed to connect|Name resolution failed|write EPIPE|socket hang up|protocol|content-type/i.test(
    details,
  );
}

function describeTransport(details: string): string {
  if (/ECONNREFUSED/.test(details)) return 'connection refused (is etcd running and is this its client port?)';
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/.test(details)) return `host not found (${lastError(details)})`;
  if (
    /self[- ]signed|unable to verify|unable to get (local )?issuer|certificate (verify|signature)|CERT_|altnames|Hostname\/IP does not match/i.test(
      details,
    )
  ) {
    return `TLS: server certificate not trusted (${lastError(details)}); check --cacert, or --insecure-skip-tls-verify`;
  }
  if (/HTTP status code|content-type|Protocol error|RST_STREAM|protocol/i.test(details)) {
    return `does not speak etcd's gRPC API (${lastError(details)}); is this etcd's client port?`;
  }
  if (/SSL|TLS|handshake|wrong version number|packet length too long/i.test(details)) {
    return `TLS handshake failed (${lastError(details)}); check http:// vs https:// and the TLS flags`;
  }
  return lastError(details);
}

function lastError(details: string): string {
  const m = /Last error: (.*)$/.exec(details);
  return (m?.[1] ?? details)
    .replace(/\(\d{4}-\d\d-\d\dT[^)]*\)/g, '')
    .replace(/\.?\s*Resolution note:.*$/, '')
    .trim();
}

/** etcd prefixes its errors with "etcdserver: "; keep the rest. */
function stripPrefix(details: string): string {
  return details.replace(/^etcdserver: /, '');
}
