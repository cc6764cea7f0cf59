/**
 * Reads a few gauges from a member's Prometheus endpoint (`<clientURL>/metrics`),
 * over the same TLS settings as gRPC. Mostly unlabelled samples: the quota
 * and defrag-inflight gauges defragd needs have no labels. A name may also
 * be the start of a labelled series up to some of its labels (see
 * METRIC_STOP_GRPC_ON_DEFRAG): the first series that starts so is read.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { CallOptions } from './options.js';

export const METRIC_QUOTA = 'etcd_server_quota_backend_bytes';
export const METRIC_DEFRAG_INFLIGHT = 'etcd_disk_defrag_inflight';
/** How many defragmentations the member's process has finished (a histogram's count: it restarts with the process). */
export const METRIC_DEFRAG_COUNT = 'etcd_disk_backend_defrag_duration_seconds_count';
/**
 * etcd 3.6+ exports each feature gate as `etcd_server_feature_enabled{name="…",stage="…"}` (1 or 0; etcd
 * PR #19495, first in 3.6.0). The stage label changes as a gate matures, so the series is matched by its
 * name label alone. 3.5 exports no gates: its `--experimental-stop-grpc-service-on-defrag` cannot be read.
 */
export const METRIC_STOP_GRPC_ON_DEFRAG = 'etcd_server_feature_enabled{name="StopGRPCServiceOnDefrag"';

/** Parses Prometheus text exposition into name → value for unlabelled samples. */
export function parseGauges(text: string, names?: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const wanted = names ? new Set(names) : null;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\S+)/.exec(line);
    if (!m) continue;
    const [, name, value] = m as unknown as [string, string, string];
    if (wanted && !wanted.has(name)) continue;
    const n = Number(value);
    if (Number.isFinite(n)) out.set(name, n);
  }
  return out;
}

/**
 * Finds the unlabelled samples of some names in a Prometheus exposition as it
 * arrives, chunk by chunk, without splitting it into lines. etcd's /metrics
 * is about 150 KB (mostly grpc_server_* series, which sort last) and the
 * gauges defragd reads sit in its first fifth: a daemon that observes many
 * members every few seconds would otherwise spend most of its CPU reading
 * and splitting the rest. Same results as parseGauges(text, names).
 *
 * @example
 *   const scan = new GaugeScan([METRIC_QUOTA]);
 *   for (const chunk of chunks) if (scan.push(chunk)) break; // all found: stop reading
 *   scan.found.get(METRIC_QUOTA);
 */
export class GaugeScan {
  /** The text so far, after a leading newline so the first line is found like every other. */
  #text = '\n';
  /** Names not found yet, each with where its next search starts. */
  readonly #pending: Map<string, number>;
  readonly found = new Map<string, number>();

  constructor(names: readonly string[]) {
    this.#pending = new Map(names.map((n) => [n, 0]));
  }

  /** Whether every name has been found. */
  get done(): boolean {
    return this.#pending.size === 0;
  }

  /** Adds a chunk; true once every name has been found. */
  push(chunk: string): boolean {
    this.#text += chunk;
    const text = this.#text;
    for (const [name, from] of [...this.#pending]) {
      const needle = `\n${name}`;
      let next = Math.max(0, text.length - needle.length);
      for (let i = text.indexOf(needle, from); i >= 0; i = text.indexOf(needle, i + 1)) {
        let after = i + needle.length;
        const c = text[after];
        // Not enough text yet to tell `name value` from `name{...}` or a longer name: look here again next time.
        if (c === undefined) {
          next = i;
          break;
        }
        if (name.includes('{')) {
          // The start of a labelled series: the labels asked for must be whole (`,` or `}` follows), then the value.
          if (c !== ',' && c !== '}') continue;
          const close = text.indexOf('}', after);
          if (close < 0) {
            next = i;
            break;
          }
          after = close + 1;
          const v = text[after];
          if (v === undefined) {
            next = i;
            break;
          }
          if (v !== ' ' && v !== '\t') continue;
        } else if (c !== ' ' && c !== '\t') continue;
        const end = text.indexOf('\n', after);
        if (end < 0) {
          next = i;
          break;
        }
        const value = Number(/^\s*(\S+)/.exec(text.slice(after, end))?.[1]);
        if (Number.isFinite(value)) {
          this.found.set(name, value);
          break;
        }
      }
      if (this.found.has(name)) this.#pending.delete(name);
      else this.#pending.set(name, next);
    }
    return this.done;
  }
}

/** TLS material for /metrics over https, read once per client (see createClientContext). */
export interface HttpTls {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  rejectUnauthorized: boolean;
  serverName?: string | undefined;
}

/**
 * GETs `<endpointUrl>/metrics` and reads it only until every name asked for
 * was found; resolves null on any failure (metrics are optional).
 */
export async function fetchGauges(
  endpointUrl: string,
  names: readonly string[],
  tls: HttpTls | null,
  opts: CallOptions = {},
): Promise<Map<string, number> | null> {
  const url = new URL('/metrics', endpointUrl);
  const secure = url.protocol === 'https:';
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const agentOpts: https.RequestOptions = secure
    ? {
        ca: tls?.ca,
        cert: tls?.cert,
        key: tls?.key,
        rejectUnauthorized: tls?.rejectUnauthorized ?? true,
        // SNI carries host names only; an empty name turns it off for IP endpoints.
        servername: tls?.serverName ?? (isIP(url.hostname) ? '' : url.hostname),
      }
    : {};
  return new Promise((resolve) => {
    const req = (secure ? https : http).get(url, { ...agentOpts, timeout: timeoutMs, signal: opts.signal }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(null);
      }
      const scan = new GaugeScan(names);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (!scan.push(chunk)) return;
        // Everything asked for is here: the rest of the exposition is not read.
        resolve(scan.found);
        req.destroy();
      });
      res.on('end', () => resolve(scan.found));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}
