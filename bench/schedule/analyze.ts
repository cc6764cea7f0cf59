/**
 * From what `make bench-schedule` recorded on one cluster to the figures of
 * its table. Pure: records in, numbers out.
 *
 * Client stall-seconds: for each member, the wall time during which at least
 * one of the probe requests sent through it (reads, writes, keep-alives) had
 * been waiting longer than the threshold (100 ms), i.e. the length of the
 * union of [start + threshold, end] over that member's slower requests;
 * summed over the members. A member blocked for 2 s by its own defrag counts
 * about 1.9 s whatever the number of clients, and a leader defrag that holds
 * up keep-alives sent through the followers counts on each follower too.
 *
 * The machine is shared, so slow requests happen without any defrag too (the
 * warm-up measures that floor). The goal is judged on the stall-seconds that
 * fall inside the maintenance runs (etcdctl's process from start to exit,
 * defragd's runs from their start to their finish as its history records
 * them), which is what the maintenance costs; the whole-run figure, floor
 * included, is reported beside it.
 */
import type { ProbeKind, ProbeRecord } from './probe.js';
import type { AlarmSample, MemberSample } from './sampler.js';

export const GiB = 1024 ** 3;

export interface ClusterFigures {
  /** Member defragmentations counted by etcd (Δ etcd_disk_backend_defrag_duration_seconds_count, all members). */
  memberDefrags: number;
  /** ... of which on a member that led before and after (defragmented while leading). */
  leaderDefrags: number;
  /** Σ of the server-side defrag durations (Δ ..._sum, all members), seconds. */
  defragSeconds: number;
  /** Σ over members of every drop of dbSize between two samples. */
  reclaimedBytes: number;
  /** Mean of drop / dbSize before it: how fragmented members were when defragmented. */
  meanReclaimedShare: number | null;
  /** The largest dbSize − in use seen on any member: the most one member defrag could have reclaimed. */
  maxFreeBytes: number;
  /** Client stall-seconds over the whole maintenance period (machine noise included). */
  clientStallSec: number;
  /** ... of which inside the maintenance runs. */
  runStallSec: number;
  /** Seconds covered by the maintenance runs. */
  runSeconds: number;
  keepAliveStallSec: number;
  longestKeepAliveMs: number;
  /** Keep-alives that took longer than 1 s. */
  keepAlivesOver1s: number;
  longestRequestMs: number;
  requests: number;
  failed: Record<ProbeKind, number>;
  /** Error message → count, over every probe request. */
  errors: Record<string, number>;
  peakDbSize: number;
  peakQuotaUsage: number;
  meanQuotaUsage: number;
  quota: number;
  /** Members that raised NOSPACE at some point, and for how long any NOSPACE alarm was seen. */
  nospaceMembers: string[];
  nospaceSec: number;
  leaderChanges: number;
  /** runStallSec per GiB reclaimed (the goal's figure); null when nothing was reclaimed. */
  stallSecPerGiB: number | null;
  /** clientStallSec per GiB reclaimed. */
  totalStallSecPerGiB: number | null;
}

/** Length of the union of intervals (ms). */
export function unionMs(intervals: readonly (readonly [number, number])[]): number {
  const sorted = [...intervals].filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const [a, b] of sorted) {
    if (a > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = a;
      curEnd = b;
    } else curEnd = Math.max(curEnd, b);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

/**
 * Σ over members of the time any of the member's (selected) requests waited
 * beyond thresholdMs, in seconds; only the parts inside `within` when given.
 */
export function stallSeconds(
  records: readonly ProbeRecord[],
  thresholdMs: number,
  kinds?: readonly ProbeKind[],
  within?: readonly { start: number; end: number }[],
): number {
  const byMember = new Map<string, [number, number][]>();
  for (const r of records) {
    if (kinds && !kinds.includes(r.kind)) continue;
    if (r.end - r.start <= thresholdMs) continue;
    const list = byMember.get(r.member) ?? [];
    const a = r.start + thresholdMs;
    if (within === undefined) list.push([a, r.end]);
    else
      for (const w of within) if (Math.min(r.end, w.end) > Math.max(a, w.start)) list.push([Math.max(a, w.start), Math.min(r.end, w.end)]);
    byMember.set(r.member, list);
  }
  let ms = 0;
  for (const list of byMember.values()) ms += unionMs(list);
  return ms / 1000;
}

function byMember<T extends { member: string; t: number }>(samples: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const s of samples) out.set(s.member, [...(out.get(s.member) ?? []), s]);
  for (const list of out.values()) list.sort((a, b) => a.t - b.t);
  return out;
}

export function analyzeCluster(
  records: readonly ProbeRecord[],
  samples: readonly MemberSample[],
  alarms: readonly AlarmSample[],
  window: { start: number; end: number },
  runs: readonly { start: number; end: number }[],
  thresholdMs: number,
): ClusterFigures {
  const inWindow = records.filter((r) => r.start >= window.start && r.start < window.end);
  const kept = samples.filter((s) => s.t >= window.start && s.t <= window.end);
  const members = byMember(kept);
  let memberDefrags = 0;
  let leaderDefrags = 0;
  let defragSeconds = 0;
  let reclaimedBytes = 0;
  let leaderChanges = 0;
  const shares: number[] = [];
  for (const list of members.values()) {
    const first = list[0];
    const last = list[list.length - 1];
    if (!first || !last) continue;
    memberDefrags += last.defrags - first.defrags;
    defragSeconds += last.defragSeconds - first.defragSeconds;
    leaderChanges = Math.max(leaderChanges, last.leaderChanges - first.leaderChanges);
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1] as MemberSample;
      const b = list[i] as MemberSample;
      if (b.dbSize < a.dbSize) {
        reclaimedBytes += a.dbSize - b.dbSize;
        shares.push((a.dbSize - b.dbSize) / a.dbSize);
      }
      if (b.defrags > a.defrags && a.isLeader && b.isLeader) leaderDefrags += b.defrags - a.defrags;
    }
  }
  const usage = kept.filter((s) => s.quota > 0).map((s) => s.dbSize / s.quota);
  const keepAlives = inWindow.filter((r) => r.kind === 'keepalive');
  const failed: Record<ProbeKind, number> = { get: 0, put: 0, keepalive: 0 };
  const errors: Record<string, number> = {};
  for (const r of inWindow) {
    if (r.ok) continue;
    failed[r.kind]++;
    const key = r.error ?? 'unknown';
    errors[key] = (errors[key] ?? 0) + 1;
  }
  const nospaceMembers = new Set<string>();
  let nospaceMs = 0;
  const alarmList = alarms.filter((a) => a.t >= window.start && a.t <= window.end).sort((a, b) => a.t - b.t);
  for (let i = 0; i < alarmList.length; i++) {
    const a = alarmList[i] as AlarmSample;
    for (const m of a.nospace ?? []) nospaceMembers.add(m);
    const next = alarmList[i + 1];
    if (next && (a.nospace?.length ?? 0) > 0) nospaceMs += next.t - a.t;
  }
  const clientStallSec = stallSeconds(inWindow, thresholdMs);
  const runStallSec = stallSeconds(inWindow, thresholdMs, undefined, runs);
  const perGiB = (x: number): number | null => (reclaimedBytes > 0 ? x / (reclaimedBytes / GiB) : null);
  return {
    memberDefrags,
    leaderDefrags,
    defragSeconds,
    reclaimedBytes,
    meanReclaimedShare: shares.length ? shares.reduce((x, y) => x + y, 0) / shares.length : null,
    maxFreeBytes: kept.reduce((m, s) => (Number.isFinite(s.dbSizeInUse) ? Math.max(m, s.dbSize - s.dbSizeInUse) : m), 0),
    clientStallSec,
    runStallSec,
    runSeconds: unionMs(runs.map((r) => [r.start, r.end] as const)) / 1000,
    keepAliveStallSec: stallSeconds(inWindow, thresholdMs, ['keepalive']),
    longestKeepAliveMs: keepAlives.reduce((m, r) => Math.max(m, r.end - r.start), 0),
    keepAlivesOver1s: keepAlives.filter((r) => r.end - r.start > 1000).length,
    longestRequestMs: inWindow.reduce((m, r) => Math.max(m, r.end - r.start), 0),
    requests: inWindow.length,
    failed,
    errors,
    peakDbSize: kept.reduce((m, s) => Math.max(m, s.dbSize), 0),
    peakQuotaUsage: usage.reduce((m, u) => Math.max(m, u), 0),
    meanQuotaUsage: usage.length ? usage.reduce((a, b) => a + b, 0) / usage.length : 0,
    quota: kept.find((s) => s.quota > 0)?.quota ?? NaN,
    nospaceMembers: [...nospaceMembers].sort(),
    nospaceSec: nospaceMs / 1000,
    leaderChanges,
    stallSecPerGiB: perGiB(runStallSec),
    totalStallSecPerGiB: perGiB(clientStallSec),
  };
}

export interface Verdict {
  pass: boolean;
  /** Cron's stall-seconds per GiB ÷ defragd's (goal ≥ 3); null when either reclaimed nothing. */
  ratio: number | null;
  checks: { what: string; ok: boolean; detail: string }[];
}

/** Peaks within this fraction of each other count as equal (bbolt's high-water mark moves in steps). */
export const PEAK_TOLERANCE = 0.01;

/** The goal of issue 11 §4: ≥ 3× fewer stall-seconds per GiB reclaimed, a peak dbSize no higher, no NOSPACE. */
export function verdict(cron: ClusterFigures, defragd: ClusterFigures, nospaceRefusals: { defragd: number }): Verdict {
  const ratio =
    cron.stallSecPerGiB !== null && defragd.stallSecPerGiB !== null && defragd.stallSecPerGiB > 0
      ? cron.stallSecPerGiB / defragd.stallSecPerGiB
      : null;
  const checks = [
    {
      what: 'stall-seconds per GiB reclaimed ≥ 3× fewer',
      ok: ratio !== null && ratio >= 3,
      detail: ratio === null ? 'not measurable (nothing reclaimed)' : `${ratio.toFixed(2)}×`,
    },
    {
      what: `peak dbSize equal (within ${PEAK_TOLERANCE * 100} %) or lower`,
      ok: defragd.peakDbSize <= cron.peakDbSize * (1 + PEAK_TOLERANCE),
      detail: `${(defragd.peakDbSize / 2 ** 20).toFixed(1)} vs ${(cron.peakDbSize / 2 ** 20).toFixed(1)} MiB`,
    },
    {
      what: 'no NOSPACE',
      ok: defragd.nospaceMembers.length === 0 && nospaceRefusals.defragd === 0,
      detail: `${defragd.nospaceMembers.length} members alarmed, ${nospaceRefusals.defragd} writes refused`,
    },
  ];
  return { pass: checks.every((c) => c.ok), ratio, checks };
}
