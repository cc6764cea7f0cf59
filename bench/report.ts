/** The markdown table (one column per tool, one row per figure) and the result files. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ToolFigures, WindowStats, Sizes } from './analyze.js';
import type { BenchConfig, ToolName } from './config.js';
import { fmtMiB, fmtMs, MiB } from './util.js';

export interface BenchResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  totalSeconds: number;
  command: string;
  config: BenchConfig;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; loadAvgAtStart: number; platform: string; release: string; node: string; etcd: string; etcdctl: string };
  cluster: { members: { name: string; memberId: string }[]; leaderAtStart: string | null };
  setup: { fragmentMs: number[]; quietBeforeToolMs: number[] };
  baseline: WindowStats & { seconds: number; eventLoopMaxMs: number };
  load: { requests: number; failed: number; clients: number };
  tools: ToolFigures[];
  /** Leader timeline and the tools' logs, for digging. */
  raw?: unknown;
}

const TITLES: Record<ToolName, string> = {
  etcdctl: '`etcdctl defrag --cluster`',
  defragd: 'defragd',
};

function range(values: number[], fmt: (x: number) => string): string {
  if (values.length === 0) return '–';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return fmt(lo) === fmt(hi) ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
}

const mib = (x: number): string => (x / MiB).toFixed(1);

function startState(s: Record<string, Sizes>): string {
  const v = Object.values(s);
  return `${range(v.map((x) => x.dbSize), mib)} / ${range(v.map((x) => x.dbSizeInUse), mib)} MiB`;
}

function failures(f: ToolFigures['failed']): string {
  if (f.count === 0) return '0';
  const parts = Object.entries(f.byError)
    .sort((a, b) => b[1] - a[1])
    .map(([e, n]) => `${n}× ${e.replace(/\|/g, '\\|')}`);
  return `**${f.count}**: ${parts.join('; ')}`;
}

export function markdownTable(r: BenchResult): string {
  const tools = r.tools;
  const names = r.cluster.members.map((m) => m.name);
  const rows: [string, (t: ToolFigures) => string][] = [
    ['Start: dbSize / in use per member', (t) => startState(t.sizesBefore)],
    ['Order of members (⚑ = was leader during its defrag)', (t) => t.members.map((m) => `${m.name}${m.ledWhileDefragmented ? ' ⚑' : ''}`).join(', ')],
    ...names.map((n): [string, (t: ToolFigures) => string] => [
      `Stall on ${n}'s clients / ${n}'s own defrag`,
      (t) => {
        const m = t.members.find((x) => x.name === n);
        return m ? `${fmtMs(m.ownMaxMs)} / ${fmtMs(m.defragMs)}` : 'not defragmented';
      },
    ]),
    [`Collateral stall: longest latency on the other members' clients (baseline p99 ${fmtMs(r.baseline.p99Ms)}, max ${fmtMs(r.baseline.maxMs)})`, (t) => fmtMs(t.collateral.maxMs)],
    ['Collateral p99: latency on the other members\' clients during a defrag', (t) => fmtMs(t.collateral.p99Ms)],
    ['Longest latency between defrags (leader moves, waits, start-up)', (t) => fmtMs(t.outside.maxMs)],
    [`Longest stall of the measuring process itself (event-loop delay; baseline ${fmtMs(r.baseline.eventLoopMaxMs)})`, (t) => fmtMs(t.eventLoopMaxMs)],
    ['Failed requests', (t) => failures(t.failed)],
    ['Leader defragmented while leading', (t) => {
      const led = t.members.filter((m) => m.ledWhileDefragmented).map((m) => m.name);
      return led.length > 0 ? `**yes** (${led.join(', ')})` : 'no';
    }],
    ['Wall time of the run', (t) => fmtMs(t.wallMs)],
    ['Sum of member defrag durations (server-side, etcd metric)', (t) => {
      const server = t.members.map((m) => m.serverDefragMs);
      const s = server.every((x) => x !== null) ? server.reduce<number>((a, b) => a + (b ?? 0), 0) : null;
      return `${fmtMs(t.defragSumMs)} (${fmtMs(s)})`;
    }],
    ['Orchestration overhead: wall − defrags − configured waits', (t) => `${fmtMs(t.overheadMs)}${t.tool === 'etcdctl' ? ' ¹' : ''}`],
    ['After: dbSize / dbSizeInUse per member (1.00 is the limit)', (t) => names.map((n) => (t.ratioAfter[n] ?? NaN).toFixed(2)).join(' / ')],
    ['Space reclaimed (all members)', (t) => fmtMiB(t.reclaimedBytes)],
    ['Latency p50 / p99 over the run', (t) => `${fmtMs(t.latency.p50Ms)} / ${fmtMs(t.latency.p99Ms)}`],
    ['Requests during the run', (t) => String(t.latency.requests)],
  ];
  const seen = new Map<ToolName, number>();
  const titles = tools.map((t) => {
    const n = (seen.get(t.tool) ?? 0) + 1;
    seen.set(t.tool, n);
    return tools.filter((x) => x.tool === t.tool).length > 1 ? `${TITLES[t.tool]} #${n}` : TITLES[t.tool];
  });
  const header = `| | ${titles.join(' | ')} |`;
  const sep = `|---|${tools.map(() => '---').join('|')}|`;
  const body = rows.map(([label, f]) => `| ${label} | ${tools.map(f).join(' | ')} |`);
  return [header, sep, ...body].join('\n');
}

export function notes(r: BenchResult): string {
  const c = r.config;
  const b = r.baseline;
  const lines = [
    `Load: ${r.load.clients} clients (${c.clientsPerMember} pinned to each member), each a closed loop of ${c.readPct}% linearizable reads / ${100 - c.readPct}% 128-byte puts, ${c.sleepMs} ms apart, ${fmtMs(c.deadlineMs)} deadline; it runs from before the first tool until after the last.`,
    `Baseline (${b.seconds} s of load before any defrag): p50 ${fmtMs(b.p50Ms)}, p99 ${fmtMs(b.p99Ms)}, max ${fmtMs(b.maxMs)}, ${b.requests} requests, ${b.failed} failed.`,
    `Data: ${c.mb} MiB written per tool (two passes of ${c.valueKiB} KiB values over ${c.mb / 2} MiB of keys, then a physical compaction); before the next tool the keys are deleted, compacted, the then near-empty members defragmented (outside the measured runs) and the same data written again, so every tool starts from the same files. The disk is flushed (sync) right before each tool.`,
    `Stall = longest latency of a request overlapping the interval; defrag duration = the Defragment call (defragd's report) or the time between etcdctl's "Finished defragmenting" lines, which includes etcdctl dialling each member.`,
    `Each tool runs in a process of its own (defragd: the library's defragment() in a child Node process, started before the measured window); the benchmark process runs only the load. When it is itself stalled (the event-loop delay row: 2 CPUs shared with 3 etcd members and the tool), every request in flight looks slower by as much, so collateral stalls near that figure are the machine's, not the cluster's.`,
    `Longest collateral request of each run: ${r.tools.map((t) => { const w = t.collateral.worst; return w ? `${t.tool}: ${w.member} ${w.op} ${fmtMs(t.collateral.maxMs)}, started ${fmtMs(w.startedBeforeEndMs)} before the end of ${w.during}'s defrag` : `${t.tool}: none`; }).join('; ')} (all three members share one disk and two CPUs here).`,
    `The disk is not the bottleneck here; the ${r.machine.cpus} CPUs are shared by 3 etcd members, the load, the tool and anything else running, so defrag durations vary from run to run (${range(r.tools.flatMap((t) => t.members.map((m) => m.defragMs)), fmtMs)} per member in this one; 1-minute load average before the benchmark started: ${r.machine.loadAvgAtStart.toFixed(1)}); read a member's stall against its own defrag in the same column. \`--tools defragd,etcdctl\` or \`--tools etcdctl,defragd,defragd,etcdctl\` check the order.`,
    '¹ etcdctl defragments the members back to back and the intervals are taken from its output, so its overhead is ≈0 by construction (what is left is process start-up and exit).',
    `Machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), Node ${r.machine.node}, etcd ${r.machine.etcd}, 3 members on loopback; benchmark run took ${r.totalSeconds.toFixed(0)} s.`,
  ];
  return lines.map((l) => `- ${l}`).join('\n');
}

export function markdown(r: BenchResult): string {
  return [`Command: \`${r.command}\` (${r.startedAt})`, '', markdownTable(r), '', notes(r), ''].join('\n');
}

/** Writes <outDir>/<timestamp>.json, latest.json, latest.md and, when given, <timestamp>-requests.json; returns their paths. */
export async function writeResults(r: BenchResult, outDir: string, requests?: object): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = JSON.stringify(r, null, 2) + '\n';
  const files = [path.join(outDir, `${stamp}.json`), path.join(outDir, 'latest.json'), path.join(outDir, 'latest.md')];
  await writeFile(files[0] as string, json);
  await writeFile(files[1] as string, json);
  await writeFile(files[2] as string, `# defragd benchmark\n\n${markdown(r)}`);
  if (requests) {
    const f = path.join(outDir, `${stamp}-requests.json`);
    await writeFile(f, JSON.stringify(requests) + '\n');
    files.push(f);
  }
  return files;
}
