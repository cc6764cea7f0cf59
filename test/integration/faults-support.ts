/**
 * Shared pieces of the fault-injection tests (faults-*.test.ts): a cluster
 * with enough data that a Defragment takes a while, a run through the library
 * (runDefrag: it takes the cluster lock) whose events can trigger faults at
 * the exact step, and what an operator checks afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import type { EtcdCluster } from '../../dev/harness/etcd.js';
import { fragment } from '../../dev/workload.js';
import {
  buildPolicy,
  connect,
  DEFAULT_LOCK_KEY,
  runDefrag,
  type ExecuteOptions,
  type PolicyOptions,
  type RunReport,
  type StepEvent,
} from '../../src/internals.js';
import { fragmentAndWait, MiB } from './helpers-defrag.js';

export { MiB };

/**
 * Writes `inUseBytes` of live data (a Defragment copies it: ~0.4 s per 16 MiB here) plus a little
 * garbage, so a finished defrag shows as a shrink.
 */
export async function loadData(c: EtcdCluster, inUseBytes: number): Promise<void> {
  const conn = { endpoints: c.endpoints };
  await fragment(conn, { bytes: inUseBytes, passes: 1, valueSize: 256 * 1024, compact: false, prefix: '/big/' });
  await fragmentAndWait(conn, { bytes: 4 * MiB, passes: 2, minFree: 3 * MiB, members: 3, prefix: '/churn/' });
}

/** Overwrites a few MiB again, so each member has pages a finished defrag would free. */
export async function addGarbage(c: EtcdCluster): Promise<void> {
  await fragmentAndWait(
    { endpoints: c.endpoints.filter((_, i) => c.members[i]?.running()) },
    { bytes: 4 * MiB, passes: 2, minFree: 3 * MiB, members: 3, prefix: '/churn/' },
  );
}

export interface DrivenRun {
  report: RunReport;
  events: StepEvent[];
  elapsedMs: number;
}

/**
 * Runs defragd through the library with the cluster lock, handing each event to `hook` as it is
 * emitted. A hook may start async work (its promise is awaited after the run); whatever it does
 * synchronously (SIGSTOP, the SIGKILL inside killMember) happens before the run takes its next step.
 */
export async function drive(
  c: EtcdCluster,
  opts: { policy?: PolicyOptions; execute?: ExecuteOptions; hook?: (e: StepEvent) => Promise<unknown> | undefined },
): Promise<DrivenRun> {
  const client = connect({ endpoints: c.endpoints, commandTimeoutMs: 2_000, dialTimeoutMs: 1_000 });
  const events: StepEvent[] = [];
  const pending: Promise<unknown>[] = [];
  const t0 = Date.now();
  try {
    const report = await runDefrag(client, buildPolicy(opts.policy ?? {}), {
      observe: { cluster: true },
      execute: opts.execute,
      onEvent: (e) => {
        events.push(e);
        const p = opts.hook?.(e);
        // Settled into a value at once, so a failing hook is reported after the run, not as an unhandled rejection.
        if (p)
          pending.push(
            Promise.resolve(p).then(
              () => null,
              (err: unknown) => err,
            ),
          );
      },
    });
    const elapsedMs = Date.now() - t0;
    const failures = (await Promise.all(pending)).filter((x) => x !== null);
    if (failures.length > 0) throw failures[0];
    return { report, events, elapsedMs };
  } finally {
    client.close();
  }
}

/** The member names in the order the plan defragments them (followers first, the leader last). */
export function order(run: DrivenRun): string[] {
  const started = run.events.find((e) => e.type === 'run-started');
  if (started?.type !== 'run-started') throw new Error('no run-started event');
  return started.plan.decisions.filter((d) => d.action === 'defragment').map((d) => d.name);
}

/** Name of a member ID (hex) as the plan knows it. */
export function nameOf(run: { events: StepEvent[] } | StepEvent[], memberId: string): string {
  const events = Array.isArray(run) ? run : run.events;
  const started = events.find((e) => e.type === 'run-started');
  if (started?.type !== 'run-started') throw new Error('no run-started event');
  const d = started.plan.decisions.find((x) => x.memberId === memberId);
  if (!d) throw new Error(`no member ${memberId} in the plan`);
  return d.name;
}

export function result(report: RunReport, name: string) {
  const r = report.members.find((m) => m.name === name);
  if (!r) throw new Error(`no result for ${name} in ${JSON.stringify(report.members.map((m) => m.name))}`);
  return r;
}

/** Whether the cluster lock key exists, read through a running member. */
export async function lockHeld(c: EtcdCluster): Promise<boolean> {
  const live = c.members.filter((m) => m.running() && !m.paused());
  const client = connect({ endpoints: live.map((m) => m.clientUrl), commandTimeoutMs: 5_000 });
  try {
    let last: unknown;
    for (const m of live) {
      try {
        return (await client.member(m.clientUrl).range(DEFAULT_LOCK_KEY)).count > 0;
      } catch (err) {
        last = err;
      }
    }
    throw last;
  } finally {
    client.close();
  }
}

/**
 * Polls a member's etcd_disk_defrag_inflight until it says 1 and resolves true, or false when it
 * was not seen within `limitMs` (the defrag never started or was over before a poll saw it).
 */
export async function untilDefragInFlight(c: EtcdCluster, name: string, limitMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    const m = await c.memberMetrics(name, { timeoutMs: 500 }).catch(() => null);
    if (m?.get('etcd_disk_defrag_inflight') === 1) return true;
    await sleep(5);
  }
  return false;
}

/** Restarts every member that is not running, resumes paused ones, and checks all hold the same data. */
export async function restoreAndCompare(c: EtcdCluster): Promise<void> {
  for (const m of c.members) {
    if (m.paused()) c.resumeMember(m.name);
    if (!m.running()) await c.startMember(m.name);
  }
  const hashes = await c.hashKV();
  expect(hashes).toHaveLength(3);
  expect(new Set(hashes.map((h) => h.hash)).size, JSON.stringify(hashes)).toBe(1);
}

/** Events of one type, typed. */
export function ofType<T extends StepEvent['type']>(events: StepEvent[], type: T): Extract<StepEvent, { type: T }>[] {
  return events.filter((e): e is Extract<StepEvent, { type: T }> => e.type === type);
}
