/**
 * What `defragd defrag` costs a Kubernetes control plane, on the real thing (dev/harness/kube.ts):
 * two kube-apiservers with every etcd member in --etcd-servers, and client-go controllers
 * (kube-load: leader election on Leases with kube-controller-manager's timings, informers on
 * ConfigMaps, Events and Leases, ConfigMap and Event writers). One whole-cluster run, its leader
 * moved first and every apiserver's /readyz waited for between members, leaves every controller's
 * leadership where it was, never fails /readyz, and no request fails that client-go does not
 * retry. Sized to keep the suite fast: each member's defrag takes well under a second here; the
 * sizes where other tools break a control plane are `make bench-kube`'s.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { kubeSkipReason, startKube, type KubeLoad, type KubeStack, type LoadStats } from '../../dev/harness/kube.js';
import { fragment } from '../../dev/workload.js';
import { cli, defragCount, MiB, parseJson, show, type ReportJson } from './helpers-defrag.js';

const skipWhy = kubeSkipReason();

/** Requests that failed by status code, leaving out those client-go retried (its own retries are counted apart). */
function failedCodes(s: LoadStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [op, o] of Object.entries(s.operations)) if (o.failed > 0) out[op] = o.failed;
  return out;
}

describe.skipIf(skipWhy !== '')(`defragd defrag under a real control plane${skipWhy ? ` (skipped: ${skipWhy})` : ''}`, () => {
  const cluster = useCluster({ members: 3 });
  let stack: KubeStack;
  let load: KubeLoad;

  beforeAll(async () => {
    stack = await startKube(cluster(), { apiservers: 2 });
    // Fragment the database beside Kubernetes' own keys: written and overwritten, then compacted.
    await fragment({ endpoints: cluster().endpoints }, { bytes: 24 * MiB, valueSize: 64 * 1024, passes: 2, prefix: '/fragment/' });
    load = await stack.startLoad({ controllers: 3, candidates: 2, configmapBytes: 64 * 1024 });
    // Every controller has a leader before the run starts.
    for (let i = 0; i < 60; i++) {
      const r = await load.report();
      if (Object.keys(r.holders).length === 3 && Object.values(r.holders).every((h) => h !== '')) break;
      await new Promise((res) => setTimeout(res, 1_000));
    }
  }, 300_000);
  afterAll(async () => {
    await load?.stop().catch(() => undefined);
    await stack?.stop();
  });

  it('one run: leaders stay, /readyz never fails, nothing fails that client-go does not retry', async () => {
    const start = await load.report();
    expect(
      Object.values(start.holders).filter((h) => h !== ''),
      JSON.stringify(start.holders),
    ).toHaveLength(3);
    const before = await Promise.all(cluster().endpoints.map((e) => defragCount(e)));
    const urls = stack.apiservers.map((a) => `${a.url}/readyz`).join(',');
    // The harness's apiservers take no anonymous requests (AlwaysAllow turns them off): the stack's token.
    const tokenFile = path.join(stack.dir, 'readyz-token');
    writeFileSync(tokenFile, `${stack.token}\n`, { mode: 0o600 });
    const r = await cli([
      'defrag',
      '--endpoints',
      cluster().endpoints.join(','),
      '--no-record',
      '--wait-for-url',
      urls,
      '--wait-for-url-insecure-skip-tls-verify',
      '--wait-for-url-token-file',
      tokenFile,
      '-w',
      'json',
    ]);
    expect(r.code, show(r)).toBe(0);
    const report = parseJson<ReportJson>(r);
    expect(report.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
    // Settle: a lost lease shows up within its lease duration.
    await new Promise((res) => setTimeout(res, 16_000));
    const w = (await load.report()).window;
    const after = await Promise.all(cluster().endpoints.map((e) => defragCount(e)));
    expect(after.map((c, i) => (c ?? 0) - (before[i] ?? 0))).toEqual([1, 1, 1]);
    const lost = Object.fromEntries(Object.entries(w.leases).map(([k, v]) => [k, v.lost]));
    expect(
      Object.values(lost).every((n) => n === 0),
      JSON.stringify(w.leases),
    ).toBe(true);
    expect(w.readyz.failures, JSON.stringify(w.readyz)).toBe(0);
    expect(failedCodes(w), JSON.stringify(w.operations)).toEqual({});
    const end = await load.report();
    expect(end.holders).toEqual(start.holders);
  }, 240_000);
});
