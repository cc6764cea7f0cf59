/**
 * `--endpoints` that do not describe one cluster, against real etcd 3.4:
 * endpoints of two clusters are refused by every command (exit 2, naming
 * each endpoint's cluster ID) and nothing is touched; one member given twice
 * (127.0.0.1 and localhost) is one row; an endpoint that does not answer is
 * no evidence of another cluster.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { cli, json, type CliResult } from '../support/cli.js';
import { defragCount } from './helpers-defrag.js';
import type { StatusJson } from '../../src/cli/printers/status.js';

const show = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** The cluster ID as etcdctl reports it (decimal uint64 on the wire), in hex; read as digits, never JSON.parse'd. */
async function clusterIdOf(c: EtcdCluster): Promise<string> {
  const r = await c.etcdctl(['endpoint', 'status', '-w', 'json']);
  const ids = [...new Set([...r.stdout.matchAll(/"cluster_id":(\d+)/g)].map((m) => BigInt(m[1] as string).toString(16)))];
  expect(ids, r.stdout + r.stderr).toHaveLength(1);
  return ids[0] as string;
}

/** What "nothing changed" means to an operator: sizes, etcd's own defrag count, and no lock key left. */
async function state(c: EtcdCluster) {
  const members = await Promise.all(c.endpoints.map(async (ep) => ({ ep, defrags: await defragCount(ep) })));
  const status = await c.etcdctl(['endpoint', 'status', '-w', 'json']);
  const dbSizes = [...status.stdout.matchAll(/"dbSize":(\d+)/g)].map((m) => Number(m[1]));
  return { members, dbSizes };
}

/** The cluster's store revision: any write, even one undone at once, moves it. */
async function revision(c: EtcdCluster): Promise<number> {
  const r = await c.etcdctl(['endpoint', 'status', '-w', 'json']);
  return Math.max(...[...r.stdout.matchAll(/"revision":(\d+)/g)].map((m) => Number(m[1])));
}

async function lockKeys(c: EtcdCluster): Promise<string> {
  const r = await c.etcdctl(['get', '--prefix', '/defragd/', '--keys-only']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const asLocalhost = (url: string) => url.replace('127.0.0.1', 'localhost');

describe('endpoints of two clusters', () => {
  let a: EtcdCluster;
  let b: EtcdCluster;
  let idA: string;
  let idB: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startCluster({ members: 3 }), startCluster({ members: 1 })]);
    [idA, idB] = await Promise.all([clusterIdOf(a), clusterIdOf(b)]);
    expect(idA).not.toBe(idB);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  /** Exit 2, one line on stderr naming each given endpoint with its own cluster ID, and no stack. */
  function expectRefused(r: CliResult, groups: { endpoints: string[]; id: string }[]) {
    expect(r.code, show(r)).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^defragd: --endpoints name members of more than one cluster: /);
    expect(lines[0]).toMatch(/give the endpoints of one cluster$/);
    for (const g of groups)
      expect(lines[0]).toContain(`${g.endpoints.join(', ')} ${g.endpoints.length === 1 ? 'is' : 'are'} cluster ${g.id}`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // -w json always prints one JSON object (defrag's report); otherwise stdout stays empty.
    if (r.stdout !== '')
      expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'refused', message: expect.stringMatching(/more than one cluster/) });
  }

  const mixed = () => [a.endpoints[0] as string, a.endpoints[1] as string, b.endpoints[0] as string];

  it('status without --cluster refuses instead of mixing both clusters in one table', async () => {
    expectRefused(await cli(['status', '--endpoints', mixed().join(',')]), [
      { endpoints: mixed().slice(0, 2), id: idA },
      { endpoints: [b.endpoints[0] as string], id: idB },
    ]);
    expectRefused(await cli(['status', '--endpoints', mixed().join(','), '-w', 'json']), [
      { endpoints: mixed().slice(0, 2), id: idA },
      { endpoints: [b.endpoints[0] as string], id: idB },
    ]);
  });

  it('status --cluster refuses instead of dropping the seed of the other cluster, whichever seed is listed first', async () => {
    // The first seed answers MemberList; the other cluster's seed is not in that list and is asked on its own.
    expectRefused(await cli(['status', '--cluster', '--endpoints', `${a.endpoints[0]},${b.endpoints[0]}`]), [
      { endpoints: [a.endpoints[0] as string], id: idA },
      { endpoints: [b.endpoints[0] as string], id: idB },
    ]);
    expectRefused(await cli(['status', '--cluster', '--endpoints', `${b.endpoints[0]},${a.endpoints[2]}`]), [
      { endpoints: [b.endpoints[0] as string], id: idB },
      { endpoints: [a.endpoints[2] as string], id: idA },
    ]);
  });

  it('alarm list and alarm disarm refuse', async () => {
    const groups = [
      { endpoints: mixed().slice(0, 2), id: idA },
      { endpoints: [b.endpoints[0] as string], id: idB },
    ];
    expectRefused(await cli(['alarm', 'list', '--endpoints', mixed().join(',')]), groups);
    expectRefused(await cli(['alarm', 'disarm', '--endpoints', mixed().join(',')]), groups);
  });

  it('defrag --dry-run and defrag refuse and change nothing on either cluster', async () => {
    const before = { a: await state(a), b: await state(b) };
    const groups = [
      { endpoints: mixed().slice(0, 2), id: idA },
      { endpoints: [b.endpoints[0] as string], id: idB },
    ];
    expectRefused(await cli(['defrag', '--dry-run', '--endpoints', mixed().join(',')]), groups);
    expectRefused(await cli(['defrag', '--endpoints', mixed().join(',')]), groups);
    // The other cluster's seed first: the run must not go ahead on the cluster it reaches first either.
    expectRefused(await cli(['defrag', '--endpoints', `${b.endpoints[0]},${a.endpoints[0]}`, '-w', 'json']), [
      { endpoints: [b.endpoints[0] as string], id: idB },
      { endpoints: [a.endpoints[0] as string], id: idA },
    ]);
    expect({ a: await state(a), b: await state(b) }).toEqual(before);
    // No member was defragmented: etcd's own counter says so (sizes alone may not move on a fresh member).
    for (const m of [...before.a.members, ...before.b.members]) expect(m.defrags, m.ep).not.toBeNull();
    expect(await lockKeys(a)).toBe('');
    expect(await lockKeys(b)).toBe('');
  });

  it('defrag writes nothing to either cluster, not even its lock (taken and released again)', async () => {
    const before = { a: await revision(a), b: await revision(b) };
    expect(before.a).toBeGreaterThan(0);
    expect((await cli(['defrag', '--endpoints', mixed().join(',')])).code).toBe(2);
    expect((await cli(['defrag', '--endpoints', `${b.endpoints[0]},${a.endpoints[0]}`])).code).toBe(2);
    // Fails while runDefrag takes the cluster lock before the first observation (src/app/defragment.ts):
    // the lock key is written to the first endpoint's cluster and deleted again, which moves its revision.
    expect({ a: await revision(a), b: await revision(b) }).toEqual(before);
  });

  it('an endpoint that does not answer is not another cluster: its row shows the error, as before', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const r = await cli(['status', '--endpoints', `${a.endpoints[0]},${dead}`, '-w', 'json', '--command-timeout', '2s']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).not.toMatch(/more than one cluster/);
    const rows = json<StatusJson[]>(r);
    expect(rows.map((x) => x.endpoint)).toEqual([a.endpoints[0], dead]);
    expect(rows[1]?.error).toMatch(/connection refused|could not connect/);
    const all = await cli(['status', '--cluster', '--endpoints', `${dead},${a.endpoints[1]}`, '-w', 'json', '--command-timeout', '2s']);
    expect(all.code, show(all)).toBe(0);
    expect(json<StatusJson[]>(all)).toHaveLength(3);
  });
});

describe('one member given twice (127.0.0.1 and localhost)', () => {
  let c: EtcdCluster;
  beforeAll(async () => {
    c = await startCluster({ members: 3 });
  }, 60_000);
  afterAll(async () => {
    await c?.close();
  });

  it('status shows each member once, under the endpoint given first', async () => {
    const [e1, e2] = c.endpoints as [string, string];
    const r = await cli(['status', '--endpoints', [e1, asLocalhost(e1), e2, asLocalhost(e2)].join(','), '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const rows = json<StatusJson[]>(r);
    expect(rows.map((x) => x.endpoint)).toEqual([e1, e2]);
    expect(new Set(rows.map((x) => x.memberId)).size).toBe(2);

    const localFirst = json<StatusJson[]>(await cli(['status', '--endpoints', `${asLocalhost(e1)},${e1}`, '-w', 'json']));
    expect(localFirst.map((x) => x.endpoint)).toEqual([asLocalhost(e1)]);

    const table = await cli(['status', '--endpoints', `${e1},${asLocalhost(e1)}`]);
    expect(table.code, show(table)).toBe(0);
    expect(table.stdout.split('\n').filter((l) => l.includes(`│ m1 `))).toHaveLength(1);
  });

  it('with --cluster too, and the dry run plans each member once', async () => {
    const eps = [...c.endpoints.map(asLocalhost), ...c.endpoints].join(',');
    const rows = json<StatusJson[]>(await cli(['status', '--cluster', '--endpoints', eps, '-w', 'json']));
    expect(rows.map((x) => x.name).sort()).toEqual(['m1', 'm2', 'm3']);
    const plan = await cli(['defrag', '--dry-run', '--endpoints', eps, '-w', 'json']);
    expect(plan.code, show(plan)).toBe(0);
    expect(
      json<{ plan: { decisions: { name: string }[] } }>(plan)
        .plan.decisions.map((d) => d.name)
        .sort(),
    ).toEqual(['m1', 'm2', 'm3']);
  });
});
