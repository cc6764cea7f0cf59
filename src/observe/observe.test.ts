/**
 * observeCluster's view of which cluster it is looking at: endpoints of two
 * clusters are refused, one member under two names is one row, a silent
 * endpoint proves nothing, and the common case costs no extra calls. The
 * client is a recording fake; real etcd is in test/integration/mixed-endpoints.
 */
import { describe, expect, it } from 'vitest';
import { ConnectionError, MixedClustersError, UsageError } from '../domain/errors.js';
import type { EtcdClient, StatusReply } from '../etcd/client.js';
import { observeCluster } from './observe.js';

interface FakeEndpoint {
  clusterId: string;
  memberId: string;
  name: string;
  /** Reached under a name MemberList does not advertise (e.g. localhost for 127.0.0.1). */
  alias?: boolean;
}

/** Endpoints not in `world` refuse the connection, as a port nothing listens on does. */
function fakeClient(seeds: string[], world: Record<string, FakeEndpoint>) {
  const calls: { method: string; endpoint: string }[] = [];
  const answer = (endpoint: string, method: string): FakeEndpoint => {
    calls.push({ method, endpoint });
    const e = world[endpoint];
    if (!e) throw new ConnectionError(endpoint, `${endpoint}: connection refused`);
    return e;
  };
  const header = (e: FakeEndpoint) => ({ clusterId: e.clusterId, memberId: e.memberId, revision: 7, raftTerm: 2 });
  const member = (endpoint: string) => ({
    status: async (): Promise<StatusReply> => {
      const e = answer(endpoint, 'status');
      return {
        header: header(e),
        version: '3.4.23',
        dbSize: 100,
        dbSizeInUse: 60,
        leader: null,
        raftIndex: 9,
        raftTerm: 2,
        raftAppliedIndex: 9,
        errors: [],
        isLearner: false,
        storageVersion: null,
        dbSizeQuota: null,
      };
    },
    memberList: async () => {
      const e = answer(endpoint, 'memberList');
      const members = Object.entries(world)
        .filter(([, m]) => m.clusterId === e.clusterId && !m.alias)
        .map(([url, m]) => ({ memberId: m.memberId, name: m.name, peerUrls: [], clientUrls: [url], isLearner: false }));
      return { header: header(e), members };
    },
    alarmList: async () => (answer(endpoint, 'alarmList'), []),
    range: async () => (answer(endpoint, 'range'), { kvs: [], count: 0, more: false }),
  });
  const client = { seeds, member, context: { tlsByDefault: false, httpTls: {} } } as unknown as EtcdClient;
  const count = (method: string, endpoint?: string) =>
    calls.filter((c) => c.method === method && (endpoint === undefined || c.endpoint === endpoint)).length;
  return { client, calls, count };
}

const A1 = 'http://127.0.0.1:2379';
const A2 = 'http://127.0.0.1:2479';
const A3 = 'http://127.0.0.1:2579';
const B1 = 'http://127.0.0.1:3379';
const DOWN = 'http://127.0.0.1:9';
const world: Record<string, FakeEndpoint> = {
  [A1]: { clusterId: 'aaaa', memberId: 'a1', name: 'm1' },
  [A2]: { clusterId: 'aaaa', memberId: 'a2', name: 'm2' },
  [A3]: { clusterId: 'aaaa', memberId: 'a3', name: 'm3' },
  [B1]: { clusterId: 'bbbb', memberId: 'b1', name: 'other' },
  'http://localhost:2379': { clusterId: 'aaaa', memberId: 'a1', name: 'm1', alias: true },
};
const opts = { metrics: false };

async function refusal(p: Promise<unknown>): Promise<MixedClustersError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MixedClustersError);
  return err as MixedClustersError;
}

describe('observeCluster: endpoints of more than one cluster', () => {
  it('without --cluster: refused as a usage error naming each endpoint and its cluster, in the order given', async () => {
    const { client } = fakeClient([A1, B1, A2], world);
    const err = await refusal(observeCluster(client, opts));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.kind).toBe('usage');
    expect(err.message).toBe(
      `--endpoints name members of more than one cluster: ${A1}, ${A2} are cluster aaaa; ${B1} is cluster bbbb; give the endpoints of one cluster`,
    );
    expect(err.endpoints).toEqual([
      { endpoint: A1, clusterId: 'aaaa' },
      { endpoint: B1, clusterId: 'bbbb' },
      { endpoint: A2, clusterId: 'aaaa' },
    ]);
  });

  it('with --cluster: a seed outside the listed members is asked once, and its other cluster refused', async () => {
    const { client, count } = fakeClient([A1, B1], world);
    const err = await refusal(observeCluster(client, { ...opts, cluster: true }));
    // Only the seeds are named; the discovered members of the same cluster add nothing.
    expect(err.message).toBe(
      `--endpoints name members of more than one cluster: ${A1} is cluster aaaa; ${B1} is cluster bbbb; give the endpoints of one cluster`,
    );
    expect(count('status', B1)).toBe(1);
    expect(count('memberList', B1)).toBe(0);
  });

  it("with --cluster: the other cluster's seed first is refused too", async () => {
    const { client } = fakeClient([B1, A2], world);
    const err = await refusal(observeCluster(client, { ...opts, cluster: true }));
    expect(err.endpoints).toEqual([
      { endpoint: B1, clusterId: 'bbbb' },
      { endpoint: A2, clusterId: 'aaaa' },
    ]);
  });

  it('an endpoint that does not answer is no evidence: its row carries the error', async () => {
    const { client } = fakeClient([A1, DOWN], world);
    const snap = await observeCluster(client, opts);
    expect(snap.clusterId).toBe('aaaa');
    expect(snap.members.map((m) => [m.endpoint, m.reachable])).toEqual([
      [A1, true],
      [DOWN, false],
    ]);
    expect(snap.members[1]?.error).toMatch(/connection refused/);
  });

  it('with --cluster, a seed that already failed MemberList is not asked again', async () => {
    const { client, count } = fakeClient([DOWN, A1], world);
    const snap = await observeCluster(client, { ...opts, cluster: true });
    expect(snap.members.map((m) => m.name)).toEqual(['m1', 'm2', 'm3']);
    expect(count('status', DOWN)).toBe(0);
  });
});

describe('observeCluster: cost of the check', () => {
  it('every seed a member: one Status per member, no extra call', async () => {
    const plain = fakeClient([A1, A2, A3], world);
    await observeCluster(plain.client, opts);
    expect(plain.count('status')).toBe(3);

    // A2 answers MemberList; A3 is a listed member's client URL, so its Status row is its cluster check.
    const discovered = fakeClient([A2, A3], world);
    const snap = await observeCluster(discovered.client, { ...opts, cluster: true });
    expect(snap.clusterId).toBe('aaaa');
    expect(discovered.count('status')).toBe(3);
    expect(discovered.count('memberList')).toBe(1);
  });
});

describe('observeCluster: one member under two endpoints', () => {
  it('without --cluster: one row, under the endpoint given first', async () => {
    const localhostFirst = fakeClient(['http://localhost:2379', A2, A1], world);
    const snap = await observeCluster(localhostFirst.client, opts);
    expect(snap.members.map((m) => [m.endpoint, m.name])).toEqual([
      ['http://localhost:2379', 'm1'],
      [A2, 'm2'],
    ]);
  });

  it('with --cluster: the alias is recognised as a member of the same cluster, no extra row', async () => {
    const { client } = fakeClient(['http://localhost:2379', A1], world);
    const snap = await observeCluster(client, { ...opts, cluster: true });
    expect(snap.members.map((m) => m.name)).toEqual(['m1', 'm2', 'm3']);
  });
});
