/**
 * The application layer: one rolling defragmentation as a use case. It wires
 * the parts together (client → port, observe → plan → lock → execute) and
 * hands every event to the caller; it decides nothing about the cluster
 * itself. The CLI's `defrag` command and library callers use it.
 */
import { setMaxListeners } from 'node:events';
import { DEFAULT_DISARM_BELOW, DEFAULT_LOCK_KEY } from '../domain/defaults.js';
import { formatDuration } from '../domain/format.js';
import { AbortedError, DefragdError } from '../domain/errors.js';
import type { PastDefrag, Plan, Policy } from '../domain/plan.js';
import type { RunReport, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { EtcdClient } from '../etcd/client.js';
import type { ConnectionOptions } from '../etcd/options.js';
import { executePlan } from '../executor/execute.js';
import type { ExecuteOptions } from '../executor/options.js';
import type { ClusterPort } from '../executor/port.js';
import { acquireLock, isNoSpace, LockBusyError, type ClusterLock, type LockOptions } from '../lock/lock.js';
import { claimKeyOf, claimNospaceRecovery, prepareNospaceClaim, type NospaceClaim } from '../lock/nospace-claim.js';
import { observeCluster, rememberQuotas } from '../observe/observe.js';
import { planDefrag } from '../planner/index.js';
import { compileRule } from '../policy/index.js';
import { clusterPort, type ObserveTarget } from './port.js';
import { recording, recordSettings, recordWriter, type RecordOptions } from './record.js';

/** What the operator asks for: the planner's Policy as plain options. */
export interface PolicyOptions {
  /**
   * CEL rule evaluated per member right before its turn, e.g. `dbSizeFree > 100*MiB`.
   * Absent or null: every member. An empty string is refused (an unset variable is not "every member").
   */
  rule?: string | null | undefined;
  /** Hand leadership away before defragmenting the leader (default true). */
  moveLeader?: boolean | undefined;
  skipHealthCheck?: boolean | undefined;
  /** Defragment although a voter runs a release with a known defect that can break it (e.g. 3.5.0-3.5.5); default false. */
  allowKnownDefects?: boolean | undefined;
  compactKeepRevisions?: number | null | undefined;
  disarmNospace?: boolean | undefined;
  /** Default DEFAULT_DISARM_BELOW (0.9). */
  disarmBelow?: number | undefined;
  defragTimeoutMs?: number | null | undefined;
  /**
   * Skip a member whose forecast defrag duration is over this (ms); null or
   * absent: no limit. The forecast needs `defragHistory`: without it, or for a
   * member without history, the duration is unknown and never skips.
   */
  maxDefragDurationMs?: number | null | undefined;
  /** Each member's recent successful defrags by hex member ID, oldest first, e.g. `store.defragHistory({ cluster })`. */
  defragHistory?: Readonly<Record<string, readonly PastDefrag[]>> | undefined;
}

/** How one run is carried out, beyond the policy: each consumer its own options. */
export interface RunOptions {
  /** Which members to observe, and the quota to assume. */
  observe?: ObserveTarget | undefined;
  /** The executor's pacing and waits. */
  execute?: ExecuteOptions | undefined;
  /** The cluster lock; false runs without it (default: /defragd/lock, refuse at once when busy). */
  lock?: LockOptions | false | undefined;
  /**
   * After each member defragmented, a record in the cluster (`<prefix>/members/<id>/last-defrag`,
   * read by defragmentationStatus()); false writes none. Default: prefix /defragd, trigger `api`.
   */
  record?: RecordOptions | false | undefined;
  onEvent?: ((event: StepEvent) => void) | undefined;
  /**
   * Under NOSPACE, go ahead although another run claimed the recovery (lock/nospace-claim.ts): for a caller
   * that has seen that claim stand for long with the alarm still raised (its run died). Default false.
   */
  takeOverNospaceClaim?: boolean | undefined;
  /** Aborting stops the run after the current step (outcome `interrupted`). */
  signal?: AbortSignal | undefined;
  /**
   * Called with a clean-up to run if the process must exit at once (a second
   * Ctrl-C): it revokes the lock's lease so other runs need not wait for it to
   * expire. Returns a function that unregisters it.
   */
  registerCleanup?: ((cleanup: () => Promise<void>) => () => void) | undefined;
}

export interface DefragmentOptions extends RunOptions {
  /** Connection options (a client is opened and closed for the run), or an open client from connect(). */
  connection: ConnectionOptions | EtcdClient;
  policy?: PolicyOptions | undefined;
  /** Plan only: nothing is changed (and no lock is taken); the report's `plan` says what would be done. */
  dryRun?: boolean | undefined;
}

/**
 * Builds a Policy from plain options; throws RuleError for a bad (or empty) rule.
 *
 * @example buildPolicy({ rule: 'dbSizeFree > 100*MiB', disarmNospace: true })
 */
export function buildPolicy(o: PolicyOptions = {}): Policy {
  return {
    rule: o.rule === undefined || o.rule === null ? null : compileRule(o.rule),
    moveLeader: o.moveLeader ?? true,
    skipHealthCheck: o.skipHealthCheck ?? false,
    allowKnownDefects: o.allowKnownDefects ?? false,
    compactKeepRevisions: o.compactKeepRevisions ?? null,
    disarmNospace: o.disarmNospace ?? false,
    disarmBelow: o.disarmBelow ?? DEFAULT_DISARM_BELOW,
    defragTimeoutMs: o.defragTimeoutMs ?? null,
    maxDefragDurationMs: o.maxDefragDurationMs ?? null,
    ...(o.defragHistory !== undefined ? { defragHistory: o.defragHistory } : {}),
  };
}

export interface PreparedRun {
  snapshot: ClusterSnapshot;
  plan: Plan;
  /** Executes the plan; the last event is run-finished. */
  execute(signal?: AbortSignal): AsyncGenerator<StepEvent, RunReport>;
}

/**
 * Observes and plans with an open client (the caller owns it); nothing is
 * changed until execute() is iterated.
 *
 * @example
 * const run = await prepareRun(client, buildPolicy({ rule: 'fragmentation > 0.45' }));
 * console.log(run.plan.decisions.map((d) => d.action));
 */
export async function prepareRun(
  client: EtcdClient,
  policy: Policy,
  o: Pick<RunOptions, 'observe' | 'execute' | 'signal'> = {},
): Promise<PreparedRun> {
  const port = clusterPort(client, o.observe);
  const snapshot = await port.observe({ signal: o.signal });
  return planned(port, snapshot, policy, o);
}

function planned(port: ClusterPort, snapshot: ClusterSnapshot, policy: Policy, o: Pick<RunOptions, 'execute' | 'signal'>): PreparedRun {
  const plan = planDefrag(snapshot, policy);
  return { snapshot, plan, execute: (signal?: AbortSignal) => executePlan(plan, port, policy, o.execute, signal ?? o.signal) };
}

/**
 * Defragments every member of a cluster safely: followers first, the leader
 * last after handing leadership away, one at a time, never while quorum is at
 * risk. Resolves with the report; a refused, failed or interrupted run is a
 * report too, not an exception (usage errors, such as a bad rule, do throw).
 *
 * @example
 * import { defragment } from 'defragd';
 * const report = await defragment({
 *   connection: { endpoints: ['127.0.0.1:2379'] },
 *   policy: { rule: 'dbSizeFree > 100*MiB' },
 *   onEvent: (e) => e.type === 'member-finished' && console.log(e.result.name, e.result.action),
 * });
 * console.log(report.outcome, report.reclaimedBytes);
 */
export async function defragment(options: DefragmentOptions): Promise<RunReport> {
  const policy = buildPolicy(options.policy);
  const own = !(options.connection instanceof EtcdClient);
  const client = options.connection instanceof EtcdClient ? options.connection : new EtcdClient(options.connection);
  try {
    return await (options.dryRun ? dryRun(client, policy, options) : runDefrag(client, policy, options));
  } finally {
    if (own) client.close();
  }
}

/**
 * What a run would do now, without doing it: observes and plans, and returns
 * the dry-run report (outcome `dry-run`, or `refused` with the reason, also
 * when the cluster cannot be observed). The caller owns the client.
 *
 * @example (await dryRun(client, buildPolicy({ rule: 'dbSizeFree > 100*MiB' }))).plan?.decisions
 */
export async function dryRun(client: EtcdClient, policy: Policy, o: Pick<RunOptions, 'observe' | 'signal'> = {}): Promise<RunReport> {
  const at = new Date().toISOString();
  const seen = await observeOrRefuse(client, o.observe, o.signal);
  if ('report' in seen) return { ...seen.report, dryRun: true };
  return dryRunReport(planDefrag(seen.snapshot, policy), at);
}

/**
 * Observes, plans, takes the cluster lock and executes, handing every event
 * to onEvent. Nothing is written to the cluster before the first observation
 * and plan say the run may go ahead. A busy lock, an unreachable cluster or a
 * refused plan come back as a refused report. The caller owns the client.
 */
export async function runDefrag(client: EtcdClient, policy: Policy, o: RunOptions = {}): Promise<RunReport> {
  const emit = (e: StepEvent) => o.onEvent?.(e);
  const recordAs = o.record === false ? null : recordSettings(o.record);
  const quotas = new Map<string, number>();
  const port = clusterPort(client, o.observe, quotas);
  const tObserve = Date.now();
  const seen = await observeOrRefuse(client, o.observe, o.signal, quotas);
  if ('report' in seen) return seen.report;
  const observeMs = Date.now() - tObserve;
  let lockMs: number | null = null;
  let run = planned(port, seen.snapshot, policy, o);
  if (run.plan.refusal) return drain(run.execute(o.signal), emit);

  let lock: ClusterLock | null = null;
  let lockNote: string | null = null;
  let claim: NospaceClaim | null = null;
  const lockKey = (o.lock === false ? undefined : o.lock?.key) ?? DEFAULT_LOCK_KEY;
  if (o.lock !== false) {
    const t0 = Date.now();
    try {
      lock = await acquireLock(client, { signal: o.signal, ...(o.lock ?? {}) });
    } catch (err) {
      if (err instanceof LockBusyError) return refusedReport(err.message, run.plan);
      // NOSPACE refuses every write, the lock's too, exactly when recovery is needed: the claim decides (lock/nospace-claim.ts).
      if (!isNoSpace(err)) throw err;
      claim = await claimNospaceRecovery(client, { lockKey, signal: o.signal });
      if (claim === 'taken' && !o.takeOverNospaceClaim) {
        return refusedReport(
          `${CLAIM_TAKEN} (${claimKeyOf(lockKey)} was deleted): ` + 'not going ahead, so that no member is defragmented twice',
          run.plan,
        );
      }
      emit({ type: 'warning', message: nospaceNote(claim, lockKey) });
    }
    // A plan made before a wait for the lock is stale: another run may have defragmented since.
    if (lock && Date.now() - t0 > 1_000) {
      if (lock.waited) lockNote = waitedNote(lock.waited);
      const again = await observeOrRefuse(client, o.observe, o.signal, quotas);
      if ('report' in again) {
        await lock.release();
        return again.report;
      }
      run = planned(port, again.snapshot, policy, o);
    }
    lockMs = Date.now() - t0;
  }
  const unregister = lock ? o.registerCleanup?.(() => (lock as ClusterLock).release()) : undefined;
  let report: RunReport;
  let releaseMs: number | null = null;
  try {
    const signal = lock ? (o.signal ? AbortSignal.any([o.signal, lock.lost]) : lock.lost) : o.signal;
    // Observing puts a few abort listeners per member on it at once (not a leak): without this, Node
    // prints a MaxListenersExceededWarning on every run against 4 or more members.
    if (lock && signal) setMaxListeners(1_000, signal);
    lock?.useEndpoints(run.snapshot.members.filter((m) => !m.isLearner && m.endpoint).map((m) => m.endpoint));
    if (lockNote) emit({ type: 'warning', message: lockNote });
    const events = run.execute(signal);
    report = await drain(recordAs ? recording(events, recordWriter(client, run.snapshot, recordAs)) : events, emit);
  } finally {
    unregister?.();
    const tRelease = Date.now();
    await lock?.release();
    releaseMs = lock ? Date.now() - tRelease : null;
    // Recovered (writes work again): the claim is put back for the next time. Still NOSPACE: it stays taken.
    if (claim !== null) await prepareNospaceClaim(client, { lockKey }).catch(() => undefined);
  }
  const timings = report.timings && { ...report.timings, observeMs, lockMs, releaseMs };
  return { ...report, ...(lockNote && { warnings: [lockNote, ...report.warnings] }), ...(timings && { timings }) };
}

const CLAIM_TAKEN = 'the cluster is out of space (NOSPACE) and another defragd has claimed its recovery';

/** Whether a run was refused because another run claimed the cluster's NOSPACE recovery. */
export function nospaceClaimTaken(report: RunReport): boolean {
  return report.outcome === 'refused' && (report.message ?? '').startsWith(CLAIM_TAKEN);
}

/** What a run that goes ahead under NOSPACE without the lock says. */
function nospaceNote(claim: NospaceClaim, lockKey: string): string {
  const head = 'the cluster is out of space (NOSPACE), so the cluster lock cannot be written';
  if (claim === 'claimed')
    return `${head}: this run claimed the recovery (it deleted ${claimKeyOf(lockKey)}), so another defragd stays away`;
  if (claim === 'taken')
    return `${head}, and another defragd claimed the recovery long ago without finishing it: going ahead (taking it over)`;
  return `${head}, and no recovery claim was prepared in this cluster (${claimKeyOf(lockKey)}): going ahead without either; make sure no other defragd runs now`;
}

/** What a run that waited for another's lock says: the plan it executes was made after that run. */
function waitedNote(w: NonNullable<ClusterLock['waited']>): string {
  const who = w.holder ? ` held by ${w.holder}${w.since ? ` (since ${w.since})` : ''}` : '';
  return `waited ${formatDuration(w.ms)} for the cluster lock${who}; planned again from a fresh observation after it was released`;
}

async function drain(events: AsyncGenerator<StepEvent, RunReport>, emit: (e: StepEvent) => void): Promise<RunReport> {
  for (;;) {
    const next = await events.next();
    if (next.done) return next.value;
    emit(next.value);
  }
}

/**
 * The first observation. When the cluster cannot be observed at all (no
 * endpoint answers, bad credentials), nothing has been changed: that is a
 * refused run, not a crash. Usage errors (such as endpoints of two clusters)
 * and interrupts are thrown.
 */
async function observeOrRefuse(
  client: EtcdClient,
  target: ObserveTarget | undefined,
  signal: AbortSignal | undefined,
  quotas?: Map<string, number>,
): Promise<{ snapshot: ClusterSnapshot } | { report: RunReport }> {
  try {
    // The first look also reads the user's roles, so a missing root role refuses before anything is written.
    const snapshot = await observeCluster(client, {
      cluster: target?.cluster ?? true,
      quotaBytes: target?.quotaBytes ?? null,
      dataDirs: target?.dataDirs,
      signal,
      userRoles: true,
      features: true,
      knownQuotas: quotas,
    });
    if (quotas) rememberQuotas(quotas, snapshot);
    return { snapshot };
  } catch (err) {
    if (!(err instanceof DefragdError) || err.kind === 'usage' || err instanceof AbortedError) throw err;
    return { report: refusedReport(err.message, null) };
  }
}

/**
 * A report for a run that executed nothing: refused before it started, a
 * dry run, or an error before the executor. The one place such a report is
 * shaped.
 */
export function reportWithoutRun(
  outcome: RunReport['outcome'],
  message: string,
  o: { plan?: Plan | null; dryRun?: boolean; startedAt?: string; members?: RunReport['members'] } = {},
): RunReport {
  const at = new Date().toISOString();
  const plan = o.plan ?? null;
  return {
    outcome,
    dryRun: o.dryRun ?? false,
    message,
    startedAt: o.startedAt ?? at,
    finishedAt: at,
    compactedRevision: null,
    disarmed: false,
    disarmNote: null,
    reclaimedBytes: 0,
    members: o.members ?? [],
    warnings: plan?.warnings ?? [],
    plan,
  };
}

/** A run refused before anything was executed. */
export function refusedReport(message: string, plan: Plan | null): RunReport {
  return reportWithoutRun('refused', message, { plan });
}

/**
 * A report of what a plan would do, without doing it: outcome `dry-run` (or
 * `refused`), the plan itself in `plan`, and every member `skipped` with a
 * reason that says what would have happened.
 *
 * @example dryRunReport(planDefrag(snapshot, policy), new Date().toISOString()).plan.decisions
 */
export function dryRunReport(plan: Plan, at: string): RunReport {
  const would = plan.decisions.filter((d) => d.action === 'defragment').length;
  return reportWithoutRun(
    plan.refusal ? 'refused' : 'dry-run',
    plan.refusal?.reason ?? `dry run: nothing was changed; ${would} member(s) would be defragmented`,
    {
      plan,
      dryRun: true,
      startedAt: at,
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
        connectionLost: false,
      })),
    },
  );
}
