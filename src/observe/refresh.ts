/**
 * A light observation: only each known member's Status, on top of the last
 * full observation (observeCluster). A daemon that observes many clusters
 * every few seconds spends most of its time on what rarely changes: the
 * member list, the alarm list, a health read through every member and each
 * member's /metrics. Status alone carries what moves between two full
 * observations (sizes, revision, leader) and says when something else may
 * have changed: etcd lists every active alarm and a missing leader in each
 * member's Status `errors`. So a refresh is kept only when every member
 * answered as before; anything unusual asks for a full observation at once.
 */
import type { ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import { AbortedError } from '../domain/errors.js';
import type { EtcdClient, StatusReply } from '../etcd/client.js';
import { agreedLeader } from '../domain/leader.js';
import { toMemberStatus } from './observe.js';
import { memberName } from '../domain/member-name.js';

export interface RefreshOptions {
  /** Deadline of each Status call; the client's command timeout when absent. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** The quota to assume when neither Status nor /metrics told one (as observeCluster's). */
  quotaBytes?: number | null | undefined;
  now?: () => Date;
}

/** A refreshed snapshot, or why a full observation is needed instead. */
export type Refresh = { snapshot: ClusterSnapshot; fullBecause: null } | { snapshot: null; fullBecause: string };

/** Why `previous` cannot be refreshed by Status alone (something was wrong in it); null when it can. */
export function refreshBlocker(previous: ClusterSnapshot): string | null {
  if (previous.alarms.length > 0) return 'an alarm is active';
  if (previous.alarmsError !== null) return 'the alarm list could not be read';
  if (previous.members.length === 0) return 'no member is known';
  const sick = previous.members.find((m) => !m.reachable || !m.healthy || m.status === null || m.error !== null || m.endpoint === '');
  if (sick) return `${memberName(sick)} was not healthy`;
  return null;
}

/**
 * Applies one Status answer per member of `previous` (same order). Pure.
 * Health, alarms and quota carry over from `previous`; a member that did not
 * answer, an answer from another member or cluster, Status errors (an alarm,
 * no leader), a leader or learner change, or a smaller db file (someone may
 * have defragmented: the full observation reads the defrag counters) each
 * ask for a full observation.
 */
export function applyStatuses(
  previous: ClusterSnapshot,
  answers: readonly (StatusReply | Error)[],
  observedAt: string,
  quotaBytes: number | null = null,
): Refresh {
  const blocked = refreshBlocker(previous);
  if (blocked !== null) return full(blocked);
  const members: MemberSnapshot[] = [];
  for (const [i, m] of previous.members.entries()) {
    const s = answers[i];
    const prev = m.status;
    if (s === undefined || prev === null) return full(`${memberName(m)} was not asked`);
    if (s instanceof Error) return full(`${memberName(m)} did not answer Status: ${s.message}`);
    if (s.header.memberId !== m.memberId || s.header.clusterId !== previous.clusterId)
      return full(`${m.endpoint} answered as another member`);
    if (s.errors.length > 0) return full(`${memberName(m)} reports ${s.errors.join('; ').trim()}`);
    if (s.leader !== prev.leaderId) return full(`${memberName(m)} follows another leader`);
    if (s.isLearner !== m.isLearner) return full(`${memberName(m)} was ${m.isLearner ? 'promoted' : 'made a learner'}`);
    if (s.dbSize < prev.dbSize) return full(`the db file of ${memberName(m)} shrank (defragmented?)`);
    const status = toMemberStatus(s, prev.quotaSource === 'metrics' ? prev.quota : null, quotaBytes, m.isLearner);
    members.push({ ...m, status });
  }
  return { snapshot: { ...previous, observedAt, leaderId: agreedLeader(members), members }, fullBecause: null };
}

/**
 * Refreshes `previous` with one Status call per member (concurrently). Never
 * throws for what the cluster says (that is a `fullBecause`); only an abort
 * throws.
 */
export async function refreshCluster(client: EtcdClient, previous: ClusterSnapshot, opts: RefreshOptions = {}): Promise<Refresh> {
  const blocked = refreshBlocker(previous);
  if (blocked !== null) return full(blocked);
  const call = { timeoutMs: opts.timeoutMs, signal: opts.signal };
  const answers = await Promise.all(
    previous.members.map((m) =>
      client
        .member(m.endpoint)
        .status(call)
        .catch((err: unknown) => {
          if (err instanceof AbortedError) throw err;
          return err instanceof Error ? err : new Error(String(err));
        }),
    ),
  );
  if (opts.signal?.aborted) throw new AbortedError('observation aborted');
  return applyStatuses(previous, answers, (opts.now?.() ?? new Date()).toISOString(), opts.quotaBytes ?? null);
}

function full(fullBecause: string): Refresh {
  return { snapshot: null, fullBecause };
}
