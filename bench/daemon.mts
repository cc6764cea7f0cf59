/**
 * `make bench-daemon`: what does `defragd serve` cost while it watches many
 * clusters? One daemon child process (`node dist/cli/main.js serve`) watches
 * BENCH_CLUSTERS (10) clusters × 3 members of real etcd at a 5 s interval for
 * BENCH_MINUTES (10) minutes, under a light steady write load with periodic
 * compactions (as kube-apiserver's), and a one-off batch of writes on a few
 * clusters that makes the auto rule hold there once. Measured from outside:
 * RSS (VmRSS, VmHWM) and CPU (utime + stime) from /proc, the store's files
 * and contents; from the daemon's /metrics: its event-loop delay. Beside it, a
 * floor process (daemon-floor.mjs) makes only the light observations' Status
 * calls, measured the same way: what the calls alone cost a Node process. The store's
 * size over a year is simulated with the daemon's own store code (see
 * daemon-store-sim.ts). Prints the table, pass/fail per goal, and writes
 * bench/results/daemon-*.
 *
 * Everything it starts (etcd members, the daemon) is stopped and every temp
 * dir removed at the end, on error and on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EtcdClient, observeCluster, type ClusterSnapshot } from '../src/internals.js';
import { startCluster, type EtcdCluster } from '../dev/harness/etcd.js';
import { cpuSecondsOf, metricValue, readProc, storeContents, storeFiles, type ProcSample } from './daemon-measure.js';
import { GOALS, markdown, storeModel, writeResults, type DaemonBenchResult, type Scrape } from './daemon-report.js';
import { extrapolate, simulateStore } from './daemon-store-sim.js';
import { median, sleep } from './util.js';
import { EVENT_LOOP_RESOLUTION_MS } from '../src/serve/metrics.js';

const USAGE = `Usage: make bench-daemon      (or: npx tsx bench/daemon.mts, after npx tsc -p tsconfig.build.json)

Settings, from the environment:
  BENCH_CLUSTERS    clusters of 3 etcd members the daemon watches (1-20, default 10)
  BENCH_MINUTES     how long the daemon runs after it is ready (0.5-120, default 10)
  BENCH_STORE_DAYS  days of the simulated store (4-60, default 6)
  BENCH_OUT         results directory (default bench/results)
  BENCH_DAEMON_NODE_ARGS  extra node flags for the daemon, to profile it, e.g.
                    "--cpu-prof --cpu-prof-dir=scratch/prof" or "--heapsnapshot-signal=SIGUSR2"
`;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const FLOOR = path.join(ROOT, 'bench', 'daemon-floor.mjs');
const INTERVAL_MS = 5_000;
const RULE = 'dbSizeFree > 2*MiB';
const COOLDOWN = '6h';
const SAMPLE_EVERY_MS = 5_000;
const SCRAPE_EVERY_MS = 15_000;
const PUT_EVERY_MS = 1_000;
const PUT_BYTES = 1024;
const KEYS = 50;
const BURST_VALUE_BYTES = 64 * 1024;
const BURST_VALUES = 64;
const MEMBERS = 3;
const RETENTION_DAYS = 90;

class UsageError extends Error {}

function num(name: string, lo: number, hi: number, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < lo || n > hi)
    throw new UsageError(`${name}: expected a number in [${lo}, ${hi}], got ${JSON.stringify(raw)}`);
  return n;
}

let settings: { clusters: number; minutes: number; storeDays: number; outDir: string };
try {
  if (process.argv.slice(2).some((a) => a === '-h' || a === '--help')) {
    console.log(USAGE);
    process.exit(0);
  }
  if (process.argv.length > 2)
    throw new UsageError(`unexpected argument ${JSON.stringify(process.argv[2])} (settings come from the environment)`);
  settings = {
    clusters: Math.round(num('BENCH_CLUSTERS', 1, 20, 10)),
    minutes: num('BENCH_MINUTES', 0.5, 120, 10),
    storeDays: Math.round(num('BENCH_STORE_DAYS', 4, 60, 6)),
    outDir: path.resolve(process.env.BENCH_OUT ?? path.join(ROOT, 'bench', 'results')),
  };
  if (!existsSync(MAIN))
    throw new UsageError(
      `${path.relative(process.cwd(), MAIN)} is missing: build first (npx tsc -p tsconfig.build.json; make bench-daemon does)`,
    );
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`bench-daemon: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const t0 = Date.now();
const log = (msg: string): void => console.error(`[bench-daemon +${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);

// --- Everything started, so that everything can be stopped ---------------------------------
const clusters: EtcdCluster[] = [];
const clients: EtcdClient[] = [];
const timers = new Set<NodeJS.Timeout>();
let daemon: ChildProcess | null = null;
let floor: ChildProcess | null = null;
let tmp: string | null = null;
const abort = new AbortController();

function every(ms: number, fn: () => void): void {
  const t = setInterval(fn, ms);
  timers.add(t);
}

function stopTimers(): void {
  for (const t of timers) clearInterval(t);
  timers.clear();
}

async function cleanup(): Promise<void> {
  stopTimers();
  for (const p of [daemon, floor]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const c of clients) c.close();
  clients.length = 0;
  await Promise.allSettled(clusters.map((c) => c.close()));
  clusters.length = 0;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = null;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping the daemon and the clusters, removing the temp dirs ...`);
    abort.abort();
    setTimeout(() => process.exit(130), 15_000).unref();
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  for (const p of [daemon, floor]) if (p && p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function checkAborted(): void {
  if (abort.signal.aborted) throw new Error('interrupted');
}

// --- The daemon -------------------------------------------------------------------------------
interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  url: Promise<string>;
  lines: string[];
  warnings: string[];
  exited: Promise<number | null>;
}

/** The node flags of the executable's shebang (`#!/usr/bin/env -S node FLAGS`), as the installed `defragd` runs. */
function shebangFlags(): string[] {
  const shebang = /^#!\S*env -S node\s+(.*)$/m.exec(readFileSync(MAIN, 'utf8').split('\n', 1)[0] ?? '')?.[1] ?? '';
  return shebang.split(/\s+/).filter(Boolean);
}

/**
 * The floor process (bench/daemon-floor.mjs): only the light observations' Status calls, at their
 * pace, through defragd's client, with the executable's node flags. Resolves once it is ready.
 */
async function startFloor(endpoints: string[][]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...shebangFlags(), FLOOR, String(INTERVAL_MS), JSON.stringify(endpoints)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: ROOT,
  });
  floor = child;
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => (b.toString().includes('ready') ? resolve() : undefined));
    child.on('exit', (code) => reject(new Error(`the floor process exited (code ${code}) before it was ready: ${err.trim()}`)));
    setTimeout(() => reject(new Error('the floor process was not ready within 30 s')), 30_000).unref();
  });
  return child;
}

function startDaemon(configFile: string): DaemonProcess {
  const nodeArgs = [...shebangFlags(), ...(process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(/\s+/)].filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, MAIN, 'serve', '--config', configFile, '--log-level', process.env.BENCH_LOG_LEVEL ?? 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT },
  );
  daemon = child;
  if (child.pid === undefined) throw new Error('the daemon did not start');
  const lines: string[] = [];
  const warnings: string[] = [];
  let onUrl: (url: string) => void = () => undefined;
  const url = new Promise<string>((resolve) => (onUrl = resolve));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    try {
      const o = JSON.parse(line) as { level?: number; msg?: string; url?: string; err?: string; cluster?: string };
      if (o.msg === 'defragd serve listening' && o.url) onUrl(o.url);
      if ((o.level ?? 0) >= 40) warnings.push(`${o.cluster ? `${o.cluster}: ` : ''}${o.msg}${o.err ? ` (${o.err})` : ''}`);
    } catch {
      warnings.push(`not JSON: ${line}`);
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    lines.push(`stderr: ${line}`);
    // The benchmark's own SIGTERM at the end is acknowledged on stderr: expected, not a warning.
    if (!/^defragd: SIGTERM: stopping after the current step/.test(line)) warnings.push(`stderr: ${line}`);
  });
  return { child, pid: child.pid, url, lines, warnings, exited };
}

async function get(url: string, timeoutMs = 5_000): Promise<{ status: number; text: string } | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, text: await res.text() };
  } catch {
    return null;
  }
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    checkAborted();
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(200, abort.signal);
  }
}

// --- The workload -----------------------------------------------------------------------------
interface Workload {
  puts: number;
  compactions: number;
  errors: number;
  lastError: string | null;
  bursts: { cluster: string; atSeconds: number }[];
}

function startWorkload(names: string[], clientOf: (i: number) => EtcdClient, durationMs: number, compactEveryMs: number): Workload {
  const w: Workload = { puts: 0, compactions: 0, errors: 0, lastError: null, bursts: [] };
  const value = Buffer.alloc(PUT_BYTES, 'v');
  const fail = (err: unknown) => {
    w.errors++;
    w.lastError = err instanceof Error ? err.message : String(err);
  };
  names.forEach((_name, i) => {
    const mc = () => clientOf(i).member(clusters[i]!.endpoints[0] as string);
    let busy = false;
    let n = 0;
    // Spread the clusters' puts over the second, so they do not all land at once.
    setTimeout(
      () => {
        every(PUT_EVERY_MS, () => {
          if (busy) return;
          busy = true;
          mc()
            .put(`/bench/key/${String(n++ % KEYS).padStart(3, '0')}`, value, { timeoutMs: 10_000 })
            .then(() => w.puts++, fail)
            .finally(() => (busy = false));
        });
        every(compactEveryMs, () => {
          void mc()
            .status({ timeoutMs: 10_000 })
            .then((s) => mc().compact(s.header.revision, { timeoutMs: 30_000 }))
            .then(() => w.compactions++, fail);
        });
      },
      (i * PUT_EVERY_MS) / names.length,
    );
  });
  // A batch job on a few clusters: written, then deleted; the next compaction frees it, the rule holds, auto runs.
  const hot = Math.max(1, Math.round(names.length / 5));
  for (let h = 0; h < hot; h++) {
    const i = Math.floor((h * names.length) / hot);
    const atMs = durationMs * (0.2 + (0.4 * h) / hot);
    const t = setTimeout(() => {
      const m = clientOf(i).member(clusters[i]!.endpoints[0] as string);
      const big = Buffer.alloc(BURST_VALUE_BYTES, 'b');
      void (async () => {
        for (let k = 0; k < BURST_VALUES; k++) await m.put(`/bench/batch/${String(k).padStart(3, '0')}`, big, { timeoutMs: 10_000 });
        await m.deleteRange('/bench/batch/', { rangeEnd: '/bench/batch0', timeoutMs: 10_000 });
        w.bursts.push({ cluster: names[i] as string, atSeconds: Math.round(atMs / 1000) });
        log(`workload: ${names[i]}: a batch of ${(BURST_VALUES * BURST_VALUE_BYTES) / 1024 / 1024} MiB written and deleted`);
      })().catch(fail);
    }, atMs);
    timers.add(t);
  }
  return w;
}

// --- The run ----------------------------------------------------------------------------------
function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  return [...env, process.env.MAKELEVEL ? 'make bench-daemon' : 'npx tsx bench/daemon.mts'].join(' ');
}

function etcdCpuSeconds(): number {
  let sum = 0;
  for (const c of clusters)
    for (const m of c.members) {
      const pid = c.memberPid(m.name);
      if (pid !== null) sum += cpuSecondsOf(pid) ?? 0;
    }
  return sum;
}

const benchCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

try {
  const startedAt = new Date().toISOString();
  const loadAvgAtStart = os.loadavg()[0] ?? 0;
  const durationMs = settings.minutes * 60_000;
  const warmupMs = Math.min(30_000, durationMs / 10);
  const compactEveryMs = Math.max(10_000, Math.min(60_000, durationMs / 10));
  log(
    `settings: ${JSON.stringify({ ...settings, outDir: path.relative(process.cwd(), settings.outDir) })}; load average ${loadAvgAtStart.toFixed(2)}`,
  );
  tmp = mkdtempSync(path.join(os.tmpdir(), 'defragd-bench-daemon-'));

  const names = Array.from({ length: settings.clusters }, (_, i) => `bench-${String(i + 1).padStart(2, '0')}`);
  for (const [i, name] of names.entries()) {
    checkAborted();
    clusters.push(await startCluster({ members: MEMBERS }));
    clients.push(new EtcdClient({ endpoints: clusters[i]!.endpoints, commandTimeoutMs: 10_000 }));
    log(`cluster ${name} started (${i + 1}/${names.length}): ${clusters[i]!.endpoints.join(', ')}`);
  }
  const etcdVersion = (await clients[0]!.member(clusters[0]!.endpoints[0] as string).status()).version;

  const store = path.join(tmp, 'defragd.sqlite');
  const configFile = path.join(tmp, 'defragd.yaml');
  writeFileSync(
    configFile,
    [
      'listen: 127.0.0.1:0',
      `store: ${JSON.stringify(store)}`,
      `storeRetention: ${RETENTION_DAYS}d`,
      'maxConcurrentRuns: 1',
      'clusters:',
      ...names.flatMap((name, i) => [
        `  - name: ${name}`,
        `    endpoints: [${clusters[i]!.endpoints.join(', ')}]`,
        `    rule: ${JSON.stringify(RULE)}`,
        `    auto: { interval: ${INTERVAL_MS / 1000}s, cooldown: ${COOLDOWN} }`,
      ]),
      '',
    ].join('\n'),
  );

  log(`starting the daemon: node ${path.relative(ROOT, MAIN)} serve --config ${configFile}`);
  const spawnedAt = Date.now();
  const d = startDaemon(configFile);
  const url = await Promise.race([
    d.url,
    d.exited.then((code) => {
      throw new Error(`the daemon exited (code ${code}) before listening:\n${d.lines.slice(-20).join('\n')}`);
    }),
    sleep(60_000, abort.signal).then(() => {
      throw new Error('the daemon did not listen within 60 s');
    }),
  ]);
  await until('/readyz 200', 120_000, async () => ((await get(`${url}/readyz`))?.status === 200 ? true : null));
  const readyAt = Date.now();
  const startupMs = readyAt - spawnedAt;
  const atReady = storeFiles(store);
  log(`daemon pid ${d.pid} ready after ${(startupMs / 1000).toFixed(2)} s at ${url}; running ${settings.minutes} min ...`);
  const floorChild = await startFloor(clusters.map((c) => c.endpoints));
  const floorPid = floorChild.pid as number;
  log(`floor process pid ${floorPid} ready (Status to every member every ${INTERVAL_MS / 1000} s, nothing else)`);

  const proc: ProcSample[] = [];
  const scrapes: Scrape[] = [];
  let walMaxBytes = atReady.wal;
  const sample = (): void => {
    const p = readProc(d.pid);
    if (p) proc.push(p);
    walMaxBytes = Math.max(walMaxBytes, storeFiles(store).wal);
  };
  // The monitor's figures are intervals of its timer: beyond the timer's period is the delay.
  const delay = (interval: number | null): number | null =>
    interval === null ? null : Math.max(0, interval - EVENT_LOOP_RESOLUTION_MS / 1000);
  const scrape = async (): Promise<void> => {
    const r = await get(`${url}/metrics`);
    if (r?.status !== 200) return;
    scrapes.push({
      at: Date.now(),
      p99Seconds: delay(metricValue(r.text, 'defragd_nodejs_eventloop_lag_p99_seconds')),
      maxSeconds: delay(metricValue(r.text, 'defragd_nodejs_eventloop_lag_max_seconds')),
      rssBytes: metricValue(r.text, 'defragd_process_resident_memory_bytes'),
      heapTotalBytes: metricValue(r.text, 'defragd_nodejs_heap_size_total_bytes'),
      heapUsedBytes: metricValue(r.text, 'defragd_nodejs_heap_size_used_bytes'),
      newSpaceBytes: metricValue(r.text, 'defragd_nodejs_heap_space_size_total_bytes{space="new"}'),
      externalBytes: metricValue(r.text, 'defragd_nodejs_external_memory_bytes'),
    });
  };
  sample();
  // The first scrape only starts the event-loop window (prom-client resets its histogram at each scrape).
  await scrape();
  scrapes.length = 0;
  every(SAMPLE_EVERY_MS, sample);
  every(SCRAPE_EVERY_MS, () => void scrape());
  const workload = startWorkload(names, (i) => clients[i] as EtcdClient, durationMs, compactEveryMs);

  await sleep(warmupMs, abort.signal);
  checkAborted();
  const warm = readProc(d.pid);
  if (!warm) throw new Error(`the daemon died during the warm-up:\n${d.lines.slice(-20).join('\n')}`);
  const floorWarm = readProc(floorPid);
  if (!floorWarm) throw new Error('the floor process died during the warm-up');
  const etcdCpuAtWarm = etcdCpuSeconds();
  const benchCpuAtWarm = benchCpuSeconds();
  let lastLog = Date.now();
  while (Date.now() < readyAt + durationMs) {
    checkAborted();
    if (d.child.exitCode !== null)
      throw new Error(`the daemon exited (code ${d.child.exitCode}) during the benchmark:\n${d.lines.slice(-20).join('\n')}`);
    await sleep(Math.min(1_000, readyAt + durationMs - Date.now()), abort.signal);
    if (Date.now() - lastLog >= 60_000) {
      lastLog = Date.now();
      const p = proc[proc.length - 1];
      log(
        `RSS ${((p?.rssBytes ?? 0) / 1e6).toFixed(1)} MB, CPU so far ${((((p?.cpuSeconds ?? 0) - warm.cpuSeconds) / ((Date.now() - warm.at) / 1000)) * 100).toFixed(2)} %; ${workload.puts} puts, ${workload.errors} errors; load average ${(os.loadavg()[0] ?? 0).toFixed(2)}`,
      );
    }
  }
  await scrape();
  const end = readProc(d.pid);
  if (!end) throw new Error('the daemon is gone at the end of the benchmark');
  proc.push(end);
  const floorEnd = readProc(floorPid);
  if (!floorEnd) throw new Error('the floor process is gone at the end of the benchmark');
  floorChild.kill('SIGTERM');
  const etcdCpu = etcdCpuSeconds() - etcdCpuAtWarm;
  const benchCpu = benchCpuSeconds() - benchCpuAtWarm;
  const atEnd = storeFiles(store);
  walMaxBytes = Math.max(walMaxBytes, atEnd.wal);
  const loadAvgAtEnd = os.loadavg()[0] ?? 0;
  stopTimers();
  log(`stopping the daemon (SIGTERM) ...`);
  const stopAt = Date.now();
  d.child.kill('SIGTERM');
  const exitCode = await Promise.race([d.exited, sleep(120_000).then(() => null)]);
  const stopMs = Date.now() - stopAt;
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  const afterClose = storeFiles(store);
  const contents = storeContents(store);
  mkdirSync(settings.outDir, { recursive: true });
  const storeCopy = path.join(settings.outDir, `daemon-${startedAt.replace(/[:.]/g, '-')}.sqlite`);
  copyFileSync(store, storeCopy);

  // One real snapshot for the store simulation, then the clusters go before it runs.
  const snapshot: ClusterSnapshot = await observeCluster(clients[0] as EtcdClient, { cluster: true });
  const windowSeconds = (end.at - warm.at) / 1000;
  log('stopping the clusters ...');
  await cleanup();
  log(`simulating one cluster's store over ${settings.storeDays} days ...`);
  const sim = simulateStore(snapshot, { intervalMs: INTERVAL_MS, days: settings.storeDays, cluster: 'prod-eu-west-1-a' });
  log(`store simulation took ${(sim.tookMs / 1000).toFixed(0)} s`);

  const p99s = scrapes.flatMap((s) => (s.p99Seconds === null ? [] : [s.p99Seconds]));
  const maxes = scrapes.flatMap((s) => (s.maxSeconds === null ? [] : [s.maxSeconds]));
  const result: DaemonBenchResult = {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    command: commandLine(),
    settings: {
      clusters: settings.clusters,
      membersPerCluster: MEMBERS,
      minutes: settings.minutes,
      intervalMs: INTERVAL_MS,
      rule: RULE,
      cooldown: COOLDOWN,
      warmupSeconds: warmupMs / 1000,
      sampleEverySeconds: SAMPLE_EVERY_MS / 1000,
      scrapeEverySeconds: SCRAPE_EVERY_MS / 1000,
      workload: `per cluster one ${PUT_BYTES / 1024} KiB put a second over ${KEYS} keys and a compaction to the newest revision every ${compactEveryMs / 1000} s; on ${workload.bursts.length} cluster(s) (${workload.bursts.map((b) => `${b.cluster} at +${b.atSeconds} s`).join(', ') || 'none'}) a batch of ${BURST_VALUES} × ${BURST_VALUE_BYTES / 1024} KiB written and deleted once, which makes the rule hold there after the next compaction`,
      storeSimDays: settings.storeDays,
    },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
      node: process.version,
      etcd: etcdVersion,
      loadAvgAtStart,
      loadAvgAtEnd,
    },
    daemon: {
      command: 'node dist/cli/main.js serve --config F',
      startupMs,
      windowSeconds,
      cpuShareSteady: (end.cpuSeconds - warm.cpuSeconds) / windowSeconds,
      cpuShareWhole: end.cpuSeconds / ((end.at - spawnedAt) / 1000),
      rssPeakBytes: end.hwmBytes,
      rssEndBytes: end.rssBytes,
      rssEndFileBytes: end.rssFileBytes,
      rssEndOwnBytes: end.rssOwnBytes,
      eventLoop: {
        scrapes: scrapes.length,
        p99MedianSeconds: median(p99s),
        p99MaxSeconds: p99s.length ? Math.max(...p99s) : null,
        maxSeconds: maxes.length ? Math.max(...maxes) : null,
      },
      exitCode,
      stopMs,
      logLines: d.lines.length,
      warnings: d.warnings,
    },
    floor: {
      command: `node ${path.relative(ROOT, FLOOR)}`,
      cpuShareSteady: (floorEnd.cpuSeconds - floorWarm.cpuSeconds) / ((floorEnd.at - floorWarm.at) / 1000),
      rssPeakBytes: floorEnd.hwmBytes,
      rssEndBytes: floorEnd.rssBytes,
      rssEndFileBytes: floorEnd.rssFileBytes,
      rssEndOwnBytes: floorEnd.rssOwnBytes,
    },
    etcd: { members: settings.clusters * MEMBERS, cpuShareTotal: etcdCpu / windowSeconds },
    bench: { cpuShare: benchCpu / windowSeconds },
    workload: { puts: workload.puts, compactions: workload.compactions, bursts: workload.bursts, errors: workload.errors },
    store: {
      atReady,
      atEnd,
      afterClose,
      walMaxBytes,
      contents,
      sim,
      retentionDays: RETENTION_DAYS,
      model: storeModel(contents, sim, INTERVAL_MS, RETENTION_DAYS, extrapolate),
    },
    goals: [],
    series: { proc, scrapes },
  };
  const yearBytes = result.store.model.yearDaily;
  result.goals = [
    { name: 'rss-peak', value: end.hwmBytes, limit: GOALS.rssBytes, pass: end.hwmBytes <= GOALS.rssBytes },
    { name: 'rss-end', value: end.rssBytes, limit: GOALS.rssBytes, pass: end.rssBytes <= GOALS.rssBytes },
    { name: 'cpu', value: result.daemon.cpuShareSteady, limit: GOALS.cpuShare, pass: result.daemon.cpuShareSteady <= GOALS.cpuShare },
    { name: 'store-year', value: yearBytes, limit: GOALS.storeBytesPerClusterYear, pass: yearBytes <= GOALS.storeBytesPerClusterYear },
  ];
  if (workload.errors > 0) log(`workload: ${workload.errors} errors, the last: ${workload.lastError}`);
  const md = markdown(result);
  const files = await writeResults(result, md, settings.outDir, d.lines.join('\n') + '\n');
  console.log(`\n${md}\n`);
  for (const g of result.goals)
    console.log(
      `${g.pass ? 'PASS' : 'FAIL'} ${g.name}: ${g.name === 'cpu' ? `${(g.value * 100).toFixed(2)} %` : `${(g.value / 1e6).toFixed(1)} MB`} (goal ≤ ${g.name === 'cpu' ? `${g.limit * 100} %` : `${g.limit / 1e6} MB`})`,
    );
  files.push(storeCopy);
  log(`results: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
} catch (err) {
  if (!interrupted) {
    console.error(`bench-daemon failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await cleanup();
}
