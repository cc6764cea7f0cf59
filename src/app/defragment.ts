/**
 * The whole job in one call: connect, observe, plan, execute, and hand every
 * event to the caller. The CLI's `defrag` command uses it.
 */
import { setMaxListeners } from 'node:events';
import type { Plan, Policy } from '../domain/plan.js';
import type { RunReport, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { EtcdClient } from '../etcd/client.js';
import type { ConnectionOptions } from '../etcd/options.js';
import { executePlan, type ExecuteOptions } from '../executor/execute.js';
import { observeCluster } from '../observe/observe.js';
import { planDefrag } from '../planner/index.js';
import { compileRule } from '../policy/index.js';
import { acquireLock, isNoSpace, LockBusyError, type ClusterLock, type LockOptions } from '../lock/lock.js';

export interface PolicyOptions {
  /** CEL rule evaluated per member right before its turn, e.g. `dbSizeFree > 100*MiB`; absent: every member. */
  rule?: string | null | undefined;
  /** Hand leadership away before defragmenting the leader (default true). */
  moveLeader?: boolean | undefined;
  skipHealthCheck?: boolean | undefined;
  compactKeepRevisions?: number | null | undefined;
  disarmNospace?: boolean | undefined;
  disarmBelow?: number | undefined;
  defragTimeoutMs?: number | null | undefined;
}

export interface RunOptions extends ExecuteOptions {
  /** Discover all members from MemberList (default true). */
  cluster?: boolean | undefined;
  quotaBytes?: number | null | undefined;
  commandTimeoutMs?: number | undefined;
  /** The cluster lock; false runs without it (default: /defragd/lock, fail at once when busy). */
  lock?: LockOptions | false | undefined;
  onEvent?: ((event: StepEvent) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface DefragmentOptions extends ConnectionOptions, PolicyOptions, RunOptions {
  /** Plan only: nothing is changed (and no lock is taken); the report lists what would be done. */
  dryRun?: boolean | undefined;
}

/** Builds a Policy from plain options; throws RuleError for a bad rule. */
export function buildPolicy(o: PolicyOptions): Policy {
  return {
    rule: o.rule ? compileRule(o.rule) : null,
    moveLeader: o.moveLeader ?? true,
    skipHealthCheck: o.skipHealthCheck ?? false,
    compactKeepRevisions: o.compactKeepRevisions ?? null,
    disarmNospace: o.disarmNospace ?? false,
    disarmBelow: o.disarmBelow ?? 0.9,
    defragTimeoutMs: o.defragTimeoutMs ?? null,
  };
}

export interface PreparedRun {
  snapshot: ClusterSnapshot;
  plan: Plan;
  /** Executes the plan; the last event is run-finished. */
  execute(signal?: AbortSignal): AsyncGenerator<StepEvent, RunReport>;
}

/** Observes and plans with an open client; the caller owns the client. */
export async function prepareRun(client: EtcdClient, policy: Policy, o: { cluster?: boolean | undefined; quotaBytes?: number | null | undefined; commandTimeoutMs?: number | undefined; signal?: AbortSignal | undefined } & ExecuteOptions): Promise<PreparedRun> {
  const observe = (signal?: AbortSignal, how?: { light?: boolean }) =>
    observeCluster(client, {
      cluster: o.cluster ?? true,
      quotaBytes: o.quotaBytes ?? null,
      timeoutMs: o.commandTimeoutMs,
      signal: signal ?? o.signal,
      ...(how?.light && { alarms: false, metrics: false }),
    });
  const snapshot = await observe();
  const plan = planDefrag(snapshot, policy);
  return {
    snapshot,
    plan,
    execute: (signal?: AbortSignal) => executePlan(plan, { client, observe, policy }, o, signal ?? o.signal),
  };
}

/**
 * Defragments every member of a cluster safely: followers first, the leader
 * last after handing leadership away, one at a time, never while quorum is at
 * risk. Resolves with the report; a refused or failed run is a report too,
 * not an exception (connection and usage errors do throw).
 *
 * @example
 * import { defragment } from 'defragd';
 * const report = await defragment({
 *   endpoints: ['127.0.0.1:2379'],
 *   rule: 'dbSizeFree > 100*MiB',
 *   onEvent: (e) => e.type === 'member-finished' && console.log(e.result.name, e.result.action),
 * });
 * console.log(report.outcome, report.reclaimedBytes);
 */
export async function defragment(options: DefragmentOptions): Promise<RunReport> {
  const policy = buildPolicy(options);
  const client = new EtcdClient(options);
  try {
    if (options.dryRun) {
      const run = await prepareRun(client, policy, options);
      return dryRunReport(run.plan, new Date().toISOString());
    }
    return await runDefrag(client, policy, options);
  } finally {
    client.close();
  }
}

/**
 * Takes the cluster lock, observes, plans and executes, handing every event
 * to onEvent. A busy lock comes back as a refused report. The caller owns
 * the client.
 */
export async function runDefrag(client: EtcdClient, policy: Policy, o: RunOptions): Promise<RunReport> {
  const emit = (e: StepEvent) => o.onEvent?.(e);
  let lock: ClusterLock | null = null;
  if (o.lock !== false) {
    try {
      lock = await acquireLock(client, { timeoutMs: o.commandTimeoutMs, signal: o.signal, ...(o.lock ?? {}) });
    } catch (err) {
      if (err instanceof LockBusyError) return refusedReport(err.message);
      // NOSPACE refuses every write, the lock's too, exactly when recovery is needed.
      if (!isNoSpace(err)) throw err;
      emit({ type: 'warning', message: 'the cluster is out of space (NOSPACE), so the cluster lock cannot be written: going ahead without it; make sure no other defragd runs now' });
    }
  }
  try {
    const signal = lock ? (o.signal ? AbortSignal.any([o.signal, lock.lost]) : lock.lost) : o.signal;
    // Observing puts a few abort listeners per member on it at once (not a leak): without this, Node
    // prints a MaxListenersExceededWarning on every run against 4 or more members.
    if (lock && signal) setMaxListeners(1_000, signal);
    const run = await prepareRun(client, policy, { ...o, signal });
    lock?.useEndpoints(run.snapshot.members.filter((m) => !m.isLearner && m.endpoint).map((m) => m.endpoint));
    const events = run.execute(signal);
    for (;;) {
      const next = await events.next();
      if (next.done) {
        if (lock?.lost.aborted) next.value.message = `${(lock.lost.reason as Error).message}; ${next.value.message ?? 'stopped'}`;
        return next.value;
      }
      emit(next.value);
    }
  } finally {
    await lock?.release();
  }
}

function refusedReport(message: string): RunReport {
  const at = new Date().toISOString();
  return { outcome: 'refused', message, startedAt: at, finishedAt: at, compactedRevision: null, disarmed: false, disarmNote: null, reclaimedBytes: 0, members: [], warnings: [] };
}

/**
 * A report of what a plan would do, without doing it: nothing was changed, so
 * every member is `skipped` and the reason says what would have happened.
 */
export function dryRunReport(plan: Plan, at: string): RunReport {
  const would = plan.decisions.filter((d) => d.action === 'defragment').length;
  return {
    outcome: plan.refusal ? 'refused' : 'nothing-to-do',
    message: plan.refusal?.reason ?? `dry run: nothing was changed; ${would} member(s) would be defragmented`,
    startedAt: at,
    finishedAt: at,
    compactedRevision: null,
    disarmed: false,
    disarmNote: null,
    reclaimedBytes: 0,
    members: plan.decisions.map((d) => ({
      endpoint: d.endpoint,
      memberId: d.memberId,
      name: d.name,
      action: 'skipped',
      reason: d.action === 'defragment' ? `dry run: would defragment: ${d.reason}` : d.reason,
      wasLeader: d.isLeader,
      movedLeaderTo: d.moveLeaderTo,
      before: d.dbSize !== null && d.dbSizeInUse !== null ? { dbSize: d.dbSize, dbSizeInUse: d.dbSizeInUse } : null,
      after: null,
      durationMs: null,
      revision: null,
      deadlinePassed: false,
    })),
    warnings: plan.warnings,
  };
}
