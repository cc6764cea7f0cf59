/** Printers for `defragd status`: one pure row builder, then table or JSON. */
import type { ClusterSnapshot, MemberSnapshot } from '../../domain/snapshot.js';
import { statusJson } from '../../app/status-json.js';
import { formatBytes, formatPercent, renderTable } from '../format.js';

// The JSON row builder lives in the app layer so the daemon's API (src/serve)
// answers with the same fields without importing the CLI.
export { statusJson, type StatusJson } from '../../app/status-json.js';

// Raft term and indexes are in the JSON; the table keeps what an operator scans for.
export const STATUS_HEAD = ['ENDPOINT', 'ID', 'NAME', 'VERSION', 'DB SIZE', 'IN USE', 'FREE', 'FRAG', 'QUOTA', 'QUOTA USE', 'LEADER', 'LEARNER', 'REVISION', 'ALARMS', 'ERRORS'];

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

export function printStatus(snapshot: ClusterSnapshot, format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(statusJson(snapshot), null, 2) + '\n';
  return renderTable(STATUS_HEAD, statusRows(snapshot));
}
