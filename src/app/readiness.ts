/**
 * --wait-for-url: the executor's ReadinessPort over HTTP(S). Each check sends one GET to every URL at
 * once; a URL is ready when it answers 200. Made for kube-apiserver's /readyz (its etcd check fails
 * while the etcd member it talks to cannot answer), usable for any health endpoint of the cluster's
 * clients.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { UsageError } from '../domain/errors.js';
import type { ReadinessPort, UrlAnswer } from '../executor/port.js';

/** How long the URLs may stay unready before a run stops (--wait-for-url-timeout). */
export const DEFAULT_WAIT_FOR_URL_TIMEOUT_MS = 120_000;
/** A client of the cluster unready for an hour is not coming back during this run. */
export const MAX_WAIT_FOR_URL_TIMEOUT_MS = 3_600_000;
/** One request's deadline: an apiserver's /readyz answers in milliseconds, or its etcd check times out in a few seconds. */
export const DEFAULT_URL_REQUEST_TIMEOUT_MS = 5_000;
/** Answers no wait changes: credentials refused, no such path. */
const FINAL_STATUS = new Set([401, 403, 404]);
/** TLS failures no wait changes: the certificate does not check against the CA, the name, or the date. */
const FINAL_TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);
/** How much of an unready answer's body is kept for the report (kube-apiserver's verbose /readyz names each check). */
const DETAIL_CHARS = 200;

export interface WaitForUrlOptions {
  /** http:// or https:// URLs, each of which must answer 200, e.g. every kube-apiserver's /readyz. */
  urls: readonly string[];
  /** How long they may stay unready before the run stops before its next member; default 2 minutes. */
  timeoutMs?: number | undefined;
  /** Each request's deadline; default 5 s. */
  requestTimeoutMs?: number | undefined;
  /** TLS for https:// URLs: PEM contents, not paths. */
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  /** Accept any server certificate (a test cluster; never a production one). */
  insecureSkipTlsVerify?: boolean | undefined;
  /** Sent as `Authorization: Bearer <token>` (an apiserver with anonymous requests turned off). */
  bearerToken?: string | undefined;
}

/** --wait-for-url and its options as the CLI flags and the daemon's config give them: TLS material and the token as file paths. */
export interface WaitForUrlFiles {
  readonly urls: readonly string[];
  readonly timeoutMs: number;
  readonly cacert?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly insecureSkipTlsVerify: boolean;
}

/**
 * Reads the files `f` names (with `readFile`, UTF-8) into WaitForUrlOptions; a file that cannot be read
 * is a UsageError naming it and its `source` (e.g. "--wait-for-url-cacert"). An empty token file too.
 */
export function readWaitForUrlFiles(
  f: WaitForUrlFiles,
  readFile: (path: string) => string,
  source: (field: 'cacert' | 'cert' | 'key' | 'tokenFile') => string,
): WaitForUrlOptions {
  const read = (field: 'cacert' | 'cert' | 'key' | 'tokenFile'): string | undefined => {
    const path = f[field];
    if (path === undefined) return undefined;
    try {
      return readFile(path);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
      throw new UsageError(`${source(field)}: cannot read ${path}: ${why}`);
    }
  };
  const token = read('tokenFile')?.trim();
  if (token === '') throw new UsageError(`${source('tokenFile')}: ${f.tokenFile} is empty`);
  return {
    urls: f.urls,
    timeoutMs: f.timeoutMs,
    ca: read('cacert'),
    cert: read('cert'),
    key: read('key'),
    insecureSkipTlsVerify: f.insecureSkipTlsVerify,
    bearerToken: token,
  };
}

/**
 * Checks a URL as --wait-for-url takes it: http or https, with a host. Returns the URL as given;
 * throws UsageError naming `source` otherwise.
 */
export function checkReadinessUrl(text: string, source: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${source}: "${text}" is not a URL (expected e.g. https://10.0.0.1:6443/readyz)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${source}: "${text}" is not an http:// or https:// URL`);
  if (url.hostname === '') throw new UsageError(`${source}: "${text}" has no host`);
  if (url.username !== '' || url.password !== '')
    throw new UsageError(`${source}: "${text}" holds a user name or password; use --wait-for-url-token-file or a client certificate`);
  return text;
}

/** The port, plus what tells two of them apart in JSON (the daemon compares configs so on a reload). */
export interface UrlReadiness extends ReadinessPort {
  /** A digest of the TLS files, the token and insecureSkipTlsVerify; never the secrets themselves. */
  readonly credentialsDigest: string;
}

/**
 * The readiness port of a run: the URLs, their limit, and a check that asks each once.
 *
 * @example
 * const readiness = urlReadiness({ urls: ['https://10.0.0.1:6443/readyz'], ca: readFileSync('/etc/kubernetes/pki/ca.crt', 'utf8') });
 * await defragment({ connection, execute: { readiness } });
 */
export function urlReadiness(o: WaitForUrlOptions): UrlReadiness {
  const urls = Object.freeze(o.urls.map((u, i) => checkReadinessUrl(u, `urls[${i}]`)));
  const requestTimeoutMs = o.requestTimeoutMs ?? DEFAULT_URL_REQUEST_TIMEOUT_MS;
  const agent = new https.Agent({
    ...(o.ca !== undefined && { ca: o.ca }),
    ...(o.cert !== undefined && { cert: o.cert }),
    ...(o.key !== undefined && { key: o.key }),
    rejectUnauthorized: o.insecureSkipTlsVerify !== true,
    keepAlive: false,
  });
  const headers: Record<string, string> = { accept: 'text/plain, application/json;q=0.9, */*;q=0.8' };
  if (o.bearerToken !== undefined) headers['authorization'] = `Bearer ${o.bearerToken}`;
  const credentialsDigest = createHash('sha256')
    .update(JSON.stringify([o.ca ?? null, o.cert ?? null, o.key ?? null, o.bearerToken ?? null, o.insecureSkipTlsVerify === true]))
    .digest('hex')
    .slice(0, 16);
  return Object.freeze({
    urls,
    timeoutMs: o.timeoutMs ?? DEFAULT_WAIT_FOR_URL_TIMEOUT_MS,
    credentialsDigest,
    check: (signal?: AbortSignal) => Promise.all(urls.map((url) => ask(url, { agent, headers, requestTimeoutMs, signal }))),
  });
}

interface Ask {
  agent: https.Agent;
  headers: Record<string, string>;
  requestTimeoutMs: number;
  signal: AbortSignal | undefined;
}

/** One GET; never rejects: what went wrong is the detail of an answer that is not ready. */
function ask(url: string, a: Ask): Promise<UrlAnswer> {
  return new Promise((resolve) => {
    const done = (ready: boolean, detail: string, final = false) => resolve(final ? { url, ready, detail, final } : { url, ready, detail });
    const signal = a.signal
      ? AbortSignal.any([a.signal, AbortSignal.timeout(a.requestTimeoutMs)])
      : AbortSignal.timeout(a.requestTimeoutMs);
    const lib = url.startsWith('https:') ? https : http;
    const req = lib.get(url, { headers: a.headers, signal, ...(lib === https && { agent: a.agent }) }, (res) => {
      const status = res.statusCode ?? 0;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 4 * DETAIL_CHARS) body += chunk;
      });
      res.on('end', () => done(status === 200, status === 200 ? '200' : `${status}${summary(body)}`, FINAL_STATUS.has(status)));
      res.on('error', (err) => done(false, `${status}, then ${describeError(err)}`));
    });
    req.on('error', (err: Error & { code?: string }) =>
      done(false, a.signal?.aborted ? 'interrupted' : describeError(err), err.code !== undefined && FINAL_TLS_CODES.has(err.code)),
    );
  });
}

/**
 * The lines of a body that say what is wrong: kube-apiserver's verbose /readyz lists every check as
 * `[+]name ok` or `[-]name failed: reason`; only the failed ones are kept. A Kubernetes Status object
 * (JSON): its message. Other bodies: their first line.
 */
function summary(body: string): string {
  // A Kubernetes Status object (401, 403, 404 from an apiserver): its message says it.
  if (body.trimStart().startsWith('{')) {
    try {
      const status = JSON.parse(body) as { kind?: unknown; message?: unknown };
      if (typeof status.message === 'string' && status.message !== '') return `: ${status.message.slice(0, DETAIL_CHARS)}`;
    } catch {
      // not JSON after all: its first line below
    }
  }
  const lines = body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const failed = lines.filter((l) => l.startsWith('[-]'));
  const text = (failed.length > 0 ? failed.join('; ') : (lines[0] ?? '')).slice(0, DETAIL_CHARS);
  return text === '' ? '' : `: ${text}`;
}

function describeError(err: Error & { code?: string }): string {
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'no answer in time';
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ENOTFOUND':
      return 'host not found';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    default:
      return err.code ? `${err.code}: ${err.message}` : err.message;
  }
}
