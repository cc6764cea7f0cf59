/**
 * What the daemon asks of a cluster it watches, counted by etcd itself
 * (`grpc_server_handled_total`, `promhttp_metric_handler_requests_total` on
 * every member): between full observations only each member's Status; the
 * member list, alarms, health reads and /metrics at the first observation
 * and again at once when a Status says something changed. An operator's
 * checks: the figures stay right (/metrics equals `status`), and an alarm
 * raised between two full observations is still seen within an interval.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { getJson, moreObservations, observationsOf, startServe, until } from './serve-support.js';
import { fragment } from '../../dev/workload.js';
import { MiB } from './helpers-defrag.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-serve-observe-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Per method (Status, MemberList, Alarm, Range...) and `metrics` (GET /metrics answered), summed over the members. */
async function requestsServed(c: EtcdCluster): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of c.members) {
    for (const [series, value] of await c.memberMetrics(m.name)) {
      const method = /^grpc_server_handled_total\{.*grpc_method="([^"]+)"/.exec(series)?.[1];
      if (method) out[method] = (out[method] ?? 0) + value;
      if (series === 'promhttp_metric_handler_requests_total{code="200"}') out['metrics'] = (out['metrics'] ?? 0) + value;
    }
  }
  return out;
}

const delta = (after: Record<string, number>, before: Record<string, number>, key: string) => (after[key] ?? 0) - (before[key] ?? 0);

describe('serve: what each observation asks of the cluster', () => {
  const cluster = useCluster({ members: 3, quotaBackendBytes: 3 * MiB });

  it('between full observations asks only Status, keeps /metrics equal to the members, and still sees NOSPACE at once', async () => {
    const c = cluster();
    const s = await startServe(
      dir,
      'light',
      `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n  - name: light\n    endpoints: [${c.endpoints.join(', ')}]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "false"\n    nospace: ignore\n`,
    );
    try {
      await until('ready', async () => ((await getJson(`${s.url}/readyz`)).status === 200 ? true : null), 20_000);
      const before = await requestsServed(c);
      const counted = await observationsOf(s.url, 'light');
      await moreObservations(s.url, 'light', 4);
      const after = await requestsServed(c);
      // 4 or more light observations of 3 members and no full one (those come every 30 s); the harness's own
      // /metrics reads are the 3 per count.
      const now = await observationsOf(s.url, 'light');
      expect(now.full, JSON.stringify({ counted, now })).toBe(counted.full);
      expect(now.light - counted.light).toBeGreaterThanOrEqual(4);
      expect(delta(after, before, 'Status')).toBeGreaterThanOrEqual(9);
      expect(delta(after, before, 'MemberList')).toBe(0);
      expect(delta(after, before, 'Alarm')).toBe(0);
      expect(delta(after, before, 'Range')).toBe(0);
      expect(delta(after, before, 'metrics')).toBe(3);

      // The figures are the members' own, quota included (read from /metrics at the first observation).
      const text = await (await fetch(`${s.url}/metrics`)).text();
      expect(text).toMatch(/^defragd_member_quota_bytes\{[^}]*\} 3145728$/m);

      // NOSPACE raised now is in every member's Status: the next observation is a full one and shows it.
      await expect(
        fragment(
          { endpoints: [c.endpoints[0] as string] },
          { bytes: 6 * MiB, passes: 12, valueSize: 256 * 1024, compact: false, prefix: '/fill/' },
        ),
      ).rejects.toThrow(/database space exceeded/);
      const seenAt = Date.now();
      await until(
        'NOSPACE in /metrics',
        async () =>
          /^defragd_member_alarm\{[^}]*alarm="NOSPACE"[^}]*\} 1$/m.test(await (await fetch(`${s.url}/metrics`)).text()) ? true : null,
        10_000,
      );
      expect(Date.now() - seenAt).toBeLessThan(5_000);
      const logs = s.logs().filter((l) => l['msg'] === 'a full observation at once');
      expect(logs.map((l) => l['reason'])).toContainEqual(expect.stringMatching(/reports memberID:\d+\s+alarm:NOSPACE/));
    } finally {
      await s.stop();
    }
  }, 60_000);
});
