/**
 * What happens between members: a voter that goes down mid-run stops the run
 * before the next member (exit 1), and --wait-between pauses after each one.
 */
import { describe, expect, it } from 'vitest';
import { startCluster } from '../../dev/harness/etcd.js';
import { buildPolicy, connect, prepareRun, type RunReport, type StepEvent } from '../../src/internals.js';
import { cli, parseJson, defragCount, fragmentAndWait, MiB, show, type ReportJson } from './helpers-defrag.js';

describe('between members', () => {
  it('a voter that goes down after the first member stops the run before the next one', async () => {
    const c = await startCluster({ members: 3 });
    const client = connect({ endpoints: c.endpoints, commandTimeoutMs: 2_000 });
    try {
      await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 4 * MiB, passes: 2, minFree: 2 * MiB, members: 3 });
      const run = await prepareRun(client, buildPolicy({}), { observe: { cluster: true } });
      const order = run.plan.decisions.filter((d) => d.action === 'defragment').map((d) => d.name);
      expect(order).toHaveLength(3);
      // The member already defragmented goes down: the next one in line is itself fine, so only the
      // check of every voter before each member can stop the run.
      const victim = order[0] as string;
      const events: StepEvent[] = [];
      const it = run.execute();
      let report: RunReport | undefined;
      for (;;) {
        const next = await it.next();
        if (next.done) {
          report = next.value;
          break;
        }
        events.push(next.value);
        if (next.value.type === 'member-finished' && next.value.result.name === victim) await c.stopMember(victim);
      }
      expect(report.outcome).toBe('failed');
      expect(report.message).toMatch(new RegExp(`stopped before ${order[1]}: ${victim} \\(.*\\) is unreachable`));
      expect(report.members.find((m) => m.name === order[0])?.action).toBe('defragmented');
      for (const name of order.slice(1)) {
        const r = report.members.find((m) => m.name === name);
        expect(r?.action, name).toBe('skipped');
        expect(r?.reason).toMatch(/not attempted/);
      }
      expect(events.filter((e) => e.type === 'member-started')).toHaveLength(1);
    } finally {
      client.close();
      await c.close();
    }
  });

  it('--wait-between pauses after each member but the last', async () => {
    const c = await startCluster({ members: 3 });
    try {
      const before = await Promise.all(c.endpoints.map((e) => defragCount(e)));
      const t0 = Date.now();
      const r = await cli(['defrag', '--endpoints', c.endpoints[0] as string, '--wait-between', '1s', '-w', 'json']);
      const elapsed = Date.now() - t0;
      expect(r.code, show(r)).toBe(0);
      expect(parseJson<ReportJson>(r).members.every((m) => m.action === 'defragmented')).toBe(true);
      expect(r.stderr.match(/waiting 1s before the next member/g)).toHaveLength(2);
      // Two pauses of 1 s: a lower bound only, which no machine load can break.
      expect(elapsed).toBeGreaterThanOrEqual(2_000);
      const after = await Promise.all(c.endpoints.map((e) => defragCount(e)));
      expect(after.map((a, i) => (a as number) - (before[i] as number))).toEqual([1, 1, 1]);
    } finally {
      await c.close();
    }
  });
});
