import { describe, expect, it } from 'vitest';
import { aPolicy, aSnapshot, decisionFor } from '../../test/builders.js';
import { compareVersions, defectsOf, KNOWN_DEFECTS } from '../domain/known-defects.js';
import { planDefrag } from './plan.js';
import { midUpgrade, releasesInUse, versionWarnings } from './versions.js';

const issues = (version: string): string[] => defectsOf(version).map((f) => f.defect.issue);

describe('the known-defects table', () => {
  it.each([
    // The releases make test runs on, and each line's edges.
    ['3.4.23', ['etcd#18810', 'etcd#18841', 'etcd#20271']],
    ['3.4.3', ['etcd#11613', 'etcd#13678', 'etcd#18810', 'etcd#20271']],
    ['3.4.4', ['etcd#13678', 'etcd#18810', 'etcd#18841', 'etcd#20271']],
    ['3.4.38', []],
    ['3.4.45', []],
    ['3.5.0', ['etcd#14685', 'etcd#13678', 'etcd#18810', 'etcd#18841', 'etcd#20271']],
    ['3.5.5', ['etcd#14685', 'etcd#18810', 'etcd#18841', 'etcd#20271']],
    ['3.5.6', ['etcd#18810', 'etcd#18841', 'etcd#20271']],
    ['3.5.17', ['etcd#20271']],
    ['3.5.23', []],
    ['3.5.36', []],
    ['3.6.0', ['etcd#20271']],
    ['3.6.4', ['etcd#20271']],
    ['3.6.5', []],
    ['3.6.17', []],
    ['3.7.0', []],
    ['3.7.4', []],
    ['3.6.0-rc.2', ['etcd#20271']],
    ['not a version', []],
  ])('%s has %j', (version, expected) => {
    expect(issues(version)).toEqual(expected);
  });

  it('names each fixed release in its own line, and marks only the crash-during-defrag defect as refusing', () => {
    expect(defectsOf('3.4.23').map((f) => f.fixedIn)).toEqual(['3.4.35', '3.4.35', '3.4.38']);
    expect(defectsOf('3.6.2').map((f) => f.fixedIn)).toEqual(['3.6.5']);
    expect(KNOWN_DEFECTS.filter((d) => d.severity === 'refuse').map((d) => d.issue)).toEqual(['etcd#14685']);
    for (const d of KNOWN_DEFECTS) {
      for (const r of d.affected) {
        expect(compareVersions(r.from, r.fixedIn), `${d.issue} ${r.from}..${r.fixedIn}`).toBeLessThan(0);
        expect(r.from.split('.').slice(0, 2), `${d.issue}: one range per minor line`).toEqual(r.fixedIn.split('.').slice(0, 2));
      }
    }
  });

  it('compares versions by number, not as text', () => {
    expect(compareVersions('3.5.10', '3.5.9')).toBeGreaterThan(0);
    expect(compareVersions('3.10.0', '3.9.9')).toBeGreaterThan(0);
    expect(compareVersions('3.6.17', '3.6.17')).toBe(0);
  });
});

describe("the planner and the members' releases", () => {
  it('refuses a run when a voter runs 3.5.0-3.5.5 (etcd#14685), naming it, its release, the defect and the override', () => {
    const snap = aSnapshot().withMembers(3).withMember('m2', { version: '3.5.4' }).build();
    const plan = planDefrag(snap, aPolicy());
    expect(plan.refusal?.reason).toMatch(/m2 \(https:\/\/10\.0\.0\.2:2379\) runs etcd 3\.5\.4/);
    expect(plan.refusal?.reason).toContain('unable to start (etcd#14685, fixed in 3.5.6)');
    expect(plan.refusal?.reason).toContain('--allow-known-defects');
    expect(plan.refusal?.reason).not.toContain('--skip-health-check');
    expect(plan.refusal?.memberIds).toEqual([snap.members[1]!.memberId]);
    expect(plan.decisions.every((d) => d.action === 'skip')).toBe(true);
  });

  it('goes ahead with --allow-known-defects, and says so', () => {
    const snap = aSnapshot().withMembers(3).withMember('m2', { version: '3.5.4' }).build();
    const plan = planDefrag(snap, aPolicy({ allowKnownDefects: true }));
    expect(plan.refusal).toBeNull();
    expect(plan.warnings.some((w) => w.includes('etcd#14685') && w.endsWith('going ahead (--allow-known-defects)'))).toBe(true);
    expect(decisionFor(plan, 'm2').action).toBe('defragment');
  });

  it('only warns about a learner on such a release: learners are never defragmented', () => {
    const snap = aSnapshot().withMembers(3).withLearner('m4', { version: '3.5.2' }).build();
    const plan = planDefrag(snap, aPolicy());
    expect(plan.refusal).toBeNull();
    expect(plan.warnings.filter((w) => w.includes('etcd#14685'))).toHaveLength(1);
  });

  it('warns, without refusing, about each member on a release with other known defects (3.4.23)', () => {
    const snap = aSnapshot()
      .withMembers(3)
      .withMember('m1', { version: '3.4.23' })
      .withMember('m2', { version: '3.4.23' })
      .withMember('m3', { version: '3.4.23' })
      .build();
    const plan = planDefrag(snap, aPolicy());
    expect(plan.refusal).toBeNull();
    const defects = plan.warnings.filter((w) => w.includes('runs etcd 3.4.23, which has 3 known defrag defects'));
    expect(defects).toHaveLength(3);
    expect(defects[0]).toContain('(etcd#20271, fixed in 3.4.38)');
    expect(versionWarnings(snap)).toEqual(defects);
  });

  it('says nothing about releases with no known defect', () => {
    const snap = aSnapshot().withMembers(3).build();
    expect(versionWarnings(snap)).toEqual([]);
    expect(planDefrag(snap, aPolicy()).warnings).toEqual([]);
  });

  it('says the cluster is mid-upgrade when members run different releases, oldest first', () => {
    const snap = aSnapshot()
      .withMembers(3)
      .withMember('m1', { version: '3.6.17' })
      .withMember('m2', { version: '3.7.4' })
      .withMember('m3', { version: '3.6.17' })
      .build();
    expect(releasesInUse(snap)).toEqual([
      { version: '3.6.17', members: ['m1', 'm3'] },
      { version: '3.7.4', members: ['m2'] },
    ]);
    expect(midUpgrade(snap)).toBe('the cluster is mid-upgrade: etcd 3.6.17 on m1, m3; 3.7.4 on m2');
    const plan = planDefrag(snap, aPolicy());
    expect(plan.refusal).toBeNull();
    expect(plan.warnings).toContain(
      'the cluster is mid-upgrade: etcd 3.6.17 on m1, m3; 3.7.4 on m2; each member is defragmented as its own release does it',
    );
  });

  it('explains StopGRPCServiceOnDefrag for members about to be defragmented that have it on, and only them', () => {
    const snap = aSnapshot()
      .withMembers(3)
      .withMember('m1', { stopGrpcServiceOnDefrag: true })
      .withMember('m2', { stopGrpcServiceOnDefrag: false })
      .withMember('m3', { stopGrpcServiceOnDefrag: null })
      .build();
    const notes = planDefrag(snap, aPolicy()).warnings.filter((w) => w.startsWith('StopGRPCServiceOnDefrag'));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^StopGRPCServiceOnDefrag is on for m1: .*NOT_SERVING.*fail over/);
    const none = aSnapshot().withMembers(3).withMember('m2', { stopGrpcServiceOnDefrag: false }).build();
    expect(planDefrag(none, aPolicy()).warnings).toEqual([]);
  });
});
