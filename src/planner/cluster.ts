/**
 * What a snapshot says about the cluster, defined once: who leads, who is a
 * learner, which voters are fit, where leadership goes, which revision is
 * current, whether a member has caught up. The planner decides with these and
 * the executor only asks them; nothing else in defragd re-derives them (who
 * the members agree leads is domain/leader.ts's, set by observe).
 * Pure: no I/O, no clock.
 */
import type { AlarmType, ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import { memberLabel, memberName } from '../domain/member-name.js';

/** A learner by MemberList or by its own Status (a member promoted since may still say so for a moment). */
export function isLearner(m: MemberSnapshot): boolean {
  return m.isLearner || m.status?.isLearner === true;
}

export function voters(snapshot: ClusterSnapshot): MemberSnapshot[] {
  return snapshot.members.filter((m) => !isLearner(m));
}

export function memberById(snapshot: ClusterSnapshot, memberId: string): MemberSnapshot | undefined {
  return snapshot.members.find((m) => m.memberId === memberId);
}

/** "m1 (http://127.0.0.1:2379)", the way reasons name a member. */
export function label(m: Pick<MemberSnapshot, 'name' | 'memberId' | 'endpoint'>): string {
  return memberLabel(m);
}

/** "m1 (8e9e05c52164694d)", or the bare ID when the member is unknown or unnamed. */
export function nameOf(snapshot: ClusterSnapshot, memberId: string): string {
  const m = memberById(snapshot, memberId);
  return m?.name ? `${m.name} (${memberId})` : memberId;
}

/** The short name of a member for event lines: its name, else its endpoint or ID. */
export function shortName(snapshot: ClusterSnapshot, memberId: string): string {
  return memberName(memberById(snapshot, memberId) ?? { memberId });
}

/** Alarms raised for a member, from its own list and the cluster's AlarmList. */
export function alarmsOf(snapshot: ClusterSnapshot, m: MemberSnapshot): AlarmType[] {
  const fromCluster = snapshot.alarms.filter((a) => a.memberId === m.memberId).map((a) => a.alarm);
  return [...new Set([...m.alarms, ...fromCluster])];
}

/** Any alarm but NOSPACE (CORRUPT, or one we do not know) means the data may be unsafe. */
export function badAlarms(snapshot: ClusterSnapshot, m: MemberSnapshot): AlarmType[] {
  return alarmsOf(snapshot, m).filter((a) => a !== 'NOSPACE');
}

/** Why a member cannot take part, health-wise, as a phrase ("unreachable: ..."); null when it can. */
export function healthProblem(m: MemberSnapshot): string | null {
  // observe already words a failed health read as "unhealthy: ..."; say it once.
  const detail = m.error ? `: ${m.error.replace(/^unhealthy: /, '')}` : '';
  if (!m.reachable || m.status === null) return `unreachable${detail}`;
  if (!m.healthy) return `unhealthy${detail}`;
  return null;
}

/** Health or alarm problem, as a phrase; null when the member is fine. */
export function problem(snapshot: ClusterSnapshot, m: MemberSnapshot): string | null {
  const health = healthProblem(m);
  const alarms = badAlarms(snapshot, m);
  const alarm = alarms.length > 0 ? `has alarm ${alarms.join(', ')}` : null;
  if (health !== null && alarm !== null) return `${health}; ${alarm}`;
  return health ?? alarm;
}

/**
 * The leader's ID: the one most members agree on (`leaderId`, which observe sets with domain's
 * agreedLeader), else
 * the single reachable member that says it leads (only relevant when
 * --skip-health-check lets a run go ahead without an agreed leader: that
 * member must still not be defragmented while it leads).
 */
export function leaderOf(snapshot: ClusterSnapshot): string | null {
  if (snapshot.leaderId !== null) return snapshot.leaderId;
  const claimants = snapshot.members.filter((m) => m.reachable && m.status?.isLeader === true);
  return claimants.length === 1 ? claimants[0]!.memberId : null;
}

/**
 * Whether a member leads now: the agreed leader, or a member whose own Status
 * says it leads. Either is enough to keep a Defragment away from it.
 */
export function leads(snapshot: ClusterSnapshot, memberId: string): boolean {
  return leaderOf(snapshot) === memberId || memberById(snapshot, memberId)?.status?.isLeader === true;
}

export function byName(a: MemberSnapshot, b: MemberSnapshot): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
}

/**
 * Voters (but `exceptIds`) that are unreachable, unhealthy or carry an alarm
 * other than NOSPACE. Empty when every voter is fit.
 *
 * @example
 * const failing = unfitVoters(snapshot);
 * if (failing.length > 0) return stop(describeMembers(snapshot, failing));
 */
export function unfitVoters(snapshot: ClusterSnapshot, exceptIds: ReadonlySet<string> = new Set()): MemberSnapshot[] {
  return voters(snapshot).filter((m) => !exceptIds.has(m.memberId) && problem(snapshot, m) !== null);
}

/**
 * Whether every voter (but `exceptId`) is reachable, healthy and free of alarms
 * other than NOSPACE.
 *
 * @example
 * const { ok, failing } = votersHealthy(snapshot);
 */
export function votersHealthy(snapshot: ClusterSnapshot, exceptId?: string): { ok: boolean; failing: MemberSnapshot[] } {
  const failing = unfitVoters(snapshot, new Set(exceptId === undefined ? [] : [exceptId]));
  return { ok: failing.length === 0, failing };
}

/** "m2 (http://…) is unreachable: connection refused; m3 (…) has alarm CORRUPT". */
export function describeMembers(snapshot: ClusterSnapshot, members: readonly MemberSnapshot[]): string {
  return members.map((m) => `${label(m)} is ${problem(snapshot, m) ?? 'fine'}`).join('; ');
}

/**
 * The voter leadership should move to before the leader is defragmented: a
 * reachable, healthy, alarm-free voter other than the leader (and `excludeId`)
 * with the highest raftAppliedIndex, so the hand-over waits least; ties by name.
 * Null when there is none.
 *
 * @example chooseTransferee(snapshot) // "91bc3c398fb3c146"
 */
export function chooseTransferee(snapshot: ClusterSnapshot, excludeId?: string): string | null {
  const leaderId = leaderOf(snapshot);
  const candidates = voters(snapshot)
    .filter((m) => m.memberId !== leaderId && m.memberId !== excludeId && problem(snapshot, m) === null)
    .sort((a, b) => (b.status?.raftAppliedIndex ?? -1) - (a.status?.raftAppliedIndex ?? -1) || byName(a, b));
  return candidates[0]?.memberId ?? null;
}

/**
 * The member to send cluster-wide requests to (Compact, alarm disarm): the
 * leader, else a healthy voter (learners refuse them). Undefined when none.
 */
export function leaderOrHealthyVoter(snapshot: ClusterSnapshot): MemberSnapshot | undefined {
  const leaderId = leaderOf(snapshot);
  const leader = leaderId === null ? undefined : memberById(snapshot, leaderId);
  return (leader && !isLearner(leader) && leader.reachable ? leader : undefined) ?? voters(snapshot).find((m) => m.healthy);
}

/** The cluster's current revision: the leader's, else the highest any member reports; null when none answered. */
export function currentRevision(snapshot: ClusterSnapshot): number | null {
  const leaderId = leaderOf(snapshot);
  const leader = leaderId === null ? undefined : memberById(snapshot, leaderId);
  if (leader?.reachable && leader.status) return leader.status.revision;
  const revisions = snapshot.members.filter((m) => m.reachable && m.status !== null).map((m) => m.status!.revision);
  return revisions.length > 0 ? Math.max(...revisions) : null;
}

/**
 * The revision to compact to, keeping `keepRevisions`: the current revision
 * minus keep; null when that is not above 0 (nothing to compact) or no member
 * reported a revision.
 *
 * @example compactionRevision(snapshot, 1000) // 9000 at revision 10000
 */
export function compactionRevision(snapshot: ClusterSnapshot, keepRevisions: number): number | null {
  const current = currentRevision(snapshot);
  if (current === null) return null;
  const r = current - keepRevisions;
  return r > 0 ? r : null;
}

/** Leadership has left `fromId`: a leader other than it is agreed and it no longer says it leads. */
export function leadershipMovedAway(snapshot: ClusterSnapshot, fromId: string): boolean {
  const leaderId = leaderOf(snapshot);
  return leaderId !== null && leaderId !== fromId && memberById(snapshot, fromId)?.status?.isLeader === false;
}

/** The raft index a member must apply to have caught up: what the leader has committed now; null when no leader answers. */
export function catchUpTarget(snapshot: ClusterSnapshot): number | null {
  const leaderId = leaderOf(snapshot);
  const leader = leaderId === null ? undefined : memberById(snapshot, leaderId);
  return leader?.status?.raftIndex ?? null;
}

/** The member serves linearizable reads again and has applied at least `target`. */
export function hasCaughtUp(snapshot: ClusterSnapshot, memberId: string, target: number): boolean {
  const m = memberById(snapshot, memberId);
  return m?.healthy === true && m.status !== null && m.status.raftAppliedIndex >= target;
}

/** Whether any member has NOSPACE raised, by its own Status or the cluster's AlarmList: defined here, asked everywhere. */
export function nospaceRaised(snapshot: ClusterSnapshot): boolean {
  return snapshot.alarms.some((a) => a.alarm === 'NOSPACE') || snapshot.members.some((m) => m.alarms.includes('NOSPACE'));
}
