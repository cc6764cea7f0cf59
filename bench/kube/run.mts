/**
 * `make bench-kube`: what each defrag tool costs a Kubernetes control plane, on the real thing
 * (dev/harness/kube.ts): kube-apiserver and client-go controllers (kube-load) built from
 * Kubernetes' own Go modules, on the harness's 3-member etcd cluster.
 *
 * 1. Per preset (data size) and tool: a fresh cluster filled with the preset's data, two
 *    kube-apiservers, two loads (kube-controller-manager's leader-election timings on the first
 *    apiserver, fast ones on the second), a baseline, the tool once over the whole cluster, a
 *    settle time; the loads' reports over that window make the tool's column.
 * 2. `defragd serve` in auto mode against an `etcdctl defrag --cluster` cron, side by side on two
 *    clusters for BENCH_KUBE_MINUTES, fragmentation coming from kube-apiserver's own compactions.
 *
 * Writes bench/results/kube-*.json, kube-latest.json and kube-latest.md (pasted into README by
 * `node scripts/paste-bench.mjs kube`). Everything it starts is stopped at the end, on error and
 * on Ctrl-C (the harnesses' exit handlers and watchdogs).
 */
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdClient } from '../../src/internals.js';
import { etcdUnderTest, freePort, startCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { kubeBinaries, startKube, type KubeLoad, type KubeStack } from '../../dev/harness/kube.js';
import { fragment } from '../../dev/workload.js';
import { LeaderPoller, ledDuring } from '../leader.js';
import { CronDefrag, Daemon, killChildren as killScheduleChildren } from '../schedule/maintainers.js';
import { settingsOrExit } from '../settings.js';
import {
  benchMembers,
  etcdDefragBin,
  killChildren,
  leaderChangesSeen,
  runDefragd,
  runEtcdctl,
  runEtcdDefrag,
  serverDefragSeconds,
  type BenchMember,
  type ToolRun,
} from '../tools.js';
import { benchCommand, now, sleep } from '../util.js';
import { loadConfig, PRESETS, USAGE, type KubeBenchConfig, type KubeTool, type Preset } from './config.js';
import {
  loadFigures,
  markdown,
  writeResults,
  type KubeBenchResult,
  type LoadFigures,
  type MemberSize,
  type SideResult,
  type ToolResult,
} from './report.js';

const MiB = 1024 * 1024;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli/main.js');
const QUOTA = 8 * 1024 * MiB;
/** etcd's own raft timings (the harness's are faster), and 3.6's snapshot count on every version. */
const ETCD_ARGS = ['--heartbeat-interval', '100', '--election-timeout', '1000', '--snapshot-count', '10000'];
/** kube-apiserver's own default. */
const KUBE_COMPACTION = '5m';
const LOAD_BASE = { controllers: 3, candidates: 2, configmapBytes: 64 * 1024 } as const;

const config: KubeBenchConfig = settingsOrExit('bench-kube', USAGE, () =>
  process.argv.includes('--help') || process.argv.includes('-h') ? null : loadConfig(process.env),
);
const kube = kubeBinaries();
if (!kube.ok) {
  console.error(`bench-kube: no kube-apiserver here (${kube.why}); run make kube first`);
  process.exit(2);
}

const t0 = Date.now();
const log = (msg: string): void => console.error(`[bench-kube +${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${msg}`);
const abort = new AbortController();
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping ...`);
    abort.abort();
    killChildren();
    killScheduleChildren();
    setTimeout(() => process.exit(130), 20_000).unref();
  });
}
process.on('exit', () => {
  killChildren();
  killScheduleChildren();
});

async function sizesOf(admin: EtcdClient, members: readonly BenchMember[]): Promise<MemberSize[]> {
  return Promise.all(
    members.map(async (m) => {
      const s = await admin.member(m.url).status({ timeoutMs: 60_000 });
      return { name: m.name, dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse };
    }),
  );
}

const maxOf = (r: Record<string, number | null>): number | null => {
  const v = Object.values(r).filter((x): x is number => x !== null);
  return v.length ? Math.max(...v) : null;
};

async function defragSum(members: readonly BenchMember[]): Promise<{ sum: number; count: number }> {
  const r = await serverDefragSeconds(members);
  let sum = 0;
  let count = 0;
  for (const v of Object.values(r)) if (v) [sum, count] = [sum + v.sum, count + v.count];
  return { sum, count };
}

/** Until every Lease of every load has a leader (90 s bound). */
async function waitLeaders(loads: readonly KubeLoad[]): Promise<void> {
  const deadline = now() + 90_000;
  for (;;) {
    const reps = await Promise.all(loads.map((l) => l.report()));
    if (reps.every((r) => Object.keys(r.holders).length > 0 && Object.values(r.holders).every((h) => h !== ''))) return;
    if (now() > deadline) throw new Error(`not every controller has a leader after 90 s: ${JSON.stringify(reps.map((r) => r.holders))}`);
    await sleep(1000, abort.signal);
  }
}

const windowOf = async (loads: readonly { load: KubeLoad; profile: string }[]): Promise<LoadFigures[]> =>
  Promise.all(
    loads.map(async (l) => {
      const r = await l.load.report();
      return loadFigures(r.window, l.profile, Object.keys(r.holders).length);
    }),
  );

/** A Defragment of one follower, called directly: what any tool's follower defrag costs, with nothing around it. */
async function oneFollower(admin: EtcdClient, members: readonly BenchMember[]): Promise<ToolRun> {
  const statuses = await Promise.all(members.map((m) => admin.member(m.url).status()));
  const i = statuses.findIndex((s) => s.leader !== s.header.memberId);
  const m = members[i] as BenchMember;
  const start = now();
  let ok = true;
  let note: string | null = null;
  try {
    await admin.member(m.url).defragment({ timeoutMs: 600_000 });
  } catch (err) {
    ok = false;
    note = (err as Error).message;
  }
  const end = now();
  return {
    tool: 'defragd',
    command: 'Maintenance.Defragment of one follower, called directly',
    start,
    end,
    wallMs: end - start,
    waitsMs: 0,
    intervals: [{ name: m.name, memberId: m.memberId, start, end, ok, note }],
    ok,
    log: [],
    report: null,
  };
}

/** One tool on one preset, on a fresh cluster and control plane. */
async function oneShot(preset: Preset, tool: KubeTool | 'one-follower'): Promise<{ result: ToolResult; raw: unknown }> {
  const blank = (command: string, note: string): ToolResult => ({
    preset: preset.name,
    tool,
    command,
    ok: false,
    note,
    before: [],
    after: [],
    order: [],
    serverDefragSec: null,
    wallMs: 0,
    elections: null,
    leaderMoves: 0,
    compactedBefore: false,
    baseline: [],
    run: [],
  });
  if ((tool === 'etcd-defrag' || tool === 'etcd-defrag-move-leader') && etcdDefragBin() === null) {
    log(`${preset.name} / ${tool}: not built here, left out`);
    return { result: blank('etcd-defrag', 'not built here (the Go module proxy refuses github.com/ahrtr/etcd-defrag)'), raw: null };
  }
  let cluster: EtcdCluster | undefined;
  let stack: KubeStack | undefined;
  let admin: EtcdClient | undefined;
  const loads: { load: KubeLoad; profile: string }[] = [];
  try {
    log(`${preset.name} / ${tool}: a fresh cluster, ${preset.liveMiB} MiB written twice ...`);
    cluster = await startCluster({ members: 3, quotaBackendBytes: QUOTA, extraArgs: ETCD_ARGS });
    admin = new EtcdClient({ endpoints: cluster.endpoints, commandTimeoutMs: 60_000 });
    const members = await benchMembers(cluster, admin);
    await fragment(
      { endpoints: cluster.endpoints },
      { bytes: preset.liveMiB * MiB, valueSize: 64 * 1024, passes: 2, prefix: '/fragment/', concurrency: 16 },
    );
    stack = await startKube(cluster, { apiservers: 2, compactionInterval: KUBE_COMPACTION });
    loads.push({ load: await stack.startLoad({ ...LOAD_BASE, apiserver: 0, profile: 'kcm' }), profile: 'kcm' });
    loads.push({
      load: await stack.startLoad({ ...LOAD_BASE, apiserver: 1, profile: 'fast', extraArgs: ['--namespace', 'defragd-load-fast'] }),
      profile: 'fast',
    });
    await waitLeaders(loads.map((l) => l.load));
    await windowOf(loads);
    log(`${preset.name} / ${tool}: leaders elected; ${config.baselineSec} s of load only ...`);
    await sleep(config.baselineSec * 1000, abort.signal);
    const baseline = await windowOf(loads);
    const before = await sizesOf(admin, members);
    const defragBefore = await defragSum(members);
    const changesBefore = await leaderChangesSeen(members);
    const poller = new LeaderPoller(members, 100);
    poller.start();
    await windowOf(loads); // the run's window starts here
    log(`${preset.name} / ${tool}: running ...`);
    let run: ToolRun;
    if (tool === 'etcdctl') run = await runEtcdctl(members, members[0] as BenchMember, abort.signal);
    else if (tool === 'etcd-defrag' || tool === 'etcd-defrag-move-leader')
      run = await runEtcdDefrag(members, members[0] as BenchMember, tool === 'etcd-defrag-move-leader', abort.signal);
    else if (tool === 'one-follower') run = await oneFollower(admin, members);
    else {
      // As README recommends for a control plane: every apiserver's /readyz waited for before each member.
      const tokenFile = path.join(stack.dir, 'readyz-token');
      writeFileSync(tokenFile, `${stack.token}\n`, { mode: 0o600 });
      run = await runDefragd(members, abort.signal, undefined, {
        args: [
          '--wait-for-url',
          stack.apiservers.map((a) => `${a.url}/readyz`).join(','),
          '--wait-for-url-token-file',
          tokenFile,
          '--wait-for-url-insecure-skip-tls-verify',
        ],
        shown: '--wait-for-url <each apiserver>/readyz --wait-for-url-token-file <token> --wait-for-url-insecure-skip-tls-verify',
      });
    }
    log(
      `${preset.name} / ${tool}: ${run.ok ? 'done' : 'ended with a failure'} in ${(run.wallMs / 1000).toFixed(1)} s; ${config.settleSec} s to settle ...`,
    );
    await sleep(config.settleSec * 1000, abort.signal);
    const figures = await windowOf(loads);
    await poller.stop();
    const changesAfter = await leaderChangesSeen(members);
    const defragAfter = await defragSum(members);
    const after = await sizesOf(admin, members);
    const seen = maxOf(changesAfter);
    const seenBefore = maxOf(changesBefore);
    const leaderMoves = run.leaderMoves ?? (run.report ? run.report.members.filter((m) => m.movedLeaderTo !== null).length : 0);
    const result: ToolResult = {
      preset: preset.name,
      tool,
      command: run.command,
      ok: run.ok,
      note: run.ok ? null : (run.intervals.find((i) => !i.ok)?.note ?? 'failed'),
      before,
      after,
      order: run.intervals.map((i) => ({
        name: i.name,
        led: ledDuring(poller.samples, i.memberId, i.start, i.end),
        ms: i.end - i.start,
        ok: i.ok,
        note: i.note,
      })),
      serverDefragSec: defragAfter.sum - defragBefore.sum,
      wallMs: run.wallMs,
      elections: seen !== null && seenBefore !== null ? seen - seenBefore : null,
      leaderMoves,
      compactedBefore: run.compactedRevision !== undefined && run.compactedRevision !== null,
      baseline,
      run: figures,
    };
    const finals = await Promise.all(loads.map((l) => l.load.stop()));
    return { result, raw: { tool, preset: preset.name, log: run.log, report: run.report, loads: finals } };
  } finally {
    await Promise.allSettled(loads.map((l) => l.load.stop()));
    await stack?.stop();
    admin?.close();
    await cluster?.close();
  }
}

interface Side {
  name: 'cron' | 'defragd';
  cluster: EtcdCluster;
  admin: EtcdClient;
  members: BenchMember[];
  stack: KubeStack;
  load: KubeLoad;
  peak: number;
}

/** defragd serve (auto) against an etcdctl cron, side by side. */
async function sideBySide(): Promise<{ result: NonNullable<KubeBenchResult['sideBySide']>; raw: unknown }> {
  const prepared: Omit<Side, 'load'>[] = [];
  const sides: Side[] = [];
  let cron: CronDefrag | undefined;
  let daemon: Daemon | undefined;
  const clusters: EtcdCluster[] = [];
  const stacks: KubeStack[] = [];
  try {
    log(`side by side: two fresh clusters with ${PRESETS.small.liveMiB} MiB written twice, one kube-apiserver each ...`);
    for (const name of ['cron', 'defragd'] as const) {
      const cluster = await startCluster({ members: 3, extraArgs: ETCD_ARGS });
      clusters.push(cluster);
      const admin = new EtcdClient({ endpoints: cluster.endpoints, commandTimeoutMs: 60_000 });
      const members = await benchMembers(cluster, admin);
      await fragment(
        { endpoints: cluster.endpoints },
        { bytes: PRESETS.small.liveMiB * MiB, valueSize: 64 * 1024, passes: 2, prefix: '/fragment/', concurrency: 16 },
      );
      const stack = await startKube(cluster, { apiservers: 1, compactionInterval: config.compactionInterval });
      stacks.push(stack);
      prepared.push({ name, cluster, admin, members, stack, peak: 0 });
    }
    // The loads start once both control planes are up, so that both sides' windows see the same load.
    for (const p of prepared)
      sides.push({ ...p, load: await p.stack.startLoad({ ...LOAD_BASE, configmapBytes: 128 * 1024, profile: 'kcm' }) });
    await waitLeaders(sides.map((s) => s.load));
    const [A, B] = sides as [Side, Side];
    cron = new CronDefrag(A.members[0]!.url, config.cronEveryMin * 60_000, '60s');
    const daemonDir = path.join(B.cluster.dir, 'defragd-serve');
    await mkdir(daemonDir);
    const tokenFile = path.join(daemonDir, 'readyz-token');
    writeFileSync(tokenFile, `${B.stack.token}\n`, { mode: 0o600 });
    const waitForUrl = [
      'waitForUrl:',
      `  urls: [${B.stack.apiservers[0]!.url}/readyz]`,
      `  tokenFile: ${tokenFile}`,
      '  insecureSkipTlsVerify: true',
    ];
    daemon = new Daemon({
      cliPath: CLI,
      dir: daemonDir,
      clusterName: 'bench',
      endpoints: B.cluster.endpoints,
      port: await freePort(),
      rule: config.rule,
      interval: config.autoInterval,
      cooldown: config.autoCooldown,
      clusterYaml: waitForUrl,
    });
    const before = await Promise.all(sides.map(async (s) => ({ d: await defragSum(s.members), c: await leaderChangesSeen(s.members) })));
    await Promise.all(sides.map((s) => s.load.report())); // the window starts here
    await daemon.start();
    cron.start();
    const end = now() + config.minutes * 60_000;
    log(
      `side by side: cron every ${config.cronEveryMin} min on "cron", defragd serve (rule ${config.rule}) on "defragd"; ${config.minutes} min ...`,
    );
    let lastLog = now();
    while (now() < end && !abort.signal.aborted) {
      for (const s of sides) {
        const sz = await sizesOf(s.admin, s.members).catch(() => []);
        for (const m of sz) s.peak = Math.max(s.peak, m.dbSize);
        if (now() - lastLog > 60_000)
          log(
            `  ${s.name}: ${sz.map((m) => `${m.name} ${(m.dbSize / MiB).toFixed(0)}/${(m.dbSizeInUse / MiB).toFixed(0)}`).join(' ')} MiB`,
          );
      }
      if (now() - lastLog > 60_000) lastLog = now();
      await sleep(Math.min(5_000, Math.max(0, end - now())), abort.signal);
    }
    if (abort.signal.aborted) throw new Error('interrupted');
    const history = await daemon.history().catch(() => []);
    await cron.stop(60_000);
    await daemon.stop(60_000);
    await sleep(config.settleSec * 1000, abort.signal);
    const results: SideResult[] = [];
    for (const [i, s] of sides.entries()) {
      const rep = await s.load.report();
      const figures = loadFigures(rep.window, 'kcm', Object.keys(rep.holders).length);
      const d = await defragSum(s.members);
      const c = await leaderChangesSeen(s.members);
      const sz = await sizesOf(s.admin, s.members);
      const seen = maxOf(c);
      const seenBefore = maxOf(before[i]!.c);
      const largest = sz.reduce((a, b) => (b.dbSize > a.dbSize ? b : a));
      results.push({
        name: s.name,
        command:
          s.name === 'cron'
            ? `every ${config.cronEveryMin} min: ${cron.command}`
            : `defragd serve, rule ${config.rule}, auto interval ${config.autoInterval}, cooldown ${config.autoCooldown}, waitForUrl the apiserver's /readyz`,
        figures,
        defrags: d.count - before[i]!.d.count,
        defragSec: d.sum - before[i]!.d.sum,
        runs:
          s.name === 'cron' ? cron.runs.length : history.filter((r) => r.trigger !== 'external' && r.outcome !== 'nothing-to-do').length,
        peakDbSize: Math.max(s.peak, ...sz.map((m) => m.dbSize)),
        endDbSize: largest.dbSize,
        endInUse: largest.dbSizeInUse,
        elections: seen !== null && seenBefore !== null ? seen - seenBefore : null,
      });
    }
    const finals = await Promise.all(sides.map((s) => s.load.stop()));
    return {
      result: {
        minutes: config.minutes,
        sides: results,
        settings: {
          cronEveryMin: config.cronEveryMin,
          rule: config.rule,
          autoInterval: config.autoInterval,
          autoCooldown: config.autoCooldown,
          compactionInterval: config.compactionInterval,
        },
      },
      raw: { cronRuns: cron.runs, history, daemonLog: daemon.logs.slice(-500), loads: finals },
    };
  } finally {
    await cron?.stop(5_000).catch(() => undefined);
    await daemon?.stop(10_000).catch(() => undefined);
    await Promise.allSettled(sides.map((s) => s.load.stop()));
    await Promise.allSettled(stacks.map((s) => s.stop()));
    for (const p of prepared) p.admin.close();
    await Promise.allSettled(clusters.map((c) => c.close()));
  }
}

try {
  const startedAt = new Date().toISOString();
  const loadAvgAtStart = os.loadavg()[0] ?? 0;
  log(`settings: ${JSON.stringify(config)}`);
  const tools: ToolResult[] = [];
  const raw: unknown[] = [];
  for (const preset of config.presets) {
    for (const tool of [...config.tools, 'one-follower' as const]) {
      if (abort.signal.aborted) throw new Error('interrupted');
      const r = await oneShot(preset, tool);
      tools.push(r.result);
      raw.push(r.raw);
    }
  }
  const side = config.minutes > 0 ? await sideBySide() : null;
  const result: KubeBenchResult = {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    command: benchCommand((k) => k === 'ETCD_VERSION' || k.startsWith('BENCH_KUBE_'), 'bench-kube', 'bench/kube/run.mts'),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      node: process.version,
      etcd: etcdUnderTest().version,
      kube: kube.bins.version,
      loadAvgAtStart,
    },
    settings: { baselineSec: config.baselineSec, settleSec: config.settleSec, tools: config.tools },
    presets: config.presets.map((p) => ({ ...p })),
    tools,
    sideBySide: side?.result ?? null,
    totalSeconds: (Date.now() - t0) / 1000,
  };
  const files = await writeResults(result, { tools: raw, sideBySide: side?.raw ?? null }, path.resolve(ROOT, config.outDir));
  console.log(`\n${markdown(result)}`);
  log(`results: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
} catch (err) {
  if (!interrupted) {
    console.error(`bench-kube failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}
