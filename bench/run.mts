/**
 * `make bench`: how much do clients notice when a whole etcd cluster is
 * defragmented, with defragd and with `etcdctl defrag --cluster`, on the same
 * cluster, the same data and the same client load.
 *
 * 1. Start a local 3-member etcd (ETCD_VERSION, default the newest pinned 3.6), write mb MiB (two passes
 *    over the same keys) and compact, so about half of every dbSize is free.
 * 2. Start the load (clients pinned to each member) and a Status poller that
 *    records who leads; keep a load-only baseline window.
 * 3. For each tool: re-fragment identically (not before the first), show the
 *    sizes, run the tool, record its per-member defrag intervals, settle.
 *    Every tool gets the same load-only time between the end of its data
 *    being written and its start (the first one's is the baseline window).
 * 4. Stop the load; attribute every request to the intervals; print the
 *    markdown table; write bench/results/<timestamp>.json, latest.json and
 *    latest.md.
 *
 * Every cluster and child process is removed at the end, on error and on Ctrl-C.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EtcdClient } from '../src/internals.js';
import { etcdUnderTest, startCluster, type EtcdCluster } from '../dev/harness/etcd.js';
import { fragment } from '../dev/workload.js';
import { analyzeTool, windowStats, type Sizes, type ToolContext } from './analyze.js';
import { BIG_SNAPSHOT_COUNT, loadConfig, USAGE, type BenchConfig } from './config.js';
import { settingsOrExit } from './settings.js';
import { LeaderPoller, leaderTimeline } from './leader.js';
import { GoClients, stopGrpcOnDefragArgs, summarizeGoReport, type GoReport } from './goclients.js';
import { Load } from './load.js';
import { markdown, writeResults, type BenchResult } from './report.js';
import {
  benchMembers,
  etcdctlBin,
  killChildren,
  leaderChangesSeen,
  runDefragd,
  runEtcdctl,
  runEtcdDefrag,
  serverDefragSeconds,
  startupMs,
  type BenchMember,
  type ToolRun,
} from './tools.js';
import { fmtMs, MiB, now, sleep } from './util.js';

const FRAGMENT_PREFIX = '/fragment/';
/** Runs of each start-up floor process; the table shows the median. */
const STARTUP_FLOOR_RUNS = 5;

const config: BenchConfig = settingsOrExit('bench', USAGE, () => loadConfig(process.argv.slice(2), process.env));

const t0 = Date.now();
const log = (msg: string): void => console.error(`[bench +${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

/** The command line that produced the results, with the settings that came from the environment. */
function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('DEFRAGD_BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  const cmd = process.env.MAKELEVEL ? ['make', 'bench'] : ['npx', 'tsx', 'bench/run.mts', ...process.argv.slice(2)];
  return [...env, ...cmd].join(' ');
}

let cluster: EtcdCluster | undefined;
let admin: EtcdClient | undefined;
let load: Load | undefined;
let poller: LeaderPoller | undefined;
let goClients: GoClients | undefined;
const abort = new AbortController();

async function cleanup(): Promise<void> {
  killChildren();
  await goClients?.stop();
  load?.close();
  admin?.close();
  await poller?.stop().catch(() => undefined);
  await cluster?.close();
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping and removing the cluster ...`);
    abort.abort();
    setTimeout(() => process.exit(130), 10_000).unref();
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  killChildren();
  goClients?.kill();
});

async function sizesOf(members: readonly BenchMember[]): Promise<Record<string, Sizes>> {
  const out: Record<string, Sizes> = {};
  await Promise.all(
    members.map(async (m) => {
      const s = await (admin as EtcdClient).member(m.url).status({ timeoutMs: 30_000 });
      out[m.name] = { dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse };
    }),
  );
  return out;
}

function showSizes(label: string, s: Record<string, Sizes>): void {
  const parts = Object.entries(s)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([n, x]) =>
        `${n} ${(x.dbSize / MiB).toFixed(1)}/${(x.dbSizeInUse / MiB).toFixed(1)} MiB (free ${((1 - x.dbSizeInUse / x.dbSize) * 100).toFixed(0)}%)`,
    );
  log(`${label}: dbSize/in use: ${parts.join(', ')}`);
}

async function leaderName(members: readonly BenchMember[]): Promise<string | null> {
  const s = await (admin as EtcdClient).member((members[0] as BenchMember).url).status();
  return members.find((m) => m.memberId === s.leader)?.name ?? s.leader;
}

async function fillData(seed: BenchMember): Promise<number> {
  const start = Date.now();
  await fragment(
    { endpoints: [seed.url] },
    { bytes: (config.mb / 2) * MiB, valueSize: config.valueKiB * 1024, passes: 2, prefix: FRAGMENT_PREFIX },
  );
  return Date.now() - start;
}

/**
 * Brings the cluster back to where the first fill started: the fragmenting
 * keys deleted, compacted, and every member defragmented (it holds almost
 * nothing then, so this takes milliseconds), so the next fillData produces
 * the same files as the first one did on the fresh cluster.
 */
async function resetData(seed: BenchMember, members: readonly BenchMember[]): Promise<void> {
  const client = admin as EtcdClient;
  const mc = client.member(seed.url);
  const end = FRAGMENT_PREFIX.slice(0, -1) + String.fromCharCode(FRAGMENT_PREFIX.charCodeAt(FRAGMENT_PREFIX.length - 1) + 1);
  const { header } = await mc.deleteRange(FRAGMENT_PREFIX, { rangeEnd: end, timeoutMs: 60_000 });
  await mc.compact(header.revision, { physical: true, timeoutMs: 120_000 });
  for (const m of members) await client.member(m.url).defragment({ timeoutMs: 120_000 });
}

function subtractServer(
  after: Record<string, { sum: number; count: number } | null>,
  before: Record<string, { sum: number; count: number } | null>,
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    out[name] = a && b ? (a.sum - b.sum) * 1000 : null;
  }
  return out;
}

function syncDisks(): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('sync', [], { stdio: 'ignore' });
    child.once('error', () => resolve());
    child.once('close', () => resolve());
  });
}

/** go.etcd.io/etcd/client/v3's version pinned in go/clients/go.mod. */
function clientv3Version(): string {
  const mod = readFileSync(new URL('../go/clients/go.mod', import.meta.url), 'utf8');
  return /go\.etcd\.io\/etcd\/client\/v3 (v\S+)/.exec(mod)?.[1] ?? 'unknown';
}

function version(bin: string, args: string[], pattern: RegExp): string {
  try {
    return pattern.exec(execFileSync(bin, args, { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

try {
  const startedAt = new Date().toISOString();
  const loadAvgAtStart = os.loadavg()[0] ?? 0;
  if (loadAvgAtStart > 1)
    log(
      `warning: load average ${loadAvgAtStart.toFixed(1)} before anything started: something else is busy on this machine; expect noisy figures`,
    );
  if (config.big && os.freemem() < 12 * 1024 * MiB)
    log(
      `warning: ${(os.freemem() / 1024 / MiB).toFixed(1)} GiB of memory free: --big needs about 12 GiB (three members' 1.5 GiB files, their defrag copies and raft logs); expect the machine to swap or thrash`,
    );
  log(`config: ${JSON.stringify({ ...config, outDir: path.relative(process.cwd(), config.outDir) || '.' })}`);
  log('starting a local 3-member etcd cluster ...');
  // etcd's own defaults (the harness shortens them for tests): a leader that stalls longer than 1 s may lose an election.
  const extraArgs = ['--heartbeat-interval', '100', '--election-timeout', '1000'];
  // etcd keeps every raft entry since its last snapshot in memory; at 3.4's default of 100 000
  // entries, --big's 64 KiB writes (about 45 000 entries per tool) held 3+ GB per member and the
  // first --big run here thrashed a 24 GiB machine. etcd 3.6 lowered the default to 10 000.
  if (config.big) extraArgs.push('--snapshot-count', String(BIG_SNAPSHOT_COUNT));
  const gateArgs = config.stopGrpcOnDefrag ? stopGrpcOnDefragArgs(etcdUnderTest().version) : null;
  if (config.stopGrpcOnDefrag && !gateArgs) throw new Error(`etcd ${etcdUnderTest().version} has no StopGRPCServiceOnDefrag (3.5.14+)`);
  extraArgs.push(...(gateArgs ?? []));
  // Built (or found in the cache) before etcd starts, so that a first build's minutes load nothing.
  const goBin = config.goClients ? GoClients.binary() : null;
  cluster = await startCluster({ members: 3, extraArgs });
  admin = new EtcdClient({ endpoints: cluster.endpoints, commandTimeoutMs: 30_000 });
  const members = await benchMembers(cluster, admin);
  const seed = members[0] as BenchMember;
  const etcdVersion = (await admin.member(seed.url).status()).version;
  const leaderAtStart = await leaderName(members);
  log(`members: ${members.map((m) => `${m.name} ${m.url} ${m.memberId}`).join(', ')}; leader ${leaderAtStart}; data in ${cluster.dir}`);

  const fragmentMs: number[] = [];
  log(`writing ${config.mb} MiB (two passes over ${config.mb / 2} MiB of keys) and compacting ...`);
  fragmentMs.push(await fillData(seed));
  let filledAt = now();
  const quietBeforeToolMs: number[] = [];
  log(`written in ${fmtMs(fragmentMs[0])}`);

  load = new Load(members, {
    clientsPerMember: config.clientsPerMember,
    deadlineMs: config.deadlineMs,
    readPct: config.readPct,
    sleepMs: config.sleepMs,
    leaseTtlSec: config.leaseTtlSec,
    keepAliveEveryMs: config.keepAliveEveryMs,
  });
  await load.start();
  const goReports: GoReport[] = [];
  if (goBin) {
    log('starting the Go clients (go/clients etcd-clients) ...');
    goClients = new GoClients(
      members.map((m) => m.url),
      config.deadlineMs,
    );
    await goClients.start(goBin);
  }
  /** A report of the Go clients, kept in the raw results, its losses and failures logged. */
  const goReport = async (label: string): Promise<GoReport | null> => {
    if (!goClients) return null;
    const r = await goClients.report(label);
    goReports.push(r);
    for (const e of r.events)
      log(`  Go client ${e.client} (${e.peer}) ${label}: ${e.what}${e.code ? ` ${e.code}` : ''}: ${e.detail ?? ''}`);
    return r;
  };
  poller = new LeaderPoller(members);
  poller.start();
  log(`load started: ${members.length * config.clientsPerMember} clients; baseline window ${config.baselineSec} s ...`);
  const b0 = now();
  const baselineEld = monitorEventLoopDelay({ resolution: 10 });
  baselineEld.enable();
  await sleep(config.baselineSec * 1000, abort.signal);
  baselineEld.disable();
  const b1 = now();
  await goReport('baseline');

  const contexts: ToolContext[] = [];
  for (const [i, tool] of config.tools.entries()) {
    if (abort.signal.aborted) throw new Error('interrupted');
    if (i > 0) {
      log(
        `re-fragmenting for ${tool}: deleting the keys, compacting, defragmenting the near-empty members, writing ${config.mb} MiB again ...`,
      );
      await resetData(seed, members);
      fragmentMs.push(await fillData(seed));
      filledAt = now();
      // The same load-only time after writing as the first tool had (its baseline window).
      log(`written in ${fmtMs(fragmentMs[i])}; load only for ${config.baselineSec} s ...`);
      await sleep(config.baselineSec * 1000, abort.signal);
    }
    // Both tools start with the written data on disk, not in dirty page cache that the defrag's fsync would flush.
    await syncDisks();
    const sizesBefore = await sizesOf(members);
    showSizes(`before ${tool}`, sizesBefore);
    log(`leader before ${tool}: ${await leaderName(members)}; running ${tool} ...`);
    const serverBefore = await serverDefragSeconds(members);
    const leaderChangesBefore = await leaderChangesSeen(members);
    quietBeforeToolMs.push(Math.round(now() - filledAt));
    const loadAvgBefore = os.loadavg()[0] ?? 0;
    // Everything before the tool (re-fragmenting, the previous tool's late effects) stays out of its column.
    await goReport(`before ${tool}`);
    const eld = monitorEventLoopDelay({ resolution: 10 });
    eld.enable();
    // Measured from the tool's start (defragd's child process has loaded by then).
    const onStart = () => eld.reset();
    const run: ToolRun =
      tool === 'defragd'
        ? await runDefragd(members, abort.signal, onStart)
        : tool === 'etcdctl'
          ? await runEtcdctl(members, seed, abort.signal, onStart)
          : await runEtcdDefrag(members, seed, tool === 'etcd-defrag-move-leader', abort.signal, onStart);
    eld.disable();
    log(
      `${tool} finished in ${fmtMs(run.wallMs)} (${run.ok ? 'ok' : 'NOT OK'}): ${run.intervals.map((x) => `${x.name} ${fmtMs(x.end - x.start)}${x.ok ? '' : ' FAILED'}`).join(', ')}`,
    );
    if (!run.ok) for (const l of run.log) log(`  ${tool}: ${l.line}`);
    await sleep(config.settleSec * 1000, abort.signal);
    const leaderChangesAfter = await leaderChangesSeen(members);
    // The Go clients from the tool's start until the end of the settle time (a session expires up to a TTL late).
    const toolGo = await goReport(tool);
    const go = toolGo ? summarizeGoReport(toolGo, members, run.intervals, run.start, config.deadlineMs) : null;
    const sizesAfter = await sizesOf(members);
    showSizes(`after ${tool}`, sizesAfter);
    const serverDefragMs = subtractServer(await serverDefragSeconds(members), serverBefore);
    const leaderChanges = Object.fromEntries(
      members.map((m) => {
        const a = leaderChangesAfter[m.name];
        const b = leaderChangesBefore[m.name];
        return [m.name, a !== null && a !== undefined && b !== null && b !== undefined ? a - b : null];
      }),
    );
    contexts.push({ run, sizesBefore, sizesAfter, serverDefragMs, eventLoopMaxMs: eld.max / 1e6, loadAvgBefore, leaderChanges, go });
  }

  // What start-up cannot go under here, under the same load: Node connecting, bare and with gRPC
  // loaded; and defragd's own start-up (a dry run) as many times, interleaved, so that its median
  // is compared with theirs rather than the one start of the run above.
  const startupFloor = { bareMs: [] as number[], grpcMs: [] as number[], defragdMs: [] as number[] };
  const series = { bare: startupFloor.bareMs, grpc: startupFloor.grpcMs, defragd: startupFloor.defragdMs };
  for (let i = 0; i < STARTUP_FLOOR_RUNS; i++) {
    for (const what of ['bare', 'grpc', 'defragd'] as const) {
      const ms = await startupMs(seed, what, abort.signal);
      if (ms !== null) series[what].push(ms);
    }
  }
  log(
    `start-up: node connecting ${startupFloor.bareMs.map(fmtMs).join(', ')}; with @grpc/grpc-js ${startupFloor.grpcMs.map(fmtMs).join(', ')}; defragd defrag --dry-run ${startupFloor.defragdMs.map(fmtMs).join(', ')}`,
  );

  log('stopping the load ...');
  await load.stop();
  await poller.stop();
  const records = load.records;
  const samples = poller.samples;
  const tools = contexts.map((c) => analyzeTool(c, records, samples, members));
  const finishedAt = new Date().toISOString();

  const result: BenchResult = {
    version: 1,
    startedAt,
    finishedAt,
    totalSeconds: (Date.now() - t0) / 1000,
    command: commandLine(),
    config,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
      loadAvgAtStart,
      platform: os.platform(),
      release: os.release(),
      node: process.version,
      etcd: etcdVersion,
      etcdctl: version(etcdctlBin(), ['version'], /etcdctl version: (\S+)/),
      ...(goBin ? { clientv3: clientv3Version() } : {}),
    },
    stopGrpcOnDefrag: gateArgs,
    cluster: { members: members.map((m) => ({ name: m.name, memberId: m.memberId })), leaderAtStart },
    setup: { fragmentMs, quietBeforeToolMs },
    baseline: { ...windowStats(records, b0, b1), seconds: config.baselineSec, eventLoopMaxMs: baselineEld.max / 1e6 },
    load: { requests: records.length, failed: records.filter((r) => !r.ok).length, clients: members.length * config.clientsPerMember },
    tools,
    startupFloor,
  };
  const raw = {
    leaderTimeline: leaderTimeline(samples).map((p) => ({
      ...p,
      leader: members.find((m) => m.memberId === p.leaderId)?.name ?? p.leaderId,
    })),
    statusErrors: poller.errors,
    goReports,
    toolLogs: contexts.map((c) => ({
      tool: c.run.tool,
      start: c.run.start,
      end: c.run.end,
      log: c.run.log.map((l) => ({ offsetMs: Math.round(l.t - c.run.start), line: l.line })),
    })),
  };
  // Every request, column-wise: times in ms after the start of the load; error indexes into errors (-1: ok).
  const errors = [...new Set(records.flatMap((r) => (r.error === null ? [] : [r.error])))];
  const origin = records.reduce((m, r) => Math.min(m, r.start), Infinity);
  const requests = {
    origin,
    phases: {
      baseline: [b0 - origin, b1 - origin],
      ...Object.fromEntries(contexts.map((c, i) => [`${i + 1}-${c.run.tool}`, [c.run.start - origin, c.run.end - origin]])),
    },
    members: members.map((m) => m.name),
    errors,
    member: records.map((r) => members.findIndex((m) => m.name === r.member)),
    ops: ['get', 'put', 'keepalive'],
    op: records.map((r) => ['get', 'put', 'keepalive'].indexOf(r.op)),
    goRetry: records.map((r) => (r.mode === 'go-retry' ? 1 : 0)),
    startMs: records.map((r) => Math.round((r.start - origin) * 10) / 10),
    latencyMs: records.map((r) => Math.round((r.end - r.start) * 10) / 10),
    error: records.map((r) => (r.error === null ? -1 : errors.indexOf(r.error))),
  };
  const files = await writeResults({ ...result, raw }, config.outDir, requests);
  console.log(`\n${markdown(result)}`);
  log(`results: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
} catch (err) {
  if (!interrupted) {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await cleanup();
}
