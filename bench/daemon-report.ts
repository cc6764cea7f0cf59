/**
 * `make bench-daemon`'s result: the figures, the goals they are held to (each
 * verdict computed from the figures, never typed), the markdown table pasted
 * into README's "Daemon" subsection, and the result files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ProcSample, StoreContents, StoreFiles } from './daemon-measure.js';
import type { StoreSim } from './daemon-store-sim.js';

export const MB = 1_000_000;

/** The goals of issue 9, section 7. */
export const GOALS = { rssBytes: 80 * MB, cpuShare: 0.01, storeBytesPerClusterYear: 50 * MB } as const;

export interface Scrape {
  at: number;
  /** defragd_nodejs_eventloop_lag_p99_seconds, over the time since the previous scrape. */
  p99Seconds: number | null;
  maxSeconds: number | null;
  rssBytes: number | null;
  /** V8 heap: total and used; new space (young generation) total; external memory (Buffers, native). */
  heapTotalBytes: number | null;
  heapUsedBytes: number | null;
  newSpaceBytes: number | null;
  externalBytes: number | null;
}

export interface DaemonBenchResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  command: string;
  settings: {
    clusters: number;
    membersPerCluster: number;
    minutes: number;
    intervalMs: number;
    rule: string;
    cooldown: string;
    warmupSeconds: number;
    sampleEverySeconds: number;
    scrapeEverySeconds: number;
    workload: string;
    storeSimDays: number;
  };
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; etcd: string; loadAvgAtStart: number; loadAvgAtEnd: number };
  daemon: {
    command: string;
    startupMs: number;
    /** The steady window: from readiness + warm-up to the end. */
    windowSeconds: number;
    cpuShareSteady: number;
    cpuShareWhole: number;
    rssPeakBytes: number;
    rssEndBytes: number;
    /** Of rssEndBytes: file-backed (the node executable's code, shared libraries) and the process's own. */
    rssEndFileBytes?: number;
    rssEndOwnBytes?: number;
    eventLoop: { scrapes: number; p99MedianSeconds: number | null; p99MaxSeconds: number | null; maxSeconds: number | null };
    exitCode: number | null;
    stopMs: number;
    logLines: number;
    warnings: string[];
  };
  /**
   * The floor process over the same window: only the light observations' Status calls, through
   * defragd's client (absent in results from before it existed).
   */
  floor?: {
    command: string;
    cpuShareSteady: number;
    rssPeakBytes: number;
    rssEndBytes: number;
    rssEndFileBytes: number;
    rssEndOwnBytes: number;
  };
  etcd: { members: number; cpuShareTotal: number };
  bench: { cpuShare: number };
  workload: { puts: number; compactions: number; bursts: { cluster: string; atSeconds: number }[]; errors: number };
  store: {
    atReady: StoreFiles;
    atEnd: StoreFiles;
    afterClose: StoreFiles;
    walMaxBytes: number;
    contents: StoreContents;
    sim: StoreSim;
    retentionDays: number;
    model: StoreModel;
  };
  goals: { name: string; value: number; limit: number; pass: boolean }[];
  series: { proc: ProcSample[]; scrapes: Scrape[] };
}

const mb = (b: number): string => `${(b / MB).toFixed(1)} MB`;
const kb = (b: number): string => `${(b / 1000).toFixed(0)} kB`;
const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;
const ms = (s: number | null): string => (s === null ? '–' : `${(s * 1000).toFixed(1)} ms`);
const verdict = (pass: boolean): string => (pass ? 'pass' : '**FAIL**');

/** Runs a day the store figures assume: a daily schedule, and the most auto mode starts with the default 6 h cooldown. */
export const RUNS_PER_DAY = { daily: 1, most: 4 } as const;

/** Bytes of one run (its row, member results and events), from the benchmark's own runs; 0 when none ran. */
export function bytesPerRun(c: StoreContents): number {
  const n = c.tables.runs.rows;
  return n === 0 ? 0 : (c.tables.runs.bytes + c.tables.member_results.bytes + c.tables.events.bytes) / n;
}

export interface StoreModel {
  bytesPerRun: number;
  /** Everything written during the benchmark (all tables, dbstat), per day of samples, for all clusters. */
  measuredBytesPerDay: number;
  /** One cluster after a year kept, with 1 and with 4 runs a day. */
  yearDaily: number;
  yearMost: number;
  /** One cluster at the default retention, 1 run a day (samples and runs both stop growing there). */
  retentionDaily: number;
}

/** One cluster's store after `days`: the simulated samples plus the measured runs (kept for `days`, as `storeRetention` does). */
export function storeModel(
  c: StoreContents,
  sim: StoreSim,
  intervalMs: number,
  retentionDays: number,
  extrapolate: (sim: StoreSim, days: number) => number,
): StoreModel {
  const perRun = bytesPerRun(c);
  const after = (days: number, runsPerDay: number) => extrapolate(sim, days) + perRun * runsPerDay * days;
  const t = c.tables;
  const spanDays =
    c.sampleSpan.firstAt === null || c.sampleSpan.lastAt === null
      ? null
      : (c.sampleSpan.lastAt - c.sampleSpan.firstAt + intervalMs) / 86_400_000;
  return {
    bytesPerRun: perRun,
    measuredBytesPerDay: spanDays === null ? 0 : (t.samples.bytes + t.runs.bytes + t.member_results.bytes + t.events.bytes) / spanDays,
    yearDaily: after(365, RUNS_PER_DAY.daily),
    yearMost: after(365, RUNS_PER_DAY.most),
    retentionDaily: after(retentionDays, RUNS_PER_DAY.daily),
  };
}

function heapRow(r: DaemonBenchResult): string {
  const last = [...r.series.scrapes].reverse().find((x) => x.heapTotalBytes !== null);
  if (!last) return '–';
  const f = (b: number | null) => (b === null ? '–' : mb(b));
  return `${f(last.heapTotalBytes)} / ${f(last.heapUsedBytes)}, ${f(last.newSpaceBytes)}; ${f(last.externalBytes)}`;
}

export function markdown(r: DaemonBenchResult): string {
  const model = r.store.model;
  const s = r.settings;
  const d = r.daemon;
  const c = r.store.contents;
  const sim = r.store.sim;
  const goal = (name: string) => r.goals.find((g) => g.name === name) as DaemonBenchResult['goals'][number];
  const samplesPerRow = c.tables.samples.rows === 0 ? 0 : c.tables.samples.bytes / c.tables.samples.rows;
  const windowMin = (d.windowSeconds / 60).toFixed(1);
  const runs = c.runs;
  const byOutcome = new Map<string, number>();
  for (const x of runs) byOutcome.set(`${x.trigger} ${x.outcome}`, (byOutcome.get(`${x.trigger} ${x.outcome}`) ?? 0) + 1);
  const runText =
    runs.length === 0
      ? 'none'
      : `${runs.length} (${[...byOutcome].map(([k, n]) => `${n} ${k}`).join(', ')}; clusters ${[...new Set(runs.map((x) => x.cluster))].join(', ')}; ${runs.reduce((a, x) => a + x.defragmented, 0)} members defragmented)`;
  const lines = [
    `Command: \`${r.command}\` (${r.startedAt})`,
    '',
    `| | measured | goal | |`,
    `|---|---|---|---|`,
    `| RSS, peak (VmHWM) | ${mb(d.rssPeakBytes)} | ≤ ${mb(GOALS.rssBytes)} | ${verdict(goal('rss-peak').pass)} |`,
    `| RSS at the end (VmRSS) | ${mb(d.rssEndBytes)} | ≤ ${mb(GOALS.rssBytes)} | ${verdict(goal('rss-end').pass)} |`,
    ...(d.rssEndFileBytes === undefined || d.rssEndOwnBytes === undefined
      ? []
      : [
          `| Of the RSS at the end: file-backed (the node executable's code and shared libraries, shared and clean) / the process's own (anonymous) | ${mb(d.rssEndFileBytes)} / ${mb(d.rssEndOwnBytes)} | | |`,
        ]),
    `| Of the RSS at the end: V8 heap allocated / used, of it young generation; external (Buffers, native) | ${heapRow(r)} | | |`,
    `| CPU, share of one core, steady (${windowMin} min from ready + ${s.warmupSeconds} s to the end) | ${pct(d.cpuShareSteady)} | ≤ ${pct(GOALS.cpuShare)} | ${verdict(goal('cpu').pass)} |`,
    `| CPU, share of one core, whole life (start-up included) | ${pct(d.cpuShareWhole)} | | |`,
    ...(r.floor
      ? [
          `| The floor, over the same window: a Node process that only sends the light observations' Status calls (one per member every ${s.intervalMs / 1000} s, through defragd's client): CPU / RSS peak / RSS at the end (file-backed / own) | ${pct(r.floor.cpuShareSteady)} / ${mb(r.floor.rssPeakBytes)} / ${mb(r.floor.rssEndBytes)} (${mb(r.floor.rssEndFileBytes)} / ${mb(r.floor.rssEndOwnBytes)}) | | |`,
          `| The daemon beyond the floor: CPU / RSS at the end | ${pct(d.cpuShareSteady - r.floor.cpuShareSteady)} / ${mb(d.rssEndBytes - r.floor.rssEndBytes)} | | |`,
        ]
      : []),
    `| Event-loop delay p99 per ${s.scrapeEverySeconds} s scrape: median / worst (${d.eventLoop.scrapes} scrapes) | ${ms(d.eventLoop.p99MedianSeconds)} / ${ms(d.eventLoop.p99MaxSeconds)} | | |`,
    `| Event-loop delay, longest | ${ms(d.eventLoop.maxSeconds)} | | |`,
    `| Start-up: spawn to \`/readyz\` 200 (every cluster observed once) | ${(d.startupMs / 1000).toFixed(2)} s | | |`,
    `| Store (file + WAL + SHM) at ready / at the end / after exit | ${kb(r.store.atReady.total)} / ${kb(r.store.atEnd.total)} / ${kb(r.store.afterClose.total)} (largest WAL ${kb(r.store.walMaxBytes)}) | | |`,
    `| Store growth at full resolution, measured (rows and bytes written, per day): all ${s.clusters} clusters / one | ${mb(model.measuredBytesPerDay)} / ${mb(model.measuredBytesPerDay / s.clusters)} | | |`,
    `| Sample rows written / bytes per row (table + indexes, dbstat) | ${c.tables.samples.rows} / ${samplesPerRow.toFixed(0)} B | | |`,
    `| Runs during the benchmark | ${runText} | a few | |`,
    `| One cluster's store after 1 day / a day's growth after thinning (simulated, ${sim.days} days) | ${mb(sim.sizeAtDayEnd[0] as number)} / ${kb(sim.steadyBytesPerDay)} | | |`,
    `| One cluster's store after a year kept (\`storeRetention: 365d\`), ${RUNS_PER_DAY.daily} run a day | ${mb(model.yearDaily)} | ≤ ${mb(GOALS.storeBytesPerClusterYear)} | ${verdict(goal('store-year').pass)} |`,
    `| The same with ${RUNS_PER_DAY.most} runs a day (the most auto mode starts with a 6 h cooldown) | ${mb(model.yearMost)} | | |`,
    `| One cluster's store at the default \`storeRetention: ${r.store.retentionDays}d\` after a year, ${RUNS_PER_DAY.daily} run a day (samples and runs stop growing at ${r.store.retentionDays} days) | ${mb(model.retentionDaily)} | | |`,
    '',
    `- Setup: one \`${d.command}\` child process watching ${s.clusters} clusters × ${s.membersPerCluster} members of real etcd ${r.machine.etcd} (${s.clusters * s.membersPerCluster} members on loopback) at \`auto: { interval: ${s.intervalMs / 1000}s, cooldown: ${s.cooldown} }\`, rule \`${s.rule}\`, for ${s.minutes} min; the HTTP API on loopback, scraped every ${s.scrapeEverySeconds} s as Prometheus would; log level info.`,
    `- Workload (from the benchmark process, not the daemon): ${s.workload}. ${r.workload.puts} puts, ${r.workload.compactions} compactions, ${r.workload.errors} errors.`,
    `- RSS and CPU from \`/proc/<pid>/status\` (VmRSS, VmHWM) and \`/proc/<pid>/stat\` (utime + stime over wall time), read every ${s.sampleEverySeconds} s. Event-loop delay from the daemon's own \`/metrics\` (\`defragd_nodejs_eventloop_lag_p99_seconds\` / \`_max_seconds\`, prom-client's histogram of the intervals of a 100 ms timer, reset at each scrape; the delay is the interval beyond 100 ms).`,
    ...(r.floor
      ? [
          `- The floor (\`${r.floor.command}\`) runs beside the daemon over the same window, with the executable's node flags, measured the same way: what watching ${s.clusters * s.membersPerCluster} members every ${s.intervalMs / 1000} s costs a Node process with gRPC before anything is done with the answers (no store, HTTP server, metrics, planning or logs). It leaves out the daemon's full observations (every 30 s: member list, alarms, health reads) and its \`/metrics\` reads, so the daemon's own work is at most the difference.`,
        ]
      : []),
    `- The machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}; load average ${r.machine.loadAvgAtStart.toFixed(2)} at the start, ${r.machine.loadAvgAtEnd.toFixed(2)} at the end. The ${r.etcd.members} etcd members used ${pct(r.etcd.cpuShareTotal)} of one core together, the benchmark process (workload, probes) ${pct(r.bench.cpuShare)}; other work on the machine shares the 2 cores, so the daemon waits for CPU at times: that shows in its event-loop delay, not in its CPU time.`,
    `- Store: measured as written (file sizes; rows and bytes per table from SQLite's dbstat after the daemon exited). A ${s.minutes}-minute run holds only full-resolution samples, so the year is simulated: the daemon's own store code fed one cluster's samples (${sim.members} members every ${sim.intervalMs / 1000} s, production magnitudes, cluster name \`${sim.cluster}\`) on a simulated clock for ${sim.days} days, thinned hourly as \`serve\` does (24 h in full, then the last sample per member per 5 minutes), the file measured at each day's end (${sim.sizeAtDayEnd.map((b) => mb(b)).join(', ')}); the year is day ${sim.days} plus ${365 - sim.days} days of the steady daily growth, plus the runs at ${kb(model.bytesPerRun)} each as measured here (most of it the run's events, kept for the API); \`storeRetention\` deletes samples and finished runs older than it. The hourly thinning at the end of the simulation took ${sim.lastDownsampleMs.toFixed(0)} ms (it reads only the samples that became older than 24 h since the previous pass, so its cost does not grow with the history kept).`,
    d.warnings.length > 0
      ? `- Daemon warnings during the run: ${d.warnings.slice(0, 5).join('; ')}${d.warnings.length > 5 ? ` (+${d.warnings.length - 5} more)` : ''}.`
      : `- No warnings or errors in the daemon's log (${d.logLines} lines); it exited with code ${d.exitCode} ${(d.stopMs / 1000).toFixed(1)} s after SIGTERM.`,
  ];
  return lines.join('\n');
}

export async function writeResults(r: DaemonBenchResult, md: string, outDir: string, log: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = JSON.stringify(r, null, 2) + '\n';
  const files = [
    path.join(outDir, `daemon-${stamp}.json`),
    path.join(outDir, 'daemon-latest.json'),
    path.join(outDir, 'daemon-latest.md'),
    path.join(outDir, `daemon-${stamp}.log`),
  ];
  await writeFile(files[0] as string, json);
  await writeFile(files[1] as string, json);
  await writeFile(files[2] as string, `# defragd daemon benchmark\n\n${md}\n`);
  await writeFile(files[3] as string, log);
  return files;
}
