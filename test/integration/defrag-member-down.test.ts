/**
 * A stopped member on a real 3-member etcd 3.4 cluster: `defragd defrag`
 * (and its dry run) refuses with exit 3, names the member and changes
 * nothing; `--skip-health-check` defragments the two running members, skips
 * the stopped one and warns.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import type { Plan } from '../../src/domain/plan.js';
import { cli, dbSizes, fragmentAndWait, MiB, parseJson, show, sizes, type ReportJson } from './helpers-defrag.js';

describe('defrag with a stopped member', () => {
  const cluster = useCluster({ members: 3 });

  it('refuses (exit 3) naming the member, dry run too; --skip-health-check then defragments the running two and skips it', async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 8 * MiB, passes: 2, minFree: 4 * MiB, members: 3 });
    // Stop a follower, so the test is about the missing member and not about an election.
    const leader = await c.leaderName();
    const stopped = c.members.find((m) => m.name !== leader && !m.isLearner)!;
    await c.stopMember(stopped.name);
    const running = c.members
      .filter((m) => m.name !== stopped.name)
      .map((m) => m.name)
      .sort();
    const eps = c.endpoints.join(',');
    const conn = { endpoints: c.endpoints };
    const before = await dbSizes(conn);
    expect(Object.keys(before).sort()).toEqual(running);

    const r = await cli(['defrag', '--endpoints', eps, '--command-timeout', '2s', '-w', 'json']);
    expect(r.code, show(r)).toBe(3);
    const report = parseJson<ReportJson>(r);
    expect(report.outcome).toBe('refused');
    expect(report.message).toContain(`${stopped.name} (${stopped.clientUrl}) is unreachable`);
    expect(report.message).toContain('--skip-health-check');
    expect(report.members.every((m) => m.action === 'skipped')).toBe(true);
    expect(await dbSizes(conn)).toEqual(before);

    const table = await cli(['defrag', '--endpoints', eps, '--command-timeout', '2s']);
    expect(table.code).toBe(3);
    expect(table.stdout).toContain('REFUSED: nothing was changed');
    expect(table.stdout).toContain(stopped.name);

    const dry = await cli(['defrag', '--endpoints', eps, '--command-timeout', '2s', '--dry-run', '-w', 'json']);
    expect(dry.code, show(dry)).toBe(3);
    const plan = parseJson<{ plan: Plan }>(dry).plan;
    expect(plan.refusal?.reason).toContain(stopped.name);
    expect(plan.refusal?.memberIds).toHaveLength(1);
    expect(await dbSizes(conn)).toEqual(before);

    const skip = await cli(['defrag', '--endpoints', eps, '--command-timeout', '2s', '--skip-health-check', '-w', 'json']);
    expect(skip.code, show(skip)).toBe(0);
    expect(skip.stderr).toMatch(/^defragd: warning: --skip-health-check/m);
    const done = parseJson<ReportJson>(skip);
    expect(done.outcome).toBe('success');
    expect(
      done.warnings.some((w) => w.includes(stopped.name) && w.includes('--skip-health-check')),
      done.warnings.join('\n'),
    ).toBe(true);
    const byName = Object.fromEntries(done.members.map((m) => [m.name, m]));
    expect(byName[stopped.name]?.action).toBe('skipped');
    expect(byName[stopped.name]?.reason).toMatch(/unreachable/);
    for (const n of running) expect(byName[n]?.action, byName[n]?.reason).toBe('defragmented');

    const after = await sizes(conn);
    for (const n of running) {
      expect(after[n]?.dbSize as number, n).toBeLessThan(before[n] as number);
      expect(after[n]?.dbSize as number).toBeLessThanOrEqual((after[n]?.dbSizeInUse as number) * 1.1 + MiB);
    }
  });
});
