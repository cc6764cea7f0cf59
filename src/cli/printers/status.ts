/** Printers for `defragd status`: one pure row builder, then table or JSON. */
import type { ClusterSnapshot, MemberSnapshot } from '../../domain/snapshot.js';
import { statusJson } from '../../app/status-json.js';
import { compareVersions } from '../../domain/known-defects.js';
import { formatBytes, formatPercent, renderTable } from '../format.js';
import { memberName } from '../../domain/member-name.js';

// The JSON row builder lives in the app layer so the daemon's API (src/serve)
// answers with the same fields without importing the CLI.
export { statusJson, type StatusJson } from '../../app/status-json.js';

// Raft term and indexes are in the JSON; the table keeps what an operator scans for.
export const STATUS_HEAD = [
  'ENDPOINT',
  'ID',
  'NAME',
  'VERSION',
  'DB SIZE',
  'IN USE',
  'FREE',
  'FRAG',
  'QUOTA',
  'QUOTA USE',
  'LEADER',
  'LEARNER',
  'REVISION',
  'ALARMS',
  'ERRORS',
];

export function statusRows(snapshot: ClusterSnapshot): string[][] {
  return snapshot.members.map((m: MemberSnapshot) => {
    const s = m.status;
    return [
      m.endpoint || '-',
      m.memberId || '-',
      m.name || '-',
      s?.version ?? '-',
      formatBytes(s?.dbSize),
      formatBytes(s?.dbSizeInUse),
      formatBytes(s?.dbSizeFree),
      formatPercent(s?.fragmentation),
      s ? `${formatBytes(s.quota)} (${s.quotaSource})` : '-',
      formatPercent(s?.quotaUsage),
      s ? String(s.isLeader) : '-',
      String(m.isLearner),
      s ? String(s.revision) : '-',
      m.alarms.join(',') || '-',
      [m.error, ...(s?.errors ?? [])].filter(Boolean).join('; ') || '-',
    ];
  });
}

/**
 * The line under the table about StopGRPCServiceOnDefrag, for the members that were asked: which have
 * it on, off, or do not tell, and why not (a release before 3.6 exports no feature gates; otherwise
 * its /metrics did not say). Null when no member was asked.
 * @example "StopGRPCServiceOnDefrag: off on m1, m2; unknown on m3 (etcd before 3.6 does not export its feature gates)"
 */
export function stopGrpcLine(snapshot: ClusterSnapshot): string | null {
  const asked = snapshot.members.filter((m) => m.stopGrpcServiceOnDefrag !== undefined && m.status !== null);
  if (asked.length === 0) return null;
  const names = (value: boolean | null): string[] =>
    asked
      .filter((m) => m.stopGrpcServiceOnDefrag === value)
      .map((m) => memberName(m))
      .sort();
  const parts = [
    [names(true), 'on'],
    [names(false), 'off'],
    [names(null), 'unknown'],
  ] as const;
  const said = parts.filter(([who]) => who.length > 0).map(([who, what]) => `${what} on ${who.join(', ')}`);
  const unknown = asked.filter((m) => m.stopGrpcServiceOnDefrag === null);
  const before36 = unknown.filter((m) => compareVersions(m.status?.version ?? '', '3.6.0') < 0).length;
  const why =
    unknown.length === 0
      ? ''
      : before36 === unknown.length
        ? ' (etcd before 3.6 does not export its feature gates)'
        : before36 === 0
          ? ' (their /metrics did not say)'
          : " (etcd before 3.6 does not export its feature gates; the others' /metrics did not say)";
  return `StopGRPCServiceOnDefrag: ${said.join('; ')}${why}`;
}

export function printStatus(snapshot: ClusterSnapshot, format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(statusJson(snapshot), null, 2) + '\n';
  const gate = stopGrpcLine(snapshot);
  return renderTable(STATUS_HEAD, statusRows(snapshot)) + (gate ? `${gate}\n` : '');
}
