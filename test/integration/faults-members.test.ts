/**
 * The member being defragmented is killed, on a real 3-member etcd 3.4
 * cluster, while etcd copies its db: the connection is lost (not a
 * deadline), the wait for it is bounded, nothing else is taken out; or it
 * comes back during that wait. Each time: what reached etcd, a report that
 * says what is true, no lock left behind, equal data on every member.
 * (Stopped with SIGSTOP instead: faults-paused.test.ts.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { runCli } from '../../src/cli/run.js';
import { defragCount, parseJson, show, type ReportJson } from './helpers-defrag.js';
import { addGarbage, drive, loadData, lockHeld, MiB, ofType, restoreAndCompare, result, untilDefragInFlight } from './faults-support.js';

describe('the member being defragmented', () => {
  const cluster = useCluster({ members: 3 });
  // ~48 MiB in use: a Defragment takes over a second here, so a fault lands while etcd copies.
  beforeAll(() => loadData(cluster(), 48 * MiB), 60_000);

  it('killed during its Defragment: connection lost (not a deadline), a bounded wait, it fails, nothing else is taken out, no lock left', async () => {
    const c = cluster();
    let victim: string | null = null;
    let killedInFlight = false;
    const run = await drive(c, {
      execute: { recoveryTimeoutMs: 3_000 },
      hook: (e) => {
        if (e.type !== 'member-started' || victim !== null) return;
        victim = e.decision.name;
        const name = victim;
        return untilDefragInFlight(c, name).then(async (seen) => {
          killedInFlight = seen;
          await c.killMember(name);
        });
      },
    });
    try {
      expect(victim).not.toBeNull();
      const name = victim as unknown as string;
      expect(killedInFlight, 'the kill must land while etcd_disk_defrag_inflight is 1').toBe(true);
      const { report, events } = run;

      const noAnswer = ofType(events, 'member-no-answer');
      expect(noAnswer.map((e) => [e.name, e.why])).toEqual([[name, 'connection-lost']]);
      const waits = ofType(events, 'member-waiting').filter((e) => e.name === name);
      expect(waits.length).toBeGreaterThanOrEqual(1);
      expect(waits[0]?.limitMs).toBe(3_000);
      expect(waits[0]?.what).toMatch(/connection was lost/);
      // Only one member was ever started: the run took no second member out.
      expect(ofType(events, 'member-started').map((e) => e.decision.name)).toEqual([name]);

      expect(report.outcome).toBe('failed');
      const r = result(report, name);
      expect(r.action).toBe('failed');
      expect(r.connectionLost).toBe(true);
      expect(r.deadlinePassed).toBe(false);
      expect(r.reason).toMatch(/did not answer within 3s after the connection was lost/);
      expect(r.reason).not.toMatch(/deadline/);
      expect(report.message).toMatch(/connection was lost/);
      expect(report.message).not.toMatch(/deadline/);
      const rest = report.members.filter((m) => m.name !== name);
      expect(rest).toHaveLength(2);
      for (const m of rest) {
        expect(m.action, m.name).toBe('skipped');
        expect(m.reason).toMatch(/^not attempted/);
      }
      // Bounded by --recovery-timeout, not by a 30-minute default: a generous bound, far below that.
      expect(run.elapsedMs).toBeLessThan(60_000);
      expect(await lockHeld(c)).toBe(false);
    } finally {
      await restoreAndCompare(c);
    }
  });

  it('killed during its Defragment and restarted during the wait: the run waits for it and records the lost connection and no shrink', async () => {
    const c = cluster();
    await addGarbage(c);
    let victim: string | null = null;
    let killedInFlight = false;
    let killed: Promise<void> = Promise.resolve();
    const run = await drive(c, {
      execute: { recoveryTimeoutMs: 30_000 },
      hook: (e) => {
        if (e.type === 'member-started' && victim === null) {
          victim = e.decision.name;
          const name = victim;
          killed = untilDefragInFlight(c, name).then(async (seen) => {
            killedInFlight = seen;
            await c.killMember(name);
          });
          return killed;
        }
        // The client may see the connection drop before the harness has reaped the process.
        if (e.type === 'member-no-answer' && e.name === victim) return killed.then(() => c.startMember(e.name));
        return undefined;
      },
    });
    try {
      const name = victim as unknown as string;
      expect(killedInFlight, 'the kill must land while etcd_disk_defrag_inflight is 1').toBe(true);
      const { report, events } = run;
      expect(ofType(events, 'member-no-answer').map((e) => [e.name, e.why])).toEqual([[name, 'connection-lost']]);
      // It waited for the member, then for it to catch up: both steps were reached.
      const waits = ofType(events, 'member-waiting')
        .filter((e) => e.name === name)
        .map((e) => e.what);
      expect(
        waits.some((w) => /connection was lost/.test(w)),
        waits.join('\n'),
      ).toBe(true);
      expect(
        waits.some((w) => /catch up/.test(w)),
        waits.join('\n'),
      ).toBe(true);

      const r = result(report, name);
      expect(r.connectionLost).toBe(true);
      expect(r.deadlinePassed).toBe(false);
      expect(r.after, 'it answered again, so its size after is known').not.toBeNull();
      const shrank = (r.after?.dbSize as number) < (r.before?.dbSize as number);
      // Killed mid-copy, etcd keeps its old db file: the defrag did not happen, and the report says so.
      expect(shrank).toBe(false);
      expect(r.action).toBe('failed');
      expect(r.reason).toMatch(/connection was lost during its defragmentation and the member did not shrink/);
      expect(r.reason).not.toMatch(/deadline/);
      // Its defrag did not happen, so the run stops there as after any failed member (--continue-on-error would go on).
      for (const m of report.members.filter((x) => x.name !== name))
        expect(m.reason, m.name).toBe('not attempted: an earlier member failed');
      expect(report.outcome).toBe('failed');
      // The why of a failed run is in its message too (the CLI's one line on stderr for cron), not just in a member row.
      expect(report.message).toMatch(new RegExp(`^${name} failed: the connection was lost during its defragmentation`));
      // The Defragment was not re-sent to the restarted member (its counter starts at 0 after a restart).
      expect(await defragCount(c.members.find((m) => m.name === name)!.clientUrl)).toBe(0);
      expect(await lockHeld(c)).toBe(false);
    } finally {
      await restoreAndCompare(c);
    }
  });

  it('CLI: killed during its Defragment with --recovery-timeout 3s: exit 1, one JSON report naming the lost connection', async () => {
    const c = cluster();
    await addGarbage(c);
    const eps = c.endpoints;
    let stdout = '';
    let stderr = '';
    let victim: string | null = null;
    let watching = true;
    // Like an operator's crash: whichever member etcd says is defragmenting is killed.
    const killer = (async () => {
      while (watching && victim === null) {
        for (const m of c.members) {
          const metrics = await c.memberMetrics(m.name, { timeoutMs: 500 }).catch(() => null);
          if (metrics?.get('etcd_disk_defrag_inflight') === 1 && victim === null) {
            victim = m.name;
            await c.killMember(m.name);
          }
        }
      }
    })();
    const t0 = Date.now();
    const code = await runCli(
      ['defrag', '--endpoints', eps.join(','), '--command-timeout', '2s', '--recovery-timeout', '3s', '-w', 'json'],
      {
        stdout: (s) => (stdout += s),
        stderr: (s) => (stderr += s),
        isTTY: false,
        env: {},
      },
    ).finally(() => {
      watching = false;
    });
    const elapsedMs = Date.now() - t0;
    await killer;
    try {
      const r = { code, stdout, stderr };
      expect(victim, show(r)).not.toBeNull();
      const name = victim as unknown as string;
      expect(code, show(r)).toBe(1);
      const report = parseJson<ReportJson>(r);
      expect(report.outcome).toBe('failed');
      const mine = result(report, name);
      expect(mine.action).toBe('failed');
      expect(mine.connectionLost).toBe(true);
      expect(mine.deadlinePassed).toBe(false);
      expect(mine.reason).toMatch(/did not answer within 3s after the connection was lost/);
      const started = report.plan?.decisions.filter((d) => d.action === 'defragment').map((d) => d.name) ?? [];
      const after = started.slice(started.indexOf(name) + 1);
      for (const n of after) expect(result(report, n).reason, n).toMatch(/^not attempted/);
      expect(report.members.filter((m) => m.action === 'defragmented').length).toBe(started.indexOf(name));
      // The progress on stderr says what happened, once, and how long the run waits.
      expect(
        stderr.match(new RegExp(`^(?:\\S+ )?${name}: connection lost during its defragmentation .*NOT retrying$`, 'gm')),
        stderr,
      ).toHaveLength(1);
      expect(stderr).toMatch(new RegExp(`^(?:\\S+ )?${name}: waiting for the member to answer again .*\\(at most 3s\\)$`, 'm'));
      expect(stderr).not.toMatch(/deadline of .* passed/);
      expect(stderr).toMatch(/defragd: failed: .*connection was lost/);
      expect(elapsedMs).toBeLessThan(60_000);
      expect(await lockHeld(c)).toBe(false);
    } finally {
      await restoreAndCompare(c);
    }
  });
});
