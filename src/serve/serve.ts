/**
 * `defragd serve` as a function: opens the store, starts the daemon and the
 * HTTP server, and runs until `signal` aborts; then it stops starting runs,
 * lets a run in progress finish its current member (recorded as
 * interrupted), closes the server and the store. The CLI command wires it to
 * the process; tests call it directly.
 */
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { UsageError, messageOf } from '../domain/errors.js';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { OWN_START, openStore, stillRunning } from '../store/index.js';
import { ConfigError, type ServeConfig } from './config.js';
import { Daemon } from './daemon.js';
import { systemClock } from './clock.js';
import { hostPolicy } from './hosts.js';
import { createApi, serveApi } from './http.js';
import { collectProcessMetrics, createMetrics } from './metrics.js';

/** How often old samples are thinned and expired (full resolution 24 h, then 5-minute points). */
const DOWNSAMPLE_EVERY_MS = 3_600_000;

export interface LogSettings {
  level: string;
  format: 'json' | 'pretty';
  /** Where log lines go (default: standard output). */
  write?: ((line: string) => void) | undefined;
  /** Colours for the pretty format (a terminal). */
  colorize?: boolean | undefined;
}

/** A pino logger: one JSON object per line, or pino-pretty's lines for a terminal. */
export function createLogger(s: LogSettings): Logger {
  const write = s.write;
  const destination = write
    ? new Writable({
        write(chunk: Buffer | string, _encoding, callback) {
          write(chunk.toString());
          callback();
        },
      })
    : process.stdout;
  if (s.format === 'pretty') return pino({ level: s.level }, pretty({ colorize: s.colorize ?? false, destination, sync: true }));
  return pino({ level: s.level, base: { pid: process.pid } }, destination);
}

export interface ServeRun {
  logger: Logger;
  signal: AbortSignal;
  /** Called once the HTTP server listens, with its URL. */
  onListening?: ((url: string) => void) | undefined;
  /**
   * Reloading (SIGHUP): `subscribeReload` registers the handler; `reloadConfig`
   * reads the config anew (throwing ConfigError for an invalid file, which
   * keeps the running config).
   */
  subscribeReload?: ((handler: () => void) => () => void) | undefined;
  reloadConfig?: (() => ServeConfig) | undefined;
  now?: (() => number) | undefined;
  /** Who the daemon's runs are recorded as (default host:pid); tests running a CLI in the same process tell them apart by it. */
  by?: string | undefined;
  /** Where the dashboard's built files are (default: the package's own dist/web, see dashboardDir). */
  dashboardDir?: string | undefined;
}

/**
 * The dashboard's built files (index.html, app.js, app.css) as the package
 * ships them: `dist/web/`, found from this module's own location, so it
 * works installed from npm (dist/serve/serve.js → dist/web) and from the
 * sources (src/serve/serve.ts → dist/web after `npm run build`). Null when
 * it was not built.
 *
 * @example dashboardDir() // "/usr/lib/node_modules/defragd/dist/web"
 */
export function dashboardDir(): string | null {
  const candidates = ['../web/', '../../dist/web/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((dir) => existsSync(`${dir}index.html`)) ?? null;
}

/**
 * Runs the daemon until `signal` aborts.
 *
 * @example
 * const ac = new AbortController();
 * await serve(loadConfig('defragd.yaml', process.env), { logger: createLogger({ level: 'info', format: 'json' }), signal: ac.signal });
 */
export async function serve(config: ServeConfig, o: ServeRun): Promise<void> {
  const { logger } = o;
  for (const w of config.warnings) logger.warn({}, w);
  // One daemon per store file: two would both record and both schedule from one history.
  const releaseStore = lockStoreFile(config.store);
  let store: ReturnType<typeof openStore>;
  try {
    // Checked at start: a store corrupt in its middle is refused now, not found by an HTTP 500 later.
    store = openStore(config.store, { check: true });
  } catch (err) {
    releaseStore();
    throw err;
  }
  const metrics = createMetrics();
  collectProcessMetrics(metrics.registry);
  const daemon = new Daemon(config, { store, metrics, logger, clock: o.now ? { ...systemClock, now: o.now } : systemClock, by: o.by });
  let server: Awaited<ReturnType<typeof serveApi>> | null = null;
  let unsubscribeReload: (() => void) | undefined;
  const downsample = setInterval(() => {
    try {
      store.downsample(Date.now(), { retentionMs: config.storeRetentionMs });
    } catch (err) {
      logger.warn({ err: String(err) }, 'thinning the store failed');
    }
  }, DOWNSAMPLE_EVERY_MS);
  downsample.unref();
  try {
    const staticDir = config.dashboard ? (o.dashboardDir ?? dashboardDir()) : null;
    if (config.dashboard && staticDir === null)
      logger.warn({}, 'the dashboard is not built (npm run build makes dist/web): / serves nothing; the API works');
    server = await serveApi(
      createApi(daemon, {
        token: config.apiToken,
        hosts: hostPolicy(config.listen.host, config.allowedHosts),
        metrics,
        logger,
        staticDir,
        now: o.now,
        maxEventStreams: config.maxEventStreams,
      }),
      config.listen,
    );
    logger.info(
      {
        url: server.url,
        dashboard: staticDir === null ? null : `${server.url}/`,
        clusters: config.clusters.map((c) => c.name),
        store: config.store,
      },
      'defragd serve listening',
    );
    o.onListening?.(server.url);
    daemon.start();
    const reloadConfig = o.reloadConfig;
    unsubscribeReload = reloadConfig ? o.subscribeReload?.(() => void reload(daemon, config, reloadConfig, logger)) : undefined;
    await new Promise<void>((resolve) => {
      if (o.signal.aborted) return resolve();
      o.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    logger.info({}, 'stopping: no new runs; a run in progress finishes its current member');
    await daemon.stop();
    logger.info({}, 'stopped');
  } finally {
    unsubscribeReload?.();
    clearInterval(downsample);
    await server?.close();
    store.close();
    releaseStore();
  }
}

/**
 * SIGHUP: a valid new config replaces the clusters' settings (unchanged
 * clusters keep running undisturbed); an invalid one is logged and the
 * running config kept. listen, allowedHosts, store, the API token and
 * dashboard are read only at start-up.
 */
async function reload(daemon: Daemon, running: ServeConfig, read: () => ServeConfig, logger: Logger): Promise<void> {
  let next: ServeConfig;
  try {
    next = read();
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [messageOf(err)];
    logger.error({ problems }, 'reload: the new config is invalid; the running config is kept');
    return;
  }
  const fixed = (['listen', 'allowedHosts', 'store', 'apiToken', 'dashboard'] as const).filter(
    (k) => JSON.stringify(next[k]) !== JSON.stringify(running[k]),
  );
  if (fixed.length > 0) logger.warn({ keys: fixed }, 'reload: these keys are read only at start-up; restart to change them');
  for (const w of next.warnings) logger.warn({}, `reload: ${w}`);
  const changes = await daemon.reload({ ...next, clusters: next.clusters });
  logger.info(changes, 'reloaded the config');
}

/**
 * Takes `<store>.lock` (created exclusively, holding this pid and this
 * process's start, store/process.ts) or throws a UsageError naming the pid
 * that holds it. A lock left by a process that is gone is taken over, also
 * when a later process has its pid (pid 1 in a restarted container: this one).
 * Returns the release. Nothing to lock for ":memory:".
 */
export function lockStoreFile(
  storePath: string,
  self: { pid: number; start: string | null } = { pid: process.pid, start: OWN_START },
): () => void {
  if (storePath === ':memory:') return () => undefined;
  const lockPath = `${storePath}.lock`;
  const mine = `${self.pid} ${self.start ?? ''}`.trim();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, `${mine}\n`, { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(lockPath, 'utf8').trim() === mine) unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new UsageError(`store ${storePath}: cannot create its lock file ${lockPath}: ${(err as Error).message}`);
      const [pidText = '', start = null] = readFileSync(lockPath, 'utf8').trim().split(/\s+/);
      const pid = Number(pidText);
      const held =
        Number.isInteger(pid) && pid > 0 && (pid === self.pid ? (start ?? null) === self.start : stillRunning(pid, start ?? null));
      if (held) {
        throw new UsageError(`store ${storePath} is in use by another defragd serve (pid ${pid}); one daemon per store file`);
      }
      // Left by a process that is gone: take it over.
      unlinkSync(lockPath);
    }
  }
  throw new UsageError(`store ${storePath}: could not take its lock file ${lockPath}`);
}
