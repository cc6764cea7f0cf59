/**
 * What the members' etcd versions mean for a run, decided once: which
 * members run a release with a known defrag defect (the table in
 * domain/known-defects), and whether the cluster is mid-upgrade (members on
 * different releases). The planner refuses or warns with these; `status`
 * and the daemon's log print the same sentences. Pure.
 */
import { compareVersions, defectsOf, type DefectFinding } from '../domain/known-defects.js';
import type { ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import { isLearner, label } from './cluster.js';
import { memberName } from '../domain/member-name.js';

/** A member running a release with known defrag defects. */
export interface MemberDefects {
  member: MemberSnapshot;
  version: string;
  findings: DefectFinding[];
}

/** Every answering member whose release has a known defrag defect, in member order. */
export function membersWithDefects(snapshot: ClusterSnapshot): MemberDefects[] {
  return snapshot.members.flatMap((member) => {
    const version = member.status?.version;
    if (!version) return [];
    const findings = defectsOf(version);
    return findings.length > 0 ? [{ member, version, findings }] : [];
  });
}

/** Whether this member's release has a defect for which no defrag runs unless the operator overrides it. */
export function refusesDefrag(d: MemberDefects): boolean {
  return !isLearner(d.member) && d.findings.some((f) => f.defect.severity === 'refuse');
}

/**
 * "m1 (http://…) runs etcd 3.4.23, which has a known defrag defect: a defrag that fills the disk
 * crashes the member (etcd#18810, fixed in 3.4.35)"; several defects are joined with "; ".
 */
export function describeDefects(d: MemberDefects): string {
  return defectSentence(d.member, d.version, d.findings);
}

type Named = Pick<MemberSnapshot, 'name' | 'memberId' | 'endpoint'>;

function defectSentence(member: Named, version: string, findings: readonly DefectFinding[]): string {
  const each = findings.map((f) => `${f.defect.summary} (${f.defect.issue}, fixed in ${f.fixedIn})`);
  const which = each.length === 1 ? 'a known defrag defect' : `${each.length} known defrag defects`;
  return `${label(member)} runs etcd ${version}, which has ${which}: ${each.join('; ')}`;
}

/**
 * The same sentence for any row that names a member and its release (`defragd last`'s rows); null when
 * the release has no known defect or is not known.
 */
export function defectWarning(m: Named & { version: string | null }): string | null {
  const findings = m.version ? defectsOf(m.version) : [];
  return m.version && findings.length > 0 ? defectSentence(m, m.version, findings) : null;
}

/** The releases members run, oldest first, each with its members' names in order; one entry when all agree. */
export function releasesInUse(snapshot: ClusterSnapshot): { version: string; members: string[] }[] {
  const byVersion = new Map<string, string[]>();
  for (const m of snapshot.members) {
    const v = m.status?.version;
    if (!v) continue;
    byVersion.set(v, [...(byVersion.get(v) ?? []), memberName(m)]);
  }
  return [...byVersion]
    .map(([version, members]) => ({ version, members: members.sort() }))
    .sort((a, b) => compareVersions(a.version, b.version));
}

/**
 * A sentence when the members run different releases (a rolling upgrade or downgrade under way),
 * else null: "the cluster is mid-upgrade: etcd 3.6.17 on m1, m2; 3.7.4 on m3".
 */
export function midUpgrade(snapshot: ClusterSnapshot): string | null {
  const releases = releasesInUse(snapshot);
  if (releases.length < 2) return null;
  return `the cluster is mid-upgrade: etcd ${releases.map((r) => `${r.version} on ${r.members.join(', ')}`).join('; ')}`;
}

/**
 * What StopGRPCServiceOnDefrag means for the clients of the members about to be defragmented that
 * have it on; null when none has (or none tells).
 */
export function stopGrpcNote(members: readonly MemberSnapshot[]): string | null {
  const on = members
    .filter((m) => m.stopGrpcServiceOnDefrag === true)
    .map((m) => memberName(m))
    .sort();
  if (on.length === 0) return null;
  return (
    `StopGRPCServiceOnDefrag is on for ${on.join(', ')}: while one is defragmented its gRPC health service reports NOT_SERVING, ` +
    "so clients that check gRPC health fail over to another member; clients that do not (etcd's Go client by default, kube-apiserver) " +
    'still wait for it'
  );
}

/**
 * The warnings every command that observes a cluster prints about its versions: each member's
 * known defects, and a cluster mid-upgrade.
 */
export function versionWarnings(snapshot: ClusterSnapshot): string[] {
  const upgrade = midUpgrade(snapshot);
  return [...membersWithDefects(snapshot).map(describeDefects), ...(upgrade ? [upgrade] : [])];
}
