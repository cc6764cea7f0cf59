/**
 * Endpoint parsing with etcdctl's conventions: `host:port`, `http://host:port`
 * or `https://host:port`. A bare `host:port` uses TLS when TLS flags were given.
 */
import { UsageError } from '../domain/errors.js';

export interface Endpoint {
  /** Normalised URL, e.g. "https://127.0.0.1:2379". */
  url: string;
  /** "host:port" as gRPC wants it. */
  target: string;
  host: string;
  port: number;
  secure: boolean;
}

export function parseEndpoint(raw: string, tlsByDefault = false): Endpoint {
  const text = raw.trim();
  if (text === '') throw new UsageError('empty endpoint in --endpoints');
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `${tlsByDefault ? 'https' : 'http'}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`malformed endpoint "${raw}": expected host:port, http://host:port or https://host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`malformed endpoint "${raw}": scheme ${url.protocol.replace(':', '')} is not supported (use http or https)`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new UsageError(`malformed endpoint "${raw}": an endpoint has no path`);
  }
  if (url.port === '') {
    throw new UsageError(`malformed endpoint "${raw}": no port (etcd's client port is usually 2379)`);
  }
  const port = Number(url.port);
  const host = url.hostname;
  const secure = url.protocol === 'https:';
  return { url: `${url.protocol}//${url.host}`, target: url.host, host, port, secure };
}

/** Splits a comma list of endpoints and drops duplicates (same normalised URL). */
export function parseEndpoints(list: string | string[], tlsByDefault = false): Endpoint[] {
  const parts = (Array.isArray(list) ? list : [list])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) throw new UsageError('no endpoints given (--endpoints host:port[,host:port...])');
  const seen = new Map<string, Endpoint>();
  for (const p of parts) {
    const e = parseEndpoint(p, tlsByDefault);
    if (!seen.has(e.url)) seen.set(e.url, e);
  }
  return [...seen.values()];
}
