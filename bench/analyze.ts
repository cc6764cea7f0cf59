/**
 * Turns the raw recordings (every load request, every Status sample, each
 * tool's per-member defrag intervals) into the figures of the table.
 *
 * A request belongs to a tool's run when it overlaps the run's window. Within
 * it, a request is
 * - "own" when it overlaps the defrag interval of the member it was sent to
 *   (etcd blocks a member while it defragments: the floor);
 * - "collateral" when it does not, but overlaps another member's interval;
 * - "outside" when it overlaps no interval (leader moves, catch-up waits,
 *   the tool's own start-up).
 */
import type { ToolName } from './config.js';
import type { GoFigures } from './goclients.js';
import { ledDuring, type LeaderSample } from './leader.js';
import { goClientRetries, type RequestRecord } from './load.js';
import type { BenchMember, MemberInterval, ToolRun } from './tools.js';
import { max, percentile } from './util.js';

export interface Sizes {
  dbSize: number;
  dbSizeInUse: number;
}

/** What the runner measured around one tool's run. */
export interface ToolContext {
  run: ToolRun;
  sizesBefore: Record<string, Sizes>;
  sizesAfter: Record<string, Sizes>;
  /** Server-side defrag seconds during the run, from each member's etcd_disk_backend_defrag_duration_seconds. */
  serverDefragMs: Record<string, number | null>;
  /** Longest event-loop delay of the benchmark process (which runs the load) during the run. */
  eventLoopMaxMs: number | null;
  /** The machine's 1-minute load average right before the run. */
  loadAvgBefore: number;
  /** Per member, how many leader changes it saw from before the run to after its settle time (etcd_server_leader_changes_seen_total). */
  leaderChanges: Record<string, number | null>;
  /** The Go clients (go/clients) from the run's start to the end of its settle time; null when none ran. */
  go: GoFigures | null;
}

/** Where defragd's run spent its time (section 2 of issue 11), from its report and its process's probe. */
export interface Breakdown {
  startupMs: number | null;
  observeMs: number | null;
  lockMs: number | null;
  /** From the lock taken to the first member's turn (plan, run-started). */
  toFirstTurnMs: number | null;
  members: { name: string; gapBeforeMs: number; checksMs: number; leaderMoveMs: number; defragmentMs: number; catchUpMs: number | null }[];
  /** Last catch-up to the report (the last record write, the final observation and disarm). */
  endMs: number | null;
  finishMs: number | null;
  releaseMs: number | null;
  /** Report finished + lock released to process exit (printing the report, closing connections). */
  exitMs: number | null;
  /** Wall − start-up − Σ Defragment − Σ leader moves − configured waits. */
  overheadMs: number | null;
  /** The goal for it: 5 % of Σ Defragment + 300 ms. */
  goalMs: number;
  leaderMovesMs: number;
}

export interface MemberFigures {
  name: string;
  /** Position in the tool's order (1-based). */
  turn: number;
  defragMs: number;
  serverDefragMs: number | null;
  /** Longest latency of requests to this member that overlapped its defrag. */
  ownMaxMs: number | null;
  ownRequests: number;
  /** Requests on the other members' clients that overlapped this member's defrag. */
  others: { p99Ms: number | null; maxMs: number | null; requests: number };
  ledWhileDefragmented: boolean;
  ok: boolean;
}

export interface ToolFigures {
  tool: ToolName;
  command: string;
  ok: boolean;
  wallMs: number;
  defragSumMs: number;
  waitsMs: number;
  overheadMs: number;
  members: MemberFigures[];
  collateral: {
    maxMs: number | null;
    p99Ms: number | null;
    requests: number;
    /** Where the longest one fell: the member being defragmented and how long before the end of its defrag the request started. */
    worst: { member: string; op: string; during: string; startedBeforeEndMs: number } | null;
  };
  outside: { maxMs: number | null; requests: number };
  failed: { count: number; byError: Record<string, number> };
  latency: { p50Ms: number | null; p99Ms: number | null; maxMs: number | null; requests: number };
  sizesBefore: Record<string, Sizes>;
  sizesAfter: Record<string, Sizes>;
  /** dbSize / dbSizeInUse per member after the run (1.0 is the limit). */
  ratioAfter: Record<string, number>;
  reclaimedBytes: number;
  eventLoopMaxMs: number | null;
  loadAvgBefore: number;
  slowest: RequestDetail[];
  /** The failed requests (at most 50), with where they fell. */
  failures: RequestDetail[];
  intervals: (MemberInterval & { durationMs: number; startOffsetMs: number })[];
  keepAlive: {
    /** Longest keep-alive wait through members not being defragmented at the time. */
    maxOtherMs: number | null;
    /** Longest keep-alive wait through the member being defragmented. */
    maxOwnMs: number | null;
    requests: number;
    failed: number;
    byError: Record<string, number>;
  };
  elections: { total: number | null; askedFor: number; other: number | null; perMember: Record<string, number | null> };
  /** The revision the tool compacted to before defragmenting (etcd-defrag's default); null: it did not. Absent in older results. */
  compactedRevision?: number | null;
  /** Plain clients' failures split by what etcd's Go client would do with them, and the go-retry clients' failures. */
  failedSplit: {
    plainFailed: number;
    goWouldRetry: number;
    goWouldNotRetry: number;
    goClientFailed: number;
    goClientRetries: number;
    goClientByError: Record<string, number>;
  };
  go: GoFigures | null;
  breakdown: Breakdown | null;
}

export interface WindowStats {
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  requests: number;
  failed: number;
}

type Category = 'own' | 'collateral' | 'outside';

export interface RequestDetail {
  member: string;
  op: string;
  latencyMs: number;
  category: Category;
  /** Start of the request, ms after the start of the tool's run. */
  startOffsetMs: number;
  ok: boolean;
  error: string | null;
}

const overlaps = (r: { start: number; end: number }, i: { start: number; end: number }): boolean => r.start < i.end && r.end > i.start;
const latency = (r: RequestRecord): number => r.end - r.start;

export function windowStats(records: readonly RequestRecord[], start: number, end: number): WindowStats {
  const inside = records.filter((r) => r.start >= start && r.start <= end);
  const lat = inside.map(latency);
  return {
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    maxMs: max(lat),
    requests: inside.length,
    failed: inside.filter((r) => !r.ok).length,
  };
}

export function analyzeTool(
  ctx: ToolContext,
  allRecords: readonly RequestRecord[],
  samples: readonly LeaderSample[],
  members: readonly BenchMember[],
): ToolFigures {
  const { run } = ctx;
  const records = allRecords.filter((r) => r.op !== 'keepalive');
  const keepAlives = allRecords.filter((r) => r.op === 'keepalive' && overlaps(r, run));
  const inRun = records.filter((r) => overlaps(r, run));
  const categorize = (r: RequestRecord): Category => {
    if (run.intervals.some((i) => i.name === r.member && overlaps(r, i))) return 'own';
    if (run.intervals.some((i) => i.name !== r.member && overlaps(r, i))) return 'collateral';
    return 'outside';
  };
  const cats = inRun.map((r) => ({ r, c: categorize(r) }));

  const memberFigures = run.intervals.map((i, idx): MemberFigures => {
    const own = cats.filter((x) => x.c === 'own' && x.r.member === i.name && overlaps(x.r, i)).map((x) => latency(x.r));
    const m = members.find((x) => x.name === i.name);
    const others = inRun.filter((r) => r.member !== i.name && overlaps(r, i)).map(latency);
    return {
      name: i.name,
      turn: idx + 1,
      defragMs: i.end - i.start,
      serverDefragMs: ctx.serverDefragMs[i.name] ?? null,
      ownMaxMs: max(own),
      ownRequests: own.length,
      others: { p99Ms: percentile(others, 99), maxMs: max(others), requests: others.length },
      ledWhileDefragmented: m ? ledDuring(samples, m.memberId, i.start, i.end) : false,
      ok: i.ok,
    };
  });

  const collateralReqs = cats.filter((x) => x.c === 'collateral').map((x) => x.r);
  const collateral = collateralReqs.map(latency);
  const worstReq = collateralReqs.reduce<RequestRecord | null>((w, r) => (w === null || latency(r) > latency(w) ? r : w), null);
  const worstIv = worstReq ? run.intervals.find((i) => i.name !== worstReq.member && overlaps(worstReq, i)) : undefined;
  const worst =
    worstReq && worstIv
      ? { member: worstReq.member, op: worstReq.op, during: worstIv.name, startedBeforeEndMs: round(worstIv.end - worstReq.start) }
      : null;
  const outside = cats.filter((x) => x.c === 'outside').map((x) => latency(x.r));
  const byError: Record<string, number> = {};
  for (const r of inRun) if (!r.ok) byError[r.error ?? 'unknown'] = (byError[r.error ?? 'unknown'] ?? 0) + 1;
  const whole = windowStats(records, run.start, run.end);
  const defragSumMs = memberFigures.reduce((s, m) => s + m.defragMs, 0);

  const ratioAfter: Record<string, number> = {};
  let reclaimedBytes = 0;
  for (const m of members) {
    const a = ctx.sizesAfter[m.name];
    const b = ctx.sizesBefore[m.name];
    if (a && a.dbSizeInUse > 0) ratioAfter[m.name] = a.dbSize / a.dbSizeInUse;
    if (a && b) reclaimedBytes += Math.max(0, b.dbSize - a.dbSize);
  }

  const detail = ({ r, c }: { r: RequestRecord; c: Category }): RequestDetail => ({
    member: r.member,
    op: r.op,
    latencyMs: round(latency(r)),
    category: c,
    startOffsetMs: round(r.start - run.start),
    ok: r.ok,
    error: r.error,
  });
  const slowest = [...cats]
    .sort((a, b) => latency(b.r) - latency(a.r))
    .slice(0, 8)
    .map(detail);
  const failures = cats
    .filter((x) => !x.r.ok)
    .slice(0, 50)
    .map(detail);

  const isOwn = (r: RequestRecord) => run.intervals.some((i) => i.name === r.member && overlaps(r, i));
  const kaByError: Record<string, number> = {};
  for (const r of keepAlives) if (!r.ok) kaByError[r.error ?? 'unknown'] = (kaByError[r.error ?? 'unknown'] ?? 0) + 1;
  const keepAlive = {
    maxOtherMs: max(keepAlives.filter((r) => !isOwn(r)).map(latency)),
    maxOwnMs: max(keepAlives.filter(isOwn).map(latency)),
    requests: keepAlives.length,
    failed: keepAlives.filter((r) => !r.ok).length,
    byError: kaByError,
  };

  const perMember = ctx.leaderChanges;
  const seen = Object.values(perMember).filter((x): x is number => x !== null);
  const total = seen.length > 0 ? Math.max(...seen) : null;
  const askedFor = run.report?.members.filter((m) => m.movedLeaderTo !== null).length ?? run.leaderMoves ?? 0;
  const elections = { total, askedFor, other: total === null ? null : Math.max(0, total - askedFor), perMember };

  const plainFailed = inRun.filter((r) => r.mode === 'plain' && !r.ok);
  const goFailed = inRun.filter((r) => r.mode === 'go-retry' && !r.ok);
  const goClientByError: Record<string, number> = {};
  for (const r of goFailed) goClientByError[r.error ?? 'unknown'] = (goClientByError[r.error ?? 'unknown'] ?? 0) + 1;
  const failedSplit = {
    plainFailed: plainFailed.length,
    goWouldRetry: plainFailed.filter((r) => goClientRetries(r.op, r.code)).length,
    goWouldNotRetry: plainFailed.filter((r) => !goClientRetries(r.op, r.code)).length,
    goClientFailed: goFailed.length,
    goClientRetries: inRun.filter((r) => r.mode === 'go-retry').reduce((n, r) => n + r.retries, 0),
    goClientByError,
  };

  return {
    tool: run.tool,
    command: run.command,
    ok: run.ok,
    wallMs: run.wallMs,
    defragSumMs,
    waitsMs: run.waitsMs,
    overheadMs: run.wallMs - defragSumMs - run.waitsMs,
    members: memberFigures,
    collateral: { maxMs: max(collateral), p99Ms: percentile(collateral, 99), requests: collateral.length, worst },
    outside: { maxMs: max(outside), requests: outside.length },
    failed: { count: inRun.filter((r) => !r.ok).length, byError },
    latency: { p50Ms: whole.p50Ms, p99Ms: whole.p99Ms, maxMs: whole.maxMs, requests: whole.requests },
    sizesBefore: ctx.sizesBefore,
    sizesAfter: ctx.sizesAfter,
    ratioAfter,
    reclaimedBytes,
    eventLoopMaxMs: ctx.eventLoopMaxMs,
    loadAvgBefore: ctx.loadAvgBefore,
    slowest,
    failures,
    intervals: run.intervals.map((i) => ({ ...i, durationMs: round(i.end - i.start), startOffsetMs: round(i.start - run.start) })),
    keepAlive,
    elections,
    failedSplit,
    go: ctx.go,
    breakdown: breakdownOf(run, defragSumMs),
    compactedRevision: run.compactedRevision ?? run.report?.compactedRevision ?? null,
  };
}

const at = (iso: string | undefined | null): number | null => (iso ? Date.parse(iso) : null);

/** defragd's run, phase by phase, from its report's timings and the probe's process times. */
export function breakdownOf(run: ToolRun, defragSumMs: number): Breakdown | null {
  const report = run.report;
  const proc = run.process;
  if (!report || !proc) return null;
  const timings = report.timings;
  const execStart = at(report.startedAt);
  const members: Breakdown['members'] = [];
  let prevEnd = execStart;
  let leaderMovesMs = 0;
  const turns = [...(timings?.members ?? [])].sort((a, b) => (at(a.turnStartedAt) ?? 0) - (at(b.turnStartedAt) ?? 0));
  for (const tm of turns) {
    const m = report.members.find((x) => x.memberId === tm.memberId);
    if (!m) continue;
    const turnStart = at(tm.turnStartedAt) as number;
    const defragStart = at(tm.defragmentStartedAt) as number;
    const defragmentMs = m.durationMs ?? 0;
    members.push({
      name: m.name,
      gapBeforeMs: prevEnd === null ? 0 : turnStart - prevEnd,
      checksMs: tm.checksMs,
      leaderMoveMs: tm.leaderMoveMs,
      defragmentMs,
      catchUpMs: tm.catchUpMs,
    });
    leaderMovesMs += tm.leaderMoveMs;
    prevEnd = defragStart + defragmentMs + (tm.catchUpMs ?? 0);
  }
  const finished = at(report.finishedAt);
  const releaseMs = timings?.releaseMs ?? null;
  const startupMs = proc.firstConnect === null ? null : proc.firstConnect - proc.spawn;
  const observeMs = timings?.observeMs ?? null;
  const lockMs = timings?.lockMs ?? null;
  // observeMs is timed inside the process from before its first connection (it includes loading the
  // schema and dialling); from the probe's first connection, the first observation is what is left before the lock.
  const firstSeenMs = proc.firstConnect === null || execStart === null ? observeMs : execStart - proc.firstConnect - (lockMs ?? 0);
  return {
    startupMs,
    observeMs: firstSeenMs,
    lockMs,
    toFirstTurnMs: execStart === null || members.length === 0 ? null : (at(turns[0]?.turnStartedAt) as number) - execStart,
    members,
    endMs: finished === null || prevEnd === null ? null : finished - prevEnd,
    finishMs: timings?.finishMs ?? null,
    releaseMs,
    exitMs: finished === null ? null : proc.exit - finished - (releaseMs ?? 0),
    overheadMs: startupMs === null ? null : run.wallMs - startupMs - defragSumMs - leaderMovesMs - run.waitsMs,
    goalMs: 0.05 * defragSumMs + 300,
    leaderMovesMs,
  };
}

const round = (x: number): number => Math.round(x * 10) / 10;
