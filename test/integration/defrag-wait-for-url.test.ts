/**
 * `defragd defrag --wait-for-url` on a real 3-member cluster: the run asks the URLs before its first
 * member and before each next one, waits while they answer something other than 200, and stops before
 * the next member when they stay unready. The URL here is a loopback HTTP server whose answers the
 * test scripts by request count (what a kube-apiserver answers is tested with a real one in
 * kube-*.test.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { cli, defragCount, parseJson, show, type ReportJson } from './helpers-defrag.js';

/** A /readyz whose n-th answer (1-based) is 200 when `ready(n)`, else 500 with a kube-apiserver-like body. */
class ScriptedReadyz {
  requests = 0;
  ready: (n: number) => boolean = () => true;
  private server = http.createServer((_req, res) => {
    this.requests += 1;
    if (this.ready(this.requests)) res.end('ok');
    else {
      res.statusCode = 500;
      res.end('[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n');
    }
  });
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/readyz`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('defrag --wait-for-url', () => {
  const cluster = useCluster({ members: 3 });
  const readyz = new ScriptedReadyz();
  beforeAll(() => readyz.start());
  afterAll(() => readyz.stop());
  const eps = () => cluster().endpoints.join(',');
  const counts = async () => Promise.all(cluster().endpoints.map((e) => defragCount(e)));

  it('waits before the second member until the URL answers 200 again, then finishes, and the report says how long it waited', async () => {
    readyz.requests = 0;
    // 1: before the first member; 2-4: after it (three 500s), then 200 from then on.
    readyz.ready = (n) => n === 1 || n > 4;
    const before = await counts();
    const r = await cli(['defrag', '--endpoints', eps(), '--no-record', '--wait-for-url', readyz.url, '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const report = parseJson<ReportJson>(r);
    expect(report.outcome).toBe('success');
    expect(report.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
    const second = report.members[1]?.name;
    // (3.4.23's known defrag defects are warnings too.)
    expect(report.warnings.filter((w) => w.startsWith('waited '))).toEqual([
      expect.stringMatching(
        new RegExp(`^waited \\S+ before ${second} until ${readyz.url} \\(500: \\[-\\]etcd failed: reason withheld\\) answered 200$`),
      ),
    ]);
    // Asked once before each member, three more times while unready.
    expect(readyz.requests).toBe(6);
    const after = await counts();
    expect(after.map((c, i) => (c ?? 0) - (before[i] ?? 0))).toEqual([1, 1, 1]);
  });

  it('a URL that stays unready stops the run before the next member: exit 1, the reason, one member defragmented', async () => {
    readyz.requests = 0;
    readyz.ready = (n) => n === 1;
    const before = await counts();
    const r = await cli([
      'defrag',
      '--endpoints',
      eps(),
      '--no-record',
      '--wait-for-url',
      readyz.url,
      '--wait-for-url-timeout',
      '2s',
      '-w',
      'json',
    ]);
    expect(r.code, show(r)).toBe(1);
    const report = parseJson<ReportJson>(r);
    expect(report.outcome).toBe('failed');
    const [first, second] = report.members;
    expect(first?.action).toBe('defragmented');
    expect(report.message).toBe(`stopped before ${second?.name}: not ready for 2s: ${readyz.url} (500: [-]etcd failed: reason withheld)`);
    expect(report.members.slice(1).map((m) => m.action)).toEqual(['skipped', 'skipped']);
    expect(r.stderr).toContain(`defragd: failed: stopped before ${second?.name}: not ready for 2s`);
    const after = await counts();
    expect(after.map((c, i) => (c ?? 0) - (before[i] ?? 0)).sort()).toEqual([0, 0, 1]);
  });

  it('unready from the start: nothing is defragmented', async () => {
    readyz.requests = 0;
    readyz.ready = () => false;
    const before = await counts();
    const r = await cli(['defrag', '--endpoints', eps(), '--no-record', '--wait-for-url', readyz.url, '--wait-for-url-timeout', '1s']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).toMatch(
      /waiting for http:\/\/127\.0\.0\.1:\d+\/readyz to answer 200 \(500: \[-\]etcd failed: reason withheld\) \(at most 1s\)/,
    );
    expect(r.stdout).toMatch(/stopped before \S+: not ready for 1s/);
    expect(await counts()).toEqual(before);
  });
});
