/**
 * defragd's own process fails mid-run, against a real 3-member cluster:
 * SIGKILLed while a member defragments (its lock is orphaned until the lease
 * expires, its Defragment goes on in etcd and must never be doubled), and
 * Ctrl-C twice (the lock is revoked at once on the way out).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { acquireLock, connect, DEFAULT_LOCK_KEY, type RunReport, type StepEvent } from '../../src/index.js';
import { cli, fragmentAndWait, MiB, parseJson, show } from './helpers-defrag.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = `${ROOT}dist/cli/main.js`;
const CHILD = `${ROOT}test/support/defragd-lock-child.mts`;
/** ~37 MB free per member after fragmenting 64 MiB twice: a defrag of about 2 s here. */
const WORKLOAD = { bytes: 64 * MiB, passes: 2, minFree: 48 * MiB, members: 3 } as const;
/** True for a member still fragmented, false once defragmented: lets a run finish what another left. */
const STILL_FRAGMENTED = 'dbSizeFree > 16*MiB';

const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
const exited = (child: ChildProcess) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
    : new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );

/** etcd_disk_defrag_inflight of a member; null when its /metrics did not answer. */
async function inflight(c: EtcdCluster, name: string): Promise<number | null> {
  try {
    return (await c.memberMetrics(name, { timeoutMs: 1_000 })).get('etcd_disk_defrag_inflight') ?? null;
  } catch {
    return null;
  }
}

/** Finished Defragment calls per member (etcd's own histogram count), in member order. */
async function defragCounts(c: EtcdCluster): Promise<number[]> {
  return Promise.all(
    c.members.map(async (m) => (await c.memberMetrics(m.name)).get('etcd_disk_backend_defrag_duration_seconds_count') ?? NaN),
  );
}

async function until(what: string, limitMs: number, check: () => Promise<boolean>, everyMs = 20): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Waits until no member reports a defrag in flight (an orphaned one goes on in etcd). */
const noDefragInFlight = (c: EtcdCluster) =>
  until(
    'no defrag in flight',
    30_000,
    async () => (await Promise.all(c.members.map((m) => inflight(c, m.name)))).every((v) => v === 0),
    100,
  );

/** The lock key's value as stored, or null when nobody holds it. */
async function lockValue(endpoints: string[]): Promise<string | null> {
  const client = connect({ endpoints });
  try {
    const r = await client.member(endpoints[0] as string).range(DEFAULT_LOCK_KEY);
    return r.count === 0 ? null : (r.kvs[0]?.value.toString() ?? '');
  } finally {
    client.close();
  }
}

async function expectSameData(c: EtcdCluster): Promise<void> {
  const hashes = await c.hashKV();
  expect(hashes).toHaveLength(3);
  expect(new Set(hashes.map((h) => h.hash)).size, JSON.stringify(hashes)).toBe(1);
}

describe('defragd itself fails mid-run', () => {
  const cluster = useCluster({ members: 3 });
  beforeAll(() => {
    if (!existsSync(BIN)) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT });
  });
  afterEach(async () => {
    for (const child of [...children]) {
      child.kill('SIGKILL');
      await exited(child);
    }
  });

  it('SIGKILL during a Defragment: the next run is refused while the lease lives, the orphaned Defragment is never doubled, and a run after the lease expires finishes the job', async () => {
    const c = cluster();
    const eps = c.endpoints;
    await fragmentAndWait({ endpoints: eps }, WORKLOAD);
    const before = await defragCounts(c);

    // The library run in a child, with a 6 s lease instead of the CLI's 30 s. 6, not less: a run started
    // at once waits in Status on the member being defragmented (~2 s) before it gets to the lock.
    const ttlSeconds = 6;
    const child = track(
      spawn(process.execPath, ['--import', 'tsx', CHILD, String(ttlSeconds), 'doomed-run', ...eps], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let childErr = '';
    child.stderr?.on('data', (d: Buffer) => (childErr += d.toString()));
    const events: StepEvent[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { type: string; event?: StepEvent };
      if (msg.event) events.push(msg.event);
    });
    let target = '';
    await until(`the child's first member-started (stderr: ${childErr})`, 30_000, async () => {
      const started = events.find((e) => e.type === 'member-started');
      if (started?.type === 'member-started') target = started.decision.name;
      return target !== '';
    });
    // Killed while etcd is defragmenting the member: what a crash, an OOM kill or kill -9 leaves behind.
    await until(`etcd_disk_defrag_inflight 1 on ${target}`, 10_000, async () => (await inflight(c, target)) === 1);
    child.kill('SIGKILL');
    const killed = await exited(child);
    expect(killed.signal).toBe('SIGKILL');
    expect(
      events.some((e) => e.type === 'member-finished'),
      'the child was killed before its first member finished',
    ).toBe(false);

    // (a) At once: the lock is still held by the dead run; the next run is refused and names it.
    expect(await lockValue(eps)).toMatch(/"holder":"doomed-run"/);
    const orphanRunning = (await inflight(c, target)) === 1;
    if (!orphanRunning) console.warn(`[faults-process] the orphaned defrag of ${target} had already ended before the second run started`);
    const refused = await cli(['defrag', '--endpoints', eps.join(','), '-w', 'json']);
    expect(refused.code, show(refused)).toBe(3);
    const refusedReport = parseJson<RunReport>(refused);
    expect(refusedReport.outcome).toBe('refused');
    expect(refusedReport.message).toMatch(/another defragd run holds the cluster lock \/defragd\/lock \(doomed-run, since /);
    expect(refusedReport.members).toEqual([]);

    // (c) A run that waits for the lock goes ahead once the dead run's lease expires, and finishes what is left.
    expect(await lockValue(eps), 'the lease expired before the waiting run started: nothing tests the wait').toMatch(/doomed-run/);
    const t0 = Date.now();
    const waited = await cli(['defrag', '--endpoints', eps.join(','), '--lock-wait', '20s', '--rule', STILL_FRAGMENTED, '-w', 'json']);
    const waitedMs = Date.now() - t0;
    expect(waited.code, show(waited)).toBe(0);
    const report = parseJson<RunReport>(waited);
    expect(report.outcome).toBe('success');
    // The orphaned Defragment finished on its own: that member is compact now and is not done again.
    const byName = Object.fromEntries(report.members.map((m) => [m.name, m]));
    expect(byName[target]?.action, show(waited)).toBe('skipped');
    expect(byName[target]?.reason).toMatch(/^rule is false/);
    const others = c.members.map((m) => m.name).filter((n) => n !== target);
    for (const n of others) expect(byName[n]?.action, show(waited)).toBe('defragmented');
    console.info(`[faults-process] the waiting run took ${waitedMs} ms (lease ${ttlSeconds} s)`);

    // (b) Over the whole test, exactly one Defragment per member: the orphaned one was never re-sent.
    const after = await defragCounts(c);
    expect(after.map((a, i) => a - (before[i] as number))).toEqual([1, 1, 1]);
    expect(await lockValue(eps)).toBeNull();
    await expectSameData(c);
  });

  it('a second Ctrl-C exits 130 at once and revokes the lock: a new run can take it right away', async () => {
    const c = cluster();
    const eps = c.endpoints;
    await noDefragInFlight(c);
    await fragmentAndWait({ endpoints: eps }, WORKLOAD);
    const before = await defragCounts(c);

    const child = track(
      spawn(process.execPath, [BIN, 'defrag', '--endpoints', eps.join(','), '-w', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    let stdout = '';
    let stderr = '';
    let first = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /(\w+): defragmenting \(1\/3/.exec(stderr);
      if (m && first === '') {
        first = m[1] as string;
        child.kill('SIGINT');
        setTimeout(() => child.kill('SIGINT'), 150);
      }
    });
    const { code } = await exited(child);
    const exitedAt = Date.now();
    expect(first, stderr).not.toBe('');
    expect(code, `${stdout}\n${stderr}`).toBe(130);
    expect(stderr).toMatch(/SIGINT: stopping after the current step/);
    expect(stderr).toMatch(/SIGINT again: exiting now \(releasing the cluster lock first\)/);
    // -w json prints one JSON object even when the process exits at once.
    const forced = parseJson<RunReport>({ code: code ?? -1, stdout, stderr });
    expect(forced.outcome).toBe('interrupted');
    expect(forced.message).toMatch(/second signal/);

    // The lease was revoked on the way out: the key is gone now, not in 30 s.
    await until('the lock key to be gone', 3_000, async () => (await lockValue(eps)) === null, 100);
    expect(Date.now() - exitedAt).toBeLessThan(5_000);
    const client = connect({ endpoints: eps });
    try {
      const lock = await acquireLock({ connection: client, holder: 'next-run' });
      expect(await lockValue(eps)).toMatch(/next-run/);
      await lock.release();
    } finally {
      client.close();
    }

    // The first member's Defragment goes on in etcd after the exit; then a run finishes the rest, and the
    // first member is not done twice.
    await noDefragInFlight(c);
    const rest = await cli(['defrag', '--endpoints', eps.join(','), '--rule', STILL_FRAGMENTED, '-w', 'json']);
    expect(rest.code, show(rest)).toBe(0);
    const report = parseJson<RunReport>(rest);
    expect(report.members.find((m) => m.name === first)?.action).toBe('skipped');
    expect(report.members.filter((m) => m.action === 'defragmented')).toHaveLength(2);
    const after = await defragCounts(c);
    expect(after.map((a, i) => a - (before[i] as number))).toEqual([1, 1, 1]);
    expect(await lockValue(eps)).toBeNull();
    await expectSameData(c);
  });
});
