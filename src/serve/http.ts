/**
 * The daemon's HTTP API (hono): health, readiness, /metrics, the JSON API
 * under /api/v1 and the Server-Sent Events stream the dashboard listens to.
 * It reads and asks through DaemonView only, and is the only socket code
 * (serveApi). Every answer is JSON or an exposition; none carries a stack.
 * What a cluster did answers with defragd's one line (502 for a cluster that
 * cannot be used, 409 for a refusal); only a bug is a bare 500.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { DefragdError, type ErrorKind } from '../domain/errors.js';
import { clusterJson } from './cluster-json.js';
import { hostAllowed, type HostPolicy } from './hosts.js';
import { memberSeries, SAMPLE_RANGE_NAMES, SAMPLE_RANGES, type SampleRange } from './samples.js';
import type { ActionsJson, DaemonEvent, DaemonView } from './types.js';

/** What the API logs: pino's Logger fits. */
export interface ApiLogger {
  error(obj: object, msg: string): void;
}

export interface ApiOptions {
  /** The bearer token mutating endpoints require; null: they answer 403. */
  token: string | null;
  /** The Host headers served (hostPolicy(listen, allowedHosts)); others answer 421: the guard against DNS rebinding. */
  hosts: HostPolicy;
  metrics: { text(): Promise<string>; readonly contentType: string };
  /** Files served at / (the dashboard); null or absent: none. */
  staticDir?: string | null | undefined;
  logger?: ApiLogger | undefined;
  /** Event streams open at once; more answer 503 (default MAX_EVENT_STREAMS). */
  maxEventStreams?: number | undefined;
  /** How often an idle SSE stream gets a comment so proxies keep it open. */
  keepAliveMs?: number | undefined;
  /** The clock of the samples' time ranges (default Date.now). */
  now?: (() => number) | undefined;
}

/**
 * What the static files of the dashboard are sent with: scripts, styles and
 * connections only from the daemon itself (the page needs nothing else, and
 * an injected inline script would not run).
 */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export const SSE_KEEP_ALIVE_MS = 15_000;
/** Event streams open at once, by default: an open dashboard holds one. */
export const MAX_EVENT_STREAMS = 64;
export const HISTORY_LIMIT_DEFAULT = 50;
export const HISTORY_LIMIT_MAX = 1000;
/** A run request is a few bytes; anything large is not one. */
export const BODY_LIMIT_BYTES = 64 * 1024;

/** Digits only: Number() alone would take "1e3", " 5" or "0x10". */
const positiveInt = (max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/)
    .transform(Number)
    .pipe(z.number().int().min(1).max(max));
const historyLimit = positiveInt(HISTORY_LIMIT_MAX).default(HISTORY_LIMIT_DEFAULT);
const runId = positiveInt(Number.MAX_SAFE_INTEGER);
const sampleRange = z.enum(SAMPLE_RANGE_NAMES as [SampleRange, ...SampleRange[]]).default('1h');
/** Runs marked on a chart: more than this in one range would not be told apart anyway. */
export const CHART_RUNS_MAX = 500;
const NO_TOKEN = 'no API token is configured (apiTokenFile): mutating endpoints are disabled';
// Strict: a misspelt `dryrun: true` must not start a real run.
const runRequest = z.strictObject({ dryRun: z.boolean().default(false) });

/** Every JSON answer: no caching (the figures change with each observation). */
function json(c: Context, body: unknown, status: ContentfulStatusCode = 200): Response {
  c.header('cache-control', 'no-store');
  return c.json(body, status);
}

const problem = (c: Context, status: ContentfulStatusCode, error: string) => json(c, { error }, status);

const issues = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * What defragd's own errors answer, by kind, on the routes that ask a cluster (askCluster): what the
 * cluster did, not a bug. A usage error there comes from the cluster's settings (endpoints of two
 * clusters), not from the request, which is checked before.
 */
const STATUS_BY_KIND: Record<ErrorKind, ContentfulStatusCode> = {
  usage: 502,
  connection: 502,
  etcd: 502,
  failed: 502,
  timeout: 504,
  refused: 409,
  aborted: 503,
};

/** A route's answer from a call that asks a cluster; anything but defragd's own errors goes on to onError (500). */
async function askCluster(c: Context, answer: () => Promise<Response>): Promise<Response> {
  try {
    return await answer();
  } catch (err) {
    if (!(err instanceof DefragdError)) throw err;
    return problem(c, STATUS_BY_KIND[err.kind], err.message.replace(/\s*\n\s*/g, '; '));
  }
}

const unknownCluster = (c: Context, name: string) => problem(c, 404, `no cluster named "${name}"`);

/** What a request's Node socket says of it, when it came through serveApi (hono's node-server sets `incoming`). */
type NodeBindings = { incoming?: { httpVersion?: string } } | undefined;

/**
 * Serves only the Host headers of the policy (hosts.ts), every route alike: a page that rebound its name to
 * this address gets 421 and nothing else.
 */
function guardHost(policy: HostPolicy) {
  return createMiddleware(async (c, next) => {
    const host = c.req.header('host');
    if (!hostAllowed(policy, host, (c.env as NodeBindings)?.incoming?.httpVersion ?? null)) {
      return problem(
        c,
        421,
        host
          ? `this daemon does not serve the host name ${JSON.stringify(host.slice(0, 100))} (a guard against DNS rebinding): add it to allowedHosts, or use localhost or an IP address`
          : 'a Host header is required',
      );
    }
    await next();
  });
}

/**
 * Lets a request through only with `Authorization: Bearer <token>`. Without a
 * configured token nothing gets through (403): an open mutating endpoint is
 * never the default.
 */
function requireToken(token: string | null) {
  const expected = token === null ? null : digest(token);
  return createMiddleware(async (c, next) => {
    if (expected === null) return problem(c, 403, NO_TOKEN);
    const m = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '');
    // Equal-length digests compared in constant time: neither the token nor its length leaks through timing.
    if (m === null || !timingSafeEqual(digest(m[1]!), expected)) {
      c.header('www-authenticate', 'Bearer');
      return problem(c, 401, 'a valid bearer token is required');
    }
    await next();
  });
}

/**
 * The API as a hono app; test it with `app.request(path)`, serve it with serveApi.
 *
 * @example
 *   const app = createApi(daemon, { token: readToken(), hosts: hostPolicy('127.0.0.1', null), metrics, logger });
 *   const server = await serveApi(app, { host: '127.0.0.1', port: 9479 });
 */
export function createApi(view: DaemonView, opts: ApiOptions): Hono {
  const keepAliveMs = opts.keepAliveMs ?? SSE_KEEP_ALIVE_MS;
  const maxStreams = opts.maxEventStreams ?? MAX_EVENT_STREAMS;
  let openStreams = 0;
  const now = opts.now ?? Date.now;
  const actions: ActionsJson = opts.token === null ? { enabled: false, reason: NO_TOKEN } : { enabled: true, reason: null };
  const app = new Hono();

  app.onError((err, c) => {
    opts.logger?.error({ err, method: c.req.method, path: c.req.path }, 'HTTP request failed');
    return problem(c, 500, 'internal error');
  });
  app.notFound((c) => problem(c, 404, `no such route: ${c.req.method} ${c.req.path}`));
  app.use('*', guardHost(opts.hosts));

  app.get('/healthz', (c) => json(c, { ok: true }));
  app.get('/readyz', (c) => {
    const r = view.ready();
    return r.ok ? json(c, { ok: true }) : json(c, { ok: false, reason: r.reason }, 503);
  });
  app.get('/metrics', async (c) => {
    const body = await opts.metrics.text();
    return c.body(body, 200, { 'content-type': opts.metrics.contentType, 'cache-control': 'no-store' });
  });

  const api = new Hono();

  // `actions` tells the dashboard up front whether to offer runs (a token is configured), not only after a 403.
  api.get('/clusters', (c) => json(c, { clusters: view.clusters().map(clusterJson), actions }));

  api.get('/clusters/:name', (c) => {
    const cluster = view.cluster(c.req.param('name'));
    return cluster === undefined ? unknownCluster(c, c.req.param('name')) : json(c, clusterJson(cluster));
  });

  api.get('/clusters/:name/history', (c) => {
    const name = c.req.param('name');
    if (view.cluster(name) === undefined) return unknownCluster(c, name);
    const limit = historyLimit.safeParse(c.req.query('limit'));
    if (!limit.success) return problem(c, 400, `limit must be an integer from 1 to ${HISTORY_LIMIT_MAX}`);
    return json(c, { cluster: name, runs: view.history(name, limit.data) });
  });

  api.get('/clusters/:name/samples', (c) => {
    const name = c.req.param('name');
    if (view.cluster(name) === undefined) return unknownCluster(c, name);
    const range = sampleRange.safeParse(c.req.query('range'));
    if (!range.success) return problem(c, 400, `range must be one of ${SAMPLE_RANGE_NAMES.join(', ')}`);
    const toMs = now();
    const fromMs = toMs - SAMPLE_RANGES[range.data];
    const from = new Date(fromMs).toISOString();
    return json(c, {
      cluster: name,
      range: range.data,
      from,
      to: new Date(toMs).toISOString(),
      members: memberSeries(view.samples(name, from), { fromMs, toMs }),
      runs: view.history(name, CHART_RUNS_MAX, from).filter((r) => !r.dryRun),
    });
  });

  api.get('/clusters/:name/status', async (c) => {
    const name = c.req.param('name');
    if (view.cluster(name) === undefined) return unknownCluster(c, name);
    return askCluster(c, async () => json(c, { cluster: name, members: await view.defragmentationStatus(name, c.req.raw.signal) }));
  });

  api.get('/runs/:id', (c) => {
    const id = c.req.param('id');
    const parsed = runId.safeParse(id);
    if (!parsed.success) return problem(c, 400, `run id must be a positive integer, not "${id}"`);
    const detail = view.runDetail(parsed.data);
    return detail === null ? problem(c, 404, `no run ${parsed.data}`) : json(c, detail);
  });

  api.post(
    '/clusters/:name/runs',
    requireToken(opts.token),
    bodyLimit({ maxSize: BODY_LIMIT_BYTES, onError: (c) => problem(c, 413, `request body over ${BODY_LIMIT_BYTES} bytes`) }),
    async (c) => {
      const name = c.req.param('name');
      if (view.cluster(name) === undefined) return unknownCluster(c, name);
      const text = await c.req.text();
      let body: unknown;
      try {
        body = text.trim() === '' ? {} : JSON.parse(text);
      } catch {
        return problem(c, 400, 'the body is not valid JSON');
      }
      const req = runRequest.safeParse(body);
      if (!req.success) return problem(c, 400, `bad run request: ${issues(req.error)}`);
      return askCluster(c, async () => {
        const started = await view.startRun(name, { dryRun: req.data.dryRun });
        if (!started.ok) return problem(c, started.status, started.reason);
        if (started.dryRun) return json(c, { runId: started.runId, dryRun: true, report: started.report ?? null });
        return json(
          c,
          { runId: started.runId, dryRun: false, ...(started.waiting === undefined ? {} : { waiting: started.waiting }) },
          202,
        );
      });
    },
  );

  api.get('/events', (c) => {
    // Each stream holds a socket and a subscription: capped, so no number of clients can use up the file
    // descriptors that /healthz, the API and etcd's connections need.
    if (openStreams >= maxStreams) {
      c.header('retry-after', '30');
      return problem(c, 503, `too many event streams open (maxEventStreams ${maxStreams}); try again later`);
    }
    openStreams++;
    return streamSSE(c, async (stream) => {
      let unsubscribe: (() => void) | null = null;
      let keepAlive: ReturnType<typeof setInterval> | null = null;
      try {
        // Writes are queued in order by the stream; a write to a closed stream is dropped by hono.
        const send = (e: DaemonEvent) => void stream.writeSSE({ event: 'step', data: JSON.stringify(e) });
        try {
          unsubscribe = view.subscribe(send);
        } catch (err) {
          // Logged here: hono's own handler would print to the console and send the message to the client.
          opts.logger?.error({ err, method: c.req.method, path: c.req.path }, 'HTTP request failed');
          return;
        }
        keepAlive = setInterval(() => void stream.write(': keep-alive\n\n'), keepAliveMs);
        await new Promise<void>((resolve) => {
          stream.onAbort(() => resolve());
          if (stream.aborted) resolve();
        });
      } finally {
        if (keepAlive !== null) clearInterval(keepAlive);
        unsubscribe?.();
        openStreams--;
      }
    });
  });

  app.route('/api/v1', api);
  // Unknown /api routes answer JSON 404 even when a dashboard is served at /.
  app.all('/api/*', (c) => problem(c, 404, `no such route: ${c.req.method} ${c.req.path}`));
  if (opts.staticDir) {
    app.use('/*', async (c, next) => {
      // Set before the file's response is made (serveStatic's own hooks come after it).
      c.header('content-security-policy', DASHBOARD_CSP);
      c.header('x-content-type-options', 'nosniff');
      // The file names do not change with a new build: always revalidate.
      c.header('cache-control', 'no-cache');
      await next();
    });
    app.use('/*', serveStatic({ root: opts.staticDir }));
  }
  return app;
}

export interface ListenAddress {
  host: string;
  /** 0: any free port (the answer's url says which). */
  port: number;
}

export interface RunningServer {
  /** e.g. `http://127.0.0.1:9479` */
  url: string;
  /** Stops accepting, ends open connections (SSE streams included) and resolves once closed. */
  close(): Promise<void>;
}

/**
 * Serves the app on a TCP socket; rejects when the address cannot be bound.
 *
 * @example
 *   const { url, close } = await serveApi(app, { host: '127.0.0.1', port: 0 });
 */
export function serveApi(app: Hono, listen: ListenAddress): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: listen.host, port: listen.port }) as Server;
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      const { address, port } = server.address() as AddressInfo;
      const host = address.includes(':') ? `[${address}]` : address;
      resolve({
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            // SSE streams never end by themselves; close() would wait for them forever.
            server.closeAllConnections();
          }),
      });
    });
  });
}
