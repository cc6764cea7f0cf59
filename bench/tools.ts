/**
 * The ways to defragment a whole cluster that the benchmark compares (defragd, etcdctl, and ahrtr/etcd-defrag
 * when it is built here: runEtcdDefrag below),
 * each returning when every member was defragmented and for how long:
 *
 * - defragd, through the library (`defragment({ onEvent })`) in a child
 *   process: a member's interval starts at its member-started event and
 *   lasts the Defragment call's `durationMs` from the report.
 * - `etcdctl defrag --cluster`: it defragments the members one after the
 *   other in MemberList order and prints a line as each one finishes; a
 *   member's interval runs from the previous line (or the process start) to
 *   its own line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../src/index.js';
import type { EtcdClient } from '../src/internals.js';
import { fetchGauges } from '../src/etcd/metrics.js';
import type { ToolName } from './config.js';
import { etcdUnderTest, type EtcdCluster } from '../dev/harness/etcd.js';
import { ChildProcesses, now } from './util.js';

/** The etcdctl of the etcd under test (ETCD_VERSION, default the newest pinned 3.6). */
export const etcdctlBin = (): string => etcdUnderTest().etcdctl;

export interface BenchMember {
  name: string;
  url: string;
  /** Hex member ID. */
  memberId: string;
}

/** The harness cluster's members with their IDs, from MemberList. */
export async function benchMembers(cluster: EtcdCluster, admin: EtcdClient): Promise<BenchMember[]> {
  const list = await admin.member(cluster.endpoints[0] as string).memberList();
  return cluster.members.map((hm) => {
    const e = list.members.find((x) => x.clientUrls.includes(hm.clientUrl));
    if (!e) throw new Error(`member ${hm.name} (${hm.clientUrl}) is not in MemberList`);
    return { name: hm.name, url: hm.clientUrl, memberId: e.memberId };
  });
}

export interface MemberInterval {
  name: string;
  memberId: string;
  start: number;
  end: number;
  ok: boolean;
  note: string | null;
}

export interface ToolRun {
  tool: ToolName;
  /** The command, as an operator would type it. */
  command: string;
  start: number;
  end: number;
  wallMs: number;
  /** Configured pauses inside the run (defragd --wait-between; 0 here). */
  waitsMs: number;
  intervals: MemberInterval[];
  ok: boolean;
  /** defragd: the events with their times; etcdctl: output lines with their times. */
  log: { t: number; line: string }[];
  report: RunReport | null;
  /** defragd: when its process started, first connected and exited. */
  process?: ProcessTimes;
  /** etcd-defrag: MoveLeader calls it logged ("Transferring the leadership"); defragd's come from its report. */
  leaderMoves?: number;
  /** etcd-defrag: the revision it compacted to before the first member (its default), from its log; null: none. */
  compactedRevision?: number | null;
}

/** Child processes this module started, so they can be killed on Ctrl-C. */
const children = new ChildProcesses();

/** Resolves with a child's exit code (128 when killed by a signal) and forgets it. */
function exitOf(child: ChildProcess, signal: AbortSignal, onAbort: () => void): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
  }).finally(() => {
    children.delete(child);
    signal.removeEventListener('abort', onAbort);
  });
}

export function killChildren(): void {
  children.killAll();
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The built CLI (`make bench` builds it first), run by plain Node as an operator runs it. */
export const DEFRAGD_MAIN = path.join(ROOT, 'dist/cli/main.js');
const PROBE = fileURLToPath(new URL('./wire-probe.mjs', import.meta.url));
const STARTUP_FLOOR = fileURLToPath(new URL('./startup-floor.mjs', import.meta.url));

/** What the probe preloaded into defragd's process saw, on the benchmark's clock. */
export interface ProcessTimes {
  spawn: number;
  /** The first connection it opened (its first byte on the wire); null when none was seen. */
  firstConnect: number | null;
  exit: number;
}

const t = (iso: string | undefined | null): number | null => (iso ? Date.parse(iso) : null);

/** The benchmark's environment without the ETCDCTL_* and DEFRAGD_* settings, which would change what defragd does. */
function defragdEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') || k.startsWith('DEFRAGD_')) delete env[k];
  return env;
}

/** A line the probe (wire-probe.mjs) wrote on stderr, parsed; null for any other line. */
function probeNote(line: string): { firstConnect?: number; exit?: number } | null {
  return line.startsWith('#probe ') ? (JSON.parse(line.slice(7)) as { firstConnect?: number; exit?: number }) : null;
}

/**
 * Runs `defragd defrag --endpoints <every member> -w json` (dist/cli/main.js,
 * plain Node, no loader) with a probe preloaded that tells when the process
 * opened its first connection and when it exited. A member's interval starts
 * at its Defragment (`timings.defragmentStartedAt` in the report) and lasts the
 * call's `durationMs`.
 */
export async function runDefragd(
  members: readonly BenchMember[],
  signal: AbortSignal,
  onStart: () => void = () => undefined,
  /** More flags, and how the command line shows them (secrets and temp paths left out). */
  extra: { args: readonly string[]; shown: string } = { args: [], shown: '' },
): Promise<ToolRun> {
  const args = ['defrag', `--endpoints=${members.map((m) => m.url).join(',')}`, ...extra.args, '-w', 'json'];
  onStart();
  const spawnAt = now();
  const child = spawn(process.execPath, ['--import', PROBE, DEFRAGD_MAIN, ...args], {
    env: defragdEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const onAbort = () => child.kill('SIGINT');
  signal.addEventListener('abort', onAbort, { once: true });
  const log: { t: number; line: string }[] = [];
  let firstConnect: number | null = null;
  let exitAt: number | null = null;
  createInterface({ input: child.stderr }).on('line', (line) => {
    const o = probeNote(line);
    if (o) {
      if (o.firstConnect !== undefined) firstConnect = o.firstConnect;
      if (o.exit !== undefined) exitAt = o.exit;
      return;
    }
    log.push({ t: now(), line });
  });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (stdout += chunk));
  const code = await exitOf(child, signal, onAbort);
  const end = exitAt ?? now();
  let report: RunReport | null = null;
  try {
    report = JSON.parse(stdout) as RunReport;
  } catch {
    throw new Error(
      `defragd exited with code ${code} without a JSON report\n${log
        .slice(-20)
        .map((l) => l.line)
        .join('\n')}\n${stdout.slice(0, 2000)}`,
    );
  }
  const intervals: MemberInterval[] = [];
  for (const r of report.members) {
    const s = t(report.timings?.members.find((x) => x.memberId === r.memberId)?.defragmentStartedAt);
    if (s === null || r.durationMs === null) continue;
    intervals.push({
      name: nameOf(members, r.memberId),
      memberId: r.memberId,
      start: s,
      end: s + r.durationMs,
      ok: r.action === 'defragmented',
      note: r.reason,
    });
  }
  intervals.sort((a, b) => a.start - b.start);
  return {
    tool: 'defragd',
    command: `defragd defrag --endpoints <all ${members.length} members>${extra.shown ? ` ${extra.shown}` : ''} -w json`,
    start: spawnAt,
    end,
    wallMs: end - spawnAt,
    waitsMs: 0,
    intervals,
    ok: report.outcome === 'success' && code === 0,
    log,
    report,
    process: { spawn: spawnAt, firstConnect, exit: end },
  };
}

/** What a start-up probe starts: Node that only connects, Node that loads @grpc/grpc-js and connects, or defragd. */
export type StartupProbe = 'bare' | 'grpc' | 'defragd';

/**
 * Process start to first connection, started as defragd's run is (node --import
 * wire-probe.mjs): `node bench/startup-floor.mjs` for the floor ('bare', 'grpc'),
 * or `defragd defrag --dry-run` ('defragd'), which loads what a run does before
 * its first connection and then only reads.
 */
export async function startupMs(member: BenchMember, what: StartupProbe, signal: AbortSignal): Promise<number | null> {
  const target = new URL(member.url).host;
  const args =
    what === 'defragd'
      ? [DEFRAGD_MAIN, 'defrag', '--dry-run', `--endpoints=${member.url}`]
      : [STARTUP_FLOOR, target, ...(what === 'bare' ? ['--bare'] : [])];
  const spawnAt = now();
  const child = spawn(process.execPath, ['--import', PROBE, ...args], {
    env: what === 'defragd' ? defragdEnv() : process.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  const onAbort = () => child.kill('SIGINT');
  signal.addEventListener('abort', onAbort, { once: true });
  let firstConnect: number | null = null;
  createInterface({ input: child.stderr }).on('line', (line) => {
    firstConnect ??= probeNote(line)?.firstConnect ?? null;
  });
  const code = await exitOf(child, signal, onAbort);
  // A dry run's exit code says what it found (1: nothing to do, …); its start-up counts whatever it found.
  return (code === 0 || what === 'defragd') && firstConnect !== null ? firstConnect - spawnAt : null;
}

const nameOf = (members: readonly BenchMember[], id: string): string => members.find((m) => m.memberId === id)?.name ?? id;

// etcdctl 3.4/3.5: "Finished defragmenting etcd member[URL]", "Failed to defragment etcd member[URL] (ERR)";
// 3.6+ add the duration: "... member[URL]. took 2.8s", "... member[URL]. took 2.8s. (ERR)".
const FINISHED = /^Finished defragmenting etcd member\[(.+?)\](?:\. took \S+)?\s*$/;
const FAILED = /^Failed to defragment etcd member\[(.+?)\](?:\. took \S+\.)? \((.*)\)\s*$/;

/** One line of `etcdctl defrag`'s output: a member finished (ok) or failed (with etcdctl's reason); null for any other line. */
export function parseEtcdctlDefragLine(line: string): { url: string; ok: boolean; note: string | null } | null {
  const ok = FINISHED.exec(line);
  if (ok) return { url: ok[1] as string, ok: true, note: null };
  const bad = FAILED.exec(line);
  return bad ? { url: bad[1] as string, ok: false, note: bad[2] ?? null } : null;
}

export async function runEtcdctl(
  members: readonly BenchMember[],
  seed: BenchMember,
  signal: AbortSignal,
  onStart: () => void = () => undefined,
): Promise<ToolRun> {
  const args = ['defrag', '--cluster', '--command-timeout=10m', `--endpoints=${seed.url}`];
  const env: NodeJS.ProcessEnv = { ...process.env, ETCDCTL_API: '3' };
  for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') && k !== 'ETCDCTL_API') delete env[k];
  const intervals: MemberInterval[] = [];
  let prev: number | null = null;
  const r = await runOutputTool(etcdctlBin(), args, env, signal, onStart, (line, t, start) => {
    const parsed = parseEtcdctlDefragLine(line);
    if (parsed === null) return;
    const m = members.find((x) => x.url === parsed.url);
    intervals.push({
      name: m?.name ?? parsed.url,
      memberId: m?.memberId ?? '?',
      start: prev ?? start,
      end: t,
      ok: parsed.ok,
      note: parsed.note,
    });
    prev = t;
  });
  return outputToolRun('etcdctl', `ETCDCTL_API=3 etcdctl ${args.join(' ').replace(seed.url, '<one member>')}`, members, r, intervals);
}

// --- ahrtr/etcd-defrag --------------------------------------------------------

/**
 * ahrtr/etcd-defrag's binary: ETCD_DEFRAG, else where this machine keeps one built from its source. The Go
 * module proxy refuses github.com/ahrtr/etcd-defrag (403, "This module version is not available"), so it
 * cannot be built from a pinned module as etcd is; README's Performance section says how the one measured
 * was built. Null when there is none.
 */
export function etcdDefragBin(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates = [
    env.ETCD_DEFRAG,
    path.join(env.DEFRAGD_CACHE ?? path.join(env.HOME ?? '/root', '.cache/defragd'), 'etcd-defrag-v0.42.0/etcd-defrag'),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return null;
}

// Its log lines (Go's log package: "2026/12/07 18:00:00 " first): a member's Defragment starts and ends.
const ED_START = /Defragmenting endpoint "(.+?)"\s*$/;
const ED_DONE = /Finished defragmenting etcd endpoint "(.+?)"\. took (\S+)\s*$/;
const ED_FAILED = /Failed to defragment etcd member "(.+?)"\. took (\S+)\. \((.*)\)\s*$/;
const ED_COMPACTION = /Running compaction until revision: (\d+)/;
const ED_MOVE = /Transferring the leadership from \S+ to \S+\s*$/;

/** One line of etcd-defrag's log: a member started, finished (ok) or failed, or the compaction; null for any other line. */
export function parseEtcdDefragLine(
  line: string,
):
  | { kind: 'start'; url: string }
  | { kind: 'end'; url: string; ok: boolean; note: string | null }
  | { kind: 'compaction'; revision: number }
  | null {
  const start = ED_START.exec(line);
  if (start) return { kind: 'start', url: start[1] as string };
  const done = ED_DONE.exec(line);
  if (done) return { kind: 'end', url: done[1] as string, ok: true, note: null };
  const failed = ED_FAILED.exec(line);
  if (failed) return { kind: 'end', url: failed[1] as string, ok: false, note: failed[3] ?? null };
  const compaction = ED_COMPACTION.exec(line);
  return compaction ? { kind: 'compaction', revision: Number(compaction[1]) } : null;
}

/**
 * `etcd-defrag --endpoints=<one member> --cluster [--move-leader]`, with its defaults otherwise (as its README's
 * first example for a whole cluster): compaction to the current revision before the first member, the leader
 * last, a 30 s command timeout, go on after a failed member. A member's interval runs from its "Defragmenting
 * endpoint" line to its "Finished" (or "Failed") line.
 */
export async function runEtcdDefrag(
  members: readonly BenchMember[],
  seed: BenchMember,
  moveLeader: boolean,
  signal: AbortSignal,
  onStart: () => void = () => undefined,
): Promise<ToolRun> {
  const bin = etcdDefragBin();
  if (bin === null) throw new Error('etcd-defrag is not built here (see README: Performance); set ETCD_DEFRAG to its binary');
  const args = [`--endpoints=${seed.url}`, '--cluster', ...(moveLeader ? ['--move-leader'] : [])];
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ETCD_DEFRAG_') || k.startsWith('ETCDCTL_')) delete env[k];
  const intervals: MemberInterval[] = [];
  const started = new Map<string, number>();
  let leaderMoves = 0;
  let compactedRevision: number | null = null;
  const r = await runOutputTool(bin, args, env, signal, onStart, (line, t) => {
    if (ED_MOVE.test(line)) leaderMoves += 1;
    const parsed = parseEtcdDefragLine(line);
    if (parsed?.kind === 'compaction') compactedRevision = parsed.revision;
    if (parsed === null || parsed.kind === 'compaction') return;
    if (parsed.kind === 'start') {
      started.set(parsed.url, t);
      return;
    }
    const m = members.find((x) => x.url === parsed.url);
    intervals.push({
      name: m?.name ?? parsed.url,
      memberId: m?.memberId ?? '?',
      start: started.get(parsed.url) ?? t,
      end: t,
      ok: parsed.ok,
      note: parsed.note,
    });
  });
  const tool = moveLeader ? 'etcd-defrag-move-leader' : 'etcd-defrag';
  return {
    ...outputToolRun(tool, `etcd-defrag ${args.join(' ').replace(seed.url, '<one member>')}`, members, r, intervals),
    leaderMoves,
    compactedRevision,
  };
}

/** What runOutputTool saw of one process. */
interface OutputRun {
  start: number;
  end: number;
  code: number;
  log: { t: number; line: string }[];
}

/**
 * Runs a tool that tells what it does on its output (etcdctl, etcd-defrag), as an operator runs it: every line
 * of stdout and stderr goes to onLine with its time and the process's start; an abort kills it.
 */
async function runOutputTool(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  onStart: () => void,
  onLine: (line: string, t: number, start: number) => void,
): Promise<OutputRun> {
  const log: { t: number; line: string }[] = [];
  onStart();
  const start = now();
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const onAbort = () => child.kill('SIGKILL');
  signal.addEventListener('abort', onAbort, { once: true });
  const each = (line: string): void => {
    const t = now();
    log.push({ t, line });
    onLine(line, t, start);
  };
  createInterface({ input: child.stdout }).on('line', each);
  createInterface({ input: child.stderr }).on('line', each);
  const code = await exitOf(child, signal, onAbort);
  return { start, end: now(), code, log };
}

/** The ToolRun of such a tool: ok when it exited 0 having finished every member. */
function outputToolRun(
  tool: ToolName,
  command: string,
  members: readonly BenchMember[],
  r: OutputRun,
  intervals: MemberInterval[],
): ToolRun {
  return {
    tool,
    command,
    start: r.start,
    end: r.end,
    wallMs: r.end - r.start,
    waitsMs: 0,
    intervals,
    ok: r.code === 0 && intervals.length === members.length && intervals.every((i) => i.ok),
    log: [...r.log, { t: r.end, line: `(exit code ${r.code})` }],
    report: null,
  };
}

const DEFRAG_SUM = 'etcd_disk_backend_defrag_duration_seconds_sum';
const DEFRAG_COUNT = 'etcd_disk_backend_defrag_duration_seconds_count';

/** Each member's cumulative server-side defrag time (etcd's own histogram), by name; null where /metrics did not answer. */
export async function serverDefragSeconds(members: readonly BenchMember[]): Promise<Record<string, { sum: number; count: number } | null>> {
  const out: Record<string, { sum: number; count: number } | null> = {};
  await Promise.all(
    members.map(async (m) => {
      const g = await fetchGauges(m.url, [DEFRAG_SUM, DEFRAG_COUNT], null, { timeoutMs: 10_000 });
      const sum = g?.get(DEFRAG_SUM);
      const count = g?.get(DEFRAG_COUNT);
      out[m.name] = sum !== undefined && count !== undefined ? { sum, count } : null;
    }),
  );
  return out;
}

const LEADER_CHANGES = 'etcd_server_leader_changes_seen_total';

/** Each member's etcd_server_leader_changes_seen_total (leader changes it has seen), by name; null where /metrics did not answer. */
export async function leaderChangesSeen(members: readonly BenchMember[]): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  await Promise.all(
    members.map(async (m) => {
      out[m.name] = (await fetchGauges(m.url, [LEADER_CHANGES], null, { timeoutMs: 10_000 }))?.get(LEADER_CHANGES) ?? null;
    }),
  );
  return out;
}
