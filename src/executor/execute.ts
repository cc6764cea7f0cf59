/**
 * Executes a Plan, one member at a time, as a stream of StepEvents.
 *
 * The executor decides nothing about the cluster: before every member it
 * observes again and asks the planner (planTurn) what to do with it, hands
 * leadership away when told, looks once more right before the Defragment,
 * and does what it is told. A Defragment is never sent twice: when it gets no
 * answer (deadline passed, connection lost), etcd may go on, so the executor
 * waits, bounded, for the member to answer again and records what it finds.
 *
 * The phases (compaction, one member's turn, the leader hand-over, disarm)
 * are generators composed with `yield*`; the ReportBuilder owns the results.
 */
import type { MemberDecision, Plan, Policy, Turn } from '../domain/plan.js';
import type { MemberResult, RunReport, Sizes, StepEvent } from '../domain/run.js';
import type { ClusterAlarm, ClusterSnapshot } from '../domain/snapshot.js';
import { AbortedError, ConnectionError, DeadlineError, DefragdError, etcdReason, messageOf } from '../domain/errors.js';
import { formatDuration } from '../domain/format.js';
import {
  afterDefrag,
  catchUpTarget,
  compactionRevision,
  describeMembers,
  disarmDecision,
  hasCaughtUp,
  leaderOf,
  leaderOrHealthyVoter,
  leadershipMovedAway,
  leads,
  memberById,
  planTurn,
  shortName,
  unfitVoters,
  votersDown,
} from '../planner/index.js';
import { resolveExecuteOptions, type ExecuteOptions, type ResolvedExecuteOptions } from './options.js';
import { disarmAlarms } from './disarm.js';
import type { ClusterPort, UrlAnswer } from './port.js';
import { skippedResult } from '../domain/results.js';
import { failedResult, ReportBuilder } from './report-builder.js';
import { pause, waitFor, waitForDefragEnd, type WaitDeps } from './wait.js';
import { memberName } from '../domain/member-name.js';

/** What every phase of one run shares. */
interface Run {
  readonly port: ClusterPort;
  readonly policy: Policy;
  readonly o: ResolvedExecuteOptions;
  readonly rec: ReportBuilder;
  readonly now: () => number;
  readonly signal: AbortSignal | undefined;
  readonly wait: WaitDeps;
  /** Members already unfit at the start (--skip-health-check let the run go ahead without them). */
  readonly unfitAtStart: readonly string[];
  /** Each member's etcd defrag count at the last in-flight check, by member ID: a rise this run did not cause is someone else's. */
  readonly counts: Map<string, { name: string; endpoint: string; count: number }>;
  /** Members this run sent a Defragment to since the last in-flight check. */
  readonly ownSince: Set<string>;
}

/**
 * Runs a plan. Consume the events; the last one is always `run-finished`
 * with the report, which is also the generator's return value.
 *
 * @example
 * for await (const e of executePlan(plan, port, policy, {}, signal)) {
 *   if (e.type === 'member-finished') console.log(e.result.name, e.result.action);
 * }
 */
export async function* executePlan(
  plan: Plan,
  port: ClusterPort,
  policy: Policy,
  options: ExecuteOptions & { now?: () => number } = {},
  signal?: AbortSignal,
): AsyncGenerator<StepEvent, RunReport> {
  const o = resolveExecuteOptions(options);
  const now = options.now ?? Date.now;
  const startedAt = new Date(now()).toISOString();
  const rec = new ReportBuilder(plan, startedAt, now);

  yield { type: 'run-started', at: startedAt, plan };
  if (plan.refusal) {
    rec.refuse(plan.refusal.reason);
    return yield* finish(rec);
  }
  for (const message of plan.warnings) yield { type: 'warning', message };

  const toDefrag = plan.decisions.filter((d) => d.action === 'defragment');
  for (const d of plan.decisions.filter((x) => x.action === 'skip')) yield rec.skip(d, d.reason);

  const run: Run = {
    port,
    policy,
    o,
    rec,
    now,
    signal,
    wait: { port, now, pollIntervalMs: o.pollIntervalMs, firstPollMs: o.firstPollMs },
    unfitAtStart: plan.decisions.filter((d) => d.code === 'unreachable').map((d) => d.memberId),
    counts: new Map(),
    ownSince: new Set(),
  };
  try {
    // The cluster's clients (--wait-for-url) are asked before anything is changed, compaction included.
    const first = toDefrag[0];
    const go = first === undefined || (yield* readyBefore(run, first, toDefrag.slice(1))) === 'next';
    if (go && plan.compaction) yield* compactPhase(run, plan.compaction.keepRevisions);
    for (let i = 0; go && i < toDefrag.length; i++) {
      const planned = toDefrag[i] as MemberDecision;
      if (signal?.aborted) throw new AbortedError('interrupted');
      if (rec.failed && !o.continueOnError) {
        rec.notAttempted([planned], 'an earlier member failed');
        continue;
      }
      if (i > 0 && (yield* readyBefore(run, planned, toDefrag.slice(i + 1))) === 'stop') break;
      if ((yield* memberTurn(run, planned, i, toDefrag)) === 'stop') break;
      if (o.waitBetweenMs > 0 && i < toDefrag.length - 1 && (!rec.failed || o.continueOnError)) {
        yield { type: 'pause', ms: o.waitBetweenMs };
        await pause(o.waitBetweenMs, signal);
      }
    }
    const tFinish = now();
    // Someone else's defrag that ended after the last member's check (an etcdctl run beside this one) is told too.
    if (run.ownSince.size > 0) for (const w of await foreignDefrags(run)) yield rec.warn(w);
    if (policy.disarmNospace) yield* disarmPhase(run);
    rec.finishTook(now() - tFinish);
  } catch (err) {
    if (!(err instanceof DefragdError)) throw err;
    const rest = toDefrag.filter((d) => !rec.has(d.memberId));
    const lockLost = signal?.reason instanceof DefragdError && !(signal.reason instanceof AbortedError) ? signal.reason : null;
    if (err instanceof AbortedError && lockLost === null) rec.interrupt('interrupted: stopped after the current step', rest);
    else rec.stop(lockLost ? `${lockLost.message}; stopped after the current step` : err.message, rest);
  }
  return yield* finish(rec);
}

async function* finish(rec: ReportBuilder): AsyncGenerator<StepEvent, RunReport> {
  const report = rec.report();
  yield { type: 'run-finished', report };
  return report;
}

// --- Compaction -------------------------------------------------------------

async function* compactPhase(run: Run, keepRevisions: number): AsyncGenerator<StepEvent, void> {
  const snap = await run.port.observe({ signal: run.signal });
  const revision = compactionRevision(snap, keepRevisions);
  if (revision === null) return;
  yield { type: 'compaction-started', revision, keepRevisions };
  const t0 = run.now();
  const via = leaderOrHealthyVoter(snap);
  if (!via) throw new DefragdError('failed', 'no leader and no healthy member to send the compaction to; nothing was changed');
  let note: string | null = null;
  try {
    // Compaction is replicated through raft; physical waits until every bucket is compacted on this member.
    await run.port.compact(via.endpoint, revision, { timeoutMs: run.o.compactTimeoutMs, signal: run.signal });
    run.rec.compacted(revision);
  } catch (err) {
    if (etcdReason(err) !== 'compacted') throw err;
    note = `revision ${revision} was already compacted`;
  }
  yield { type: 'compaction-finished', revision, durationMs: run.now() - t0, note };
}

// --- The cluster's clients (--wait-for-url) ----------------------------------

/** The longest pause between two checks of unready URLs; the first is 100 ms, each next one doubles. */
const READY_POLL_MAX_MS = 1_000;

/** "https://a:6443/readyz (500: [-]etcd failed), https://b:6443/readyz (connection refused)" */
function describeAnswers(answers: readonly UrlAnswer[]): string {
  return answers.map((a) => `${a.url} (${a.detail})`).join(', ');
}

/**
 * Before `planned` (the first member, before anything is changed, or the next one): waits until every
 * readiness URL answers 200. When one has not within the limit, the run stops before that member with
 * what each answered last. A wait is told as it starts (member-waiting) and, when it ends, as a
 * warning: the cluster's clients noticed the member before, and the report should say so.
 */
async function* readyBefore(run: Run, planned: MemberDecision, rest: readonly MemberDecision[]): AsyncGenerator<StepEvent, Next> {
  const gate = run.o.readiness;
  if (gate === null || gate.urls.length === 0) return 'next';
  const t0 = run.now();
  let unready = (await gate.check(run.signal)).filter((a) => !a.ready);
  if (unready.length === 0) return 'next';
  const firstSeen = describeAnswers(unready);
  let delay = 100;
  for (let asked = 1; unready.length > 0; asked++) {
    const final = unready.filter((a) => a.final);
    if (final.length > 0) return yield* notReady(run, planned, rest, final, 'which waiting does not change');
    if (asked === 1) {
      const what = `${unready.map((a) => a.url).join(', ')} to answer 200 (${unready.map((a) => a.detail).join('; ')})`;
      yield waiting(run, planned, what, gate.timeoutMs);
    }
    const left = t0 + gate.timeoutMs - run.now();
    if (left <= 0) return yield* notReady(run, planned, rest, unready, `not ready for ${formatDuration(gate.timeoutMs)}`);
    await pause(Math.min(delay, left), run.signal);
    delay = Math.min(delay * 2, READY_POLL_MAX_MS);
    unready = (await gate.check(run.signal)).filter((a) => !a.ready);
  }
  yield run.rec.warn(`waited ${formatDuration(run.now() - t0)} before ${nameOfDecision(planned)} until ${firstSeen} answered 200`);
  return 'next';
}

/** Stops the run before `planned` because of what the URLs answered. */
function* notReady(
  run: Run,
  planned: MemberDecision,
  rest: readonly MemberDecision[],
  answers: readonly UrlAnswer[],
  why: string,
): Generator<StepEvent, Next> {
  const message = why.startsWith('which')
    ? `stopped before ${nameOfDecision(planned)}: ${describeAnswers(answers)}, ${why}`
    : `stopped before ${nameOfDecision(planned)}: ${why}: ${describeAnswers(answers)}`;
  run.rec.put(skippedResult(planned, `not attempted: ${message}`));
  yield run.rec.stop(message, rest);
  return 'stop';
}

// --- One member's turn ------------------------------------------------------

type Next = 'next' | 'stop';

/** Floor of the default wait for a member whose Defragment got no answer. */
export const MIN_RECOVERY_MS = 60_000;

const nameOfDecision = (d: MemberDecision) => memberName(d);

/** Acts on a turn that is not "defragment": stop the run, skip the member, or fail it. */
function* notDefragmenting(
  run: Run,
  planned: MemberDecision,
  turn: Exclude<Turn, { action: 'defragment' }>,
  rest: readonly MemberDecision[],
  extra: Partial<MemberResult>,
): Generator<StepEvent, Next> {
  switch (turn.action) {
    case 'stop': {
      const message = `stopped before ${nameOfDecision(planned)}: ${turn.reason}`;
      run.rec.put({ ...skippedResult(planned, `not attempted: ${message}`), ...extra });
      yield run.rec.stop(message, rest);
      return 'stop';
    }
    case 'skip':
      yield run.rec.skip(planned, turn.reason, turn.decision ?? planned);
      return 'next';
    case 'fail':
      yield run.rec.finish(failedResult(planned, turn.reason, extra));
      return 'next';
  }
}

/**
 * A look at the cluster before a member's Defragment. When no member answers it (an election after a
 * leader died, the network), the run stops before that member, and the message says so.
 */
async function lookBefore(planned: MemberDecision, look: Promise<ClusterSnapshot>): Promise<ClusterSnapshot> {
  try {
    return await look;
  } catch (err) {
    if (!(err instanceof DefragdError) || err instanceof AbortedError) throw err;
    throw new DefragdError(err.kind, `stopped before ${nameOfDecision(planned)}: ${err.message}`, { cause: err });
  }
}

function observeNoted(run: Run, snap: ClusterSnapshot): ClusterSnapshot {
  run.rec.noteHealth(snap, new Set(unfitVoters(snap).map((m) => m.memberId)));
  return snap;
}

function waiting(run: Run, planned: MemberDecision, what: string, limitMs: number): StepEvent {
  return { type: 'member-waiting', memberId: planned.memberId, name: planned.name, what, at: new Date(run.now()).toISOString(), limitMs };
}

/**
 * How long a member whose Defragment got no answer is waited for: --recovery-timeout, else as long
 * as its defrag deadline, and never less than MIN_RECOVERY_MS (a short deadline says nothing of how
 * long etcd keeps going).
 */
function recoveryLimitMs(run: Run, defragTimeoutMs: number): number {
  return run.o.recoveryTimeoutMs ?? Math.max(defragTimeoutMs, MIN_RECOVERY_MS);
}

async function* memberTurn(
  run: Run,
  planned: MemberDecision,
  index: number,
  toDefrag: readonly MemberDecision[],
): AsyncGenerator<StepEvent, Next> {
  const { port, policy, rec, signal, now } = run;
  const id = planned.memberId;
  const rest = toDefrag.slice(index + 1);
  const turnStart = now();

  let snap = observeNoted(run, await lookBefore(planned, port.observe({ signal })));
  let turn = planTurn(snap, policy, id, { unfitAtStart: run.unfitAtStart, leaderMoved: false });
  const wasLeader = leads(snap, id);
  if (turn.action !== 'defragment') return yield* notDefragmenting(run, planned, turn, rest, { wasLeader });
  // The decision (rule result, reason) of this turn; the last look below checks safety only.
  const decision = turn.decision;

  let movedLeaderTo: string | null = null;
  let leaderMoveMs = 0;
  if (turn.moveLeaderTo !== null) {
    const tMove = now();
    const moved = yield* handOver(run, planned, turn.endpoint, turn.moveLeaderTo, snap);
    leaderMoveMs = now() - tMove;
    if (typeof moved === 'string') {
      yield rec.finish(failedResult(planned, moved, { wasLeader }));
      // A hand-over often fails because a voter (the transferee) went down: say so rather than only "deadline exceeded".
      return yield* stopIfVoterDown(run, planned, observeNoted(run, await port.observe({ light: true, signal })), rest);
    }
    snap = moved;
    movedLeaderTo = leaderOf(snap);
  }

  // Both right before the Defragment, asked at once (neither changes the cluster): whether another tool (or a
  // run without the lock) is defragmenting a member right now (never add a second), and, as late as possible,
  // voters, membership and leadership once more.
  // When another defrag is in flight the run stops at once, as it always did, without waiting for the last look.
  const lastLook = port.observe({ light: true, signal });
  lastLook.catch(() => undefined);
  // (A Status to a member being defragmented waits until it finishes: the planner is asked on the snapshot in hand.)
  const { busy, foreign } = await defragsInFlight(run, snap);
  for (const w of foreign) yield rec.warn(w);
  if (busy.length > 0) {
    turn = planTurn(snap, policy, id, { unfitAtStart: run.unfitAtStart, leaderMoved: movedLeaderTo !== null, busy });
    if (turn.action !== 'defragment') return yield* notDefragmenting(run, planned, turn, rest, { wasLeader, movedLeaderTo });
  }
  snap = observeNoted(run, await lookBefore(planned, lastLook));
  turn = planTurn(snap, policy, id, { unfitAtStart: run.unfitAtStart, leaderMoved: movedLeaderTo !== null, safetyOnly: true });
  if (turn.action !== 'defragment') return yield* notDefragmenting(run, planned, turn, rest, { wasLeader, movedLeaderTo });

  const { before, timeoutMs, endpoint } = turn;
  yield { type: 'member-started', decision, before, timeoutMs, index: index + 1, total: toDefrag.length };
  run.ownSince.add(id);
  const t0 = now();
  const timingsSoFar = {
    memberId: id,
    name: planned.name,
    turnStartedAt: new Date(turnStart).toISOString(),
    checksMs: t0 - turnStart - leaderMoveMs,
    leaderMoveMs,
    defragmentStartedAt: new Date(t0).toISOString(),
  };
  const base = { wasLeader, movedLeaderTo, before };
  let revision: number | null = null;
  let noAnswer: 'deadline' | 'connection-lost' | null = null;
  try {
    // Not cancelled by the run's signal: a stop lets the current member finish. A Defragment the client
    // cuts short may or may not run on the server, on every version (measured on 3.4-3.7, either way
    // for the same call), which would leave the member's fate to chance; a second signal exits at once.
    revision = (await port.defragment(endpoint, { timeoutMs })).revision || null;
  } catch (err) {
    if (err instanceof DeadlineError || err instanceof ConnectionError) {
      // Neither says anything of the server: it may be defragmenting still.
      noAnswer = err instanceof DeadlineError ? 'deadline' : 'connection-lost';
      yield { type: 'member-no-answer', memberId: id, name: planned.name, why: noAnswer, timeoutMs, detail: err.message };
    } else {
      yield rec.finish(failedResult(planned, `defragment failed: ${messageOf(err)}`, { ...base, durationMs: now() - t0 }));
      return 'next';
    }
  }
  const deadlinePassed = noAnswer === 'deadline';
  const connectionLost = noAnswer === 'connection-lost';

  if (noAnswer !== null) {
    const limitMs = recoveryLimitMs(run, timeoutMs);
    yield waiting(
      run,
      planned,
      deadlinePassed
        ? 'etcd to finish the defragmentation it kept running after the deadline'
        : 'the member to answer again (the connection was lost during its defragmentation)',
      limitMs,
    );
    let back: boolean;
    try {
      back = await waitForDefragEnd(run.wait, endpoint, limitMs, signal);
    } catch (err) {
      yield rec.finish(
        await interruptedResult(run, planned, endpoint, { ...base, durationMs: now() - t0, revision, deadlinePassed, connectionLost }),
      );
      throw err;
    }
    if (!back) {
      const what = deadlinePassed
        ? 'after its defragment deadline passed'
        : 'after the connection was lost during its defragmentation (is it running?)';
      const reason = `${nameOfDecision(planned)} did not answer within ${formatDuration(limitMs)} ${what}; not retried`;
      yield rec.finish(failedResult(planned, reason, { ...base, durationMs: now() - t0, deadlinePassed, connectionLost }));
      // Whatever became of it, the cluster may be short of a voter: take no other member out.
      yield rec.stop(reason, rest);
      return 'stop';
    }
  }
  const durationMs = now() - t0;
  const tAnswered = now();

  // Catch-up: the member answers a linearizable read and has applied what the leader had committed.
  yield waiting(run, planned, 'the member to catch up with the leader', run.o.catchUpTimeoutMs);
  let caught: ClusterSnapshot;
  let after: Sizes | null = null;
  try {
    let target: number | null = null;
    caught = await waitFor(
      run.wait,
      signal,
      (s) => {
        if (!hasCaughtUp(s, id, 0)) return false;
        target ??= catchUpTarget(s);
        return target !== null && hasCaughtUp(s, id, target);
      },
      run.o.catchUpTimeoutMs,
      `${nameOfDecision(planned)} to catch up`,
    );
    const st = memberById(caught, id)?.status;
    if (st) after = { dbSize: st.dbSize, dbSizeInUse: st.dbSizeInUse };
    // etcd 3.4 leaves the Defragment response header empty; the member's revision right after is the next best.
    if (!revision && st) revision = st.revision;
  } catch (err) {
    if (err instanceof AbortedError) {
      // The Defragment itself answered: record it before stopping, or the report would say "not attempted".
      yield rec.finish(await interruptedResult(run, planned, endpoint, { ...base, durationMs, revision, deadlinePassed, connectionLost }));
      throw err;
    }
    rec.timed({ ...timingsSoFar, catchUpMs: null });
    yield rec.finish(failedResult(planned, messageOf(err), { ...base, durationMs, revision, deadlinePassed, connectionLost }));
    return 'next';
  }
  const catchUpMs = now() - tAnswered;
  observeNoted(run, caught);

  const verdict = afterDefrag({
    noAnswer,
    shrank: after !== null && after.dbSize < before.dbSize,
    timeoutMs,
    movedTo: movedLeaderTo && shortName(caught, movedLeaderTo),
    leadsAgain: movedLeaderTo !== null && leads(caught, id),
    planned: decision.reason,
  });
  const result: MemberResult = {
    endpoint,
    memberId: id,
    name: planned.name,
    action: verdict.action,
    reason: verdict.reason,
    wasLeader,
    movedLeaderTo,
    before,
    after,
    durationMs,
    revision,
    deadlinePassed,
    connectionLost,
  };
  rec.timed({ ...timingsSoFar, catchUpMs });
  yield rec.finish(result);

  // After each member, every voter must still be there: never report success with a voter down.
  return yield* stopIfVoterDown(run, planned, caught, rest);
}

/** Stops the run, naming them and since when, when a voter (other than those unfit at the start) is down in `snap`. */
function* stopIfVoterDown(
  run: Run,
  planned: MemberDecision,
  snap: ClusterSnapshot,
  rest: readonly MemberDecision[],
): Generator<StepEvent, Next> {
  const down = votersDown(snap, run.unfitAtStart);
  if (down.length === 0) return 'next';
  const since = down.map((m) => `${memberName(m)}: ${run.rec.since(m.memberId)}`).join('; ');
  yield run.rec.stop(`after ${nameOfDecision(planned)}: ${describeMembers(snap, down)} (${since})`, rest);
  return 'stop';
}

/**
 * Hands leadership from the member at `leaderEndpoint` to `targetId` and
 * waits until the move is seen. Returns the snapshot that shows it, or why
 * it failed (a sentence).
 */
async function* handOver(
  run: Run,
  planned: MemberDecision,
  leaderEndpoint: string,
  targetId: string,
  snap: ClusterSnapshot,
): AsyncGenerator<StepEvent, ClusterSnapshot | string> {
  const targetName = shortName(snap, targetId);
  yield { type: 'leader-move-started', from: planned.memberId, fromName: planned.name, to: targetId, toName: targetName };
  const t0 = run.now();
  let moved: ClusterSnapshot;
  try {
    // MoveLeader must be sent to the current leader.
    await run.port.moveLeader(leaderEndpoint, targetId, { signal: run.signal });
    moved = await waitFor(
      run.wait,
      run.signal,
      (s) => leadershipMovedAway(s, planned.memberId),
      run.o.leaderMoveTimeoutMs,
      'leadership to move',
    );
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    return `moving leadership to ${targetName} failed: ${messageOf(err)}`;
  }
  yield { type: 'leader-move-finished', from: planned.memberId, to: leaderOf(moved) as string, durationMs: run.now() - t0 };
  return moved;
}

/**
 * The result of a member whose turn was interrupted after its Defragment was
 * sent: one best-effort Status (no abort: the run is already stopping) tells
 * whether it shrank.
 */
async function interruptedResult(
  run: Run,
  planned: MemberDecision,
  endpoint: string,
  r: Pick<MemberResult, 'wasLeader' | 'movedLeaderTo' | 'durationMs' | 'revision' | 'deadlinePassed' | 'connectionLost'> & {
    before: Sizes;
  },
): Promise<MemberResult> {
  const st = await run.port.status(endpoint, { timeoutMs: 2_000 }).catch(() => null);
  const after = st ? { dbSize: st.dbSize, dbSizeInUse: st.dbSizeInUse } : null;
  const shrank = after !== null && after.dbSize < r.before.dbSize;
  return {
    ...skippedResult(planned, ''),
    ...r,
    endpoint,
    action: shrank ? 'defragmented' : 'failed',
    reason: shrank
      ? 'interrupted after its defragmentation finished; not waited for to catch up'
      : 'interrupted; its defragmentation did not complete',
    after,
    revision: r.revision ?? st?.revision ?? null,
  };
}

/** Names of members whose /metrics say a defrag is running now (members whose metrics cannot be read are not counted). */
async function defragsInFlight(run: Run, snap: ClusterSnapshot): Promise<{ busy: string[]; foreign: string[] }> {
  const reachable = snap.members.filter((m) => m.reachable && m.endpoint);
  const gauges = await Promise.all(reachable.map((m) => run.port.defragGauges(m.endpoint, { timeoutMs: 2_000, signal: run.signal })));
  const foreign = countDefrags(
    run,
    reachable.map((m, i) => ({ memberId: m.memberId, name: memberName(m), endpoint: m.endpoint, count: gauges[i]?.count ?? null })),
  );
  return { busy: reachable.filter((_, i) => (gauges[i]?.inflight ?? 0) > 0).map((m) => memberName(m)), foreign };
}

/** The members' defrag counts once more, after the last member: what someone else did meanwhile. */
async function foreignDefrags(run: Run): Promise<string[]> {
  const known = [...run.counts.entries()];
  const gauges = await Promise.all(known.map(([, m]) => run.port.defragGauges(m.endpoint, { timeoutMs: 2_000, signal: run.signal })));
  return countDefrags(
    run,
    known.map(([memberId, m], i) => ({ memberId, name: m.name, endpoint: m.endpoint, count: gauges[i]?.count ?? null })),
  );
}

/**
 * Compares each member's etcd defrag count with the last check: a rise beyond the Defragments this run
 * sent since is someone else's (etcdctl, another tool, a run without the lock), and while it ran the
 * cluster had a member fewer, perhaps two out at once. Returns the warnings; remembers the counts.
 */
function countDefrags(run: Run, members: { memberId: string; name: string; endpoint: string; count: number | null }[]): string[] {
  const warnings: string[] = [];
  for (const m of members) {
    if (m.count === null) continue;
    const previous = run.counts.get(m.memberId)?.count;
    const ours = run.ownSince.has(m.memberId) ? 1 : 0;
    // A count that went down: the member restarted (the count is its process's).
    if (previous !== undefined && m.count - previous > ours) {
      warnings.push(
        `${m.name} was defragmented by someone else during this run (etcd's defrag count rose from ${previous} to ${m.count}` +
          `${ours > 0 ? ', one of them this run' : ''}): while it was, it served nothing, and it may have been out at the same time as a member this run defragmented; let one tool defragment this cluster`,
      );
    }
    run.counts.set(m.memberId, { name: m.name, endpoint: m.endpoint, count: m.count });
    // A member whose count could not be read keeps its own Defragment for the next comparison.
    run.ownSince.delete(m.memberId);
  }
  return warnings;
}

// --- NOSPACE ----------------------------------------------------------------

async function* disarmPhase(run: Run): AsyncGenerator<StepEvent, void> {
  const { port, rec, signal, policy } = run;
  if (rec.failed) {
    rec.disarm({ disarmed: false, note: 'NOSPACE not disarmed: the run did not complete', fails: false });
    return;
  }
  const snap = await port.observe({ signal });
  const decision = disarmDecision(snap, policy.disarmBelow, policy.compactKeepRevisions !== null);
  const refuse = (note: string): StepEvent => {
    // NOSPACE was asked to go and stays: the cluster still refuses writes, so the run did not do its job.
    rec.disarm({ disarmed: false, note, fails: true });
    return { type: 'disarm-skipped', reason: note };
  };
  if (decision.blocked !== null) {
    yield refuse(decision.blocked);
    return;
  }
  if (decision.alarms.length === 0) return;
  let left: ClusterAlarm[];
  try {
    left = (await disarmAlarms(port, snap, decision.alarms, signal)).remaining.filter((a) => a.alarm === 'NOSPACE');
  } catch (err) {
    if (err instanceof AbortedError || !(err instanceof DefragdError) || err.kind !== 'failed') throw err;
    yield refuse(`NOSPACE not disarmed: ${err.message}`);
    return;
  }
  if (left.length > 0) {
    yield refuse(`NOSPACE is still raised on ${left.map((a) => shortName(snap, a.memberId)).join(', ')} after disarming`);
    return;
  }
  rec.disarm({ disarmed: true });
  yield { type: 'alarm-disarmed', alarms: decision.alarms };
}
