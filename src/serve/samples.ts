/**
 * The stored samples of one cluster as a chart wants them: per member, a few
 * hundred points at most for the time range asked (the last sample of each
 * time bucket, so each point is one real observation whose figures agree),
 * as columns (times, dbSize, dbSizeInUse, quota, leader). Pure.
 */
import type { Sample } from '../store/types.js';

/** The ranges the dashboard offers, by name. */
export const SAMPLE_RANGES = Object.freeze({
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
} as const);

export type SampleRange = keyof typeof SAMPLE_RANGES;

export const SAMPLE_RANGE_NAMES = Object.freeze(Object.keys(SAMPLE_RANGES) as SampleRange[]);

/** At most this many points per member and range: more than a chart's width in pixels shows nothing more. */
export const MAX_POINTS_PER_MEMBER = 300;

/** One member's points, oldest first; the arrays have one entry per point. */
export interface MemberSeries {
  memberId: string;
  /** The member's name in its newest sample. */
  name: string;
  /** Epoch milliseconds of each point's observation. */
  atMs: number[];
  dbSize: number[];
  dbSizeInUse: number[];
  quota: number[];
  isLeader: boolean[];
}

export interface SeriesOptions {
  /** Inclusive range start and end, epoch ms. */
  fromMs: number;
  toMs: number;
  maxPoints?: number | undefined;
}

/**
 * Groups samples (oldest first, as the store gives them) per member and
 * thins each member to at most maxPoints: buckets of (to - from) / maxPoints,
 * aligned to the epoch, keep their last sample. A member with few enough
 * samples keeps them all. Members in the order they first appear.
 *
 * @example
 *   memberSeries(store.samples({ cluster: 'prod', from }), { fromMs, toMs: Date.now() })[0]?.dbSize
 */
export function memberSeries(samples: readonly Sample[], o: SeriesOptions): MemberSeries[] {
  const maxPoints = o.maxPoints ?? MAX_POINTS_PER_MEMBER;
  // An inclusive range of n bucket widths touches at most n + 1 buckets.
  const bucketMs = Math.max(1, Math.ceil((o.toMs - o.fromMs) / Math.max(1, maxPoints - 1)));
  const byMember = new Map<string, Sample[]>();
  for (const s of samples) {
    const at = Date.parse(s.at);
    if (at < o.fromMs || at > o.toMs) continue;
    const list = byMember.get(s.memberId);
    if (list) list.push(s);
    else byMember.set(s.memberId, [s]);
  }
  return [...byMember.entries()].map(([memberId, list]) => {
    const kept = list.length <= maxPoints ? list : lastPerBucket(list, bucketMs);
    return {
      memberId,
      name: (list[list.length - 1] as Sample).memberName,
      atMs: kept.map((s) => Date.parse(s.at)),
      dbSize: kept.map((s) => s.dbSize),
      dbSizeInUse: kept.map((s) => s.dbSizeInUse),
      quota: kept.map((s) => s.quota),
      isLeader: kept.map((s) => s.isLeader),
    };
  });
}

function lastPerBucket(list: readonly Sample[], bucketMs: number): Sample[] {
  const out: Sample[] = [];
  let bucket: number | null = null;
  for (const s of list) {
    const b = Math.floor(Date.parse(s.at) / bucketMs);
    if (b === bucket) out[out.length - 1] = s;
    else out.push(s);
    bucket = b;
  }
  return out;
}
