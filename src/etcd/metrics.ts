/**
 * Reads a few gauges from a member's Prometheus endpoint (`<clientURL>/metrics`),
 * over the same TLS settings as gRPC. Only unlabelled samples are kept: the
 * quota and defrag-inflight gauges defragd needs have no labels.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { CallOptions } from './options.js';

export const METRIC_QUOTA = 'etcd_server_quota_backend_bytes';
export const METRIC_DEFRAG_INFLIGHT = 'etcd_disk_defrag_inflight';

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

/** TLS material for /metrics over https, read once per client (see createClientContext). */
export interface HttpTls {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  rejectUnauthorized: boolean;
  serverName?: string | undefined;
}

/** GETs `<endpointUrl>/metrics`; resolves null on any failure (metrics are optional). */
export async function fetchGauges(endpointUrl: string, names: readonly string[], tls: HttpTls | null, opts: CallOptions = {}): Promise<Map<string, number> | null> {
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
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(parseGauges(body, names)));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}
