/**
 * The run's book-keeping: member results, warnings, what was compacted and
 * disarmed, why the run stopped, and when each voter was last seen fit. The
 * executor's phases tell it what happened and yield the events it returns;
 * the report is built once, at the end, and never changed after it was
 * emitted.
 */
import type { MemberDecision, Plan } from '../domain/plan.js';
import { skippedResult } from '../domain/results.js';
import type { MemberResult, MemberTimings, RunOutcome, RunReport, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { memberName } from '../domain/member-name.js';

export function failedResult(d: MemberDecision, reason: string, extra: Partial<MemberResult> = {}): MemberResult {
  return { ...skippedResult(d, reason), ...extra, action: 'failed', reason };
}

export class ReportBuilder {
  private readonly results = new Map<string, MemberResult>();
  private readonly extraWarnings: string[] = [];
  private compactedRevision: number | null = null;
  private disarmed = false;
  private disarmNote: string | null = null;
  private message: string | null = null;
  private failedFlag = false;
  private interruptedFlag = false;
  private refusedFlag = false;
  private finishMs: number | null = null;
  private readonly timings: MemberTimings[] = [];
  /** memberId → when the member was last seen fit / first seen unfit (ISO), from the snapshots shown. */
  private readonly lastFit = new Map<string, string>();
  private readonly unfitSince = new Map<string, string>();

  constructor(
    private readonly plan: Plan,
    private readonly startedAt: string,
    private readonly now: () => number,
  ) {}

  get failed(): boolean {
    return this.failedFlag;
  }

  has(memberId: string): boolean {
    return this.results.has(memberId);
  }

  /** Records a member's result and returns its event; a failed result fails the run. */
  finish(r: MemberResult): StepEvent {
    this.results.set(r.memberId, r);
    if (r.action === 'failed') this.failedFlag = true;
    return { type: 'member-finished', result: r };
  }

  /** Records a result without an event (a member the run stops at, before anything was sent to it). */
  put(r: MemberResult): void {
    this.results.set(r.memberId, r);
  }

  /** Records a skipped member and returns its event. */
  skip(d: MemberDecision, reason: string, shown: MemberDecision = d): StepEvent {
    this.results.set(d.memberId, skippedResult(d, reason));
    return { type: 'member-skipped', decision: shown, reason };
  }

  /** Records a skipped member without an event (members that were never reached). */
  notAttempted(ds: readonly MemberDecision[], why: string): void {
    for (const d of ds) if (!this.results.has(d.memberId)) this.results.set(d.memberId, skippedResult(d, `not attempted: ${why}`));
  }

  /** The run stops here: the run fails, `rest` is not attempted. Returns the warning event to yield. */
  stop(message: string, rest: readonly MemberDecision[]): StepEvent {
    this.message = message;
    this.failedFlag = true;
    this.notAttempted(rest, message);
    return { type: 'warning', message };
  }

  /** Stopped by the caller (Ctrl-C): outcome interrupted. */
  interrupt(message: string, rest: readonly MemberDecision[]): void {
    this.message = message;
    this.interruptedFlag = true;
    this.notAttempted(rest, message);
  }

  refuse(message: string): void {
    this.message = message;
    this.refusedFlag = true;
    for (const d of this.plan.decisions) this.results.set(d.memberId, skippedResult(d, d.reason));
  }

  warn(message: string): StepEvent {
    this.extraWarnings.push(message);
    return { type: 'warning', message };
  }

  /** Where a member's turn spent its time. */
  timed(t: MemberTimings): void {
    this.timings.push(t);
  }

  /** How long the run took after its last member (final observation, disarm). */
  finishTook(ms: number): void {
    this.finishMs = ms;
  }

  compacted(revision: number): void {
    this.compactedRevision = revision;
  }

  /** NOSPACE handling after the run: disarmed, or why not (`fails` when the run did not do its job). */
  disarm(result: { disarmed: true } | { disarmed: false; note: string; fails: boolean }): void {
    if (result.disarmed) {
      this.disarmed = true;
      return;
    }
    this.disarmNote = result.note;
    if (result.fails) {
      this.failedFlag = true;
      this.message ??= result.note;
    }
  }

  /** Remembers when each voter was last seen fit or first seen unfit, so a report can say since when. */
  noteHealth(snapshot: ClusterSnapshot, unfit: ReadonlySet<string>): void {
    for (const m of snapshot.members) {
      if (unfit.has(m.memberId)) {
        if (!this.unfitSince.has(m.memberId)) this.unfitSince.set(m.memberId, snapshot.observedAt);
      } else {
        this.lastFit.set(m.memberId, snapshot.observedAt);
        this.unfitSince.delete(m.memberId);
      }
    }
  }

  /** "seen unfit since 21:03:05.120Z, last seen fit at 21:03:04.870Z", as far as this run saw it. */
  since(memberId: string): string {
    const since = this.unfitSince.get(memberId);
    const last = this.lastFit.get(memberId);
    const parts = [since ? `since ${since}` : null, last ? `last seen healthy at ${last}` : 'not seen healthy during this run'];
    return parts.filter(Boolean).join(', ');
  }

  /** The report, built once. */
  report(): RunReport {
    const members = [...this.results.values()];
    // Members in plan order: a result recorded late (a member finished after a stop) keeps its place.
    const order = new Map(this.plan.decisions.map((d, i) => [d.memberId, i]));
    members.sort((a, b) => (order.get(a.memberId) ?? 0) - (order.get(b.memberId) ?? 0));
    const anyDefragmented = members.some((r) => r.action === 'defragmented');
    const outcome: RunOutcome = this.refusedFlag
      ? 'refused'
      : this.interruptedFlag
        ? 'interrupted'
        : this.failedFlag
          ? 'failed'
          : anyDefragmented || this.disarmed
            ? 'success'
            : 'nothing-to-do';
    // A failed member that stopped nothing itself still says why the run failed (the CLI's one line on stderr).
    const failedMembers = outcome === 'failed' ? members.filter((r) => r.action === 'failed') : [];
    const message =
      this.message ?? (failedMembers.length > 0 ? failedMembers.map((r) => `${memberName(r)} failed: ${r.reason}`).join('; ') : null);
    return {
      outcome,
      dryRun: false,
      message,
      startedAt: this.startedAt,
      finishedAt: new Date(this.now()).toISOString(),
      compactedRevision: this.compactedRevision,
      disarmed: this.disarmed,
      disarmNote: this.disarmNote,
      reclaimedBytes: members.reduce(
        (sum, r) => sum + (r.action === 'defragmented' && r.before && r.after ? Math.max(0, r.before.dbSize - r.after.dbSize) : 0),
        0,
      ),
      members,
      warnings: [...this.plan.warnings, ...this.extraWarnings],
      plan: this.plan,
      // What happens before the executor (observation, lock) and after it (release) is added by whoever did it.
      ...(!this.refusedFlag && {
        timings: { observeMs: null, lockMs: null, finishMs: this.finishMs, releaseMs: null, members: [...this.timings] },
      }),
    };
  }
}
