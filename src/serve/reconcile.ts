/**
 * After a restart: what a run whose process died left unsaid, checked against
 * the cluster. A member whose Defragment was in flight is judged from etcd's
 * own evidence (its defrag count against the count when the Defragment was
 * sent, its file size against the size before) and recorded as defragmented,
 * not defragmented, or possibly defragmented; never silently lost. A member
 * defragmented (in flight and found done, or finished before the process died)
 * gets its in-cluster record when the cluster holds an older one, so the
 * store and `defragd last` agree. The judging is pure (`judgeInFlight`,
 * `recordWanted`); `Reconciler` reads, writes and logs. Never throws.
 */
import { recordPrefix, recordValue } from '../app/record.js';
import { DEFAULT_RECORD_PREFIX } from '../domain/defaults.js';
import { messageOf } from '../domain/errors.js';
import { formatBytes } from '../domain/format.js';
import { memberName } from '../domain/member-name.js';
import type { DefragRecord } from '../domain/record.js';
import type { MemberResult, Sizes } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { MemberToReconcile, RunToReconcile } from '../store/index.js';
import type { ClusterAccess } from './access.js';
import { METRIC_DEFRAG_COUNT } from './external.js';
import type { GaugeReads } from './observation.js';
import type { DaemonMetrics } from './metrics.js';
import type { StoreHealth } from './store-health.js';
import type { Store } from '../store/index.js';
import type { Clock } from './clock.js';
import type { RepeatedWarnings } from './repeated-warnings.js';
import type { DaemonLogger } from './types.js';

/** Tried again at every full observation while it fails: logged at most once a minute. */
const RECORDS_UNREADABLE = 'cannot read the in-cluster records to check a run that died';

/** Below this much free space before, a file that did not shrink says nothing: a defrag had little to take. */
export const SIZE_TELLS_BYTES = 1024 * 1024;

/** What is known of one member whose Defragment was in flight when its run's process died. */
export interface InFlightFacts {
  /** Its sizes when the Defragment was sent. */
  before: Sizes | null;
  /** etcd's defrag count of the member when the Defragment was sent; null when not known. */
  countAtStart: number | null;
  /** Its sizes now; null when it does not answer Status. */
  now: Sizes | null;
  /** Its defrag count now; null when its /metrics did not answer. */
  countNow: number | null;
}

export type InFlightVerdict =
  | { kind: 'defragmented'; evidence: string; after: Sizes }
  | { kind: 'not-defragmented'; evidence: string }
  | { kind: 'possibly'; evidence: string }
  /** The member does not answer: asked again at the next full observation. */
  | { kind: 'wait' };

/**
 * What etcd's evidence says of a Defragment that was in flight.
 *
 * @example judgeInFlight({ before: { dbSize: 100, dbSizeInUse: 20 }, countAtStart: 3, now: { dbSize: 21, dbSizeInUse: 20 }, countNow: 4 })
 * // → { kind: 'defragmented', evidence: "etcd's defrag count rose from 3 to 4", ... }
 */
export function judgeInFlight(f: InFlightFacts): InFlightVerdict {
  if (f.now === null) return { kind: 'wait' };
  const counted = f.countAtStart !== null && f.countNow !== null;
  if (counted && (f.countNow as number) > (f.countAtStart as number))
    return { kind: 'defragmented', evidence: `etcd's defrag count rose from ${f.countAtStart} to ${f.countNow}`, after: f.now };
  // Only a defragmentation (or a member rebuilt from a snapshot) makes the file smaller.
  if (f.before !== null && f.now.dbSize < f.before.dbSize)
    return {
      kind: 'defragmented',
      evidence: `its file shrank from ${formatBytes(f.before.dbSize)} to ${formatBytes(f.now.dbSize)}`,
      after: f.now,
    };
  const size =
    f.before === null
      ? 'its size before is not known'
      : `its file did not shrink (${formatBytes(f.before.dbSize)} before, ${formatBytes(f.now.dbSize)} now)`;
  // Unchanged while the member's process lived on: the Defragment never ran to its end.
  if (counted && f.countNow === f.countAtStart)
    return { kind: 'not-defragmented', evidence: `etcd's defrag count is still ${f.countNow} and ${size}` };
  const freeBefore = f.before === null ? 0 : f.before.dbSize - f.before.dbSizeInUse;
  if (f.before !== null && freeBefore >= SIZE_TELLS_BYTES) return { kind: 'not-defragmented', evidence: size };
  const count = counted ? "etcd's defrag count went down (the member restarted)" : "etcd's defrag count is not known";
  return { kind: 'possibly', evidence: `${count}, and ${f.before === null ? size : `it had only ${formatBytes(freeBefore)} to reclaim`}` };
}

/** The member's result once judged; null while it waits. */
export function judgedResult(m: MemberToReconcile, v: InFlightVerdict): MemberResult | null {
  switch (v.kind) {
    case 'wait':
      return null;
    case 'defragmented':
      return {
        ...m.result,
        action: 'defragmented',
        reason: `its Defragment completed although the process running it died: found at a restart (${v.evidence}; the sizes after are those found then)`,
        after: v.after,
      };
    case 'not-defragmented':
      return { ...m.result, reason: `its Defragment was in flight when the process running it died and did not complete (${v.evidence})` };
    case 'possibly':
      return {
        ...m.result,
        reason: `possibly defragmented: its Defragment was in flight when the process running it died, and nothing tells whether it completed (${v.evidence})`,
      };
  }
}

/** A defragmented member's record must be written: the cluster holds none, or one older than this defragmentation. */
export function recordWanted(at: string, record: DefragRecord | null): boolean {
  return record === null || Date.parse(record.at) < Date.parse(at);
}

export interface ReconcilerDeps {
  store: Store;
  storeHealth: StoreHealth;
  metrics: DaemonMetrics;
  logger: DaemonLogger;
  clock: Clock;
  repeats: RepeatedWarnings;
}

export class Reconciler {
  private readonly prefix: string | null;
  /** Nothing left to check (the store said so once; a run that dies later is another process's restart). */
  private done = false;

  constructor(
    private readonly cluster: string,
    record: false | { prefix: string },
    private readonly access: ClusterAccess,
    private readonly deps: ReconcilerDeps,
  ) {
    this.prefix = record === false ? null : recordPrefix(record.prefix || DEFAULT_RECORD_PREFIX);
  }

  /**
   * Checks what dead runs of this cluster left, on a full observation; runs whose members do not answer wait
   * for the next. True when a run's record changed (the policy's facts, last defrags among them, are stale).
   */
  async reconcile(snapshot: ClusterSnapshot, gauges: GaugeReads, signal: AbortSignal): Promise<boolean> {
    if (this.done) return false;
    const { store, storeHealth } = this.deps;
    const runs = storeHealth.read('read the runs to check', () => store.runsToReconcile(this.cluster), null, { cluster: this.cluster });
    if (runs === null) return false;
    if (runs.length === 0) {
      this.done = true;
      return false;
    }
    let records: Map<string, DefragRecord | null> | null = null;
    if (this.prefix !== null) {
      try {
        const statuses = await this.access.memberRecords(snapshot, this.prefix, new Date(this.deps.clock.now()), {
          timeoutMs: this.access.commandTimeoutMs,
          signal,
        });
        if (statuses.some((s) => s.record === 'unreadable')) throw new Error(statuses.find((s) => s.error)?.error ?? 'unreadable');
        records = new Map(statuses.map((s) => [s.memberId, s.lastDefrag]));
        this.deps.repeats.ended(RECORDS_UNREADABLE, this.cluster, 'the in-cluster records are readable again');
      } catch (err) {
        this.deps.repeats.warn(RECORDS_UNREADABLE, this.cluster, messageOf(err));
        return false;
      }
    }
    let changed = false;
    for (const run of runs) if (await this.reconcileRun(run, snapshot, gauges, records, signal)) changed = true;
    return changed;
  }

  private async reconcileRun(
    run: RunToReconcile,
    snapshot: ClusterSnapshot,
    gauges: GaugeReads,
    records: Map<string, DefragRecord | null> | null,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { logger } = this.deps;
    const changed: MemberResult[] = [];
    const notes: string[] = [];
    for (const m of run.members) {
      let result = m.result;
      if (m.inFlight) {
        const member = snapshot.members.find((x) => x.memberId === m.result.memberId);
        const count = member?.endpoint ? (gauges.get(member.endpoint)?.get(METRIC_DEFRAG_COUNT) ?? null) : null;
        const now = member?.status ? { dbSize: member.status.dbSize, dbSizeInUse: member.status.dbSizeInUse } : null;
        const verdict = judgeInFlight({ before: m.result.before, countAtStart: m.countAtStart, now, countNow: count });
        const judged = judgedResult(m, verdict);
        if (judged === null) return false; // asked again at the next full observation
        result = judged;
        changed.push(judged);
        const name = memberName(judged);
        notes.push(
          `${name}: ${verdict.kind === 'defragmented' ? 'found defragmented' : verdict.kind === 'possibly' ? 'possibly defragmented' : 'found not defragmented'} at a restart`,
        );
        logger.info(
          { cluster: this.cluster, runId: run.runId, member: name, verdict: verdict.kind, reason: judged.reason },
          'a Defragment in flight when defragd died, checked',
        );
        if (judged.action === 'defragmented')
          this.deps.metrics.lastDefrag(this.cluster, judged.name, judged.memberId, {
            atMs: Date.parse(m.at),
            durationMs: null,
            revision: null,
          });
      }
      if (result.action === 'defragmented' && records !== null && this.prefix !== null) {
        const record = records.get(result.memberId) ?? null;
        if (recordWanted(m.at, record)) {
          const value = recordValue(result, m.at, { trigger: run.trigger === 'external' ? 'api' : run.trigger, by: run.by });
          try {
            if (value !== null) await this.access.putRecord(snapshot, this.prefix, result.memberId, value, { signal });
            logger.info(
              { cluster: this.cluster, runId: run.runId, member: memberName(result) },
              'in-cluster record of a run that died written',
            );
          } catch (err) {
            logger.warn(
              { cluster: this.cluster, runId: run.runId, member: memberName(result), err: messageOf(err) },
              'cannot write the in-cluster record of a run that died; tried again at the next full observation',
            );
            return false;
          }
        }
      }
    }
    this.deps.storeHealth.write(
      'record what a restart found',
      () => this.deps.store.reconciled(run.runId, changed, notes.length > 0 ? notes.join('; ') : null),
      undefined,
      { cluster: this.cluster },
    );
    return changed.length > 0;
  }
}
