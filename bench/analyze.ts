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
import { ledDuring, type LeaderSample } from './leader.js';
import type { RequestRecord } from './load.js';
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
  return { p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: max(lat), requests: inside.length, failed: inside.filter((r) => !r.ok).length };
}

export function analyzeTool(ctx: ToolContext, records: readonly RequestRecord[], samples: readonly LeaderSample[], members: readonly BenchMember[]): ToolFigures {
  const { run } = ctx;
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
  const worst = worstReq && worstIv ? { member: worstReq.member, op: worstReq.op, during: worstIv.name, startedBeforeEndMs: round(worstIv.end - worstReq.start) } : null;
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
    member: r.member, op: r.op, latencyMs: round(latency(r)), category: c, startOffsetMs: round(r.start - run.start), ok: r.ok, error: r.error,
  });
  const slowest = [...cats].sort((a, b) => latency(b.r) - latency(a.r)).slice(0, 8).map(detail);
  const failures = cats.filter((x) => !x.r.ok).slice(0, 50).map(detail);

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
  };
}

const round = (x: number): number => Math.round(x * 10) / 10;
