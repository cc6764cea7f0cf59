/**
 * `make bench-schedule`: does a schedule pay off? Two identical 3-member etcd
 * clusters with a small quota, started together and given the same churning
 * workload and the same probe clients, for BENCH_MINUTES (default 12):
 *
 * - cluster "cron" is defragmented by `etcdctl defrag --cluster` every N
 *   minutes, as a crontab line would;
 * - cluster "defragd" is looked after by `defragd serve` in auto mode (the
 *   built CLI, dist/cli/main.js, as a child process) with a rule.
 *
 * Both run at the same time, so machine noise falls on both. At the end it
 * prints the table (stall-seconds per GiB reclaimed, peak dbSize, NOSPACE,
 * ...) and the verdict against issue 11's goal, and writes
 * bench/results/schedule-*.json and schedule-latest.md.
 *
 * Everything it starts (both clusters, the daemon, etcdctl children, temp
 * dirs) is stopped at the end, on error and on Ctrl-C.
 */
import { existsSync, rmSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdClient } from '../../src/internals.js';
import { freePort, startCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { analyzeCluster, stallSeconds, verdict } from './analyze.js';
import { Churn, prefill, type ChurnStats } from './churn.js';
import { loadConfig, USAGE, type ScheduleConfig } from './config.js';
import { settingsOrExit } from '../settings.js';
import { CronDefrag, Daemon, daemonConfig, killChildren } from './maintainers.js';
import { Probe } from './probe.js';
import { markdown, rerender, writeResults, type ChurnSummary, type ScheduleResult } from './report.js';
import { Sampler } from './sampler.js';
import { benchMembers } from '../tools.js';
import { benchCommand, now, sleep } from '../util.js';

const MiB = 1024 * 1024;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli/main.js');
const PROBE = { pauseMs: 50, keepAliveEveryMs: 100, leaseTtlSec: 5, deadlineMs: 10_000 };
const CRON_COMMAND_TIMEOUT = '60s';

const config: ScheduleConfig = settingsOrExit('bench-schedule', USAGE, () =>
  process.argv.includes('--help') || process.argv.includes('-h') ? null : loadConfig(process.env),
);
if (process.argv.includes('--rerender')) {
  // The table again from the latest run's recorded figures (no new run), after a change of layout.
  console.log(`wrote ${path.relative(process.cwd(), await rerender(path.resolve(ROOT, config.outDir)))}`);
  process.exit(0);
}
if (!existsSync(CLI)) {
  console.error(`bench-schedule: ${path.relative(process.cwd(), CLI)} is missing: build first (npx tsc -p tsconfig.build.json)`);
  process.exit(2);
}

const t0 = Date.now();
const log = (msg: string): void => console.error(`[bench-schedule +${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);

interface Side {
  name: 'cron' | 'defragd';
  cluster: EtcdCluster;
  admin: EtcdClient;
  members: { name: string; url: string; memberId: string }[];
  churn: Churn;
  probe: Probe;
  sampler: Sampler;
}

const sides: Side[] = [];
const clusters: EtcdCluster[] = [];
let cron: CronDefrag | undefined;
let daemon: Daemon | undefined;
let daemonDir: string | undefined;
const abort = new AbortController();

async function cleanup(): Promise<void> {
  killChildren();
  for (const s of sides) {
    s.probe.close();
    s.admin.close();
  }
  await Promise.allSettled(clusters.map((c) => c.close()));
  if (daemonDir) await rm(daemonDir, { recursive: true, force: true });
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping the daemon, etcdctl and both clusters ...`);
    abort.abort();
    setTimeout(() => process.exit(130), 15_000).unref();
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  // Also when a signal handler elsewhere (the harness's) ends the process first.
  killChildren();
  if (daemonDir) rmSync(daemonDir, { recursive: true, force: true });
});

function churnSummary(s: ChurnStats): ChurnSummary {
  return {
    puts: s.puts,
    deletes: s.deletes,
    mibWritten: s.bytesWritten / MiB,
    failed: s.failed,
    nospaceRefusals: s.nospaceRefusals,
    compactions: s.compactions,
    maxLagMs: Math.round(s.maxLagMs),
  };
}

async function setUp(name: Side['name'], cluster: EtcdCluster): Promise<Side> {
  const admin = new EtcdClient({ endpoints: cluster.endpoints, commandTimeoutMs: 10_000 });
  const members = await benchMembers(cluster, admin);
  const bytes = await prefill(admin, cluster.endpoints, config.seed, config.slots, abort.signal);
  log(`${name}: ${members.map((m) => `${m.name} ${m.url}`).join(', ')}; prefilled ${(bytes / MiB).toFixed(1)} MiB`);
  return {
    name,
    cluster,
    admin,
    members,
    churn: new Churn(admin, cluster.endpoints, {
      seed: config.seed,
      opsPerSec: config.opsPerSec,
      slots: config.slots,
      compactEveryMs: config.compactEverySec * 1000,
      prefilled: true,
      concurrency: 8,
      deadlineMs: 10_000,
    }),
    probe: new Probe(members, PROBE),
    sampler: new Sampler(admin, members, 1000),
  };
}

function sizes(side: Side): string {
  const latest = new Map<string, { dbSize: number; dbSizeInUse: number }>();
  for (const s of side.sampler.samples) latest.set(s.member, s);
  return [...latest.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([m, s]) => `${m} ${(s.dbSize / MiB).toFixed(0)}/${(s.dbSizeInUse / MiB).toFixed(0)}`)
    .join(' ');
}

try {
  const startedAt = new Date().toISOString();
  const loadAvgAtStart = os.loadavg()[0] ?? 0;
  log(`settings: ${JSON.stringify(config)}`);
  log('starting two 3-member etcd clusters ...');
  const started = await Promise.allSettled([0, 1].map(() => startCluster({ members: 3, quotaBackendBytes: config.quotaMiB * MiB })));
  for (const r of started) if (r.status === 'fulfilled') clusters.push(r.value);
  const failedStart = started.find((r) => r.status === 'rejected');
  if (failedStart) throw (failedStart as PromiseRejectedResult).reason;
  const [cA, cB] = clusters as [EtcdCluster, EtcdCluster];
  sides.push(...(await Promise.all([setUp('cron', cA), setUp('defragd', cB)])));
  const [A, B] = sides as [Side, Side];
  const etcdVersion = (await A.admin.member(A.members[0]!.url).status()).version;

  for (const s of sides) s.sampler.start();
  await Promise.all(sides.map((s) => s.probe.start()));
  for (const s of sides) s.churn.start();
  const w0 = now();
  log(`load and workload started on both; ${config.warmupSec} s of load only (noise floor) ...`);
  await sleep(config.warmupSec * 1000, abort.signal);
  const w1 = now();

  cron = new CronDefrag(A.members[0]!.url, config.cronEveryMin * 60_000, CRON_COMMAND_TIMEOUT);
  // Inside the cluster's temp dir: the harness removes it on every way out, Ctrl-C included.
  daemonDir = path.join(B.cluster.dir, 'defragd-serve');
  await mkdir(daemonDir);
  daemon = new Daemon({
    cliPath: CLI,
    dir: daemonDir,
    clusterName: 'bench',
    endpoints: B.cluster.endpoints,
    port: await freePort(),
    rule: config.rule,
    interval: config.autoInterval,
    cooldown: config.autoCooldown,
  });
  await daemon.start();
  cron.start();
  const m0 = now();
  log(
    `maintenance started: cron every ${config.cronEveryMin} min on "cron", defragd serve (rule ${config.rule}) on "defragd"; ${config.minutes} min ...`,
  );
  const end = m0 + config.minutes * 60_000;
  while (now() < end && !abort.signal.aborted) {
    await sleep(Math.min(30_000, end - now()), abort.signal);
    log(`cron ${sizes(A)} MiB (${cron.runs.length} runs) | defragd ${sizes(B)} MiB | dbSize/in use`);
  }
  if (abort.signal.aborted) throw new Error('interrupted');
  const m1 = now();
  const history = await daemon.history().catch((err: unknown) => {
    log(`warning: could not read defragd's history: ${(err as Error).message}`);
    return [];
  });
  log('stopping: cron (a run in progress may finish), the daemon (SIGTERM), the workload, the probes ...');
  await cron.stop(60_000);
  const daemonExit = await daemon.stop(60_000);
  await Promise.all(sides.map((s) => s.churn.stop()));
  await Promise.all(sides.map((s) => s.probe.stop()));
  await Promise.all(sides.map((s) => s.sampler.stop()));

  const window = { start: m0, end: m1 };
  const cronRuns = cron.runs.map((r) => ({ start: r.start, end: r.end }));
  // defragd's own runs (not the cron's of the other cluster, not external ones), from its history.
  const defragdRuns = history
    .filter((r) => r.trigger !== 'external' && typeof r.startedAt === 'string')
    .map((r) => ({ start: Date.parse(r.startedAt as string), end: typeof r.finishedAt === 'string' ? Date.parse(r.finishedAt) : m1 }));
  const figA = analyzeCluster(A.probe.records, A.sampler.samples, A.sampler.alarms, window, cronRuns, config.stallThresholdMs);
  const figB = analyzeCluster(B.probe.records, B.sampler.samples, B.sampler.alarms, window, defragdRuns, config.stallThresholdMs);
  const warm = (s: Side): number =>
    w1 > w0
      ? stallSeconds(
          s.probe.records.filter((r) => r.start >= w0 && r.start < w1),
          config.stallThresholdMs,
        ) /
        ((w1 - w0) / 60_000)
      : 0;
  const runsByTrigger: Record<string, number> = {};
  for (const r of history) {
    const key = `${String(r.trigger)} ${String(r.outcome)}`;
    runsByTrigger[key] = (runsByTrigger[key] ?? 0) + 1;
  }
  const result: ScheduleResult = {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    command: benchCommand((k) => k === 'BENCH_MINUTES' || k.startsWith('BENCH_SCHEDULE_'), 'bench-schedule', 'bench/schedule/run.mts'),
    settings: {
      minutes: config.minutes,
      warmupSec: config.warmupSec,
      quotaBytes: config.quotaMiB * MiB,
      cronEveryMin: config.cronEveryMin,
      cronCommand: cron.command,
      rule: config.rule,
      autoInterval: config.autoInterval,
      autoCooldown: config.autoCooldown,
      stallThresholdMs: config.stallThresholdMs,
      churn: { opsPerSec: config.opsPerSec, slots: config.slots, compactEverySec: config.compactEverySec, seed: config.seed },
      probe: PROBE,
    },
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      node: process.version,
      etcd: etcdVersion,
      loadAvgAtStart,
      loadAvgAtEnd: os.loadavg()[0] ?? 0,
    },
    warmup: { cron: warm(A), defragd: warm(B) },
    cron: {
      ...figA,
      runs: cron.runs.length,
      runsFailed: cron.runs.filter((r) => r.code !== 0).length,
      skipped: cron.skipped,
      churn: churnSummary(A.churn.stats),
    },
    defragd: { ...figB, runs: runsByTrigger, churn: churnSummary(B.churn.stats), daemonExit },
    verdict: verdict(figA, figB, { defragd: B.churn.stats.nospaceRefusals }),
    totalSeconds: (Date.now() - t0) / 1000,
  };
  const raw = {
    window,
    warmup: { start: w0, end: w1 },
    daemonConfig: daemonConfig({
      cliPath: CLI,
      dir: '<tmp>',
      clusterName: 'bench',
      endpoints: B.cluster.endpoints,
      port: 0,
      rule: config.rule,
      interval: config.autoInterval,
      cooldown: config.autoCooldown,
    }),
    cronRuns: cron.runs,
    defragdHistory: history,
    defragdLog: daemon.logs,
    churnErrors: { cron: A.churn.stats.errors, defragd: B.churn.stats.errors },
    samples: { cron: A.sampler.samples, defragd: B.sampler.samples },
    alarms: { cron: A.sampler.alarms, defragd: B.sampler.alarms },
    slowRequests: {
      cron: A.probe.records.filter((r) => r.end - r.start > config.stallThresholdMs || !r.ok),
      defragd: B.probe.records.filter((r) => r.end - r.start > config.stallThresholdMs || !r.ok),
    },
  };
  const files = await writeResults(result, raw, path.resolve(ROOT, config.outDir));
  console.log(`\n${markdown(result)}`);
  log(`results: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  if (daemonExit !== 0) log(`warning: defragd serve exited with code ${daemonExit}`);
} catch (err) {
  if (!interrupted) {
    console.error(`bench-schedule failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) {
    await cron?.stop(5_000).catch(() => undefined);
    await daemon?.stop(10_000).catch(() => undefined);
    await Promise.allSettled(sides.flatMap((s) => [s.churn.stop(), s.probe.stop(), s.sampler.stop()]));
    await cleanup();
  }
}
