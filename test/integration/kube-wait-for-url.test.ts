/**
 * `--wait-for-url` against a real kube-apiserver (dev/harness/kube.ts) on the test cluster: two
 * apiservers, the second reaching etcd only through loopback TCP proxies that the test can cut.
 * When the second apiserver loses its etcd mid-run, its /readyz fails (its etcd check) and the run
 * waits before the next member; it goes on when the apiserver is ready again, and stops before the
 * next member when it stays unready.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { kubeSkipReason, startKube, type KubeStack } from '../../dev/harness/kube.js';
import { defragment, urlReadiness, type RunReport, type StepEvent } from '../../src/index.js';
import { defragCount } from './helpers-defrag.js';

const skipWhy = kubeSkipReason();

/** A TCP proxy to one etcd member that can be cut (connections dropped, the port refusing) and restored. */
class CuttableProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly target: URL) {}
  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(Number(this.target.port), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
}

describe.skipIf(skipWhy !== '')(`--wait-for-url with real kube-apiservers${skipWhy ? ` (skipped: ${skipWhy})` : ''}`, () => {
  const cluster = useCluster({ members: 3 });
  let direct: KubeStack;
  let proxied: KubeStack;
  const proxies: CuttableProxy[] = [];

  beforeAll(async () => {
    for (const ep of cluster().endpoints) proxies.push(new CuttableProxy(new URL(ep)));
    for (const p of proxies) await p.start();
    // One token for both (the harness's apiservers take no anonymous requests: AlwaysAllow turns them off),
    // sent by defragd with --wait-for-url-token-file's bearer token.
    direct = await startKube(cluster());
    proxied = await startKube(cluster(), { token: direct.token, etcdServers: proxies.map((p) => p.url) });
  }, 300_000);
  afterAll(async () => {
    await proxied?.stop();
    await direct?.stop();
    for (const p of proxies) await p.cut();
  });

  const readyzOf = (s: KubeStack) => `${s.apiservers[0]?.url}/readyz`;

  /**
   * One whole-cluster run that waits for both apiservers; the second loses every etcd member right after the
   * first member is done, and `onWait` is called when the run starts waiting for it. A pause after the first
   * member gives that apiserver time to notice (its etcd check) before the next turn asks.
   */
  async function runCuttingAfterFirst(timeoutMs: number, onWait: () => void = () => undefined) {
    const readiness = urlReadiness({
      urls: [readyzOf(direct), readyzOf(proxied)],
      timeoutMs,
      insecureSkipTlsVerify: true,
      bearerToken: direct.token,
    });
    expect((await readiness.check()).map((a) => a.detail)).toEqual(['200', '200']);
    const events: StepEvent[] = [];
    let finished = 0;
    const report: RunReport = await defragment({
      connection: { endpoints: cluster().endpoints },
      record: false,
      execute: { readiness, waitBetweenMs: 5_000 },
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'member-finished' && ++finished === 1) void Promise.all(proxies.map((p) => p.cut()));
        if (e.type === 'member-waiting' && e.what.includes('/readyz')) onWait();
      },
    });
    const waits = events.filter(
      (e): e is Extract<StepEvent, { type: 'member-waiting' }> => e.type === 'member-waiting' && e.what.includes('/readyz'),
    );
    return { report, waits, readiness };
  }

  it('an apiserver that loses etcd mid-run is waited for, and the run goes on once it is ready again', async () => {
    // Back 3 s after the run started waiting for it.
    const { report, waits, readiness } = await runCuttingAfterFirst(120_000, () =>
      setTimeout(() => void Promise.all(proxies.map((p) => p.start())), 3_000),
    );
    expect(waits).toHaveLength(1);
    expect(report.outcome, report.message ?? '').toBe('success');
    expect(report.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
    const second = report.members[1]?.name;
    expect(report.warnings).toEqual([
      expect.stringMatching(new RegExp(`^waited \\S+ before ${second} until ${readyzOf(proxied).replace(/[.]/g, '\\.')} \\(`)),
    ]);
    expect((await readiness.check()).map((a) => a.ready)).toEqual([true, true]);
  }, 240_000);

  it('an apiserver that loses etcd mid-run is waited for, and the run stops before the next member when it stays unready', async () => {
    const before = await Promise.all(cluster().endpoints.map((e) => defragCount(e)));
    const { report, waits } = await runCuttingAfterFirst(20_000);
    expect(waits).toHaveLength(1);
    expect(waits[0]?.what).toContain(readyzOf(proxied));
    expect(waits[0]?.what).not.toContain(readyzOf(direct));
    expect(report.outcome).toBe('failed');
    expect(report.message).toMatch(new RegExp(`^stopped before \\S+: not ready for 20s: ${readyzOf(proxied).replace(/[.]/g, '\\.')} \\(`));
    // What kube-apiserver said: its etcd checks failed.
    expect(report.message).toMatch(/\[-\]etcd/);
    const after = await Promise.all(cluster().endpoints.map((e) => defragCount(e)));
    expect(after.map((c, i) => (c ?? 0) - (before[i] ?? 0)).sort()).toEqual([0, 0, 1]);
  }, 180_000);
});
