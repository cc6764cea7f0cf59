/**
 * The Kubernetes stack the kube benchmarks stand on (dev/harness/kube.ts): a real kube-apiserver on
 * a 3-member cluster of the default etcd, and the client-go load program against it. What an
 * operator would look at: apiserver ready, every controller holding its lease, requests answered,
 * the load's report making sense, the database growing and apiserver compacting it by itself; and
 * nothing left running or on disk after stop.
 *
 * Skipped by name when this machine has not built go/kube (`make kube`: many minutes, once).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ETCD_LINE, etcdUnderTest, startCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { kubeBinaries, portInUse, processesMentioning, startKube, type KubeStack, type LoadReport } from '../../dev/harness/kube.js';
import { existsSync } from 'node:fs';

const MiB = 1024 * 1024;
const kube = kubeBinaries();
const underTest = etcdUnderTest().version;
// Once per make test, on the default etcd: the stack is slow to start and the etcd versions' own
// tests are elsewhere.
const onDefault = underTest.startsWith(`${DEFAULT_ETCD_LINE}.`);
const skipWhy = !kube.ok ? kube.why : !onDefault ? `runs on etcd ${DEFAULT_ETCD_LINE} only, not ${underTest}` : '';
const LOAD_MS = 20_000;

interface EndpointStatus {
  Endpoint: string;
  Status: { dbSize: number; dbSizeInUse?: number; header: { revision: number } };
}

async function dbSizes(cluster: EtcdCluster): Promise<number[]> {
  const r = await cluster.etcdctl(['endpoint', 'status', '-w', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout.replace(/:\s*(\d{16,})/g, ':"$1"')) as EndpointStatus[]).map((s) => Number(s.Status.dbSize));
}

const sum = (counts: Record<string, number> | undefined): number => Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
const ok2xx = (counts: Record<string, number> | undefined): number =>
  Object.entries(counts ?? {})
    .filter(([code]) => code.startsWith('2'))
    .reduce((a, [, n]) => a + n, 0);

describe('kube stack: kube-apiserver and client-go load on a 3-member etcd', () => {
  it.skipIf(skipWhy !== '')(
    `apiserver ready, leases held, requests answered, etcd grows and apiserver compacts${kube.ok ? ` (Kubernetes ${kube.bins.version}, etcd ${underTest})` : ''}${skipWhy ? ` (skipped: ${skipWhy})` : ''}`,
    async () => {
      const cluster = await startCluster({ members: 3 });
      let stack: KubeStack | undefined;
      try {
        // 5 s: apiserver compacts (to the revision of the tick before) well inside the run.
        stack = await startKube(cluster, { compactionInterval: '5s' });
        const api = stack.apiservers[0]!;
        const ready = await stack.readyz();
        expect(ready.status, ready.body).toBe(200);
        expect(ready.body).toMatch(/\[\+\]etcd ok/);
        const before = await dbSizes(cluster);

        const load = await stack.startLoad({
          profile: 'fast',
          controllers: 3,
          candidates: 2,
          configmapWriters: 2,
          configmaps: 10,
          configmapBytes: 128 * 1024,
          configmapIntervalMs: 50,
        });
        await new Promise((r) => setTimeout(r, LOAD_MS / 2));
        const mid = await load.report();
        await new Promise((r) => setTimeout(r, LOAD_MS / 2));
        const final: LoadReport = await load.stop();
        const after = await dbSizes(cluster);
        const hashes = await cluster.hashKV();
        const summary = JSON.stringify({ before, after, compacted: hashes.map((h) => h.compactRevision), final }, null, 1);

        // The on-demand report cut a window; the final one covers the run.
        expect(mid.reason).toBe('report');
        expect(final.reason).toBe('signal');
        expect(final.seq).toBe(2);
        expect(final.total.readyz.polls).toBeGreaterThan(mid.total.readyz.polls);
        expect(final.window.readyz.polls).toBe(final.total.readyz.polls - mid.total.readyz.polls);

        // Every controller's lease is held by one of its candidates, none was lost.
        expect(Object.keys(final.holders).sort(), summary).toEqual(['load-controller-0', 'load-controller-1', 'load-controller-2']);
        for (const [lease, holder] of Object.entries(final.holders)) {
          expect(holder, `${lease} held\n${summary}`).not.toBe('');
          expect(final.total.leases[lease]?.acquired, summary).toBeGreaterThanOrEqual(1);
          expect(final.total.leases[lease]?.lost, summary).toBe(0);
        }

        // Requests: the writers' calls all succeeded, every verb got 2xx answers.
        for (const op of ['configmap-create', 'configmap-update', 'configmap-delete', 'event-create']) {
          expect(final.total.operations[op]?.ok, `${op}\n${summary}`).toBeGreaterThan(0);
          expect(final.total.operations[op]?.failed, `${op}\n${summary}`).toBe(0);
        }
        expect(final.failedOps).toBe(0);
        // Every answer a success but the two the leader election expects: GET 404 (the Lease does
        // not exist yet) and POST 409 (another candidate created it first); client-go retried nothing.
        const expected = (verb: string, code: string): boolean =>
          code.startsWith('2') || (verb === 'GET' && code === '404') || (verb === 'POST' && code === '409');
        const unexpected = Object.entries(final.total.requests).flatMap(([verb, codes]) =>
          Object.keys(codes)
            .filter((code) => !expected(verb, code))
            .map((code) => `${verb} ${code}`),
        );
        expect(unexpected, summary).toEqual([]);
        expect(final.retries, summary).toBe(0);
        for (const verb of ['GET', 'POST', 'PUT', 'DELETE']) {
          expect(ok2xx(final.total.requests[verb]), `${verb}\n${summary}`).toBeGreaterThan(0);
          expect(final.total.maxLatencyMs[verb], verb).toBeGreaterThan(0);
          expect(final.total.maxLatencyMs[verb], verb).toBeLessThan(LOAD_MS);
        }
        const attempts = Object.values(final.total.requests).reduce((a, codes) => a + sum(codes), 0);
        expect(final.attempts).toBe(attempts);
        expect(final.attempts).toBeGreaterThan(200);

        // Informers listed once each (no re-list on a healthy cluster) and see the objects.
        for (const resource of ['configmaps', 'events', 'leases']) {
          expect(final.total.informers[resource]?.lists, `${resource}\n${summary}`).toBe(1);
          expect(final.total.informers[resource]?.relists, resource).toBe(0);
          expect(final.total.informers[resource]?.watches, resource).toBeGreaterThanOrEqual(1);
        }
        expect(final.objects.configmaps).toBeGreaterThan(0);
        expect(final.objects.leases).toBe(3);

        // /readyz polled every 100 ms, never failed.
        expect(final.total.readyz.polls, summary).toBeGreaterThan((LOAD_MS / 100) * 0.5);
        expect(final.total.readyz.failures, summary).toBe(0);

        // etcd: the database grew (128 KiB ConfigMaps rewritten) and apiserver compacted it.
        for (let i = 0; i < 3; i++) expect(after[i]! - before[i]!, summary).toBeGreaterThan(10 * MiB);
        for (const h of hashes) expect(h.compactRevision, summary).toBeGreaterThan(1);

        // Nothing left behind: processes, ports, the temp dir.
        const dir = stack.dir;
        await stack.stop();
        stack = undefined;
        expect(processesMentioning(dir)).toEqual([]);
        expect(await portInUse(api.port)).toBe(false);
        expect(existsSync(dir)).toBe(false);
      } catch (err) {
        if (stack) console.error(`[kube harness] logs:\n${stack.logTails()}`);
        throw err;
      } finally {
        await stack?.stop();
        await cluster.close();
      }
    },
    240_000,
  );
});
