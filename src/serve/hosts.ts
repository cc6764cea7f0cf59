/**
 * Which Host headers the API serves: the guard against DNS rebinding. A page
 * on evil.example whose name is then made to resolve to 127.0.0.1 sends
 * `Host: evil.example` to the daemon, and the browser lets the page read the
 * answer (same origin); refusing host names the daemon was not told about
 * keeps a local browser from reading or driving the API. An IP literal is
 * never such a name (the page's origin would be the IP itself), so it is
 * always served: kubelet probes /healthz at the pod's IP.
 */
import { isIP } from 'node:net';

/** The host names served on a loopback listen address, and always with allowedHosts. */
export const LOOPBACK_NAMES: readonly string[] = Object.freeze(['localhost']);

/** Which Host headers are served: any, or IP literals and these names (lower case, no port). */
export type HostPolicy = { readonly any: true } | { readonly any: false; readonly names: readonly string[] };

/** Every Host header served: what a non-loopback listen address without allowedHosts gets (and tests without a socket). */
export const ANY_HOST: HostPolicy = Object.freeze({ any: true });

/**
 * A listen address that only this machine reaches: `localhost`, 127.0.0.0/8, ::1 (also as ::ffff:127.x.x.x).
 *
 * @example isLoopbackAddress('127.0.0.1') === true; isLoopbackAddress('0.0.0.0') === false
 */
export function isLoopbackAddress(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) !== 6) return false;
  // The URL parser writes an IPv6 address one way: [::1], and ::ffff:127.0.0.1 as [::ffff:7f00:1].
  const canonical = new URL(`http://[${h}]/`).hostname;
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

/**
 * The Host headers served for a listen address and `allowedHosts`: with allowedHosts, localhost and those
 * names whatever the address; without, localhost on a loopback address, anything on another.
 *
 * @example hostPolicy('127.0.0.1', null) // { any: false, names: ['localhost'] }
 */
export function hostPolicy(listenHost: string, allowedHosts: readonly string[] | null): HostPolicy {
  if (allowedHosts === null && !isLoopbackAddress(listenHost)) return ANY_HOST;
  return Object.freeze({ any: false, names: Object.freeze([...new Set([...LOOPBACK_NAMES, ...(allowedHosts ?? [])])]) });
}

/** A Host header's name, lower case, without its port or a trailing dot; null when it is not `name[:port]` or `[v6][:port]`. */
function hostName(header: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/@]+)(?::\d{1,5})?$/.exec(header);
  return m ? (m[1] as string).toLowerCase().replace(/\.$/, '') : null;
}

/**
 * Whether a request with this Host header is served. A missing one only for HTTP/1.0 (which has none;
 * no browser sends such a request); Node answers an HTTP/1.1 request without one 400 before the API sees it.
 *
 * @example hostAllowed(hostPolicy('127.0.0.1', null), 'evil.example:9479', '1.1') === false
 */
export function hostAllowed(policy: HostPolicy, header: string | undefined, httpVersion: string | null): boolean {
  if (policy.any) return true;
  if (header === undefined || header === '') return httpVersion === '1.0';
  const name = hostName(header);
  if (name === null) return false;
  if (isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0) return true;
  return policy.names.includes(name);
}
