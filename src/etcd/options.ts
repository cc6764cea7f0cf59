/** How to reach a cluster: the flags etcdctl users already know. */

export interface TlsOptions {
  /** --cacert: CA bundle to verify the server; system roots when absent. */
  caFile?: string | undefined;
  /** --cert / --key: client certificate for --client-cert-auth clusters. */
  certFile?: string | undefined;
  keyFile?: string | undefined;
  /** --insecure-skip-tls-verify: accept any server certificate. */
  insecureSkipVerify?: boolean | undefined;
  /** Verify the server certificate against this name instead of the endpoint's host. */
  serverName?: string | undefined;
}

export interface AuthOptions {
  user: string;
  password: string;
}

export interface ConnectionOptions {
  /** host:port, http://host:port or https://host:port. */
  endpoints: string[];
  /** Null or absent: plain http unless an endpoint says https. */
  tls?: TlsOptions | null | undefined;
  auth?: AuthOptions | null | undefined;
  /** etcdctl --dial-timeout (default 2 s): how long to wait for a connection. */
  dialTimeoutMs?: number | undefined;
  /** etcdctl --command-timeout (default 5 s): deadline of ordinary calls. Defragment has its own. */
  commandTimeoutMs?: number | undefined;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 2_000;
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

/** Per-call options: every effect takes a deadline and an AbortSignal. */
export interface CallOptions {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}
