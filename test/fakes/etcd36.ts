/**
 * A fake etcd gRPC server for what no real etcd here can be made to show: a
 * zero quota with no /metrics behind it, and a CORRUPT alarm. It serves our
 * own proto with canned answers shaped like a 3.6 member's, and records the
 * calls it gets.
 */
import * as grpc from '@grpc/grpc-js';
import { loadServices } from '../../src/etcd/proto.js';

export interface FakeMember {
  id: string; // decimal uint64
  name: string;
  status: Record<string, unknown>;
}

export interface FakeEtcd {
  url: string;
  calls: { method: string; request: unknown }[];
  alarms: { memberID: string; alarm: string }[];
  close(): Promise<void>;
}

const CLUSTER_ID = '14841639068965178418';

/** One fake member answering for itself; memberList lists all of `members` with this server's URL for the first. */
export async function startFakeEtcd(self: FakeMember, opts: { alarms?: { memberID: string; alarm: string }[] } = {}): Promise<FakeEtcd> {
  const services = loadServices();
  const server = new grpc.Server();
  const calls: FakeEtcd['calls'] = [];
  const alarms = [...(opts.alarms ?? [])];
  const header = () => ({ cluster_id: CLUSTER_ID, member_id: self.id, revision: '1234', raft_term: '7' });
  let url = '';
  const unary =
    (method: string, answer: (req: Record<string, unknown>) => unknown) =>
    (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      calls.push({ method, request: call.request });
      cb(null, answer(call.request));
    };
  server.addService(services.Maintenance.service, {
    Status: unary('Status', () => ({ header: header(), ...self.status })),
    Alarm: unary('Alarm', (req) => {
      if (req['action'] === 'DEACTIVATE') {
        const i = alarms.findIndex((a) => a.memberID === req['memberID'] && a.alarm === req['alarm']);
        if (i >= 0) alarms.splice(i, 1);
      }
      return { header: header(), alarms };
    }),
    Defragment: unary('Defragment', () => ({ header: header() })),
  });
  server.addService(services.Cluster.service, {
    MemberList: unary('MemberList', () => ({
      header: header(),
      members: [{ ID: self.id, name: self.name, peerURLs: [], clientURLs: [url], isLearner: false }],
    })),
  });
  server.addService(services.KV.service, {
    Range: unary('Range', () => ({ header: header(), kvs: [], more: false, count: '0' })),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  url = `http://127.0.0.1:${port}`;
  return {
    url,
    calls,
    alarms,
    close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
}

/** Status fields as an etcd 3.6 member sends them (64-bit values as decimal strings). */
export const STATUS_36 = {
  version: '3.6.4',
  dbSize: '314572800',
  dbSizeInUse: '104857600',
  leader: '10276657743932975437',
  raftIndex: '5021',
  raftTerm: '7',
  raftAppliedIndex: '5021',
  errors: [],
  isLearner: false,
  storageVersion: '3.6.0',
  dbSizeQuota: '8589934592',
};
