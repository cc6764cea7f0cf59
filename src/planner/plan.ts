/**
 * The planner: ClusterSnapshot + Policy → Plan. This is where defragd's safety
 * rules live (quorum health, alarms, learners, the leader, order), so it is
 * pure — no I/O, no clock — and a dry run is just its output printed.
 *
 * The rules, in short:
 * - every voter must be reachable and healthy and no member may carry an
 *   alarm other than NOSPACE, or the run is refused (--skip-health-check skips
 *   unreachable/unhealthy members instead, but never overrides CORRUPT);
 * - learners are skipped: etcd rejects Defragment on them;
 * - followers go first, most reclaimable space first; the leader goes last,
 *   and only after leadership has been handed to a healthy voter, because a
 *   leader stalled by a defrag stalls lease renewals and writes cluster-wide;
 * - a member whose forecast defrag duration (from its own past throughput) is
 *   over maxDefragDuration is skipped: every request to it would block that long.
 */
import type { DecisionCode, MemberDecision, Plan, Policy, Refusal, RefusalCause, RefusalKind } from '../domain/plan.js';
import type { ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import { MiB } from '../domain/snapshot.js';
import { ruleVariables } from '../policy/rule.js';
import { formatBytes, formatDuration, formatPercent } from '../domain/format.js';
import {
  badAlarms,
  byName,
  chooseTransferee,
  currentRevision,
  healthProblem,
  isLearner,
  label,
  leaderOf,
  nameOf,
  nospaceRaised,
  problem,
  voters,
} from './cluster.js';
import { checkDisarm } from './disarm.js';
import { rationedBecause } from './leader-moves.js';
import { exceedsMaxDuration, forecastOrigin, memberForecast, type DurationForecast } from './forecast.js';
import { describeDefects, membersWithDefects, midUpgrade, refusesDefrag, stopGrpcNote } from './versions.js';
import { messageOf } from '../domain/errors.js';

/**
 * A defrag writes a compacted copy of the db (about dbSizeInUse) beside the old one before renaming it:
 * it needs that much free space, with a margin for bbolt's page overhead, plus room for etcd to cut a new
 * WAL segment (64 MB preallocated) while it runs. A full disk can take the member down.
 */
const DISK_MARGIN_PERCENT = 10;
const DISK_RESERVE_BYTES = 64 * MiB;

/** Free bytes a member's data dir needs before it is defragmented (whole bytes; no float rounding). */
export function diskNeededBytes(dbSizeInUse: number): number {
  return Math.ceil((dbSizeInUse * (100 + DISK_MARGIN_PERCENT)) / 100) + DISK_RESERVE_BYTES;
}

/** Floor of every defrag deadline: connection setup, a cold page cache, a slow disk. */
const BASE_TIMEOUT_MS = 60_000;
/** 1 s per 10 MiB in use: ~10x etcd's own "100 MB usually takes 1 sec", since a timed-out defrag cannot be retried. */
const TIMEOUT_MS_PER_BYTE = 1_000 / (10 * MiB);

/**
 * Deadline for one member's Defragment call: `override` when given, else 60 s
 * plus 1 s per 10 MiB in use, in whole milliseconds. Generous on purpose: the
 * server ignores the client's deadline, so a defrag that "times out" is still
 * running and must not be re-sent (field reports: 3.8 GB in use ~20 s, 8 GB
 * over 30 s).
 *
 * @example defragTimeoutMs(100 * MiB, null) // 70_000
 */
export function defragTimeoutMs(dbSizeInUse: number, override: number | null): number {
  if (override !== null) return override;
  const inUse = Number.isFinite(dbSizeInUse) && dbSizeInUse > 0 ? dbSizeInUse : 0;
  return Math.round(BASE_TIMEOUT_MS + inUse * TIMEOUT_MS_PER_BYTE);
}

/** The figures a rule reason shows. */
function figures(m: MemberSnapshot): string {
  const s = m.status;
  if (s === null) return 'no status';
  return `dbSize ${formatBytes(s.dbSize)}, dbSizeFree ${formatBytes(s.dbSizeFree)}, dbQuotaUsage ${formatPercent(s.quotaUsage)}`;
}

/** One member on its way to a decision: each step below may turn `defragment` off, with its code and reason. */
interface Draft {
  readonly member: MemberSnapshot;
  readonly isLeader: boolean;
  readonly forecast: DurationForecast;
  defragment: boolean;
  code: DecisionCode;
  reason: string;
  ruleResult: boolean | null;
  moveLeaderTo: string | null;
}

/** What a step found: refusals (the run must not start) and warnings (said, the run goes on), in the order found. */
interface Findings {
  refusals: RefusalCause[];
  warnings: string[];
}

const refuse = (f: Findings, kind: RefusalKind, text: string, memberId: string | null = null): void => {
  f.refusals.push({ kind, text, memberId });
};

// --- Preconditions ---------------------------------------------------------

/** Alarms other than NOSPACE (or alarms that cannot be read): no flag overrides them. */
function alarmPreconditions(snapshot: ClusterSnapshot, f: Findings): void {
  for (const m of snapshot.members) {
    const alarms = badAlarms(snapshot, m);
    if (alarms.length > 0) refuse(f, 'alarm', `${label(m)} has alarm ${alarms.join(', ')}`, m.memberId);
  }
  if (snapshot.alarmsError !== null && snapshot.members.some((m) => m.reachable)) {
    // Without the alarm list a CORRUPT member cannot be ruled out; no flag overrides that.
    refuse(f, 'alarms-unknown', `the alarm list could not be read (${snapshot.alarmsError}), so a CORRUPT alarm cannot be ruled out`);
  }
  const memberIds = new Set(snapshot.members.map((m) => m.memberId));
  for (const a of snapshot.alarms) {
    if (a.alarm !== 'NOSPACE' && !memberIds.has(a.memberId)) {
      refuse(f, 'alarm', `alarm ${a.alarm} is raised for ${a.memberId}, which is not in the member list`, a.memberId);
    }
  }
}

/** Every voter reachable and healthy, or skipped with a warning under --skip-health-check. */
function healthPreconditions(snapshot: ClusterSnapshot, policy: Policy, f: Findings): void {
  for (const m of voters(snapshot)) {
    const health = healthProblem(m);
    if (health === null) continue;
    if (policy.skipHealthCheck) f.warnings.push(`${label(m)} is ${health}: skipped (--skip-health-check)`);
    else refuse(f, 'unhealthy', `${label(m)} is ${health}`, m.memberId);
  }
}

/** A release whose defrag can break the member is refused unless the operator accepts it; the rest is said. */
function versionPreconditions(snapshot: ClusterSnapshot, policy: Policy, f: Findings): void {
  for (const d of membersWithDefects(snapshot)) {
    if (refusesDefrag(d) && !policy.allowKnownDefects) {
      refuse(f, 'known-defect', describeDefects(d), d.member.memberId);
    } else {
      f.warnings.push(describeDefects(d) + (refusesDefrag(d) ? ': going ahead (--allow-known-defects)' : ''));
    }
  }
  const upgrade = midUpgrade(snapshot);
  if (upgrade !== null) f.warnings.push(`${upgrade}; each member is defragmented as its own release does it`);
}

/** Defragment and MoveLeader need the root role: found out before anything is touched. */
function rolePreconditions(snapshot: ClusterSnapshot, f: Findings): void {
  const auth = snapshot.auth;
  if (auth?.roles && !auth.roles.includes('root')) {
    refuse(
      f,
      'no-root-role',
      `user ${auth.user} does not have the root role, which etcd requires for Defragment and MoveLeader (its roles: ${auth.roles.join(', ') || 'none'})`,
    );
  } else if (auth && auth.roles === null) {
    f.warnings.push(
      `the roles of user ${auth.user} could not be read (${auth.error ?? 'no answer'}); a missing root role would show only at the first Defragment`,
    );
  }
}

/** A leader the members agree on, or (--skip-health-check) the one that says it leads. */
function leaderPreconditions(snapshot: ClusterSnapshot, policy: Policy, leaderId: string | null, f: Findings): void {
  const agreedLeader = snapshot.leaderId === null ? undefined : snapshot.members.find((m) => m.memberId === snapshot.leaderId);
  if (agreedLeader !== undefined) return;
  const what = snapshot.leaderId === null ? 'no leader is known' : `the leader ${snapshot.leaderId} is not in the member list`;
  if (policy.skipHealthCheck) {
    const claimant = leaderId === null ? null : nameOf(snapshot, leaderId);
    f.warnings.push(
      `${what}: going ahead (--skip-health-check)` +
        (claimant ? `; ${claimant} says it leads and is treated as the leader` : '; no member can be treated as the leader'),
    );
  } else {
    refuse(f, 'no-leader', what);
  }
}

// --- One draft per member, then the checks that may turn it off -------------

/** What the rule (or its absence) says about a healthy voter. */
function ruleDraft(m: MemberSnapshot, isLeader: boolean, policy: Policy): Pick<Draft, 'defragment' | 'code' | 'reason' | 'ruleResult'> {
  if (policy.rule === null) {
    return { defragment: true, code: 'no-rule', reason: 'no rule: every voter is defragmented', ruleResult: null };
  }
  const vars = ruleVariables(m, { isLeader, isLearner: isLearner(m) });
  if (vars === null) {
    return { defragment: false, code: 'rule-error', reason: 'rule not evaluated: the member sent no status', ruleResult: null };
  }
  try {
    const result = policy.rule.evaluate(vars);
    return result
      ? { defragment: true, code: 'rule-true', reason: `rule is true (${figures(m)})`, ruleResult: true }
      : { defragment: false, code: 'rule-false', reason: `rule is false (${figures(m)})`, ruleResult: false };
  } catch (err) {
    return { defragment: false, code: 'rule-error', reason: messageOf(err), ruleResult: null };
  }
}

/** A learner is skipped (etcd refuses Defragment on it), an unfit member too; a fit voter goes by the rule. */
function memberDraft(snapshot: ClusterSnapshot, policy: Policy, leaderId: string | null, m: MemberSnapshot): Draft {
  const isLeader = m.memberId === leaderId;
  const forecast = memberForecast(
    policy.defragHistory === undefined ? undefined : (policy.defragHistory[m.memberId] ?? []),
    m.status?.dbSizeInUse ?? null,
  );
  const base = { member: m, isLeader, forecast, moveLeaderTo: null };
  if (isLearner(m))
    return { ...base, defragment: false, code: 'learner', reason: 'learner: etcd rejects Defragment on learners', ruleResult: null };
  const trouble = problem(snapshot, m);
  if (trouble !== null) return { ...base, defragment: false, code: 'unreachable', reason: trouble, ruleResult: null };
  return { ...base, ...ruleDraft(m, isLeader, policy) };
}

/** Free disk for the copy a defrag writes, where defragd can see the member's data dir. */
function checkDisk(drafts: readonly Draft[], f: Findings): void {
  for (const d of drafts) {
    const disk = d.member.disk;
    const s = d.member.status;
    if (!d.defragment || disk === undefined || s === null) continue;
    if (disk.freeBytes === null) {
      f.warnings.push(`free disk of ${label(d.member)} not checked: ${disk.path}: ${disk.error ?? 'unreadable'}`);
      continue;
    }
    const needed = diskNeededBytes(s.dbSizeInUse);
    if (disk.freeBytes < needed) {
      d.defragment = false;
      d.code = 'low-disk';
      d.reason =
        `not enough free disk for the copy a defrag writes: ${formatBytes(disk.freeBytes)} free in ${disk.path}, ` +
        `needs ${formatBytes(needed)} (${formatBytes(s.dbSizeInUse)} in use + 10% + 64 MiB for the WAL)`;
    }
  }
}

/**
 * A defrag blocks every request to the member for its whole duration: one expected to outlast
 * maxDefragDuration (e.g. kubeadm's liveness probe) is skipped. Before the leader's hand-over, so a
 * leader skipped for its duration keeps leading.
 */
function checkDuration(drafts: readonly Draft[], policy: Policy, f: Findings): void {
  const maxMs = policy.maxDefragDurationMs ?? null;
  if (maxMs === null) return;
  for (const d of drafts) {
    const { forecastMs, forecastBasis: basis } = d.forecast;
    if (!d.defragment || !exceedsMaxDuration(forecastMs, maxMs) || basis.source !== 'history') continue;
    d.defragment = false;
    d.code = 'over-max-duration';
    d.reason =
      `forecast ~${formatDuration(forecastMs ?? 0)} is over the max defrag duration ${formatDuration(maxMs)} ` +
      `(${forecastOrigin(d.member.status?.dbSizeInUse ?? 0, basis)}): every request to the member would block that long, ` +
      'long enough for a liveness probe to restart it';
  }
  if (policy.defragHistory === undefined) {
    f.warnings.push(
      `max defrag duration ${formatDuration(maxMs)} not applied: no defrag history was given (--store), so no duration can be forecast`,
    );
  } else {
    const unknown = drafts.filter((d) => d.defragment && d.forecast.forecastMs === null).map((d) => label(d.member));
    if (unknown.length > 0)
      f.warnings.push(`max defrag duration ${formatDuration(maxMs)} not applied to ${unknown.join(', ')}: no past defrag to forecast from`);
  }
}

/**
 * A deadline shorter than the forecast will pass: etcd goes on, defragd waits for the member and never
 * re-sends, but the run reports the member as failed. Said before, while the deadline can still be raised.
 */
function checkDeadlines(drafts: readonly Draft[], policy: Policy, f: Findings): void {
  for (const d of drafts) {
    const forecastMs = d.forecast.forecastMs;
    const timeoutMs = defragTimeoutMs(d.member.status?.dbSizeInUse ?? 0, policy.defragTimeoutMs);
    if (d.defragment && forecastMs !== null && forecastMs > timeoutMs) {
      f.warnings.push(
        `${label(d.member)} is expected to take ~${formatDuration(forecastMs)}, longer than its defrag deadline ${formatDuration(timeoutMs)}: ` +
          'the deadline would pass while etcd goes on (never re-sent); a longer --defrag-timeout (defrag.defragTimeout) fits it',
      );
    }
  }
}

/** A rule that fails is an error, never a silent "no": cron would never notice a broken rule. */
function ruleErrors(drafts: readonly Draft[], f: Findings): void {
  for (const d of drafts)
    if (d.code === 'rule-error') refuse(f, 'rule-error', `the rule failed for ${label(d.member)}: ${d.reason}`, d.member.memberId);
}

/** A NOSPACE recovery whose alarm is gone by now (someone else recovered the cluster) defragments nobody. */
function nospaceCleared(drafts: readonly Draft[], snapshot: ClusterSnapshot, policy: Policy): void {
  if (!policy.onlyWhileNospace || nospaceRaised(snapshot)) return;
  for (const d of drafts.filter((x) => x.defragment)) {
    d.defragment = false;
    d.code = 'nospace-cleared';
    d.reason = 'NOSPACE is no longer raised: the cluster was recovered since this recovery was decided';
  }
}

/** The leader goes last, after leadership has moved to a fit voter; never while it leads. */
function placeLeader(drafts: readonly Draft[], snapshot: ClusterSnapshot, policy: Policy, f: Findings): void {
  const leaderDraft = drafts.find((d) => d.isLeader && d.defragment);
  if (leaderDraft === undefined) return;
  const transferee = chooseTransferee(snapshot);
  const rationed = policy.leaderMoves === undefined ? null : rationedBecause(policy.leaderMoves);
  if (voters(snapshot).length === 1) {
    // Nobody else can lead: defragmenting it is the only way, and it stalls the cluster.
    leaderDraft.reason += '; the only voter: every read and write waits until it finishes';
    f.warnings.push(
      `${label(leaderDraft.member)} is the only voter: there is no member to hand leadership to, ` +
        'so the whole cluster stalls while it is defragmented',
    );
  } else if (!policy.moveLeader) {
    leaderDraft.defragment = false;
    leaderDraft.code = 'leader-no-move';
    leaderDraft.reason =
      `leader: --no-move-leader was given and a leader is never defragmented while it leads ` +
      '(its stall would hold up lease renewals and writes cluster-wide)';
  } else if (rationed !== null) {
    leaderDraft.defragment = false;
    leaderDraft.code = 'leader-move-rationed';
    leaderDraft.reason = `leader: ${rationed}, and a leader is never defragmented while it leads`;
  } else if (transferee === null) {
    leaderDraft.defragment = false;
    leaderDraft.code = 'leader-no-transferee';
    leaderDraft.reason =
      'leader: no other voter is healthy enough to take over leadership, ' + 'and a leader is never defragmented while it leads';
  } else {
    leaderDraft.moveLeaderTo = transferee;
    leaderDraft.reason += `; leadership moves to ${nameOf(snapshot, transferee)} first`;
  }
}

/** Followers by dbSizeFree, most first; the leader last; then the skipped. */
function inOrder(drafts: readonly Draft[]): Draft[] {
  const toDefrag = drafts.filter((d) => d.defragment);
  const followers = toDefrag
    .filter((d) => !d.isLeader)
    .sort((a, b) => (b.member.status?.dbSizeFree ?? -1) - (a.member.status?.dbSizeFree ?? -1) || byName(a.member, b.member));
  return [...followers, ...toDefrag.filter((d) => d.isLeader), ...drafts.filter((d) => !d.defragment)];
}

/** Physical compaction before the first defrag, when asked for and something will be defragmented. */
function planCompaction(snapshot: ClusterSnapshot, policy: Policy, anyToDefrag: boolean, f: Findings): Plan['compaction'] {
  if (policy.compactKeepRevisions === null || !anyToDefrag) return null;
  const keep = policy.compactKeepRevisions;
  const current = currentRevision(snapshot);
  if (current === null) {
    f.warnings.push('no compaction: no member reported a revision');
    return null;
  }
  if (current - keep <= 0) {
    f.warnings.push(
      `no compaction: the current revision ${current} is not above --compact-keep-revisions ${keep}, so there is nothing to compact`,
    );
    return null;
  }
  return { keepRevisions: keep, revision: current - keep };
}

/** Whether NOSPACE will be disarmed after the run, and what would keep it armed. */
function planDisarm(snapshot: ClusterSnapshot, policy: Policy, ordered: readonly Draft[], f: Findings): boolean {
  const nospace = checkDisarm(snapshot, policy.disarmBelow).alarms.includes('NOSPACE');
  const disarmNospace = policy.disarmNospace && nospace;
  if (!disarmNospace) return false;
  for (const d of ordered) {
    const s = d.member.status;
    if (s === null) continue;
    const limit = policy.disarmBelow * s.quota;
    const margin = `${formatPercent(policy.disarmBelow)} of its ${formatBytes(s.quota)} quota (${formatBytes(limit)})`;
    if (d.defragment && policy.compactKeepRevisions === null && s.dbSizeInUse >= limit) {
      f.warnings.push(
        `defragmentation alone cannot bring ${label(d.member)} under the disarm margin: ` +
          `${formatBytes(s.dbSizeInUse)} is in use, at or above ${margin}, so NOSPACE would stay armed; ` +
          '--compact-keep-revisions N would (compaction frees the old revisions first)',
      );
    } else if (!d.defragment && s.dbSize >= limit) {
      f.warnings.push(
        `${label(d.member)} is not defragmented (${d.code}) and its dbSize ${formatBytes(s.dbSize)} ` +
          `is at or above ${margin}: NOSPACE would stay armed`,
      );
    }
  }
  return true;
}

function toDecision(d: Draft, policy: Policy): MemberDecision {
  const s = d.member.status;
  return {
    memberId: d.member.memberId,
    name: d.member.name,
    endpoint: d.member.endpoint,
    action: d.defragment ? 'defragment' : 'skip',
    code: d.code,
    reason: d.reason,
    ruleResult: d.ruleResult,
    isLeader: d.isLeader,
    isLearner: isLearner(d.member),
    moveLeaderTo: d.moveLeaderTo,
    dbSize: s?.dbSize ?? null,
    dbSizeInUse: s?.dbSizeInUse ?? null,
    dbSizeFree: s?.dbSizeFree ?? null,
    timeoutMs: defragTimeoutMs(s?.dbSizeInUse ?? 0, policy.defragTimeoutMs),
    forecastMs: d.forecast.forecastMs,
    forecastBasis: d.forecast.forecastBasis,
    disk:
      d.member.disk && s
        ? { path: d.member.disk.path, freeBytes: d.member.disk.freeBytes, neededBytes: diskNeededBytes(s.dbSizeInUse) }
        : null,
  };
}

/** Refusal kinds that --skip-health-check turns into skipped members. */
const SKIP_HEALTH_CHECK_HELPS: ReadonlySet<RefusalKind> = new Set(['unhealthy', 'no-leader']);

/** The one sentence of a refusal, with the flag that would help when one would. */
function refusalOf(causes: readonly RefusalCause[]): Refusal {
  const kinds = causes.map((c) => c.kind);
  const skipWouldHelp = kinds.every((k) => SKIP_HEALTH_CHECK_HELPS.has(k));
  const defect = kinds.includes('known-defect');
  return {
    reason:
      `refusing to defragment: ${causes.map((c) => c.text).join('; ')}` +
      (skipWouldHelp ? ' (--skip-health-check would skip unreachable and unhealthy members and go ahead)' : '') +
      (defect ? ' (upgrade the member, or pass --allow-known-defects to defragment it anyway)' : ''),
    memberIds: [...new Set(causes.flatMap((c) => (c.memberId === null ? [] : [c.memberId])))],
    causes: [...causes],
  };
}

/**
 * Decide, for every member, whether it is defragmented, in what order and
 * why; or refuse the run when it would not be safe. The steps, in order:
 * preconditions (alarms, voters' health, releases, roles, the leader), a
 * draft per member (learner, unfit, the rule), the free-disk check, the
 * duration limit, deadline warnings, rule errors, the leader's hand-over,
 * the order, compaction and NOSPACE.
 *
 * @example
 * const plan = planDefrag(snapshot, { ...defaults, rule: compileRule('dbSizeFree > 100*MiB') });
 * if (plan.refusal) throw new RefusedError(plan.refusal.reason);
 * for (const d of plan.decisions.filter((d) => d.action === 'defragment')) ...
 */
export function planDefrag(snapshot: ClusterSnapshot, policy: Policy): Plan {
  const f: Findings = { refusals: [], warnings: [] };
  const leaderId = leaderOf(snapshot);

  alarmPreconditions(snapshot, f);
  healthPreconditions(snapshot, policy, f);
  versionPreconditions(snapshot, policy, f);
  rolePreconditions(snapshot, f);
  leaderPreconditions(snapshot, policy, leaderId, f);

  const drafts = snapshot.members.map((m) => memberDraft(snapshot, policy, leaderId, m));
  nospaceCleared(drafts, snapshot, policy);
  checkDisk(drafts, f);
  checkDuration(drafts, policy, f);
  checkDeadlines(drafts, policy, f);
  ruleErrors(drafts, f);
  placeLeader(drafts, snapshot, policy, f);
  const gate = stopGrpcNote(drafts.filter((d) => d.defragment).map((d) => d.member));
  if (gate !== null) f.warnings.push(gate);

  const ordered = inOrder(drafts);
  const toDefrag = ordered.filter((d) => d.defragment);
  const compaction = planCompaction(snapshot, policy, toDefrag.length > 0, f);
  const disarmNospace = planDisarm(snapshot, policy, ordered, f);
  const decisions = ordered.map((d) => toDecision(d, policy));

  if (f.refusals.length > 0) {
    return {
      refusal: refusalOf(f.refusals),
      warnings: f.warnings,
      // Still every member, in the order they would have gone, so a dry run shows them.
      decisions: decisions.map((d) =>
        d.action === 'defragment' ? { ...d, action: 'skip', moveLeaderTo: null, reason: `run refused; would defragment: ${d.reason}` } : d,
      ),
      compaction: null,
      disarmNospace: false,
      expectedReclaimBytes: 0,
    };
  }
  return {
    refusal: null,
    warnings: f.warnings,
    decisions,
    compaction,
    disarmNospace,
    expectedReclaimBytes: toDefrag.reduce((sum, d) => sum + (d.member.status?.dbSizeFree ?? 0), 0),
  };
}
