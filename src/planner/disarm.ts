/**
 * Whether NOSPACE may be disarmed, decided once for the executor's disarm
 * step and for `defragd alarm disarm`. Pure.
 */
import type { DisarmCheck } from '../domain/plan.js';
import type { ClusterAlarm, ClusterSnapshot } from '../domain/snapshot.js';
import { formatBytes, formatPercent } from '../domain/format.js';
import { label } from './cluster.js';
import { memberName } from '../domain/member-name.js';

/**
 * Whether NOSPACE may be disarmed: every member answers and each one's dbSize
 * (what etcd checks the quota against) is under `disarmBelow` of its quota.
 * An unreachable member is a blocker with NaN figures.
 *
 * @example
 * const check = checkDisarm(snapshot, 0.9);
 * if (check.ok && check.alarms.includes('NOSPACE')) await disarm();
 */
export function checkDisarm(snapshot: ClusterSnapshot, disarmBelow: number): DisarmCheck {
  const blockers: DisarmCheck['blockers'] = [];
  for (const m of snapshot.members) {
    const s = m.status;
    if (!m.reachable || s === null) {
      blockers.push({
        memberId: m.memberId,
        name: m.name,
        dbSize: Number.NaN,
        limit: Number.NaN,
        reason: `${label(m)} is unreachable${m.error ? `: ${m.error}` : ''}`,
      });
      continue;
    }
    if (s.quotaSource === 'default') {
      // 2 GiB is etcd's default, not necessarily this member's quota: disarming against a guess could
      // report success while the next write raises NOSPACE again.
      blockers.push({
        memberId: m.memberId,
        name: m.name,
        dbSize: s.dbSize,
        limit: Number.NaN,
        reason: `${label(m)} did not report its quota (etcd < 3.6 and /metrics unreachable): give --quota-bytes`,
      });
      continue;
    }
    const limit = disarmBelow * s.quota;
    if (s.dbSize >= limit) {
      blockers.push({
        memberId: m.memberId,
        name: m.name,
        dbSize: s.dbSize,
        limit,
        reason:
          `${label(m)} dbSize ${formatBytes(s.dbSize)} is at or above ${formatPercent(disarmBelow)} ` +
          `of its ${formatBytes(s.quota)} quota (${formatBytes(limit)})`,
      });
    }
  }
  const alarms = [...new Set([...snapshot.members.flatMap((m) => m.alarms), ...snapshot.alarms.map((a) => a.alarm)])];
  return { ok: blockers.length === 0, blockers, alarms };
}

/**
 * The NOSPACE alarms to disarm and what stands in the way, after a run that
 * was asked to disarm: `blocked` says why not (a sentence), else `alarms`
 * lists what to disarm (possibly none).
 *
 * @example
 * const d = disarmDecision(snapshot, 0.9);
 * if (d.blocked === null) for (const a of d.alarms) await disarm(a);
 */
export function disarmDecision(
  snapshot: ClusterSnapshot,
  disarmBelow: number,
  compactionAsked: boolean,
): { blocked: string | null; alarms: ClusterAlarm[] } {
  if (snapshot.alarmsError !== null)
    return { blocked: `NOSPACE not disarmed: the alarm list could not be read (${snapshot.alarmsError})`, alarms: [] };
  const nospace = snapshot.alarms.filter((a) => a.alarm === 'NOSPACE');
  if (nospace.length === 0) return { blocked: null, alarms: [] };
  const check = checkDisarm(snapshot, disarmBelow);
  if (!check.ok) {
    return {
      blocked:
        `NOSPACE left armed: ${check.blockers.map((b) => b.reason ?? `${memberName(b)} dbSize ${formatBytes(b.dbSize)} is not under ${formatBytes(b.limit)}`).join('; ')}` +
        (compactionAsked ? '' : '; defragmentation alone cannot free more: add --compact-keep-revisions N to compact old revisions first'),
      alarms: [],
    };
  }
  return { blocked: null, alarms: nospace };
}

/**
 * The alarms `alarm disarm` may clear: NOSPACE, or with `all` every type but
 * CORRUPT. CORRUPT is never among them: a corrupt member needs an operator.
 */
export function alarmsToDisarm(snapshot: ClusterSnapshot, all: boolean): ClusterAlarm[] {
  return snapshot.alarms.filter((a) => a.alarm !== 'CORRUPT' && (all || a.alarm === 'NOSPACE'));
}
