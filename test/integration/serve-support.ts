/**
 * What the `defragd serve` integration tests share: serve() started in this
 * process from a config text, polling until something holds, JSON over
 * fetch, a free loopback port.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EtcdCluster } from '../../dev/harness/etcd.js';
import { loadConfig, type ServeConfig } from '../../src/serve/config.js';
import { createLogger, serve } from '../../src/serve/serve.js';

/** Test files import it from here with the other serve helpers. */
export { freePort } from '../../dev/harness/etcd.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `fn` every 200 ms until it returns something truthy; throws naming
 * `what` (and `detail()`, e.g. the daemon's last log lines) after `timeoutMs`.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) {
      const more = detail();
      throw new Error(`timed out waiting for ${what}${more ? `\n${more}` : ''}`);
    }
    await sleep(200);
  }
}

/** How many observations of `cluster` that answered the daemon at `url` has made, by kind (its defragd_observations_total). */
export async function observationsOf(url: string, cluster: string): Promise<{ full: number; light: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (kind: string) =>
    Number(new RegExp(`^defragd_observations_total\\{cluster="${cluster}",kind="${kind}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { full: count('full'), light: count('light') };
}

/**
 * Waits until the daemon has made `n` more observations of `cluster` than now (`kind`: only full ones, or
 * any): "nothing more happened" said in the daemon's own turns rather than in wall-clock time.
 */
export async function moreObservations(
  url: string,
  cluster: string,
  n: number,
  { kind = 'any', timeoutMs = 45_000 }: { kind?: 'full' | 'any'; timeoutMs?: number } = {},
): Promise<void> {
  const total = (o: { full: number; light: number }) => (kind === 'full' ? o.full : o.full + o.light);
  const from = total(await observationsOf(url, cluster));
  await until(
    `${n} more ${kind === 'full' ? 'full ' : ''}observations of ${cluster}`,
    async () => total(await observationsOf(url, cluster)) >= from + n,
    timeoutMs,
  );
}

export const getJson = async <T = Record<string, unknown>>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as T };
};

export interface RunningServe {
  url: string;
  /** The config file written from the text (edit it, then `reload()`). */
  file: string;
  /** The daemon's log lines so far, parsed. */
  logs: () => Record<string, unknown>[];
  /** What SIGHUP does: re-reads the config file. */
  reload: () => void;
  /** What SIGTERM does; resolves when serve() has returned. */
  stop: () => Promise<void>;
}

export interface StartServeOptions {
  /** Who the daemon says it is in records (default: host:pid). */
  by?: string;
  /** Changes the loaded config before serve() starts (e.g. an interval below the config's minimum). */
  adjust?: (config: ServeConfig) => ServeConfig;
}

/**
 * Writes `yaml` to `<dir>/<name>.yaml`, starts serve() with it in this
 * process (logs kept in memory) and resolves once its HTTP API listens.
 */
export async function startServe(dir: string, name: string, yaml: string, opts: StartServeOptions = {}): Promise<RunningServe> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const loaded = loadConfig(file, {});
  const config = opts.adjust ? opts.adjust(loaded) : loaded;
  const lines: string[] = [];
  const ac = new AbortController();
  let url = '';
  let running: Promise<void> = Promise.resolve();
  const handlers = new Set<() => void>();
  await new Promise<void>((resolve, reject) => {
    running = serve(config, {
      logger: createLogger({ level: 'debug', format: 'json', write: (l) => lines.push(l) }),
      signal: ac.signal,
      ...(opts.by === undefined ? {} : { by: opts.by }),
      onListening: (u) => ((url = u), resolve()),
      subscribeReload: (h) => (handlers.add(h), () => void handlers.delete(h)),
      reloadConfig: () => loadConfig(file, {}),
    });
    running.catch(reject);
  });
  return {
    url,
    file,
    reload: () => {
      for (const h of handlers) h();
    },
    logs: () =>
      lines
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      ac.abort();
      await running;
    },
  };
}

/**
 * Polls every member's etcd_disk_defrag_inflight every ~20 ms until stopped:
 * the highest sum seen (two at once would be 2), and how many polls saw one.
 */
export function watchInflight(c: EtcdCluster): {
  stop: () => Promise<{ maxSum: number; pollsWithOne: number; polls: number; errors: number }>;
} {
  let stopped = false;
  let maxSum = 0;
  let pollsWithOne = 0;
  let polls = 0;
  let errors = 0;
  const loop = (async () => {
    while (!stopped) {
      const values = await Promise.all(
        c.members.map((m) =>
          c.memberMetrics(m.name, { timeoutMs: 2_000 }).then(
            (mm) => mm.get('etcd_disk_defrag_inflight') ?? 0,
            () => {
              errors++;
              return 0;
            },
          ),
        ),
      );
      const sum = values.reduce((a, b) => a + b, 0);
      polls++;
      if (sum >= 1) pollsWithOne++;
      maxSum = Math.max(maxSum, sum);
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { maxSum, pollsWithOne, polls, errors };
    },
  };
}

/** etcd's own count of finished Defragment calls, per member name. */
export async function defragCounts(c: EtcdCluster): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of c.members)
    out[m.name] = (await c.memberMetrics(m.name, { timeoutMs: 5_000 })).get('etcd_disk_backend_defrag_duration_seconds_count') ?? 0;
  return out;
}

/** Every replica's log lines so far, one JSON object a line, under its number: what a failed assertion shows. */
export function replicaLogs(replicas: readonly RunningServe[]): string {
  return replicas
    .map(
      (r, i) =>
        `replica ${i}:\n${r
          .logs()
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
    )
    .join('\n');
}
