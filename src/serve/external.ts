/**
 * Noticing defragmentations this daemon did not do. Every member counts its
 * own defragmentations in `/metrics` (the histogram count
 * `etcd_disk_backend_defrag_duration_seconds_count`); when that count goes up
 * between two observations and no run of this daemon defragmented the member
 * in between, someone else did: another defragd (a second replica, a cron
 * `defragd defrag`), whose record in the cluster says who and how, or a tool
 * that leaves no record (`etcdctl defrag`).
 *
 * Pure: the daemon reads the counts and the records and passes them in, with
 * what it remembered of the previous observation (the baseline); this module
 * says what to record and what to remember next.
 *
 * A rise with no record to explain it is not recorded at once: a defragd
 * writes its record right after the member answers again, so the count can
 * be seen before the record. Such a rise waits `graceMs` (and at least one
 * more observation) for a record before it is recorded as unknown.
 */
import type { DefragRecord } from '../domain/record.js';
import type { MemberResult, RunReport, Sizes } from '../domain/run.js';
import type { StoredRun } from '../store/types.js';

/** The member's own count of finished defragmentations (a histogram's count: unlabelled). */
import { METRIC_DEFRAG_COUNT } from '../etcd/metrics.js';

export { METRIC_DEFRAG_COUNT };

/** Who an unexplained defragmentation is recorded as. */
export const UNKNOWN_BY = 'unknown (etcdctl or another tool)';

/** How long a rise waits for the record of the defragd that may have caused it (default). */
export const DEFAULT_EXTERNAL_GRACE_MS = 5_000;

/** What the last observation saw of one member: what the next one compares with. */
export interface DefragBaseline {
  count: number;
  /** When the count was read (epoch ms): the window of the next rise starts here. */
  atMs: number;
  /** dbSize and dbSizeInUse observed then; null when Status did not answer. */
  sizes: Sizes | null;
  /** A rise seen but not explained by a record yet: when, to what count, and the sizes then. */
  pending: { sinceMs: number; count: number; sizes: Sizes | null } | null;
  /** `at` of the newest record already recorded as another defragd's: never recorded twice. */
  attributedAt: string | null;
}

/** One member at one observation, with what is needed to judge a rise. */
export interface CountObservation {
  memberId: string;
  name: string;
  endpoint: string;
  /** What was remembered; null for a member seen for the first time (or after a daemon restart). */
  previous: DefragBaseline | null;
  /** The count now; null when /metrics could not be read. */
  count: number | null;
  /** When the count was read (epoch ms). */
  atMs: number;
  sizes: Sizes | null;
  /** The member's record, read now; null when there is none (or the records were not read). */
  record: DefragRecord | null;
  /** Why the records could not be read; null when they were (or were not needed). */
  recordError?: string | null | undefined;
  /** A run of this daemon defragmented (or tried to) this member since `previous.atMs`. */
  ownRun: boolean;
}

/** One defragmentation someone else did, as it is recorded. */
export interface ExternalEntry {
  memberId: string;
  name: string;
  endpoint: string;
  /** `defragd`: another defragd's record explains it; `unknown`: nothing does. */
  kind: 'defragd' | 'unknown';
  /** The other defragd's `by`, or UNKNOWN_BY. */
  by: string;
  /** The other defragd's trigger (manual, schedule, ...); null when unknown. */
  trigger: string | null;
  /** ISO: for a defragd, its record's time minus its duration; else the start of the window. */
  startedAt: string;
  /** ISO: for a defragd, its record's time; else the end of the window. */
  finishedAt: string;
  /** The observations between which the count went up (ISO). */
  window: { from: string; to: string };
  countBefore: number;
  countAfter: number;
  before: Sizes | null;
  after: Sizes | null;
  durationMs: number | null;
  revision: number | null;
  /** How it was noticed, for people. */
  message: string;
}

export interface ExternalDecision {
  /** What to record, one entry per defragmentation noticed (usually none or one). */
  entries: ExternalEntry[];
  /** What to remember for the next observation (null: nothing known yet). */
  baseline: DefragBaseline | null;
  /** A rise waits for a record to explain it. */
  waiting: boolean;
}

export interface ExternalOptions {
  /** This daemon's `by`: its own records are never another defragd's. */
  ourBy: string;
  graceMs?: number | undefined;
}

/** The count went up since the baseline: the records are needed to judge it. */
export function countRose(previous: DefragBaseline | null, count: number | null): boolean {
  return previous !== null && count !== null && count > previous.count;
}

/**
 * What one observation of one member's defrag count means.
 *
 * @example
 * decideExternal({ ...member, previous: { count: 3, atMs: t0, sizes, pending: null, attributedAt: null }, count: 4, atMs: t1, sizes: now,
 *                  record: { at, by: 'ops1:4242', trigger: 'manual', ... }, ownRun: false }, { ourBy: 'serve1:7' })
 * // → one entry { kind: 'defragd', by: 'ops1:4242', trigger: 'manual', ... }
 */
export function decideExternal(o: CountObservation, opts: ExternalOptions): ExternalDecision {
  const prev = o.previous;
  const fresh = (attributedAt: string | null): DefragBaseline => ({
    count: o.count as number,
    atMs: o.atMs,
    sizes: o.sizes,
    pending: null,
    attributedAt,
  });
  // Unreadable now: keep comparing with the last count that was read.
  if (o.count === null) return { entries: [], baseline: prev, waiting: prev?.pending != null };
  if (prev === null) return { entries: [], baseline: fresh(null), waiting: false };
  // Unchanged: the window moves on. Went down: the member restarted (the count is per process), a new baseline.
  // Our own run: the rise is ours (an overlapping etcdctl defrag is not told apart).
  if (o.count <= prev.count || o.ownRun) {
    return {
      entries: [],
      baseline: fresh(latestAt(prev.attributedAt, o.record && o.record.by !== opts.ourBy ? o.record.at : null)),
      waiting: false,
    };
  }
  const graceMs = opts.graceMs ?? DEFAULT_EXTERNAL_GRACE_MS;
  const theirs = explains(o.record, prev, opts.ourBy) ? o.record : null;
  if (theirs === null && (prev.pending === null || o.atMs - prev.pending.sinceMs < graceMs)) {
    const pending = prev.pending ?? { sinceMs: o.atMs, count: o.count, sizes: o.sizes };
    return { entries: [], baseline: { ...prev, pending }, waiting: true };
  }
  // The rise as first seen: the window ends there (when the count rose again since, at this observation).
  const seen = prev.pending !== null && prev.pending.count === o.count ? prev.pending : { sinceMs: o.atMs, sizes: o.sizes };
  const window = { from: iso(prev.atMs), to: iso(seen.sinceMs) };
  const entries: ExternalEntry[] = [];
  for (let i = 0; i < o.count - prev.count; i++) {
    const counts = `${METRIC_DEFRAG_COUNT} on ${o.endpoint} went from ${prev.count} to ${o.count}`;
    const common = { memberId: o.memberId, name: o.name, endpoint: o.endpoint, window, countBefore: prev.count, countAfter: o.count };
    if (i === 0 && theirs !== null) {
      const atMs = Date.parse(theirs.at);
      entries.push({
        ...common,
        kind: 'defragd',
        by: theirs.by,
        trigger: theirs.trigger,
        startedAt: iso(theirs.durationMs === null ? atMs : atMs - theirs.durationMs),
        finishedAt: theirs.at,
        before: theirs.before ?? prev.sizes,
        after: theirs.after ?? seen.sizes,
        durationMs: theirs.durationMs,
        revision: theirs.revision,
        message: `another defragd (${theirs.by}, trigger ${theirs.trigger}) defragmented ${label(o)} at ${theirs.at}, as its record in the cluster says; noticed because ${counts} between ${window.from} and ${window.to}`,
      });
      continue;
    }
    const why = o.recordError ? `the records could not be read (${o.recordError})` : 'no defragd record explains it';
    entries.push({
      ...common,
      kind: 'unknown',
      by: UNKNOWN_BY,
      trigger: null,
      startedAt: window.from,
      finishedAt: window.to,
      before: prev.sizes,
      after: seen.sizes,
      durationMs: null,
      revision: null,
      message: `${label(o)} was defragmented by something other than defragd (etcdctl defrag or another tool) between ${window.from} and ${window.to}: ${counts}, and ${why}; sizes as observed before and after`,
    });
  }
  return { entries, baseline: fresh(theirs !== null ? latestAt(prev.attributedAt, theirs.at) : prev.attributedAt), waiting: false };
}

/**
 * Whether one of this daemon's runs defragmented (or tried to) a member since
 * `fromMs`: a run by `ourBy` (not an external entry) still running or
 * finished after `fromMs` whose report names the member as defragmented or
 * failed (a failed Defragment may have finished on the server). A run still
 * without a report counts for every member: what it did is not known yet.
 */
export function ownRunTouched(
  runs: readonly { run: StoredRun; report: RunReport | null }[],
  ourBy: string,
  memberId: string,
  fromMs: number,
): boolean {
  return runs.some(({ run, report }) => {
    if (run.trigger === 'external' || run.by !== ourBy || run.dryRun) return false;
    if (run.finishedAt !== null && Date.parse(run.finishedAt) <= fromMs) return false;
    if (report === null) return true;
    return report.members.some((m) => m.memberId === memberId && m.action !== 'skipped');
  });
}

/** An entry as the member result of its stored run. */
export function externalMemberResult(e: ExternalEntry): MemberResult {
  return {
    endpoint: e.endpoint,
    memberId: e.memberId,
    name: e.name,
    action: 'defragmented',
    reason:
      e.kind === 'defragd'
        ? `by another defragd (${e.by}, trigger ${e.trigger ?? 'unknown'})`
        : 'by something other than defragd (noticed from its defrag count)',
    wasLeader: false,
    movedLeaderTo: null,
    before: e.before,
    after: e.after,
    durationMs: e.durationMs,
    revision: e.revision,
    deadlinePassed: false,
    connectionLost: false,
  };
}

/** A record that explains a rise: another defragd's, newer than the baseline and not recorded already. */
function explains(record: DefragRecord | null, prev: DefragBaseline, ourBy: string): record is DefragRecord {
  if (record === null || record.by === ourBy) return false;
  const at = Date.parse(record.at);
  if (!(at > prev.atMs)) return false;
  return prev.attributedAt === null || at > Date.parse(prev.attributedAt);
}

function latestAt(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

const label = (o: { name: string; memberId: string }) => (o.name ? `${o.name} (${o.memberId})` : o.memberId);
const iso = (ms: number) => new Date(ms).toISOString();
