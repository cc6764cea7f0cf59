/**
 * Builders for test data: consistent ClusterSnapshots and Policies in one line.
 *
 *   aSnapshot().withMembers(3).withLeader('m2')
 *     .withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB })
 *     .withLearner('m4').unreachable('m3').withAlarm('m1', 'NOSPACE').build()
 *
 * Derived fields (dbSizeFree, fragmentation, quotaUsage, status.isLeader,
 * status.leaderId, status.errors, the cluster's alarm list) are computed in
 * build(), so they always agree with what was set. Member IDs are hex, most of
 * them above 2^53 as real ones are.
 */
import type { AlarmType, ClusterSnapshot, MemberSnapshot, MemberStatus, QuotaSource } from '../src/domain/snapshot.js';
import { DEFAULT_QUOTA_BYTES, MiB } from '../src/domain/snapshot.js';
import type { Policy } from '../src/domain/plan.js';

export { KiB, MiB, GiB } from '../src/domain/snapshot.js';

/** Realistic member IDs; all but the fourth exceed 2^53. */
export const MEMBER_IDS: readonly string[] = [
  '8e9e05c52164694d',
  'fd422379fda50e48',
  'bf9071f4639c75cc',
  '1c70f9bbb4101f',
  'e3bf8ab5ac7bd8a5',
  'a4f2e5d1c8b7e6f3',
  '91bc3c398fb3c146',
  'c8d3a1b2e4f56789',
];

export const CLUSTER_ID = 'cdf818194e3a8c32';
export const OBSERVED_AT = '2024-05-01T12:00:00.000Z';

/** ID for the i-th member created by a builder (0-based); deterministic beyond the table. */
export function memberIdAt(i: number): string {
  const fixed = MEMBER_IDS[i];
  if (fixed !== undefined) return fixed;
  return ((BigInt(i + 1) * 0x9e3779b97f4a7c15n) % (1n << 64n)).toString(16);
}

/** What a test may set on a member; everything else gets a sensible default. */
export interface MemberOverrides {
  memberId?: string;
  endpoint?: string;
  dbSize?: number;
  dbSizeInUse?: number;
  quota?: number;
  quotaSource?: QuotaSource;
  revision?: number;
  raftTerm?: number;
  raftIndex?: number;
  raftAppliedIndex?: number;
  version?: string;
  storageVersion?: string | null;
  reachable?: boolean;
  healthy?: boolean;
  isLearner?: boolean;
  error?: string | null;
  alarms?: AlarmType[];
  /** MemberSnapshot.stopGrpcServiceOnDefrag; absent (undefined): not read. */
  stopGrpcServiceOnDefrag?: boolean | null | undefined;
}

interface MemberSpec extends Required<Omit<MemberOverrides, 'alarms' | 'stopGrpcServiceOnDefrag'>> {
  name: string;
  stopGrpcServiceOnDefrag?: boolean | null | undefined;
  alarms: AlarmType[];
}

export class SnapshotBuilder {
  private readonly members: MemberSpec[] = [];
  /** undefined: the first voter; null: no leader known. */
  private leaderName: string | null | undefined = undefined;
  private readonly orphanAlarms: { memberId: string; alarm: AlarmType }[] = [];
  private alarmsErrorText: string | null = null;

  /** The alarm list could not be read (e.g. a user without the root role). */
  alarmsUnknown(error = 'etcdserver: permission denied'): this {
    this.alarmsErrorText = error;
    return this;
  }

  private spec(name: string): MemberSpec {
    const found = this.members.find((m) => m.name === name);
    if (found === undefined) throw new Error(`builder: no member named ${name}`);
    return found;
  }

  private add(name: string, overrides: MemberOverrides, isLearner: boolean): this {
    const existing = this.members.find((m) => m.name === name);
    if (existing !== undefined) {
      Object.assign(existing, overrides, overrides.alarms ? { alarms: [...overrides.alarms] } : {});
      if (isLearner) existing.isLearner = true;
      return this;
    }
    const i = this.members.length;
    this.members.push({
      name,
      memberId: memberIdAt(i),
      endpoint: `https://10.0.0.${i + 1}:2379`,
      dbSize: 100 * MiB,
      dbSizeInUse: 60 * MiB,
      quota: DEFAULT_QUOTA_BYTES,
      quotaSource: 'metrics',
      revision: 10_000,
      raftTerm: 3,
      raftIndex: 20_000,
      raftAppliedIndex: 20_000,
      // A release with no known defrag defect (src/domain/known-defects.ts): tests of defects set theirs.
      version: '3.5.36',
      storageVersion: null,
      reachable: true,
      healthy: true,
      isLearner,
      error: null,
      ...overrides,
      alarms: [...(overrides.alarms ?? [])],
    });
    return this;
  }

  /** Adds voters m1..mN (those not there yet). */
  withMembers(n: number): this {
    for (let i = 1; i <= n; i++) if (!this.members.some((m) => m.name === `m${i}`)) this.add(`m${i}`, {}, false);
    return this;
  }

  /** Adds a voter, or changes an existing member. */
  withMember(name: string, overrides: MemberOverrides = {}): this {
    return this.add(name, overrides, overrides.isLearner ?? false);
  }

  /** Adds a learner, or makes an existing member one. */
  withLearner(name: string, overrides: MemberOverrides = {}): this {
    return this.add(name, { ...overrides, isLearner: true }, true);
  }

  /** Who leads; null: no leader is known (snapshot.leaderId null, nobody claims it). Default: the first voter. */
  withLeader(name: string | null): this {
    if (name !== null) this.spec(name);
    this.leaderName = name;
    return this;
  }

  /** Status failed: no status, not healthy. */
  unreachable(name: string, error = 'connection refused'): this {
    Object.assign(this.spec(name), { reachable: false, healthy: false, error });
    return this;
  }

  /** Status answered but a linearizable read did not. */
  unhealthy(name: string, error = 'context deadline exceeded'): this {
    Object.assign(this.spec(name), { reachable: true, healthy: false, error });
    return this;
  }

  /** Raises an alarm for a member ('*': for every member, as NOSPACE shows up in practice). */
  withAlarm(name: string, alarm: AlarmType): this {
    const targets = name === '*' ? this.members : [this.spec(name)];
    for (const t of targets) if (!t.alarms.includes(alarm)) t.alarms.push(alarm);
    return this;
  }

  /** An alarm in AlarmList for an ID that is not a member (e.g. a removed one). */
  withOrphanAlarm(memberId: string, alarm: AlarmType): this {
    this.orphanAlarms.push({ memberId, alarm });
    return this;
  }

  build(): ClusterSnapshot {
    const leader =
      this.leaderName === undefined
        ? this.members.find((m) => !m.isLearner)
        : this.leaderName === null
          ? undefined
          : this.spec(this.leaderName);
    const leaderId = leader?.memberId ?? null;
    const members = this.members.map((m): MemberSnapshot => {
      const status: MemberStatus | null = m.reachable
        ? {
            version: m.version,
            storageVersion: m.storageVersion,
            dbSize: m.dbSize,
            dbSizeInUse: m.dbSizeInUse,
            dbSizeFree: m.dbSize - m.dbSizeInUse,
            fragmentation: m.dbSize === 0 ? 0 : (m.dbSize - m.dbSizeInUse) / m.dbSize,
            quota: m.quota,
            quotaSource: m.quotaSource,
            quotaUsage: m.quota === 0 ? 0 : m.dbSize / m.quota,
            revision: m.revision,
            raftTerm: m.raftTerm,
            raftIndex: m.raftIndex,
            raftAppliedIndex: m.raftAppliedIndex,
            leaderId,
            isLeader: m.memberId === leaderId,
            isLearner: m.isLearner,
            errors: m.alarms.map((a) => `memberID:${BigInt(`0x${m.memberId}`).toString()} alarm:${a}`),
          }
        : null;
      return {
        memberId: m.memberId,
        name: m.name,
        peerUrls: [m.endpoint.replace(':2379', ':2380')],
        clientUrls: [m.endpoint],
        isLearner: m.isLearner,
        endpoint: m.endpoint,
        reachable: m.reachable,
        healthy: m.healthy,
        alarms: [...m.alarms],
        status,
        error: m.error,
        ...(m.stopGrpcServiceOnDefrag !== undefined && { stopGrpcServiceOnDefrag: m.stopGrpcServiceOnDefrag }),
      };
    });
    return {
      observedAt: OBSERVED_AT,
      clusterId: members.some((m) => m.reachable) ? CLUSTER_ID : null,
      leaderId,
      members,
      alarms: [...this.members.flatMap((m) => m.alarms.map((alarm) => ({ memberId: m.memberId, alarm }))), ...this.orphanAlarms],
      alarmsError: this.alarmsErrorText,
    };
  }
}

/** A snapshot builder; with no members added, build() gives an empty cluster. */
export function aSnapshot(): SnapshotBuilder {
  return new SnapshotBuilder();
}

/** The defaults the CLI uses, overridden by `overrides`. */
export function aPolicy(overrides: Partial<Policy> = {}): Policy {
  return {
    rule: null,
    moveLeader: true,
    skipHealthCheck: false,
    compactKeepRevisions: null,
    disarmNospace: false,
    disarmBelow: 0.9,
    defragTimeoutMs: null,
    ...overrides,
  };
}

/** The decision for a member by name; throws when absent so tests read straight. */
export function decisionFor<D extends { name: string }>(plan: { decisions: D[] }, name: string): D {
  const d = plan.decisions.find((x) => x.name === name);
  if (d === undefined) throw new Error(`no decision for ${name}`);
  return d;
}
