/**
 * A real cluster of 3 voters and a learner, on every version make test runs:
 * etcd itself refuses a Defragment sent to the learner (the planner's reason
 * to skip it), so the learner is skipped with code 'learner', the voters are
 * defragmented, the learner keeps its size.
 */
import { describe, expect, it } from 'vitest';
import { etcdUnderTest, useCluster } from '../../dev/harness/etcd.js';
import { connect } from '../../src/index.js';
import { compareVersions } from '../../src/domain/known-defects.js';
import { EtcdError } from '../../src/domain/errors.js';
import type { Plan } from '../../src/domain/plan.js';
import { cli, fragmentAndWait, MiB, parseJson, show, sizes, type ReportJson } from './helpers-defrag.js';

describe('defrag with a learner', () => {
  const cluster = useCluster({ members: 3, learner: true });

  it('etcd refuses a Defragment sent straight to the learner: "rpc not supported for learner", Unavailable before 3.6, FailedPrecondition from 3.6', async () => {
    const c = cluster();
    const learner = c.members.find((m) => m.isLearner)!;
    const client = connect({ endpoints: [learner.clientUrl] });
    try {
      const err = await client
        .member(learner.clientUrl)
        .defragment({ timeoutMs: 10_000 })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(EtcdError);
      const e = err as EtcdError;
      expect(e.reason).toBe('learner');
      expect(e.message).toMatch(/rpc not supported for learner/);
      // etcd 3.6 changed the code (etcd commit 16d51d8c2, PR #12985): both are classified as 'learner'.
      const atLeast36 = compareVersions(etcdUnderTest().version, '3.6.0') >= 0;
      expect(e.grpcCode).toBe(atLeast36 ? 'FAILED_PRECONDITION' : 'UNAVAILABLE');
    } finally {
      client.close();
    }
    // Refused before anything was copied: etcd's own defrag counter on the learner did not move.
    const metrics = await c.memberMetrics(learner.name);
    expect(metrics.get('etcd_disk_backend_defrag_duration_seconds_count')).toBe(0);
  });

  it('skips the learner with code learner and defragments the three voters', async () => {
    const c = cluster();
    const learner = c.members.find((m) => m.isLearner)!;
    expect(learner).toBeTruthy();
    const conn = { endpoints: c.endpoints.filter((e) => e !== learner.clientUrl) };
    const eps = conn.endpoints.join(',');
    // The learner replicates the workload and compacts like the others: it has as much to reclaim.
    await fragmentAndWait(conn, { bytes: 8 * MiB, passes: 2, minFree: 4 * MiB, members: 4 });
    const before = await sizes(conn);
    expect(Object.keys(before).sort()).toEqual(['m1', 'm2', 'm3', learner.name].sort());

    const dry = await cli(['defrag', '--endpoints', eps, '--dry-run', '-w', 'json']);
    expect(dry.code, show(dry)).toBe(0);
    const plan = parseJson<{ plan: Plan }>(dry).plan;
    const planned = plan.decisions.find((d) => d.name === learner.name);
    expect(planned?.action).toBe('skip');
    expect(planned?.code).toBe('learner');
    expect(planned?.isLearner).toBe(true);
    expect(
      plan.decisions
        .filter((d) => d.action === 'defragment')
        .map((d) => d.name)
        .sort(),
    ).toEqual(['m1', 'm2', 'm3']);

    // With four members the run observes more than ten calls at once on one AbortSignal: Node must not
    // print a MaxListenersExceededWarning ("possible memory leak") to the operator's terminal.
    const processWarnings: string[] = [];
    const onWarning = (w: Error) => processWarnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(['defrag', '--endpoints', eps, '-w', 'json']);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(r.code, show(r)).toBe(0);
    expect(processWarnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
    const report = parseJson<ReportJson>(r);
    expect(report.outcome).toBe('success');
    const byName = Object.fromEntries(report.members.map((m) => [m.name, m]));
    expect(byName[learner.name]?.action).toBe('skipped');
    expect(byName[learner.name]?.reason).toMatch(/^learner: /);
    for (const n of ['m1', 'm2', 'm3']) expect(byName[n]?.action, byName[n]?.reason).toBe('defragmented');

    const after = await sizes(conn);
    expect(after[learner.name]?.dbSize).toBe(before[learner.name]?.dbSize);
    for (const n of ['m1', 'm2', 'm3']) expect(after[n]?.dbSize as number, n).toBeLessThan(before[n]?.dbSize as number);
  });
});
