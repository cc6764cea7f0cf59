/**
 * leaseKeepAliveOnce against a gRPC server that ends the stream in ways a real member can but cannot be
 * made to on purpose here: CANCELLED before any answer (etcd passes a cancelled context's error through
 * as CANCELLED), an end with no answer. Each must fail the call: a keep-alive left pending has no
 * timer to keep Node alive, and the CLI ended mid-run with exit 13 and no report (`make bench-kube`,
 * a 17 s leader defrag under kube-apiserver's load).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdClient } from './client.js';
import { loadServices } from './proto.js';

type Mode = 'answer' | 'cancelled' | 'end';

describe('leaseKeepAliveOnce: every end of the stream settles it', () => {
  let server: grpc.Server;
  let url = '';
  let mode: Mode = 'answer';

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(loadServices().Lease.service, {
      LeaseKeepAlive: (call: grpc.ServerDuplexStream<{ ID: string }, unknown>) => {
        call.once('data', (req: { ID: string }) => {
          if (mode === 'answer') call.write({ header: {}, ID: req.ID, TTL: '30' });
          else if (mode === 'cancelled') call.emit('error', { code: grpc.status.CANCELLED, details: 'context canceled' });
          else call.end();
        });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));

  const once = async (m: Mode) => {
    mode = m;
    const client = new EtcdClient({ endpoints: [url] });
    try {
      return await client.member(url).leaseKeepAliveOnce('7', { timeoutMs: 10_000 });
    } finally {
      client.close();
    }
  };

  it('answers the TTL', async () => {
    expect(await once('answer')).toBe(30);
  });

  it('fails at once on CANCELLED from the member, before its deadline', async () => {
    const t0 = Date.now();
    await expect(once('cancelled')).rejects.toThrow(/LeaseKeepAlive/);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('fails at once when the member ends the stream without an answer', async () => {
    await expect(once('end')).rejects.toThrow(/LeaseKeepAlive failed: the stream ended without an answer/);
  });
});
