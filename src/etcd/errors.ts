/** Maps gRPC failures to defragd's domain errors with one readable line each. */
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { AbortedError, ConnectionError, DeadlineError, DefragdError, EtcdError } from '../domain/errors.js';
import { formatDuration } from '../domain/format.js';

const codeName = (code: number): string => (GrpcStatus[code] as string | undefined) ?? `CODE_${code}`;

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'number';
}

/** True when etcd says the auth token expired or is unknown (re-authenticate once). */
export function isInvalidToken(err: unknown): boolean {
  return err instanceof EtcdError && /invalid auth token/i.test(err.message);
}

export function mapGrpcError(endpoint: string, method: string, err: unknown, timeoutMs: number): DefragdError {
  if (err instanceof DefragdError) return err;
  if (!isServiceError(err)) {
    return new ConnectionError(endpoint, `${endpoint}: ${method} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const details = (err.details || err.message || '').replace(/\s+/g, ' ').trim();
  switch (err.code) {
    case GrpcStatus.DEADLINE_EXCEEDED:
      return new DeadlineError(endpoint, `${endpoint}: ${method} got no answer within ${formatDuration(timeoutMs)} (deadline exceeded)`, { cause: err });
    case GrpcStatus.CANCELLED:
      return new AbortedError(`${endpoint}: ${method} cancelled`, { cause: err });
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.UNIMPLEMENTED:
      if (looksLikeTransport(details)) return new ConnectionError(endpoint, `${endpoint}: ${describeTransport(details)}`, { cause: err });
      break;
    default:
      break;
  }
  const hint = /user name is empty/.test(details)
    ? ' (auth is enabled on this cluster: give --user)'
    : /permission denied/.test(details) && /^(Defragment|MoveLeader|HashKV|Snapshot)$/.test(method)
      ? ` (${method} needs a user with the root role)`
      : '';
  return new EtcdError(endpoint, codeName(err.code), `${endpoint}: ${method}: ${stripPrefix(details)}${hint}`, { cause: err });
}

function looksLikeTransport(details: string): boolean {
  return /No connection established|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|Connection dropped|Protocol error|HTTP status code|Received RST_STREAM|certificate|SSL|TLS|handshake|failed to connect|Name resolution failed|write EPIPE|socket hang up|protocol|content-type/i.test(
    details,
  );
}

function describeTransport(details: string): string {
  if (/ECONNREFUSED/.test(details)) return 'connection refused (is etcd running and is this its client port?)';
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/.test(details)) return `host not found (${lastError(details)})`;
  if (/self[- ]signed|unable to verify|unable to get (local )?issuer|certificate (verify|signature)|CERT_|altnames|Hostname\/IP does not match/i.test(details)) {
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

