/**
 * Two `defragd serve` replicas with one config (each its own store), as README
 * recommends for availability, on a real 3-member cluster with a 16 MiB quota
 * that runs out of space. Under NOSPACE etcd refuses the cluster lock's lease
 * and put, so the lock cannot keep them apart; the NOSPACE recovery claim
 * (lock/nospace-claim.ts: a key the daemon puts while the cluster takes
 * writes, which a recovery deletes) does. What an operator checks: etcd's
 * own counters show each member defragmented once, its in-flight gauges never
 * show two Defragments at once, exactly one replica recorded a recovery, the
 * alarm is gone, the data is equal on every member, and the claim is back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { EtcdClient } from '../../src/etcd/client.js';
import { claimKeyOf } from '../../src/lock/nospace-claim.js';
import { DEFAULT_LOCK_KEY } from '../../src/domain/defaults.js';
import { openStore } from '../../src/store/index.js';
import { fillUntilNospace, MiB, observe, tryPut } from './helpers-defrag.js';
import { defragCounts, replicaLogs, type RunningServe, sleep, startServe, until, watchInflight } from './serve-support.js';

const QUOTA = 16 * MiB;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-serve-nospace-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('two serve replicas when the cluster runs out of space', () => {
  const cluster = useCluster({ members: 3, quotaBackendBytes: QUOTA });

  it('exactly one replica recovers: every member defragmented once, never two at once, the alarm gone and the claim back (both used to recover)', async () => {
    const c = cluster();
    const yaml = (store: string) =>
      `listen: 127.0.0.1:0\nstore: ${store}\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "false"\n    nospace: recover\n`;
    const stores = [join(dir, 'a.sqlite'), join(dir, 'b.sqlite')];
    const client = new EtcdClient({ endpoints: c.endpoints });
    const replicas: RunningServe[] = [];
    try {
      replicas.push(...(await Promise.all(stores.map((s, i) => startServe(dir, `replica-${i}`, yaml(s))))));
      const logs = () => replicaLogs(replicas);
      // Both observed the cluster taking writes: the claim is in place before space runs out.
      await until(
        'the NOSPACE recovery claim in the cluster',
        async () => (await client.member(c.endpoints[0] as string).range(claimKeyOf(DEFAULT_LOCK_KEY))).count === 1,
        20_000,
        logs,
      );
      const before = await defragCounts(c);
      const inflight = watchInflight(c);
      let watched: Awaited<ReturnType<ReturnType<typeof watchInflight>['stop']>> | null = null;
      try {
        await fillUntilNospace({ endpoints: c.endpoints }, '/fill/');
        await until(
          'NOSPACE recovered and both replicas idle',
          async () => {
            const snap = await observe({ endpoints: c.endpoints });
            if (snap.alarms.length > 0) return false;
            const views = await Promise.all(
              replicas.map(async (r) => (await (await fetch(`${r.url}/api/v1/clusters`)).json()) as { clusters: { state: string }[] }),
            );
            return views.every((v) => v.clusters[0]?.state !== 'running');
          },
          120_000,
          logs,
        );
        // A few more observations each: nobody starts a second recovery on a stale view.
        await sleep(3_000);
      } finally {
        watched = await inflight.stop();
      }
      const after = await defragCounts(c);
      const delta = Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));
      expect(delta, logs()).toEqual({ m1: 1, m2: 1, m3: 1 });
      expect(watched.maxSum, logs()).toBeLessThanOrEqual(1);
      expect(watched.polls).toBeGreaterThan(20);
      // Writes work again, the data is equal everywhere, and the claim is back for the next time.
      expect(await tryPut({ endpoints: c.endpoints }, c.endpoints[1] as string, '/after', 'x')).toBeNull();
      const hashes = await c.hashKV();
      expect(new Set(hashes.map((h) => h.hash)).size, JSON.stringify(hashes)).toBe(1);
      expect((await client.member(c.endpoints[0] as string).range(claimKeyOf(DEFAULT_LOCK_KEY))).count).toBe(1);
      for (const r of replicas) await r.stop();
      replicas.length = 0;
      // Exactly one replica recorded a recovery that defragmented members.
      const recoveries = stores.map((file) => {
        const s = openStore(file);
        try {
          return s.runs({ cluster: 'main' }).filter((r) => r.trigger === 'nospace' && r.membersDefragmented > 0).length;
        } finally {
          s.close();
        }
      });
      expect(recoveries.sort(), logs()).toEqual([0, 1]);
    } finally {
      for (const r of replicas) await r.stop();
      client.close();
    }
  }, 180_000);
});
