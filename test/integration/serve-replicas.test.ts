/**
 * Several `defragd serve` replicas with one config against one real
 * 3-member etcd cluster, as an operator runs them for availability: each
 * replica has its own store, and the cluster lock (`/defragd/lock`, a 30 s
 * lease) is all that keeps them apart. What an operator checks: etcd's own
 * gauges never show two Defragments at once, etcd's own counters show each
 * member defragmented once per pass, the stores say which replica did it,
 * and a replica killed with SIGKILL mid-run blocks the other only until its
 * lease runs out, leaving a store that opens and calls its run interrupted.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { EtcdClient } from '../../src/etcd/client.js';
import { openStore } from '../../src/store/index.js';
import type { StoredRun, StoredRunDetail } from '../../src/store/types.js';
import { fragmentAndWait, MiB } from './helpers-defrag.js';
import {
  defragCounts,
  freePort,
  getJson,
  moreObservations,
  sleep,
  startServe,
  until,
  watchInflight,
  type RunningServe,
  replicaLogs,
} from './serve-support.js';

const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-serve-replicas-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const configText = (c: EtcdCluster, store: string, listen = '127.0.0.1:0') =>
  `listen: ${listen}\nstore: ${store}\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    rule: "dbSizeFree > 8*MiB"\n    auto: { interval: 1s, cooldown: 1h }\n`;

const startReplica = (name: string, yaml: string) => startServe(dir, name, yaml);

const delta = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));

type ClusterJson = { name: string; state: string; runningRunId: number | null; currentMember: { name: string } | null };

/** Every run in a store file with its detail, read after its daemon stopped (or died). */
function storedRuns(path: string): StoredRunDetail[] {
  const s = openStore(path, { mustExist: true });
  try {
    return s.runs({ cluster: 'main' }).map((r: StoredRun) => s.run(r.id) as StoredRunDetail);
  } finally {
    s.close();
  }
}

describe('serve: replicas with one config on one cluster', () => {
  const cluster = useCluster({ members: 3 });

  it('two replicas never defragment at once: each member is defragmented once, by one replica; the other records no run that defragmented anything; both stay healthy', async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 64 * MiB, passes: 2, minFree: 24 * MiB, members: 3 });
    const before = await defragCounts(c);
    const storeA = join(dir, 'two-a.sqlite');
    const storeB = join(dir, 'two-b.sqlite');
    const inflight = watchInflight(c);
    let watched: Awaited<ReturnType<ReturnType<typeof watchInflight>['stop']>> | null = null;
    const replicas: RunningServe[] = [];
    try {
      // Both start on an already fragmented cluster: both find the rule true at their first observation.
      replicas.push(...(await Promise.all([startReplica('two-a', configText(c, storeA)), startReplica('two-b', configText(c, storeB))])));
      const views = async () =>
        Promise.all(replicas.map(async (r) => (await getJson<{ clusters: ClusterJson[] }>(`${r.url}/api/v1/clusters`)).body.clusters[0]!));
      const logs = () => replicaLogs(replicas);
      // Every member defragmented once, and neither replica has a run going (nor waits for the lock).
      await until(
        'one pass over every member, and both replicas idle',
        async () => {
          const d = delta(await defragCounts(c), before);
          return Object.values(d).every((n) => n >= 1) && (await views()).every((v) => v.state !== 'running');
        },
        120_000,
        logs,
      );
      // Two more observations each: no replica starts another pass (the rule is false now, and the cooldown).
      await Promise.all(replicas.map((r) => moreObservations(r.url, 'main', 2)));
      watched = await inflight.stop();
      expect(delta(await defragCounts(c), before), logs()).toEqual({ m1: 1, m2: 1, m3: 1 });

      // Both still answer, and say the cluster was observed.
      for (const r of replicas) {
        expect((await fetch(`${r.url}/readyz`)).status).toBe(200);
        const list = await getJson<{ clusters: ClusterJson[] }>(`${r.url}/api/v1/clusters`);
        expect(list.status).toBe(200);
        expect(list.body.clusters.map((x) => x.name)).toEqual(['main']);
        expect(['idle', 'cooldown']).toContain(list.body.clusters[0]!.state);
      }
    } finally {
      if (watched === null) await inflight.stop();
      await Promise.all(replicas.map((r) => r.stop()));
    }

    // etcd never had two Defragments in flight; the poll did see the one (it could have seen two).
    expect(watched.maxSum).toBe(1);
    expect(watched.pollsWithOne).toBeGreaterThan(0);

    // Exactly one replica holds the run that defragmented the cluster.
    const runs = [storedRuns(storeA), storedRuns(storeB)];
    const withDefrags = runs.map((rs) => rs.filter((d) => d.run.membersDefragmented > 0));
    expect(withDefrags.map((x) => x.length).sort(), JSON.stringify(runs.map((rs) => rs.map((d) => d.run)))).toEqual([0, 1]);
    const winner = withDefrags.flat()[0]!;
    expect(winner.run).toMatchObject({ trigger: 'auto', outcome: 'success', membersDefragmented: 3, membersFailed: 0 });
    expect(winner.report?.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
    // The other recorded nothing (it found the lock busy and gave up), or a run that, planned again after
    // the lock wait, found nothing left to do: never a run that defragmented or failed a member.
    const loserRuns = runs[withDefrags.findIndex((x) => x.length === 0)]!;
    for (const d of loserRuns) {
      expect(d.run, JSON.stringify(d.report)).toMatchObject({
        trigger: 'auto',
        outcome: 'nothing-to-do',
        membersDefragmented: 0,
        membersFailed: 0,
      });
      expect(d.report?.warnings.join('\n')).toMatch(
        /waited \S+ for the cluster lock held by .+ \(defragd serve\).*; planned again from a fresh observation/,
      );
      // It started after the winner's last member had finished: it waited for the lock rather than overlapping.
      const lastDefrag = Math.max(...winner.events.filter((e) => e.event.type === 'member-finished').map((e) => Date.parse(e.at)));
      expect(Date.parse(d.run.startedAt)).toBeGreaterThanOrEqual(lastDefrag);
    }
  }, 180_000);

  it("a replica killed with SIGKILL mid-run holds the other off until its lease expires; the other then defragments what is left; the killed one's store opens and calls its run interrupted", async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 64 * MiB, passes: 2, minFree: 24 * MiB, members: 3 });
    const before = await defragCounts(c);
    const port = await freePort();
    const storeA = join(dir, 'kill-a.sqlite');
    const storeB = join(dir, 'kill-b.sqlite');
    const cfgA = join(dir, 'kill-a.yaml');
    writeFileSync(cfgA, configText(c, storeA, `127.0.0.1:${port}`));
    const client = new EtcdClient({ endpoints: c.endpoints });
    // Through the first member that answers: a member being defragmented answers nothing until it finishes.
    const lockHolder = async () => {
      let last: unknown;
      for (const ep of c.endpoints) {
        try {
          const kv = (await client.member(ep).range('/defragd/lock')).kvs[0];
          return kv ? kv.value.toString() : null;
        } catch (err) {
          last = err;
        }
      }
      throw last;
    };
    // When the lock key was last seen held by A (the send time of that read): B may defragment only after it.
    let lockSeenHeldByA = 0;
    // When the key was first seen no longer A's (gone, or already taken by B).
    let lockGoneAt: number | null = null;
    let watchLock = true;

    const inflight = watchInflight(c);
    let watched: Awaited<ReturnType<ReturnType<typeof watchInflight>['stop']>> | null = null;
    const child = spawn(process.execPath, [BIN, 'serve', '--config', cfgA], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    let b: RunningServe | null = null;
    let lockWatch: Promise<void> = Promise.resolve();
    let killedAt = 0;
    let killedDuring = '';
    try {
      // A defragments a member: kill it right then, as the OOM killer or a node loss would.
      const current = await until(
        'replica A to defragment a member',
        async () => {
          const view = await getJson<ClusterJson>(`http://127.0.0.1:${port}/api/v1/clusters/main`).catch(() => null);
          return view?.body.currentMember ?? null;
        },
        40_000,
        () => out,
      );
      expect(await lockHolder(), 'A holds the cluster lock while it runs').toContain(`:${child.pid} (defragd serve)`);
      killedDuring = current.name;
      child.kill('SIGKILL');
      killedAt = Date.now();
      expect(await exited).toBe('SIGKILL');
      lockWatch = (async () => {
        while (watchLock && lockGoneAt === null) {
          const sent = Date.now();
          const holder = await lockHolder().catch(() => 'unknown');
          if (holder?.includes(`:${child.pid} `)) lockSeenHeldByA = sent;
          else if (holder !== 'unknown') lockGoneAt = Date.now();
          await sleep(100);
        }
      })();

      // B, same cluster config, its own store, started at once.
      b = await startReplica('kill-b', configText(c, storeB));
      const replicaB = b;
      const bRun = await until(
        'replica B to finish a run that defragmented something',
        async () => {
          const h = await getJson<{ runs: StoredRun[] }>(`${replicaB.url}/api/v1/clusters/main/history`);
          return h.body.runs.find((r) => r.outcome !== 'running' && r.membersDefragmented > 0) ?? null;
        },
        100_000,
        () =>
          `A:\n${out}\nB:\n${replicaB
            .logs()
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
      );
      await until(
        'B to be idle',
        async () => (await getJson<ClusterJson>(`${replicaB.url}/api/v1/clusters/main`)).body.state !== 'running',
        30_000,
      );
      watched = await inflight.stop();
      expect(bRun).toMatchObject({ trigger: 'auto', outcome: 'success', membersFailed: 0 });
      expect((await fetch(`${replicaB.url}/readyz`)).status).toBe(200);
    } finally {
      watchLock = false;
      await lockWatch;
      if (watched === null) await inflight.stop();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await b?.stop();
      client.close();
    }

    // Never two Defragments at once, and the poll could see one.
    expect(watched.maxSum).toBe(1);
    expect(watched.pollsWithOne).toBeGreaterThan(0);
    // Every member once over A's and B's runs together: the member A was killed during finished in etcd
    // (etcd finishes a Defragment whatever its client does), and B, planning again after the lock, left it alone.
    expect(delta(await defragCounts(c), before)).toEqual({ m1: 1, m2: 1, m3: 1 });

    // B's first Defragment came after A's lock was gone: its lease expired (A stopped keeping it alive at the kill).
    // B made one attempt: it waited for the lock instead of giving up or recording a refusal.
    const bRuns = storedRuns(storeB);
    expect(
      bRuns.map((d) => d.run.outcome),
      JSON.stringify(bRuns.map((d) => d.run)),
    ).toEqual(['success']);
    const bDetail = bRuns[0];
    const bStarts = bDetail!.events.filter((e) => e.event.type === 'member-started').map((e) => Date.parse(e.at));
    expect(bStarts.length).toBeGreaterThan(0);
    expect(lockSeenHeldByA, 'the lock was seen held by A after the kill').toBeGreaterThanOrEqual(killedAt);
    expect(Math.min(...bStarts)).toBeGreaterThan(lockSeenHeldByA);
    // A keeps its lease alive every 10 s with a 30 s TTL: it outlives the kill by more than 15 s.
    expect(lockGoneAt, 'the lock key was seen no longer held by A').not.toBeNull();
    expect(lockGoneAt! - killedAt).toBeGreaterThan(15_000);
    const bMembers = bDetail!.report!.members;
    expect(bMembers.find((m) => m.name === killedDuring)?.action, 'B left alone the member A was killed during').toBe('skipped');

    // A's store opens cleanly (its <store>.lock is stale: the pid is dead) and its run is interrupted,
    // with the members it finished before the kill.
    const aRuns = storedRuns(storeA);
    expect(aRuns.map((d) => d.run.outcome)).toEqual(['interrupted']);
    const aRun = aRuns[0]!;
    expect(aRun.run.message).toMatch(/died before the run finished/);
    const aDone = aRun.events.flatMap((e) =>
      e.event.type === 'member-finished' && e.event.result.action === 'defragmented' ? [e.event.result.name] : [],
    );
    expect(aRun.run.membersDefragmented).toBe(aDone.length);
    // Together: A's finished members, the one it was killed during, and B's cover each member once. (The kill
    // follows the API's "current member" by a moment: A may have finished and recorded that member by then.)
    const bDone = bMembers.filter((m) => m.action === 'defragmented').map((m) => m.name);
    const covered = [...aDone, ...(aDone.includes(killedDuring) ? [] : [killedDuring]), ...bDone].sort();
    expect(covered, JSON.stringify({ aDone, killedDuring, bDone })).toEqual(['m1', 'm2', 'm3']);

    // The data is the same on every member.
    const hashes = await c.hashKV();
    expect(new Set(hashes.map((h) => h.hash)).size, JSON.stringify(hashes)).toBe(1);
  }, 180_000);
});
