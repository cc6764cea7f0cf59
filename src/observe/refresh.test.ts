/**
 * The light observation between two full ones: Status answers applied to the
 * last full snapshot, and every answer that must bring a full observation at
 * once (an alarm, a lost leader, a shrunken file, a silent member...). Pure;
 * the daemon's use of it against real etcd is in test/integration.
 */
import { describe, expect, it } from 'vitest';
import type { StatusReply } from '../etcd/client.js';
import type { ClusterSnapshot, MemberSnapshot } from '../domain/snapshot.js';
import { toMemberStatus } from './observe.js';
import { applyStatuses, refreshBlocker } from './refresh.js';

const MiB = 1024 * 1024;
const LEADER = 'a1';

function reply(memberId: string, over: Partial<StatusReply> = {}): StatusReply {
  return {
    header: { clusterId: 'c0', memberId, revision: 100, raftTerm: 2 },
    version: '3.4.23',
    dbSize: 10 * MiB,
    dbSizeInUse: 6 * MiB,
    leader: LEADER,
    raftIndex: 50,
    raftTerm: 2,
    raftAppliedIndex: 50,
    errors: [],
    isLearner: false,
    storageVersion: null,
    dbSizeQuota: null,
    ...over,
  };
}

function member(id: string, quota = 64 * MiB): MemberSnapshot {
  const status = { ...toMemberStatus(reply(id), quota, null), quotaSource: 'metrics' as const };
  return {
    memberId: id,
    name: `m-${id}`,
    peerUrls: [],
    clientUrls: [`http://${id}:2379`],
    isLearner: false,
    endpoint: `http://${id}:2379`,
    reachable: true,
    healthy: true,
    alarms: [],
    status,
    error: null,
  };
}

function snapshot(members = ['a1', 'a2', 'a3'].map((id) => member(id))): ClusterSnapshot {
  return { observedAt: '2026-11-26T00:00:00.000Z', clusterId: 'c0', leaderId: LEADER, members, alarms: [], alarmsError: null };
}

const AT = '2026-11-26T00:00:05.000Z';

describe('applyStatuses', () => {
  it('takes new sizes and revision, keeps health and the quota read from /metrics', () => {
    const prev = snapshot();
    const r = applyStatuses(
      prev,
      [
        reply('a1', { dbSize: 12 * MiB, dbSizeInUse: 7 * MiB, header: { clusterId: 'c0', memberId: 'a1', revision: 140, raftTerm: 2 } }),
        reply('a2'),
        reply('a3'),
      ],
      AT,
    );
    expect(r.fullBecause).toBeNull();
    const m = r.snapshot?.members[0];
    expect(r.snapshot?.observedAt).toBe(AT);
    expect(m?.status).toMatchObject({
      dbSize: 12 * MiB,
      dbSizeInUse: 7 * MiB,
      dbSizeFree: 5 * MiB,
      revision: 140,
      quota: 64 * MiB,
      quotaSource: 'metrics',
      quotaUsage: 12 / 64,
      isLeader: true,
    });
    expect(m).toMatchObject({ healthy: true, reachable: true, name: 'm-a1' });
    expect(r.snapshot?.leaderId).toBe(LEADER);
    // The previous snapshot is not changed.
    expect(prev.members[0]?.status?.dbSize).toBe(10 * MiB);
  });

  it('asks for a full observation when a member does not answer', () => {
    const r = applyStatuses(snapshot(), [reply('a1'), new Error('deadline exceeded'), reply('a3')], AT);
    expect(r.snapshot).toBeNull();
    expect(r.fullBecause).toBe('m-a2 did not answer Status: deadline exceeded');
  });

  it('asks for a full observation when Status reports an alarm (etcd lists active alarms in every member’s errors)', () => {
    const errors = ['memberID:9086267533759250832 alarm:NOSPACE '];
    const r = applyStatuses(snapshot(), [reply('a1', { errors }), reply('a2', { errors }), reply('a3', { errors })], AT);
    expect(r.fullBecause).toBe('m-a1 reports memberID:9086267533759250832 alarm:NOSPACE');
  });

  it.each([
    ['a member follows another leader', [reply('a1', { leader: 'a2' }), reply('a2'), reply('a3')], 'm-a1 follows another leader'],
    ['a member lost its leader', [reply('a1'), reply('a2', { leader: null }), reply('a3')], 'm-a2 follows another leader'],
    ['an endpoint answers as another member', [reply('a1'), reply('a9'), reply('a3')], 'http://a2:2379 answered as another member'],
    [
      'an endpoint answers from another cluster',
      [reply('a1'), reply('a2', { header: { clusterId: 'c9', memberId: 'a2', revision: 1, raftTerm: 1 } }), reply('a3')],
      'http://a2:2379 answered as another member',
    ],
    ['a member was made a learner', [reply('a1'), reply('a2'), reply('a3', { isLearner: true })], 'm-a3 was made a learner'],
    ['a db file shrank', [reply('a1'), reply('a2'), reply('a3', { dbSize: 9 * MiB })], 'the db file of m-a3 shrank (defragmented?)'],
    ['an answer is missing', [reply('a1'), reply('a2')], 'm-a3 was not asked'],
  ])('asks for a full observation when %s', (_what, answers, because) => {
    const r = applyStatuses(snapshot(), answers, AT);
    expect(r).toEqual({ snapshot: null, fullBecause: because });
  });
});

describe('refreshBlocker', () => {
  it('lets a healthy snapshot be refreshed', () => {
    expect(refreshBlocker(snapshot())).toBeNull();
  });

  it.each([
    ['an active alarm', { alarms: [{ memberId: 'a1', alarm: 'NOSPACE' }] }, 'an alarm is active'],
    ['an unread alarm list', { alarmsError: 'deadline exceeded' }, 'the alarm list could not be read'],
    ['no member', { members: [] }, 'no member is known'],
    [
      'an unhealthy member',
      { members: [member('a1'), { ...member('a2'), healthy: false, error: 'unhealthy: timeout' }] },
      'm-a2 was not healthy',
    ],
    ['an unreachable member', { members: [member('a1'), { ...member('a2'), reachable: false, status: null }] }, 'm-a2 was not healthy'],
  ])('refuses a snapshot with %s, so that the full observation looks again', (_what, over, because) => {
    expect(refreshBlocker({ ...snapshot(), ...over } as ClusterSnapshot)).toBe(because);
  });
});
