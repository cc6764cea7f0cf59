/** The markdown table of `make bench-schedule` and the results files. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClusterFigures, Verdict } from './analyze.js';

const MiB = 1024 * 1024;

export interface ScheduleResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  command: string;
  settings: {
    minutes: number;
    warmupSec: number;
    quotaBytes: number;
    cronEveryMin: number;
    cronCommand: string;
    rule: string;
    autoInterval: string;
    autoCooldown: string;
    stallThresholdMs: number;
    churn: { opsPerSec: number; slots: number; compactEverySec: number; seed: number };
    probe: { pauseMs: number; keepAliveEveryMs: number; leaseTtlSec: number; deadlineMs: number };
  };
  machine: { cpus: number; cpuModel: string; node: string; etcd: string; loadAvgAtStart: number; loadAvgAtEnd: number };
  /** Noise floor: stall-seconds per minute per cluster during the warm-up (load, no maintenance). */
  warmup: { cron: number; defragd: number };
  cron: ClusterFigures & { runs: number; runsFailed: number; skipped: number; churn: ChurnSummary };
  defragd: ClusterFigures & { runs: Record<string, number>; churn: ChurnSummary; daemonExit: number };
  verdict: Verdict;
  totalSeconds: number;
}

export interface ChurnSummary {
  puts: number;
  deletes: number;
  mibWritten: number;
  failed: number;
  nospaceRefusals: number;
  compactions: number;
  maxLagMs: number;
}

const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
const sec = (s: number): string => `${s.toFixed(2)} s`;
const ms = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${Math.round(x)} ms`);

export function markdown(r: ScheduleResult): string {
  const c = r.cron;
  const d = r.defragd;
  const s = r.settings;
  // A "|" inside a cell ends it, even in a code span (the rule's ||): GitHub's tables want it escaped.
  const cell = (x: string): string => x.replace(/\|/g, '\\|');
  const row = (label: string, a: string, b: string): string => `| ${label} | ${cell(a)} | ${cell(b)} |`;
  const failed = (f: ClusterFigures): string =>
    `${f.failed.get + f.failed.put + f.failed.keepalive} (reads ${f.failed.get}, writes ${f.failed.put}, keep-alives ${f.failed.keepalive})`;
  const runsOf = (runs: Record<string, number>): string =>
    Object.entries(runs)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ') || '0';
  const nospace = (f: ClusterFigures, refused: number): string =>
    f.nospaceMembers.length === 0 && refused === 0
      ? '0'
      : `**${f.nospaceMembers.length} members (${f.nospaceMembers.join(', ')}), alarm active ${sec(f.nospaceSec)}, ${refused} writes refused**`;
  const spg = (f: ClusterFigures): string =>
    f.stallSecPerGiB === null ? '– (nothing reclaimed)' : `**${f.stallSecPerGiB.toFixed(2)} s/GiB**`;
  const perDefrag = (f: ClusterFigures): string =>
    f.memberDefrags === 0
      ? '–'
      : `${mib(f.reclaimedBytes / f.memberDefrags)} / ${f.meanReclaimedShare === null ? '–' : pct(f.meanReclaimedShare)} / ${sec(f.runStallSec / f.memberDefrags)}`;
  // Absent from results written before it was measured (--rerender of an older run).
  const mostFree = (f: ClusterFigures): string => (f.maxFreeBytes === undefined ? '–' : mib(f.maxFreeBytes));
  const perGiB = (x: number | null): string => (x === null ? '–' : `${x.toFixed(1)} s/GiB`);
  const lines = [
    `Command: \`${r.command}\` (${r.startedAt})`,
    '',
    `| | cron: \`etcdctl defrag --cluster\` every ${s.cronEveryMin} min | \`defragd serve\`, auto |`,
    '|---|---|---|',
    row('Maintenance', `\`${s.cronCommand}\``, `rule \`${s.rule}\`, every ${s.autoInterval}, cooldown ${s.autoCooldown}`),
    row('Runs', `${c.runs} (${c.runsFailed} failed, ${c.skipped} skipped: previous still running)`, runsOf(d.runs)),
    row(
      'Member defrags (etcd counter) / of the leader while leading',
      `${c.memberDefrags} / ${c.leaderDefrags}`,
      `${d.memberDefrags} / ${d.leaderDefrags}`,
    ),
    row('Σ member defrag time (etcd metric)', sec(c.defragSeconds), sec(d.defragSeconds)),
    row('Bytes reclaimed (Σ dbSize drops)', mib(c.reclaimedBytes), mib(d.reclaimedBytes)),
    row('Per member defrag: reclaimed / share of its dbSize / stall-seconds inside the runs', perDefrag(c), perDefrag(d)),
    row('The most one member defrag could reclaim (largest dbSize − in use seen on a member)', mostFree(c), mostFree(d)),
    row('Time inside maintenance runs', sec(c.runSeconds), sec(d.runSeconds)),
    row(`Client stall-seconds inside the runs (> ${s.stallThresholdMs} ms, Σ over members)`, sec(c.runStallSec), sec(d.runStallSec)),
    row('**Stall-seconds per GiB reclaimed** (inside the runs)', spg(c), spg(d)),
    row(
      'Client stall-seconds over the whole period, machine noise included / per GiB',
      `${sec(c.clientStallSec)} / ${perGiB(c.totalStallSecPerGiB)}`,
      `${sec(d.clientStallSec)} / ${perGiB(d.totalStallSecPerGiB)}`,
    ),
    row(
      'Lease keep-alives: stall-seconds / longest / > 1 s',
      `${sec(c.keepAliveStallSec)} / ${ms(c.longestKeepAliveMs)} / ${c.keepAlivesOver1s}`,
      `${sec(d.keepAliveStallSec)} / ${ms(d.longestKeepAliveMs)} / ${d.keepAlivesOver1s}`,
    ),
    row('Longest probe request', ms(c.longestRequestMs), ms(d.longestRequestMs)),
    row('Failed probe requests', failed(c), failed(d)),
    row('Peak dbSize / quota', `${mib(c.peakDbSize)} / ${pct(c.peakQuotaUsage)}`, `${mib(d.peakDbSize)} / ${pct(d.peakQuotaUsage)}`),
    row('Mean dbSize / quota', pct(c.meanQuotaUsage), pct(d.meanQuotaUsage)),
    row('NOSPACE alarms', nospace(c, c.churn.nospaceRefusals), nospace(d, d.churn.nospaceRefusals)),
    row('Leader changes', String(c.leaderChanges), String(d.leaderChanges)),
    row(
      'Workload writes failed / fell behind by at most',
      `${c.churn.failed} / ${ms(c.churn.maxLagMs)}`,
      `${d.churn.failed} / ${ms(d.churn.maxLagMs)}`,
    ),
    '',
    `**Goal** (defragd ≥ 3× fewer stall-seconds per GiB reclaimed at an equal or lower peak dbSize, 0 NOSPACE): **${r.verdict.pass ? 'PASS' : 'FAIL'}**: ${r.verdict.checks.map((x) => `${x.what}: ${x.ok ? 'yes' : 'no'} (${x.detail})`).join('; ')}.`,
    '',
    `- Two identical 3-member etcd ${r.machine.etcd} clusters (quota ${mib(s.quotaBytes)}) run at the same time on this machine for ${s.minutes} min of maintenance after ${s.warmupSec} s of load only (the cron's first start half an interval in); each gets the same workload from the same seed: ${s.churn.opsPerSec} writes/s (create, overwrite or delete over ${s.churn.slots} keys of 0.5–128 KiB, ≈15 KiB mean; ${(c.churn.mibWritten).toFixed(0)} / ${(d.churn.mibWritten).toFixed(0)} MiB written), spread over the members, and a compaction every ${s.churn.compactEverySec} s to the revision of ${s.churn.compactEverySec} s before (kube-apiserver: every 5 min, keeping one interval).`,
    `- Probes through each member: one client alternating linearizable reads and 128-byte writes ${s.probe.pauseMs} ms apart, one lease (TTL ${s.probe.leaseTtlSec} s) kept alive every ${s.probe.keepAliveEveryMs} ms; deadline ${ms(s.probe.deadlineMs)}. Stall-seconds = for each member, the wall time during which at least one of its probe requests had been waiting more than ${s.stallThresholdMs} ms (union of [start + ${s.stallThresholdMs} ms, end]), summed over the members; the goal counts the part inside the maintenance runs (etcdctl's process from start to exit, defragd's runs from start to finish per its history). Noise floor during the warm-up (no maintenance): ${r.warmup.cron.toFixed(2)} / ${r.warmup.defragd.toFixed(2)} stall-seconds per minute.`,
    `- Sizes, quota, the defrag counter and leadership from each member's /metrics every second; reclaimed = Σ of every dbSize drop between two samples. Machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), Node ${r.machine.node}, shared with other work (1-min load average ${r.machine.loadAvgAtStart.toFixed(1)} at the start, ${r.machine.loadAvgAtEnd.toFixed(1)} at the end); the run took ${Math.round(r.totalSeconds)} s.`,
  ];
  return lines.join('\n');
}

/** Re-renders schedule-latest.md from schedule-latest.json (the same run's numbers), e.g. after a change of layout. */
export async function rerender(outDir: string): Promise<string> {
  const r = JSON.parse(await readFile(path.join(outDir, 'schedule-latest.json'), 'utf8')) as ScheduleResult;
  const latest = path.join(outDir, 'schedule-latest.md');
  await writeFile(latest, `# make bench-schedule\n\n${markdown(r)}\n`);
  return latest;
}

export async function writeResults(r: ScheduleResult, raw: unknown, outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const stamp = r.startedAt.replace(/[:.]/g, '-');
  const json = path.join(outDir, `schedule-${stamp}.json`);
  const rawFile = path.join(outDir, `schedule-${stamp}.raw.json`);
  const latest = path.join(outDir, 'schedule-latest.md');
  await writeFile(json, `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(rawFile, JSON.stringify(raw));
  await writeFile(path.join(outDir, 'schedule-latest.json'), `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(latest, `# make bench-schedule\n\n${markdown(r)}\n`);
  return [json, rawFile, latest];
}
