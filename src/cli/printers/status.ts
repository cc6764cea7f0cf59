/** Printers for `defragd status`: one pure row builder, then table or JSON. */
import type { ClusterSnapshot, MemberSnapshot } from '../../domain/snapshot.js';
import { formatBytes, formatPercent, renderTable } from '../format.js';

/** The JSON shape of one member: stable field names, memberId in hex, null where unknown. */
export interface StatusJson {
  endpoint: string;
  memberId: string;
  name: string;
  version: string | null;
  storageVersion: string | null;
  dbSize: number | null;
  dbSizeInUse: number | null;
  dbSizeFree: number | null;
  fragmentation: number | null;
  quota: number | null;
  quotaSource: string | null;
  quotaUsage: number | null;
  revision: number | null;
  raftTerm: number | null;
  raftIndex: number | null;
  raftAppliedIndex: number | null;
  isLeader: boolean;
  isLearner: boolean;
  alarms: string[];
  healthy: boolean;
  error: string | null;
}

export function statusJson(snapshot: ClusterSnapshot): StatusJson[] {
  return snapshot.members.map((m) => {
    const s = m.status;
    return {
      endpoint: m.endpoint,
      memberId: m.memberId,
      name: m.name,
      version: s?.version ?? null,
      storageVersion: s?.storageVersion ?? null,
      dbSize: s?.dbSize ?? null,
      dbSizeInUse: s?.dbSizeInUse ?? null,
      dbSizeFree: s?.dbSizeFree ?? null,
      fragmentation: s ? round(s.fragmentation) : null,
      quota: s?.quota ?? null,
      quotaSource: s?.quotaSource ?? null,
      quotaUsage: s ? round(s.quotaUsage) : null,
      revision: s?.revision ?? null,
      raftTerm: s?.raftTerm ?? null,
      raftIndex: s?.raftIndex ?? null,
      raftAppliedIndex: s?.raftAppliedIndex ?? null,
      isLeader: s?.isLeader ?? false,
      isLearner: m.isLearner,
      alarms: m.alarms,
      healthy: m.healthy,
      error: m.error,
    };
  });
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;

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
