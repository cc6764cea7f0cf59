/**
 * Executes a Plan, one member at a time, as a stream of StepEvents.
 *
 * The plan is a promise made at one moment; before every member the cluster
 * is observed again and the planner asked again, so a rule is evaluated right
 * before its member is defragmented, a member that became leader is handed
 * off first, and a voter that went unhealthy stops the run. A Defragment is
 * never sent twice: when its deadline passes, etcd goes on, so the executor
 * waits for the member to answer again and records what it finds.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { MemberDecision, Plan, Policy } from '../domain/plan.js';
import type { MemberResult, RunOutcome, RunReport, Sizes, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import { AbortedError, ConnectionError, DeadlineError, DefragdError, etcdReason } from '../domain/errors.js';
import type { EtcdClient } from '../etcd/client.js';
import { fetchGauges, METRIC_DEFRAG_INFLIGHT } from '../etcd/metrics.js';
import { formatBytes, formatDuration } from '../domain/format.js';
import { checkDisarm, chooseTransferee, leaderOrHealthyVoter, planDefrag, votersHealthy } from '../planner/index.js';

export interface ExecuteOptions {
  /** Pause after each member has caught up (--wait-between). */
  waitBetweenMs?: number;
  /** Go on with the next member after one fails (the run still fails). */
  continueOnError?: boolean;
  /** How long a defragmented member may take to answer and catch up with the leader. */
  catchUpTimeoutMs?: number;
  /** How long a leadership transfer may take to be seen. */
  leaderMoveTimeoutMs?: number;
  /** How long to wait for a member whose Defragment deadline passed to answer again. */
  deadlineRecoveryMs?: number;
  /** Poll interval while waiting. */
  pollIntervalMs?: number;
  /** Deadline of ordinary calls (Status, MoveLeader, Alarm); the client's command timeout when absent. */
  commandTimeoutMs?: number;
}

export interface ExecuteDeps {
  client: EtcdClient;
  /**
   * Observes the cluster afresh (the same options the plan was made with).
   * `light` polls skip the alarm list (a raft round trip in etcd 3.4) and /metrics.
   */
  observe: (signal?: AbortSignal, opts?: { light?: boolean }) => Promise<ClusterSnapshot>;
  policy: Policy;
  /** Wall clock in ms, for durations; Date.now by default. */
  now?: () => number;
}

type Resolved = Required<Omit<ExecuteOptions, 'commandTimeoutMs'>> & Pick<ExecuteOptions, 'commandTimeoutMs'>;

const DEFAULTS: Resolved = {
  waitBetweenMs: 0,
  continueOnError: false,
  catchUpTimeoutMs: 60_000,
  leaderMoveTimeoutMs: 15_000,
  deadlineRecoveryMs: 30 * 60_000,
  pollIntervalMs: 250,
};

/**
 * Runs a plan. Consume the events; the last one is always `run-finished`
 * with the report.
 *
 * @example
 * for await (const e of executePlan(plan, { client, observe, policy }, {}, signal)) {
 *   if (e.type === 'member-finished') console.log(e.result.name, e.result.action);
 * }
 */
export async function* executePlan(plan: Plan, deps: ExecuteDeps, options: ExecuteOptions = {}, signal?: AbortSignal): AsyncGenerator<StepEvent, RunReport> {
  const o: Resolved = { ...DEFAULTS, ...stripUndefined(options) };
  const now = deps.now ?? Date.now;
  const startedAt = new Date(now()).toISOString();
  const results: MemberResult[] = [];
  const warnings = [...plan.warnings];
  let compactedRevision: number | null = null;
  let disarmed = false;
  let disarmNote: string | null = null;
  let stopMessage: string | null = null;

  const finish = (outcome: RunOutcome): RunReport => ({
    outcome,
    message: stopMessage,
    startedAt,
    finishedAt: new Date(now()).toISOString(),
    compactedRevision,
    disarmed,
    disarmNote,
    reclaimedBytes: results.reduce((sum, r) => sum + (r.action === 'defragmented' && r.before && r.after ? Math.max(0, r.before.dbSize - r.after.dbSize) : 0), 0),
    members: results,
    warnings,
  });

  yield { type: 'run-started', at: startedAt, plan };

  if (plan.refusal) {
    stopMessage = plan.refusal.reason;
    for (const d of plan.decisions) results.push(skipped(d, d.reason));
    const report = finish('refused');
    yield { type: 'run-finished', report };
    return report;
  }

  const toDefrag = plan.decisions.filter((d) => d.action === 'defragment');
  for (const d of plan.decisions.filter((x) => x.action === 'skip')) {
    results.push(skipped(d, d.reason));
    yield { type: 'member-skipped', decision: d, reason: d.reason };
  }
  // With --skip-health-check, members already unhealthy at the start are not held against the run.
  const unhealthyAtStart = new Set(plan.decisions.filter((d) => d.code === 'unreachable').map((d) => d.memberId));

  const call = { timeoutMs: o.commandTimeoutMs, signal };
  let failed = false;
  /** Records a failed member; the caller yields the event. */
  const fail = (r: MemberResult): StepEvent => {
    failed = true;
    results.push(r);
    return { type: 'member-finished', result: r };
  };
  /** Stops the run before toDefrag[i]: it and the rest are not attempted. The caller yields the event and breaks. */
  const stopBefore = (i: number, why: string): StepEvent => {
    stopMessage = `stopped before ${label(toDefrag[i] as MemberDecision)}: ${why}`;
    failed = true;
    for (const rest of toDefrag.slice(i)) results.push(skipped(rest, `not attempted: ${stopMessage}`));
    return { type: 'warning', message: stopMessage };
  };
  const unhealthyList = (ms: MemberSnapshot[]) => ms.map((m) => `${m.name || m.endpoint} is ${describeUnhealthy(m)}`).join('; ');

  try {
    if (plan.compaction && toDefrag.length > 0) {
      const snap = await deps.observe(signal);
      const revision = compactionRevision(snap, plan.compaction.keepRevisions);
      if (revision !== null) {
        yield { type: 'compaction-started', revision, keepRevisions: plan.compaction.keepRevisions };
        const t0 = now();
        const leader = leaderOrHealthyVoter(snap);
        let note: string | null = null;
        try {
          // Compaction is replicated through raft; physical waits until every bucket is compacted on this member.
          if (!leader) throw new DefragdError('failed', 'no leader and no healthy member to send the compaction to; nothing was changed');
          await deps.client.member(leader.endpoint).compact(revision, { physical: true, timeoutMs: Math.max(60_000, o.commandTimeoutMs ?? 0), signal });
          compactedRevision = revision;
        } catch (err) {
          if (etcdReason(err) === 'compacted') {
            note = `revision ${revision} was already compacted`;
          } else throw err;
        }
        yield { type: 'compaction-finished', revision, durationMs: now() - t0, note };
      }
    }

    for (let i = 0; i < toDefrag.length; i++) {
      const planned = toDefrag[i] as MemberDecision;
      if (signal?.aborted) throw new AbortedError('interrupted');
      if (failed && !o.continueOnError) {
        results.push(skipped(planned, 'not attempted: an earlier member failed'));
        continue;
      }

      let snap = await deps.observe(signal);
      const health = votersHealthy(snap);
      const failing = health.failing.filter((m) => !unhealthyAtStart.has(m.memberId));
      if (failing.length > 0) {
        yield stopBefore(i, unhealthyList(failing));
        break;
      }

      // Ask the planner again with what is true now (the rule, learner status, leadership, alarms).
      const replan = planDefrag(snap, deps.policy);
      if (replan.refusal) {
        yield stopBefore(i, replan.refusal.reason);
        break;
      }
      const fresh = replan.decisions.find((d) => d.memberId === planned.memberId);
      if (!fresh || fresh.action === 'skip') {
        const reason = fresh ? `${fresh.reason} (re-checked before its turn)` : 'no longer a member of the cluster';
        results.push(skipped(planned, reason));
        yield { type: 'member-skipped', decision: fresh ?? planned, reason };
        continue;
      }

      let movedLeaderTo: string | null = null;
      const wasLeader = snap.leaderId === planned.memberId;
      if (wasLeader && voterCount(snap) > 1) {
        const target = chooseTransferee(snap);
        if (target === null) {
          yield fail(failure(planned, 'it leads and no healthy voter can take over', wasLeader));
          continue;
        }
        const targetName = snap.members.find((m) => m.memberId === target)?.name ?? target;
        yield { type: 'leader-move-started', from: planned.memberId, fromName: planned.name, to: target, toName: targetName };
        const t0 = now();
        try {
          // MoveLeader must be sent to the current leader.
          await deps.client.member(planned.endpoint).moveLeader(target, call);
          snap = await waitFor(deps, o, signal, (s) => s.leaderId !== null && s.leaderId !== planned.memberId && memberOf(s, planned.memberId)?.status?.isLeader === false, o.leaderMoveTimeoutMs, 'leadership to move');
        } catch (err) {
          if (err instanceof AbortedError) throw err;
          yield fail(failure(planned, `moving leadership to ${targetName} failed: ${messageOf(err)}`, wasLeader));
          continue;
        }
        movedLeaderTo = snap.leaderId;
        yield { type: 'leader-move-finished', from: planned.memberId, to: snap.leaderId as string, durationMs: now() - t0 };
        // The hand-over took time: look at every voter again before taking this one out.
        snap = await deps.observe(signal);
        const after = votersHealthy(snap).failing.filter((m) => !unhealthyAtStart.has(m.memberId));
        if (after.length > 0) {
          const e = stopBefore(i, unhealthyList(after));
          Object.assign(results.find((r) => r.memberId === planned.memberId) as MemberResult, { wasLeader, movedLeaderTo });
          yield e;
          break;
        }
      }

      const member = memberOf(snap, planned.memberId);
      if (!member?.status) {
        yield fail(failure(planned, `did not answer before its turn: ${member?.error ?? 'gone'}`, wasLeader));
        continue;
      }
      if (member.status.isLeader && voterCount(snap) > 1) {
        // Leadership came back between the move and now: never defragment a leader.
        yield fail(failure(planned, 'it is the leader again; a leader is never defragmented while it leads', wasLeader));
        continue;
      }

      // Another tool (or a run without the lock) may be defragmenting a member right now: never add a second.
      const busy = await defragsInFlight(deps, snap, signal);
      if (busy.length > 0) {
        yield stopBefore(i, `${busy.join(', ')} ${busy.length === 1 ? 'is' : 'are'} being defragmented by someone else (etcd_disk_defrag_inflight is 1)`);
        break;
      }

      const before: Sizes = { dbSize: member.status.dbSize, dbSizeInUse: member.status.dbSizeInUse };
      yield { type: 'member-started', decision: fresh, before, timeoutMs: fresh.timeoutMs, index: i + 1, total: toDefrag.length };
      const t0 = now();
      let revision: number | null = null;
      let deadlinePassed = false;
      try {
        const header = await deps.client.member(member.endpoint).defragment({ timeoutMs: fresh.timeoutMs, signal });
        revision = header.revision;
      } catch (err) {
        if (err instanceof DeadlineError || err instanceof ConnectionError) {
          // A lost connection, like a passed deadline, says nothing of the server: it may be defragmenting still.
          deadlinePassed = true;
          yield { type: 'member-deadline-passed', memberId: member.memberId, name: member.name, timeoutMs: fresh.timeoutMs };
        } else if (err instanceof AbortedError) {
          // The request may already be running on the server: wait for it like a passed deadline, then stop.
          yield { type: 'member-waiting', memberId: member.memberId, name: member.name, what: 'the interrupted defragmentation to end on the server' };
          await waitForDefragEnd(deps, member, o, undefined).catch(() => undefined);
          const r = await interrupted(deps, planned, member, { before, wasLeader, movedLeaderTo, durationMs: now() - t0, revision: null, deadlinePassed });
          results.push(r);
          yield { type: 'member-finished', result: r };
          throw err;
        } else {
          yield fail({ ...failure(planned, `defragment failed: ${messageOf(err)}`, wasLeader), movedLeaderTo, before, durationMs: now() - t0 });
          continue;
        }
      }
      if (deadlinePassed) {
        yield { type: 'member-waiting', memberId: member.memberId, name: member.name, what: 'etcd to finish the defragmentation it kept running' };
        try {
          await waitForDefragEnd(deps, member, o, signal);
        } catch (err) {
          const seen = await interrupted(deps, planned, member, { before, wasLeader, movedLeaderTo, durationMs: now() - t0, revision, deadlinePassed });
          const r: MemberResult = err instanceof AbortedError ? seen : { ...seen, action: 'failed', reason: messageOf(err) };
          results.push(r);
          yield { type: 'member-finished', result: r };
          throw err;
        }
      }
      const durationMs = now() - t0;

      // Catch-up: the member answers a linearizable read and has applied what the leader had committed.
      yield { type: 'member-waiting', memberId: member.memberId, name: member.name, what: 'the member to catch up with the leader' };
      let after: Sizes | null = null;
      try {
        let target: number | null = null;
        const caught = await waitFor(deps, o, signal, (s) => {
          const m = memberOf(s, member.memberId);
          const leader = s.members.find((x) => x.memberId === s.leaderId);
          if (!m?.healthy || !m.status || !leader?.status) return false;
          target ??= leader.status.raftIndex;
          return m.status.raftAppliedIndex >= target;
        }, o.catchUpTimeoutMs, `${member.name || member.endpoint} to catch up`);
        const st = memberOf(caught, member.memberId)?.status;
        if (st) after = { dbSize: st.dbSize, dbSizeInUse: st.dbSizeInUse };
        // etcd 3.4 leaves the Defragment response header empty; the member's revision right after is the next best.
        if (!revision && st) revision = st.revision;
      } catch (err) {
        if (err instanceof AbortedError) {
          // The Defragment itself answered: record it before stopping, or the report would say "not attempted".
          const r = await interrupted(deps, planned, member, { before, wasLeader, movedLeaderTo, durationMs, revision, deadlinePassed });
          results.push(r);
          yield { type: 'member-finished', result: r };
          throw err;
        }
        yield fail({ ...failure(planned, messageOf(err), wasLeader), movedLeaderTo, before, durationMs, revision, deadlinePassed });
        continue;
      }

      const shrank = after !== null && after.dbSize < before.dbSize;
      const result: MemberResult = {
        endpoint: member.endpoint,
        memberId: member.memberId,
        name: member.name,
        action: deadlinePassed && !shrank ? 'failed' : 'defragmented',
        reason: deadlinePassed
          ? shrank
            ? `the ${formatDuration(fresh.timeoutMs)} deadline passed but etcd finished on its own; consider a longer --defrag-timeout`
            : `the ${formatDuration(fresh.timeoutMs)} deadline passed and the member did not shrink; not retried`
          : movedLeaderTo
            ? `leadership moved to ${snap.members.find((m) => m.memberId === movedLeaderTo)?.name ?? movedLeaderTo} first`
            : fresh.reason,
        wasLeader,
        movedLeaderTo,
        before,
        after,
        durationMs,
        revision,
        deadlinePassed,
      };
      if (result.action === 'failed') yield fail(result);
      else {
        results.push(result);
        yield { type: 'member-finished', result };
      }

      if (o.waitBetweenMs > 0 && i < toDefrag.length - 1 && (!failed || o.continueOnError)) {
        yield { type: 'pause', ms: o.waitBetweenMs };
        await sleepFor(o.waitBetweenMs, undefined, { signal }).catch(() => {
          throw new AbortedError('interrupted');
        });
      }
    }

    if (deps.policy.disarmNospace && failed) {
      disarmNote = 'NOSPACE not disarmed: the run did not complete';
    } else if (deps.policy.disarmNospace) {
      const snap = await deps.observe(signal);
      const nospace = snap.alarms.filter((a) => a.alarm === 'NOSPACE');
      if (snap.alarmsError !== null) {
        disarmNote = `NOSPACE not disarmed: the alarm list could not be read (${snap.alarmsError})`;
        failed = true;
        yield { type: 'disarm-skipped', reason: disarmNote };
      } else if (nospace.length > 0) {
        const check = checkDisarm(snap, deps.policy.disarmBelow);
        if (!check.ok) {
          disarmNote = `NOSPACE left armed: ${check.blockers.map((b) => b.reason ?? `${b.name || b.memberId} dbSize ${formatBytes(b.dbSize)} is not under ${formatBytes(b.limit)}`).join('; ')}` +
            (deps.policy.compactKeepRevisions === null ? '; defragmentation alone cannot free more: add --compact-keep-revisions N to compact old revisions first' : '');
          // NOSPACE was asked to go and stays: the cluster still refuses writes, so the run did not do its job.
          failed = true;
          stopMessage = disarmNote;
          yield { type: 'disarm-skipped', reason: disarmNote };
        } else {
          const via = leaderOrHealthyVoter(snap);
          if (!via) {
            disarmNote = 'NOSPACE not disarmed: no voting member answered';
            failed = true;
            yield { type: 'disarm-skipped', reason: disarmNote };
          } else {
            const mc = deps.client.member(via.endpoint);
            for (const a of nospace) await mc.alarmDisarm(a.memberId, 'NOSPACE', call);
            const left = (await mc.alarmList(call)).filter((a) => a.alarm === 'NOSPACE');
            if (left.length > 0) {
              disarmNote = `NOSPACE is still raised on ${left.map((a) => a.memberId).join(', ')} after disarming`;
              failed = true;
              yield { type: 'disarm-skipped', reason: disarmNote };
            } else {
              disarmed = true;
              yield { type: 'alarm-disarmed', alarms: nospace };
            }
          }
        }
      }
    }
  } catch (err) {
    if (!(err instanceof DefragdError)) throw err;
    failed = true;
    stopMessage = err instanceof AbortedError ? 'interrupted: stopped after the current step' : err.message;
    const done = new Set(results.map((r) => r.memberId));
    for (const d of toDefrag) if (!done.has(d.memberId)) results.push(skipped(d, `not attempted: ${stopMessage}`));
  }

  const anyDefragmented = results.some((r) => r.action === 'defragmented');
  const report = finish(failed ? 'failed' : anyDefragmented || disarmed ? 'success' : 'nothing-to-do');
  yield { type: 'run-finished', report };
  return report;
}

/** Revision to compact to: the newest revision any member reports, minus keep; null when that is not above 0. */
function compactionRevision(snap: ClusterSnapshot, keep: number): number | null {
  const newest = Math.max(0, ...snap.members.map((m) => m.status?.revision ?? 0));
  const r = newest - keep;
  return r > 0 ? r : null;
}

/** Polls the cluster until pred holds; throws DefragdError('timeout') with what was awaited. */
async function waitFor(deps: ExecuteDeps, o: Required<Pick<ExecuteOptions, 'pollIntervalMs'>>, signal: AbortSignal | undefined, pred: (s: ClusterSnapshot) => boolean, timeoutMs: number, what: string): Promise<ClusterSnapshot> {
  const now = deps.now ?? Date.now;
  const deadline = now() + timeoutMs;
  for (;;) {
    const snap = await deps.observe(signal, { light: true });
    if (pred(snap)) return snap;
    if (now() >= deadline) throw new DefragdError('timeout', `gave up waiting ${formatDuration(timeoutMs)} for ${what}`);
    await sleepFor(o.pollIntervalMs, undefined, { signal }).catch(() => {
      throw new AbortedError('interrupted');
    });
  }
}

/**
 * After a passed deadline: wait until the member answers Status again and,
 * where /metrics is reachable, etcd_disk_defrag_inflight is back to 0.
 */
async function waitForDefragEnd(deps: ExecuteDeps, member: MemberSnapshot, o: Resolved, signal: AbortSignal | undefined): Promise<void> {
  const now = deps.now ?? Date.now;
  const deadline = now() + o.deadlineRecoveryMs;
  const mc = deps.client.member(member.endpoint);
  while (now() < deadline) {
    const [status, gauges] = await Promise.all([
      mc.status({ timeoutMs: 2_000, signal }).then(() => true, () => false),
      fetchGauges(member.endpoint, [METRIC_DEFRAG_INFLIGHT], deps.client.context.httpTls, { timeoutMs: 2_000, signal }),
    ]);
    const inflight = gauges?.get(METRIC_DEFRAG_INFLIGHT);
    if (status && (inflight === undefined || inflight === 0)) return;
    await sleepFor(o.pollIntervalMs * 4, undefined, { signal }).catch(() => {
      throw new AbortedError('interrupted');
    });
  }
  throw new DefragdError('timeout', `${member.name || member.endpoint} did not answer within ${formatDuration(o.deadlineRecoveryMs)} after its defragment deadline passed`);
}

/**
 * The result of a member whose turn was interrupted after its Defragment was
 * sent: one best-effort Status (no abort: the run is already stopping) tells
 * whether it shrank.
 */
async function interrupted(
  deps: ExecuteDeps,
  planned: MemberDecision,
  member: MemberSnapshot,
  r: Pick<MemberResult, 'wasLeader' | 'movedLeaderTo' | 'durationMs' | 'revision' | 'deadlinePassed'> & { before: Sizes },
): Promise<MemberResult> {
  const st = await deps.client.member(member.endpoint).status({ timeoutMs: 2_000 }).catch(() => null);
  const after = st ? { dbSize: st.dbSize, dbSizeInUse: st.dbSizeInUse } : null;
  const shrank = after !== null && after.dbSize < r.before.dbSize;
  return {
    ...skipped(planned, ''),
    ...r,
    action: shrank ? 'defragmented' : 'failed',
    reason: shrank ? 'interrupted after its defragmentation finished; not waited for to catch up' : 'interrupted; its defragmentation did not complete',
    after,
    revision: r.revision ?? st?.header.revision ?? null,
  };
}

/** Names of members whose /metrics say a defrag is running now (members without reachable metrics are not counted). */
async function defragsInFlight(deps: ExecuteDeps, snap: ClusterSnapshot, signal: AbortSignal | undefined): Promise<string[]> {
  const reachable = snap.members.filter((m) => m.reachable && m.endpoint);
  const gauges = await Promise.all(reachable.map((m) => fetchGauges(m.endpoint, [METRIC_DEFRAG_INFLIGHT], deps.client.context.httpTls, { timeoutMs: 2_000, signal })));
  return reachable.filter((_, i) => (gauges[i]?.get(METRIC_DEFRAG_INFLIGHT) ?? 0) > 0).map((m) => m.name || m.endpoint);
}

const memberOf = (s: ClusterSnapshot, id: string) => s.members.find((m) => m.memberId === id);
const voterCount = (s: ClusterSnapshot) => s.members.filter((m) => !m.isLearner).length;
const label = (d: MemberDecision) => d.name || d.endpoint;

function describeUnhealthy(m: MemberSnapshot): string {
  if (!m.reachable) return `unreachable (${m.error ?? 'no answer'})`;
  const bad = m.alarms.filter((a) => a !== 'NOSPACE');
  if (bad.length > 0) return `alarmed (${bad.join(', ')})`;
  return `unhealthy (${m.error ?? 'health read failed'})`;
}

function skipped(d: MemberDecision, reason: string): MemberResult {
  return { endpoint: d.endpoint, memberId: d.memberId, name: d.name, action: 'skipped', reason, wasLeader: d.isLeader, movedLeaderTo: null, before: null, after: null, durationMs: null, revision: null, deadlinePassed: false };
}

function failure(d: MemberDecision, reason: string, wasLeader: boolean): MemberResult {
  return { ...skipped(d, reason), action: 'failed', wasLeader };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}


function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
