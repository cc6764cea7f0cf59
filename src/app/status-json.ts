/**
 * The JSON shape of `defragd status -w json`, one object per member: shared by
 * the CLI's printer and the daemon's API so both answer with the same fields.
 */
import { defectsOf } from '../domain/known-defects.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';

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
  /**
   * StopGRPCServiceOnDefrag as the member exports it (etcd 3.6+); null when it does not tell (3.5) or it
   * was not read.
   */
  stopGrpcServiceOnDefrag: boolean | null;
  /** Known defrag defects of the member's etcd release (domain/known-defects), most serious first. */
  knownDefects: { issue: string; summary: string; fixedIn: string; severity: 'refuse' | 'warn' }[];
}

/**
 * One row per member, in the snapshot's order.
 *
 * @example
 *   statusJson(snapshot)[0]?.dbSizeFree // 41943040
 */
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
      stopGrpcServiceOnDefrag: m.stopGrpcServiceOnDefrag ?? null,
      knownDefects: s
        ? defectsOf(s.version).map((f) => ({
            issue: f.defect.issue,
            summary: f.defect.summary,
            fixedIn: f.fixedIn,
            severity: f.defect.severity,
          }))
        : [],
    };
  });
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;
