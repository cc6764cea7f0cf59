/** The wire client against real etcd: exact keys, exact IDs, errors mapped to one readable line. */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { connect, EtcdError } from '../../src/index.js';
import { AbortedError } from '../../src/domain/errors.js';

describe('wire client', () => {
  const cluster = useCluster({ members: 3 });

  it('a single-key Range or DeleteRange touches that key only', async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const m = client.member(cluster().endpoints[0] as string);
      for (const k of ['/t/a', '/t/b', '/u']) await m.put(k, k);
      const one = await m.range('/t/a');
      expect(one.kvs.map((kv) => kv.key.toString())).toEqual(['/t/a']);
      expect(one.count).toBe(1);
      expect((await m.range('/t/', { rangeEnd: '/t0' })).count).toBe(2);
      expect((await m.deleteRange('/t/a')).deleted).toBe(1);
      expect((await m.range('/', { rangeEnd: '0' })).kvs.map((kv) => kv.key.toString())).toEqual(['/t/b', '/u']);
    } finally {
      client.close();
    }
  });

  it('each call goes to the member it is made on (Status headers name that member)', async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const ids = await Promise.all(cluster().endpoints.map(async (ep) => (await client.member(ep).status()).header.memberId));
      expect(new Set(ids).size).toBe(3);
      const list = await client.member(cluster().endpoints[0] as string).memberList();
      expect(list.members.map((x) => x.memberId).sort()).toEqual([...ids].sort());
    } finally {
      client.close();
    }
  });

  it('HashKV at one revision is equal on every member and unchanged by a defrag', async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const m1 = client.member(cluster().endpoints[0] as string);
      const rev = (await m1.put('/h', 'v')).revision;
      await new Promise((r) => setTimeout(r, 200));
      const hashes = await Promise.all(cluster().endpoints.map(async (ep) => (await client.member(ep).hashKV(rev)).hash));
      expect(new Set(hashes).size).toBe(1);
      await client.member(cluster().endpoints[1] as string).defragment({ timeoutMs: 30_000 });
      expect((await client.member(cluster().endpoints[1] as string).hashKV(rev)).hash).toBe(hashes[0]);
    } finally {
      client.close();
    }
  });

  it("MoveLeader sent to a follower fails with etcd's reason, mapped to an EtcdError", async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const statuses = await Promise.all(cluster().endpoints.map(async (ep) => ({ ep, s: await client.member(ep).status() })));
      const followers = statuses.filter((x) => x.s.leader !== x.s.header.memberId);
      const [f1, f2] = followers as [(typeof followers)[0], (typeof followers)[0]];
      const err = await client
        .member(f1.ep)
        .moveLeader(f2.s.header.memberId)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EtcdError);
      expect((err as EtcdError).grpcCode).toBe('FAILED_PRECONDITION');
      expect((err as EtcdError).message).toMatch(/not leader|bad leader transferee/);
      expect((err as EtcdError).message.split('\n')).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  it("Snapshot streams the member's backend: a bbolt file with the data in it", async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const m = client.member(cluster().endpoints[0] as string);
      await m.put('/snap', 'x'.repeat(100_000));
      const { dbSize } = await m.status();
      const chunks: Buffer[] = [];
      const it = m.snapshot({ timeoutMs: 30_000 });
      let next = await it.next();
      while (!next.done) {
        chunks.push(next.value);
        next = await it.next();
      }
      const file = Buffer.concat(chunks);
      expect(next.value.bytes).toBe(file.length);
      // A bbolt file (its magic number sits in the first page's meta) holding the 100 kB value written above.
      expect(file.readUInt32LE(16)).toBe(0xed0cdaed);
      expect(file.length).toBeGreaterThan(100_000);
      expect(file.includes(Buffer.from('x'.repeat(1000)))).toBe(true);
      expect(dbSize).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });

  it('an abort that comes while the connection is being prepared still cancels the call (it was lost: the call ran to its answer)', async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const member = client.member(cluster().endpoints[1] as string);
      await member.status(); // connected: preparing the next call takes only a moment
      const ac = new AbortController();
      // Not aborted when the call starts; aborted before its first await (the connection check) returns.
      const call = member.status({ signal: ac.signal, timeoutMs: 10_000 });
      ac.abort();
      const err = await call.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AbortedError);
    } finally {
      client.close();
    }
  });

  it('a call to a member passes its deadline as a DeadlineError, not a hang', async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const err = await client
        .member(cluster().endpoints[0] as string)
        .defragment({ timeoutMs: 1 })
        .catch((e: unknown) => e);
      // 1 ms is shorter than any round trip: the client gives up (etcd may still defragment).
      expect((err as Error).name).toBe('DeadlineError');
      expect((err as Error).message).toMatch(/deadline exceeded/);
    } finally {
      client.close();
    }
  });
});
