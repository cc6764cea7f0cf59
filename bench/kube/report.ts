/** `make bench-kube`'s figures (from kube-load's reports) and its markdown tables. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LoadStats } from '../../dev/harness/kube.js';

const MiB = 1024 * 1024;

/** What one kube-load saw in one window. */
export interface LoadFigures {
  /** "kcm" (15 s / 10 s / 2 s) or "fast" (4 s / 3 s / 500 ms). */
  profile: string;
  leases: number;
  /** Controllers that lost their lease (OnStoppedLeading while not told to stop). */
  lost: number;
  handovers: number;
  readyzPolls: number;
  readyzFailures: number;
  readyzLongestMs: number;
  /** HTTP attempts that failed, by code: 5xx, 429 and "<error>" (no answer), every verb. */
  failedAttempts: Record<string, number>;
  /** client-go's own retries, by the code that caused them. */
  retries: Record<string, number>;
  /** The load's calls that failed after client-go's retries, by "call: reason". */
  failedCalls: Record<string, number>;
  relists: number;
  watchRestarts: number;
  /** Longest write (POST, PUT, PATCH, DELETE), client-go's retries included. */
  maxWriteMs: number;
  maxWriteVerb: string;
}

const WRITE_VERBS = ['POST', 'PUT', 'PATCH', 'DELETE'];
const failedCode = (code: string): boolean => code === '<error>' || code === '429' || /^5\d\d$/.test(code);

const add = (into: Record<string, number>, key: string, n: number): void => {
  if (n > 0) into[key] = (into[key] ?? 0) + n;
};

/** The figures of one kube-load report window. */
export function loadFigures(s: LoadStats, profile: string, leaseCount: number): LoadFigures {
  const failedAttempts: Record<string, number> = {};
  for (const byCode of Object.values(s.requests ?? {}))
    for (const [code, n] of Object.entries(byCode)) if (failedCode(code)) add(failedAttempts, code, n);
  const retries: Record<string, number> = {};
  for (const byCode of Object.values(s.retries ?? {})) for (const [code, n] of Object.entries(byCode)) add(retries, code, n);
  const failedCalls: Record<string, number> = {};
  for (const [op, o] of Object.entries(s.operations ?? {})) {
    if (o.failed === 0) continue;
    const by = Object.entries(o.failedBy ?? {});
    if (by.length === 0) add(failedCalls, op, o.failed);
    for (const [reason, n] of by) add(failedCalls, `${op}: ${reason}`, n);
  }
  let maxWriteMs = 0;
  let maxWriteVerb = '';
  for (const v of WRITE_VERBS) {
    const ms = s.maxLatencyMs?.[v] ?? 0;
    if (ms > maxWriteMs) [maxWriteMs, maxWriteVerb] = [ms, v];
  }
  const leases = Object.values(s.leases ?? {});
  const informers = Object.values(s.informers ?? {});
  return {
    profile,
    leases: leaseCount,
    lost: leases.reduce((n, l) => n + l.lost, 0),
    handovers: leases.reduce((n, l) => n + l.handovers, 0),
    readyzPolls: s.readyz.polls,
    readyzFailures: s.readyz.failures,
    readyzLongestMs: s.readyz.longestFailureMs,
    failedAttempts,
    retries,
    failedCalls,
    relists: informers.reduce((n, i) => n + i.relists, 0),
    watchRestarts: informers.reduce((n, i) => n + i.restarts, 0),
    maxWriteMs,
    maxWriteVerb,
  };
}

export interface MemberSize {
  name: string;
  dbSize: number;
  dbSizeInUse: number;
}

/** One tool on one preset: a fresh cluster, two apiservers, two loads (kcm on the first, fast on the second). */
export interface ToolResult {
  preset: string;
  tool: string;
  command: string;
  ok: boolean;
  /** Why it is not ok, or a note (e.g. "not built here"). */
  note: string | null;
  before: MemberSize[];
  after: MemberSize[];
  /** Members in the order the tool defragmented them. */
  order: { name: string; led: boolean; ms: number; ok: boolean; note: string | null }[];
  serverDefragSec: number | null;
  wallMs: number;
  /** Leader changes seen (the largest over the members), and those the tool asked for. */
  elections: number | null;
  leaderMoves: number;
  compactedBefore: boolean;
  baseline: LoadFigures[];
  run: LoadFigures[];
}

/** One side of the side-by-side part. */
export interface SideResult {
  name: 'cron' | 'defragd';
  command: string;
  figures: LoadFigures;
  /** Member defrags that finished, and their server-side seconds (etcd's histogram). */
  defrags: number;
  defragSec: number;
  /** cron: its runs; defragd: its runs that defragmented something (its history). */
  runs: number;
  peakDbSize: number;
  endDbSize: number;
  endInUse: number;
  /** Leader changes seen (the largest over the members); defragd's MoveLeader calls are among them. */
  elections: number | null;
}

export interface KubeBenchResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: { cpus: number; cpuModel: string; node: string; etcd: string; kube: string; loadAvgAtStart: number };
  settings: Record<string, unknown>;
  presets: { name: string; liveMiB: number; about: string }[];
  tools: ToolResult[];
  sideBySide: { minutes: number; sides: SideResult[]; settings: Record<string, unknown> } | null;
  totalSeconds: number;
}

const fmtS = (ms: number): string =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
const counts = (r: Record<string, number>): string => {
  const e = Object.entries(r).sort((a, b) => b[1] - a[1]);
  const total = e.reduce((n, [, v]) => n + v, 0);
  return total === 0 ? '0' : `**${total}**: ${e.map(([k, v]) => `${v}× ${k}`).join(', ')}`;
};
const merge = (rs: Record<string, number>[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r)) add(out, k, v);
  return out;
};
const sizes = (m: MemberSize[]): string => {
  if (m.length === 0) return '–';
  const range = (xs: number[]): string => {
    const lo = (Math.min(...xs) / MiB).toFixed(0);
    const hi = (Math.max(...xs) / MiB).toFixed(0);
    return lo === hi ? lo : `${lo}–${hi}`;
  };
  return `${range(m.map((x) => x.dbSize))} / ${range(m.map((x) => x.dbSizeInUse))} MiB`;
};
const byProfile = (fs: LoadFigures[], p: string): LoadFigures | undefined => fs.find((f) => f.profile === p);
const bold = (n: number, s = String(n)): string => (n > 0 ? `**${s}**` : s);

const LABELS: Record<string, string> = {
  etcdctl: '`etcdctl defrag --cluster`',
  'etcd-defrag': 'etcd-defrag',
  'etcd-defrag-move-leader': 'etcd-defrag --move-leader',
  defragd: 'defragd',
  'one-follower': 'floor: one follower, by hand',
};
/** A tool's column heading. */
export const toolLabel = (tool: string): string => LABELS[tool] ?? tool;

/** The one-shot table of one preset: one column per tool. */
export function presetTable(r: KubeBenchResult, preset: string): string {
  const runs = r.tools.filter((t) => t.preset === preset);
  if (runs.length === 0) return '';
  const row = (label: string, cell: (t: ToolResult) => string): string => `| ${label} | ${runs.map(cell).join(' | ')} |`;
  const lost = (p: string) => (t: ToolResult) => {
    const f = byProfile(t.run, p);
    return f ? `${bold(f.lost)} of ${f.leases} (${f.handovers} hand-overs)` : '–';
  };
  const p = r.presets.find((x) => x.name === preset);
  const lines = [
    `#### ${preset}: ${p?.about ?? ''}`,
    '',
    `| | ${runs.map((t) => toolLabel(t.tool)).join(' | ')} |`,
    `|---|${runs.map(() => '---').join('|')}|`,
    row('Start: dbSize / in use per member', (t) => sizes(t.before)),
    row('Compacted before the first defrag', (t) => (t.compactedBefore ? '**yes** (to the current revision)' : 'no')),
    row("Members in order, each one's defrag = its stall (⚑ = was leader during it)", (t) =>
      t.order.length === 0
        ? (t.note ?? '–')
        : t.order.map((o) => `${o.name}${o.led ? ' ⚑' : ''} ${fmtS(o.ms)}${o.ok ? '' : ' (failed)'}`).join(', '),
    ),
    row('Leader elections: seen = asked for by the tool (MoveLeader) + other', (t) =>
      t.elections === null ? '–' : `${t.elections} = ${t.leaderMoves} + ${bold(Math.max(0, t.elections - t.leaderMoves))}`,
    ),
    row('Controllers that lost leadership, kube-controller-manager timings (lease 15 s, renew 10 s, retry 2 s)', lost('kcm')),
    row('Controllers that lost leadership, fast timings (4 s, 3 s, 500 ms)', lost('fast')),
    row('apiserver /readyz: failed polls (every 100 ms, both apiservers) / longest failure', (t) => {
      const n = t.run.reduce((s, f) => s + f.readyzFailures, 0);
      const longest = Math.max(0, ...t.run.map((f) => f.readyzLongestMs));
      return `${bold(n)} / ${n > 0 ? fmtS(longest) : '–'}`;
    }),
    row('HTTP requests that failed, by code (every attempt, both loads)', (t) => counts(merge(t.run.map((f) => f.failedAttempts)))),
    row('Requests client-go retried by itself, by the code that made it', (t) => counts(merge(t.run.map((f) => f.retries)))),
    row("The loads' calls that failed after client-go's retries (goal 0)", (t) => counts(merge(t.run.map((f) => f.failedCalls)))),
    row('Informer re-lists / watch restarts', (t) => {
      const rel = t.run.reduce((s, f) => s + f.relists, 0);
      return `${bold(rel)} / ${t.run.reduce((s, f) => s + f.watchRestarts, 0)}`;
    }),
    row('Longest write (client-go retries included): kcm load / fast load', (t) =>
      ['kcm', 'fast']
        .map((pr) => {
          const f = byProfile(t.run, pr);
          return f ? `${fmtS(f.maxWriteMs)} ${f.maxWriteVerb}` : '–';
        })
        .join(' / '),
    ),
    row('Longest write before the tool (baseline, same loads)', (t) =>
      ['kcm', 'fast']
        .map((pr) => {
          const f = byProfile(t.baseline, pr);
          return f ? fmtS(f.maxWriteMs) : '–';
        })
        .join(' / '),
    ),
    row(
      'Wall time of the run / Σ server-side defrag',
      (t) => `${fmtS(t.wallMs)} / ${t.serverDefragSec === null ? '–' : fmtS(t.serverDefragSec * 1000)}`,
    ),
    row('After: dbSize / in use per member', (t) => sizes(t.after)),
  ];
  const d = runs.find((t) => t.tool === 'defragd');
  if (d) {
    const kcm = byProfile(d.run, 'kcm');
    const calls = Object.values(merge(d.run.map((f) => f.failedCalls))).reduce((a, b) => a + b, 0);
    const met = kcm !== undefined && kcm.lost === 0 && calls === 0;
    lines.push(
      '',
      `Goal for defragd (kube-controller-manager timings: 0 controllers lose leadership, 0 calls fail after client-go's retries): **${met ? 'met' : 'not met'}** (${kcm?.lost ?? '?'} lost, ${calls} failed).`,
    );
  }
  return lines.join('\n');
}

/** The side-by-side table: defragd serve against an etcdctl cron. */
export function sideBySideTable(r: KubeBenchResult): string {
  const s = r.sideBySide;
  if (!s) return '';
  const row = (label: string, cell: (x: SideResult) => string): string => `| ${label} | ${s.sides.map(cell).join(' | ')} |`;
  return [
    `#### ${s.minutes} minutes of maintenance: \`defragd serve\` against an \`etcdctl defrag --cluster\` cron`,
    '',
    `| | ${s.sides.map((x) => (x.name === 'cron' ? 'cron' : 'defragd serve (auto)')).join(' | ')} |`,
    '|---|---|---|',
    row('What ran', (x) => `\`${x.command}\``),
    row('Runs / member defrags / Σ server-side defrag', (x) => `${x.runs} / ${x.defrags} / ${fmtS(x.defragSec * 1000)}`),
    row("Leader elections seen (defragd's MoveLeader calls among them)", (x) => (x.elections === null ? '–' : String(x.elections))),
    row(
      'Controllers that lost leadership (kube-controller-manager timings)',
      (x) => `${bold(x.figures.lost)} of ${x.figures.leases} (${x.figures.handovers} hand-overs)`,
    ),
    row(
      'apiserver /readyz: failed polls / longest failure',
      (x) => `${bold(x.figures.readyzFailures)} / ${x.figures.readyzFailures > 0 ? fmtS(x.figures.readyzLongestMs) : '–'}`,
    ),
    row('HTTP requests that failed, by code', (x) => counts(x.figures.failedAttempts)),
    row('Requests client-go retried by itself', (x) => counts(x.figures.retries)),
    row("The load's calls that failed after client-go's retries", (x) => counts(x.figures.failedCalls)),
    row('Informer re-lists / watch restarts', (x) => `${bold(x.figures.relists)} / ${x.figures.watchRestarts}`),
    row('Longest write', (x) => `${fmtS(x.figures.maxWriteMs)} ${x.figures.maxWriteVerb}`),
    row(
      'Peak dbSize (any member) / at the end: dbSize / in use (largest member)',
      (x) => `${(x.peakDbSize / MiB).toFixed(0)} MiB / ${(x.endDbSize / MiB).toFixed(0)} / ${(x.endInUse / MiB).toFixed(0)} MiB`,
    ),
  ].join('\n');
}

export function markdown(r: KubeBenchResult): string {
  const lines = [
    `Command: \`${r.command}\` (${r.startedAt}); etcd ${r.machine.etcd}, kube-apiserver ${r.machine.kube}`,
    '',
    ...r.presets.flatMap((p) => [presetTable(r, p.name), '']),
    ...(r.sideBySide ? [sideBySideTable(r), ''] : []),
    ...r.tools.filter((t, i, all) => all.findIndex((x) => x.tool === t.tool) === i).map((t) => `- ${toolLabel(t.tool)}: \`${t.command}\``),
    `- Each tool ran on a fresh 3-member cluster (etcd ${r.machine.etcd} with etcd's default raft timings, \`--snapshot-count 10000\`, an 8 GiB quota), filled with the preset's data (64 KiB values written twice over the same keys, then compacted physically) before two kube-apiservers started on it (\`--etcd-servers\` listing all three members, kube-apiserver's default \`--etcd-compaction-interval\` of 5m). So no tool's order or leftovers touch another's.`,
    `- Load (kube-load, client-go ${r.machine.kube}): on the first apiserver 3 leader-elected controllers with kube-controller-manager's timings, on the second 3 with fast timings, 2 candidates per Lease; informers on ConfigMaps, Events and Leases; ConfigMap writers (64 KiB, create / update ×5 / delete) and Event writers; each polls its apiserver's \`/readyz?verbose\` every 100 ms. A window runs from the tool's start to ${String(r.settings.settleSec)} s after its end (a lost lease shows within its renew deadline); the baseline is ${String(r.settings.baselineSec)} s of the same load just before.`,
    "- A member stalls every request it serves for its whole defrag, so its defrag duration is its stall. kube-apiserver's etcd client sends each request to the next member in turn (gRPC round robin) and has no health checking, so it keeps sending a third of its requests to the member being defragmented, whichever tool runs.",
    `- Machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), Node ${r.machine.node}, etcd ${r.machine.etcd}, kube-apiserver ${r.machine.kube}, everything on loopback; 1-minute load average at the start: ${r.machine.loadAvgAtStart.toFixed(1)}; the benchmark took ${Math.round(r.totalSeconds / 60)} min.`,
  ];
  if (r.sideBySide) {
    lines.push(
      `- Side by side: two fresh clusters with one kube-apiserver each (\`--etcd-compaction-interval ${String(r.sideBySide.settings.compactionInterval)}\`, so fragmentation comes from kube-apiserver's own compactions of the ConfigMap churn) and the same load with kube-controller-manager's timings, started together, for ${r.sideBySide.minutes} minutes of maintenance.`,
    );
  }
  return lines.join('\n');
}

/** Writes kube-<time>.json (figures and raw data), kube-latest.json and kube-latest.md; returns their paths. */
export async function writeResults(r: KubeBenchResult, raw: unknown, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const files = [path.join(dir, `kube-${stamp}.json`), path.join(dir, 'kube-latest.json'), path.join(dir, 'kube-latest.md')];
  await writeFile(files[0] as string, `${JSON.stringify({ result: r, raw }, null, 2)}\n`);
  await writeFile(files[1] as string, `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(files[2] as string, `# make bench-kube\n\n${markdown(r)}\n`);
  return files;
}
