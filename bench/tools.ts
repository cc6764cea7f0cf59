/**
 * The two ways to defragment a whole cluster that the benchmark compares,
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
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { RunReport, StepEvent } from '../src/index.js';
import { fetchGauges } from '../src/etcd/metrics.js';
import type { ToolName } from './config.js';
import { now } from './util.js';

export const ETCDCTL_BIN = '/usr/bin/etcdctl';

export interface BenchMember {
  name: string;
  url: string;
  /** Hex member ID. */
  memberId: string;
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
}

/** Child processes this module started, so they can be killed on Ctrl-C. */
const children = new Set<ChildProcess>();

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
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  children.clear();
}

const CHILD = fileURLToPath(new URL('./defragd-child.mts', import.meta.url));

type ChildLine =
  | { type: 'ready' }
  | { type: 'event'; t: number; event: StepEvent }
  | { type: 'report'; start: number; end: number; report: RunReport }
  | { type: 'error'; message: string };

/**
 * Runs defragd in a child process (bench/defragd-child.mts, the same Node and
 * loader as this process). Its start-up is not measured: the run starts when
 * the child calls defragment() and ends when the report is back.
 */
export async function runDefragd(members: readonly BenchMember[], signal: AbortSignal, onStart: () => void = () => undefined): Promise<ToolRun> {
  const endpoints = members.map((m) => m.url);
  const child = spawn(process.execPath, [...process.execArgv, CHILD, ...endpoints], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.stdin.on('error', () => undefined); // EPIPE when the child died first: its exit code tells
  const onAbort = () => child.kill('SIGINT');
  signal.addEventListener('abort', onAbort, { once: true });
  const log: { t: number; line: string }[] = [];
  const started = new Map<string, number>();
  const intervals: MemberInterval[] = [];
  let waitsMs = 0;
  let result: { start: number; end: number; report: RunReport } | null = null;
  let failure: string | null = null;
  createInterface({ input: child.stderr }).on('line', (line) => log.push({ t: now(), line: `stderr: ${line}` }));
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let msg: ChildLine;
    try {
      msg = JSON.parse(line) as ChildLine;
    } catch {
      log.push({ t: now(), line: `stdout: ${line}` });
      return;
    }
    if (msg.type === 'ready') {
      onStart();
      child.stdin.end('go\n');
    }
    else if (msg.type === 'error') failure = msg.message;
    else if (msg.type === 'report') result = msg;
    else {
      const e = msg.event;
      log.push({ t: msg.t, line: describe(e) });
      if (e.type === 'member-started') started.set(e.decision.memberId, msg.t);
      if (e.type === 'pause') waitsMs += e.ms;
      if (e.type === 'member-finished') {
        const r = e.result;
        const s = started.get(r.memberId);
        if (s !== undefined && r.durationMs !== null) {
          intervals.push({ name: nameOf(members, r.memberId), memberId: r.memberId, start: s, end: s + r.durationMs, ok: r.action === 'defragmented', note: r.reason });
        }
      }
    }
  });
  const code = await exitOf(child, signal, onAbort);
  const done = result as { start: number; end: number; report: RunReport } | null;
  if (done === null) {
    const tail = log.slice(-20).map((l) => l.line).join('\n');
    throw new Error(`defragd child exited with code ${code} without a report${failure ? `: ${failure}` : ''}\n${tail}`);
  }
  return {
    tool: 'defragd',
    command: `defragment({ endpoints: [${members.length} client URLs] })  (what defragd defrag --endpoints <all members> runs)`,
    start: done.start,
    end: done.end,
    wallMs: done.end - done.start,
    waitsMs,
    intervals,
    ok: done.report.outcome === 'success' && code === 0,
    log,
    report: done.report,
  };
}

function describe(e: StepEvent): string {
  switch (e.type) {
    case 'run-started':
      return `run-started: ${e.plan.decisions.map((d) => `${d.name} ${d.action}${d.isLeader ? ' (leader)' : ''}`).join(', ')}`;
    case 'member-started':
      return `member-started ${e.decision.name} (${e.index}/${e.total})`;
    case 'member-finished':
      return `member-finished ${e.result.name}: ${e.result.action} in ${e.result.durationMs ?? '?'} ms (${e.result.reason})`;
    case 'leader-move-started':
      return `leader-move-started ${e.fromName} -> ${e.toName}`;
    case 'leader-move-finished':
      return `leader-move-finished in ${e.durationMs} ms`;
    case 'member-waiting':
      return `member-waiting ${e.name}: ${e.what}`;
    case 'run-finished':
      return `run-finished: ${e.report.outcome}${e.report.message ? ` (${e.report.message})` : ''}`;
    default:
      return e.type;
  }
}

const nameOf = (members: readonly BenchMember[], id: string): string => members.find((m) => m.memberId === id)?.name ?? id;

const FINISHED = /^Finished defragmenting etcd member\[(.+)\]\s*$/;
const FAILED = /^Failed to defragment etcd member\[(.+?)\] \((.*)\)\s*$/;

export async function runEtcdctl(members: readonly BenchMember[], seed: BenchMember, signal: AbortSignal, onStart: () => void = () => undefined): Promise<ToolRun> {
  const args = ['defrag', '--cluster', '--command-timeout=10m', `--endpoints=${seed.url}`];
  const env: NodeJS.ProcessEnv = { ...process.env, ETCDCTL_API: '3' };
  for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') && k !== 'ETCDCTL_API') delete env[k];
  const log: { t: number; line: string }[] = [];
  const intervals: MemberInterval[] = [];
  onStart();
  const start = now();
  const child = spawn(ETCDCTL_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const onAbort = () => child.kill('SIGKILL');
  signal.addEventListener('abort', onAbort, { once: true });
  let prev = start;
  const onLine = (line: string): void => {
    const t = now();
    log.push({ t, line });
    const ok = FINISHED.exec(line);
    const bad = ok ? null : FAILED.exec(line);
    const url = ok?.[1] ?? bad?.[1];
    if (url === undefined) return;
    const m = members.find((x) => x.url === url);
    intervals.push({ name: m?.name ?? url, memberId: m?.memberId ?? '?', start: prev, end: t, ok: ok !== null, note: bad?.[2] ?? null });
    prev = t;
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  const code = await exitOf(child, signal, onAbort);
  const end = now();
  return {
    tool: 'etcdctl',
    command: `ETCDCTL_API=3 etcdctl ${args.join(' ').replace(seed.url, '<one member>')}`,
    start,
    end,
    wallMs: end - start,
    waitsMs: 0,
    intervals,
    ok: code === 0 && intervals.length === members.length && intervals.every((i) => i.ok),
    log: [...log, { t: end, line: `(exit code ${code})` }],
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
