/**
 * A Defragment whose client deadline passes is not retried: etcd goes on with
 * it, the run waits for the member, records deadlinePassed and moves on only
 * once the member is done. Counted with etcd's own
 * etcd_disk_backend_defrag_duration_seconds_count on each member's /metrics.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { fragment } from '../../dev/workload.js';
import { cli, defragCount, fragmentAndWait, metric, MiB, parseJson, show, sizes, type ReportJson } from './helpers-defrag.js';

describe('a passed defrag deadline', () => {
  const cluster = useCluster({ members: 3 });

  it('is reported once per member, never retried, and the run waits for etcd to finish before the next member', async () => {
    const c = cluster();
    const conn = { endpoints: c.endpoints };
    // ~44 MiB in use per member (a defrag copies it: at least ~150 ms even on an idle machine, far beyond
    // the deadline), a few MiB of it free so a finished defrag shows as a shrink.
    await fragment(conn, { bytes: 40 * MiB, passes: 1, valueSize: 256 * 1024, compact: false, prefix: '/big/' });
    await fragmentAndWait(conn, { bytes: 4 * MiB, passes: 2, minFree: 3 * MiB, members: 3, prefix: '/churn/' });
    const before = await sizes(conn);
    const countsBefore = await Promise.all(c.endpoints.map((ep) => defragCount(ep)));
    expect(countsBefore.every((n) => n !== null)).toBe(true);

    // Sample every member's defrag-inflight gauge while the run goes: never two at once.
    let sampling = true;
    let maxConcurrent = 0;
    const sampler = (async () => {
      while (sampling) {
        const inflight = await Promise.all(c.endpoints.map((ep) => metric(ep, 'etcd_disk_defrag_inflight').catch(() => null)));
        maxConcurrent = Math.max(maxConcurrent, inflight.filter((v) => v === 1).length);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    // 20 ms: long enough for the request to reach etcd (with 1 ms it often never leaves the client), far shorter than the defrag.
    const r = await cli(['defrag', '--endpoints', c.endpoints.join(','), '--defrag-timeout', '20ms', '-w', 'json']).finally(() => {
      sampling = false;
    });
    await sampler;

    const report = parseJson<ReportJson>(r);
    // Each member answers Status again (the run waited for it) and has no defrag in flight.
    const after = await sizes(conn);
    expect(Object.keys(after).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const ep of c.endpoints) expect(await metric(ep, 'etcd_disk_defrag_inflight')).toBe(0);
    expect(maxConcurrent).toBeLessThanOrEqual(1);

    // Exactly one Defragment per member reached etcd: sent once, not re-sent after the deadline.
    const countsAfter = await Promise.all(c.endpoints.map((ep) => defragCount(ep)));
    expect(countsAfter.map((n, i) => (n as number) - (countsBefore[i] as number))).toEqual([1, 1, 1]);

    // One deadline event per member in the progress log (stderr with -w json).
    for (const name of ['m1', 'm2', 'm3']) {
      const lines = r.stderr.split('\n').filter((l) => l.includes(` ${name}: deadline of 20ms passed`));
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toContain('NOT retrying');
    }

    // etcd finished on its own, so each member shrank: defragmented (not failed), deadlinePassed recorded, exit 0.
    expect(report.members.map((m) => m.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const m of report.members) {
      expect(m.deadlinePassed, m.name).toBe(true);
      expect(m.action, m.reason).toBe('defragmented');
      expect(m.reason).toMatch(/deadline passed but etcd finished on its own; consider a longer --defrag-timeout/);
      expect(m.after?.dbSize as number).toBeLessThan(m.before?.dbSize as number);
      expect(after[m.name]?.dbSize as number).toBeLessThan(before[m.name]?.dbSize as number);
    }
    expect(report.outcome).toBe('success');
    expect(r.code, show(r)).toBe(0);
  });
});
