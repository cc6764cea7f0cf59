/**
 * The member being defragmented is stopped (SIGSTOP, a hung host) past its
 * --defrag-timeout, on a real 3-member etcd 3.4 cluster: never continued
 * (the run gives up after --recovery-timeout, naming the deadline), or
 * continued (etcd finishes the one Defragment it has; the run waits and
 * goes on). Each time: etcd's own defrag counter shows nothing was
 * re-sent, the report says what is true, no lock is left behind, and every
 * member holds the same data.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import type { StepEvent } from '../../src/index.js';
import { defragCount } from './helpers-defrag.js';
import { addGarbage, drive, loadData, lockHeld, MiB, ofType, restoreAndCompare, result, untilDefragInFlight } from './faults-support.js';

describe('the member being defragmented, stopped', () => {
  const cluster = useCluster({ members: 3 });
  // ~48 MiB in use: a Defragment takes over a second here, so a pause lands while etcd copies.
  beforeAll(() => loadData(cluster(), 48 * MiB), 60_000);

  it('stopped (SIGSTOP) during its Defragment and never continued: the deadline, a bounded wait, it fails, nothing else is taken out, no lock left', async () => {
    const c = cluster();
    await addGarbage(c);
    const counts: Record<string, number> = {};
    for (const m of c.members) counts[m.name] = (await defragCount(m.clientUrl)) as number;
    let victim: string | null = null;
    let pausedInFlight = false;
    const run = await drive(c, {
      policy: { defragTimeoutMs: 1_000 },
      execute: { recoveryTimeoutMs: 3_000 },
      hook: (e) => {
        if (e.type !== 'member-started' || victim !== null) return;
        victim = e.decision.name;
        const name = victim;
        return untilDefragInFlight(c, name).then((seen) => {
          pausedInFlight = seen;
          if (seen) c.pauseMember(name);
        });
      },
    });
    const name = victim as unknown as string;
    try {
      expect(pausedInFlight, 'the pause must land while etcd_disk_defrag_inflight is 1').toBe(true);
      const { report, events } = run;
      expect(ofType(events, 'member-no-answer').map((e) => [e.name, e.why])).toEqual([[name, 'deadline']]);
      expect(ofType(events, 'member-waiting').filter((e) => e.name === name)[0]?.limitMs).toBe(3_000);
      expect(ofType(events, 'member-started').map((e) => e.decision.name)).toEqual([name]);
      expect(report.outcome).toBe('failed');
      const r = result(report, name);
      expect(r.action).toBe('failed');
      expect(r.deadlinePassed).toBe(true);
      expect(r.connectionLost).toBe(false);
      expect(r.reason).toMatch(/did not answer within 3s after its defragment deadline passed; not retried/);
      for (const m of report.members.filter((x) => x.name !== name)) expect(m.reason, m.name).toMatch(/^not attempted/);
      expect(run.elapsedMs).toBeLessThan(60_000);
      expect(await lockHeld(c)).toBe(false);
    } finally {
      await restoreAndCompare(c);
    }
    // Continued, etcd finishes the one Defragment it had; none was re-sent, none sent to another member.
    for (const m of c.members) {
      const expected = m.name === name ? 1 : 0;
      const deadline = Date.now() + 20_000;
      let n = (await defragCount(m.clientUrl)) as number;
      while (n - counts[m.name]! < expected && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        n = (await defragCount(m.clientUrl)) as number;
      }
      expect(n - counts[m.name]!, m.name).toBe(expected);
    }
  });

  // Stopped while etcd copies (seen by its inflight gauge), or before the request has even left the client.
  for (const when of ['while etcd copies', 'as soon as member-started is emitted'] as const) {
    it(`stopped (SIGSTOP) ${when}, past --defrag-timeout, then continued: a deadline (not a lost connection), never re-sent, the run waits and the report agrees with etcd's counter`, async () => {
      const c = cluster();
      await addGarbage(c);
      const counts: Record<string, number> = {};
      for (const m of c.members) counts[m.name] = (await defragCount(m.clientUrl)) as number;
      let victim: string | null = null;
      let pausedInFlight = false;
      const pauseFor3s = async (name: string) => {
        c.pauseMember(name);
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        c.resumeMember(name);
      };
      const run = await drive(c, {
        policy: { defragTimeoutMs: 1_000 },
        hook: (e: StepEvent) => {
          if (e.type !== 'member-started' || victim !== null) return;
          victim = e.decision.name;
          const name = victim;
          if (when === 'as soon as member-started is emitted') {
            pausedInFlight = true;
            return pauseFor3s(name);
          }
          return untilDefragInFlight(c, name).then(async (seen) => {
            pausedInFlight = seen;
            if (seen) await pauseFor3s(name);
          });
        },
      });
      try {
        const name = victim as unknown as string;
        expect(pausedInFlight, 'the pause must land while etcd_disk_defrag_inflight is 1').toBe(true);
        const { report, events } = run;
        const mine = ofType(events, 'member-no-answer').filter((e) => e.name === name);
        expect(mine.map((e) => e.why)).toEqual(['deadline']);
        const waits = ofType(events, 'member-waiting').filter((e) => e.name === name);
        expect(waits[0]?.what).toMatch(/etcd to finish/);
        // Default wait: at least a minute, not the 1 s deadline.
        expect(waits[0]?.limitMs).toBeGreaterThanOrEqual(60_000);

        // etcd's own counter: never more than one Defragment (none re-sent after its deadline).
        const after: Record<string, number> = {};
        for (const m of c.members) after[m.name] = (await defragCount(m.clientUrl)) as number;
        const ran = after[name]! - counts[name]!;
        // Paused while etcd copies, it finishes that copy when continued. Paused before the request left the
        // client, etcd sometimes runs the request it reads on SIGCONT and sometimes drops it (the client had
        // reset the stream at its deadline): seen both ways here. The report must agree with etcd either way.
        if (when === 'while etcd copies') expect(ran).toBe(1);
        else expect([0, 1]).toContain(ran);

        const r = result(report, name);
        expect(r.deadlinePassed).toBe(true);
        expect(r.connectionLost).toBe(false);
        expect(r.reason).not.toMatch(/connection/);
        if (ran === 1) {
          // etcd finished the copy: the member shrank, and the report says how; the run went on.
          expect(r.after?.dbSize as number).toBeLessThan(r.before?.dbSize as number);
          expect(r.action, r.reason).toBe('defragmented');
          expect(r.reason).toMatch(/deadline passed but etcd finished on its own/);
          expect(
            ofType(events, 'member-started')
              .map((e) => e.decision.name)
              .sort(),
          ).toEqual(['m1', 'm2', 'm3']);
          for (const m of c.members) if (m.name !== name) expect(after[m.name]! - counts[m.name]!, m.name).toBe(1);
        } else {
          // Nothing ran: the member did not shrink, it failed, and no other member was taken out.
          expect(r.after?.dbSize as number).toBeGreaterThanOrEqual(r.before?.dbSize as number);
          expect(r.action).toBe('failed');
          expect(r.reason).toMatch(/deadline passed and the member did not shrink; not retried/);
          expect(report.outcome).toBe('failed');
          expect(ofType(events, 'member-started').map((e) => e.decision.name)).toEqual([name]);
          for (const m of c.members) if (m.name !== name) expect(after[m.name]! - counts[m.name]!, m.name).toBe(0);
        }
        console.log(`paused ${when}: etcd ran ${ran} Defragment(s) on ${name}; ${r.action}`);
        // Success only when every member really was defragmented. (Every member defragmented and still not
        // success is honest when a voter was unfit at the last look: seen once on a busy machine; the run then
        // says why.)
        if (report.outcome === 'success') expect(report.members.every((m) => m.action === 'defragmented')).toBe(true);
        else expect(report.message, report.outcome).toBeTruthy();
        expect(await lockHeld(c)).toBe(false);
      } finally {
        await restoreAndCompare(c);
      }
    });
  }
});
