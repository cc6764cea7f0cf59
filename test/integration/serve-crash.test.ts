/**
 * `defragd serve` (the built binary) SIGKILLed mid-run and started again on
 * the same store, against a real 3-member cluster: the run is recorded
 * honestly (interrupted, with the member whose Defragment was in flight
 * checked against etcd's own evidence rather than lost), no member is
 * defragmented twice or left unrecorded (etcd's defrag counters), and the
 * store and the in-cluster record (`defragd last`) agree.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import type { MemberDefragStatus } from '../../src/domain/record.js';
import type { RunReport } from '../../src/domain/run.js';
import { IN_FLIGHT_REASON, openStore } from '../../src/store/index.js';
import { cli, fragmentAndWait, MiB, parseJson } from './helpers-defrag.js';
import { defragCounts, freePort, sleep, until } from './serve-support.js';

const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** About 40 MiB free per member: a Defragment of a second or two here, long enough to be killed in. */
const WORKLOAD = { bytes: 64 * MiB, passes: 2, minFree: 40 * MiB, members: 3 } as const;

interface Daemon {
  child: ChildProcess;
  url: string;
  out: () => string;
  exited: Promise<unknown>;
}

const children = new Set<ChildProcess>();

/** `asPid1`: in a new pid namespace, as a container runs it (unshare's child is pid 1 there). */
async function startDaemon(config: string, port: number, asPid1 = false): Promise<Daemon> {
  const argv = [process.execPath, BIN, 'serve', '--config', config];
  const child = asPid1
    ? spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  exited.then(() => children.delete(child));
  const url = `http://127.0.0.1:${port}`;
  await until(
    'the daemon to listen',
    () =>
      fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
    30_000,
    () => out,
  );
  return { child, url, out: () => out, exited };
}

async function inflightSum(c: EtcdCluster): Promise<number> {
  let sum = 0;
  for (const m of c.members) sum += (await c.memberMetrics(m.name, { timeoutMs: 5_000 })).get('etcd_disk_defrag_inflight') ?? 0;
  return sum;
}

interface RunDetail {
  run: { id: number; outcome: string; trigger: string; by: string; startedAt: string; message: string | null };
  report: RunReport | null;
}

describe('serve killed mid-run and started again', () => {
  const cluster = useCluster({ members: 3 });
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'defragd-serve-crash-'));
  });
  afterEach(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const when of ["during a member's Defragment", 'right after a member finished'] as const) {
    it(`SIGKILL ${when}: after the restart the run is interrupted with every member it touched recorded as etcd counted it, and the in-cluster records agree with the store`, async () => {
      const c = cluster();
      await fragmentAndWait({ endpoints: c.endpoints }, WORKLOAD);
      const port = await freePort();
      const tag = when.startsWith('during') ? 'during' : 'after';
      const store = join(dir, `${tag}.sqlite`);
      const config = join(dir, `${tag}.yaml`);
      // Auto with a long cooldown: one run, and none after the restart (the cooldown counts from the dead run).
      writeFileSync(
        config,
        `listen: 127.0.0.1:${port}\nstore: ${store}\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    rule: "dbSizeFree > 8*MiB"\n    auto: { interval: 1s, cooldown: 1h }\n`,
      );
      const countsBefore = await defragCounts(c);

      const first = await startDaemon(config, port);
      const killedBy = `${hostname()}:${first.child.pid}`;
      let killedAt = '';
      if (tag === 'during') {
        await until(
          'a member being defragmented',
          async () => {
            const view = (await (await fetch(`${first.url}/api/v1/clusters/main`)).json()) as { currentMember: { name: string } | null };
            return view.currentMember;
          },
          60_000,
          first.out,
        );
        // The Defragment is in flight in etcd: the daemon dies with it.
        await until('the Defragment to reach etcd', async () => (await inflightSum(c)) > 0, 10_000, first.out);
        first.child.kill('SIGKILL');
      } else {
        // The event stream tells the member-finished the moment the daemon has recorded it.
        const res = await fetch(`${first.url}/api/v1/events`);
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let text = '';
        const deadline = Date.now() + 60_000;
        while (!/"type":"member-finished"/.test(text)) {
          if (Date.now() > deadline) throw new Error(`no member finished:\n${first.out()}`);
          const { value, done } = await reader.read();
          if (done) throw new Error(`the event stream ended:\n${first.out()}`);
          text += decoder.decode(value, { stream: true });
        }
        first.child.kill('SIGKILL');
        await reader.cancel().catch(() => undefined);
      }
      killedAt = new Date().toISOString();
      await first.exited;
      // Whatever etcd was doing, it finishes on its own.
      await until('no Defragment in flight', async () => (await inflightSum(c)) === 0, 60_000);

      const second = await startDaemon(config, port);
      let detail: RunDetail | null = null;
      try {
        detail = await until(
          'the dead run to be checked against the cluster',
          async () => {
            const { runs } = (await (await fetch(`${second.url}/api/v1/clusters/main/history`)).json()) as { runs: { id: number }[] };
            // The one run (newest first): the dead one.
            const id = runs.at(-1)?.id;
            if (id === undefined) return null;
            const d = (await (await fetch(`${second.url}/api/v1/runs/${id}`)).json()) as RunDetail;
            return d.report && !d.report.members.some((m) => m.reason === IN_FLIGHT_REASON) ? d : null;
          },
          60_000,
          second.out,
        );
        // A moment more: no new run may start (the cooldown counts from the dead run).
        await sleep(1_500);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
      const d = detail as RunDetail;
      expect(d.run).toMatchObject({ outcome: 'interrupted', trigger: 'auto', by: killedBy });
      expect(d.run.message).toMatch(/died before the run finished/);

      // etcd's counters: each member defragmented at most once, and exactly the ones the run now says.
      const countsAfter = await defragCounts(c);
      const defragmented = d
        .report!.members.filter((m) => m.action === 'defragmented')
        .map((m) => m.name)
        .sort();
      const counted = c.members
        .filter((m) => countsAfter[m.name]! - countsBefore[m.name]! > 0)
        .map((m) => m.name)
        .sort();
      for (const m of c.members) expect(countsAfter[m.name]! - countsBefore[m.name]!, m.name).toBeLessThanOrEqual(1);
      expect(defragmented, JSON.stringify(d.report!.members, null, 1)).toEqual(counted);
      expect(defragmented.length).toBeGreaterThanOrEqual(1);
      if (tag === 'during') {
        const found = d.report!.members.find((m) => m.action === 'defragmented');
        expect(found?.reason).toMatch(
          /^its Defragment completed although the process running it died: found at a restart \(etcd's defrag count rose/,
        );
        expect(d.run.message).toMatch(/found defragmented at a restart/);
      }
      // Every member not defragmented is recorded too: nothing is silently left out.
      expect(d.report!.members).toHaveLength(3);

      // The in-cluster records (`defragd last`) say what the store says, for every member the run defragmented.
      const last = await cli(['last', '--endpoints', c.endpoints.join(','), '--cluster', '-w', 'json']);
      expect(last.code, last.stderr).toBe(0);
      const statuses = parseJson<MemberDefragStatus[]>(last);
      for (const name of defragmented) {
        const s = statuses.find((x) => x.name === name);
        expect(s?.lastDefrag, name).toMatchObject({ trigger: 'auto', by: killedBy });
        expect(Date.parse(s!.lastDefrag!.at)).toBeGreaterThanOrEqual(Date.parse(d.run.startedAt));
        expect(Date.parse(s!.lastDefrag!.at)).toBeLessThanOrEqual(Date.parse(killedAt) + 1_000);
      }
      // And the store on disk, read after the daemon stopped, says the same as the API did.
      const s = openStore(store, { mustExist: true });
      try {
        expect(s.run(d.run.id)?.report?.members.map((m) => [m.name, m.action])).toEqual(d.report!.members.map((m) => [m.name, m.action]));
        expect(s.runs({ cluster: 'main' })).toHaveLength(1);
      } finally {
        s.close();
      }
    });
  }

  const root = process.getuid?.() === 0;
  it.skipIf(!root)(
    `as pid 1 in a container (unshare --pid), SIGKILLed mid-run and started the same way: it starts again (it used to refuse every restart, "in use by pid 1") and closes the dead run as interrupted${root ? '' : ' [skipped unless root: a pid namespace needs root]'}`,
    async () => {
      const c = cluster();
      await fragmentAndWait({ endpoints: c.endpoints }, WORKLOAD);
      const port = await freePort();
      const store = join(dir, 'pid1.sqlite');
      const config = join(dir, 'pid1.yaml');
      writeFileSync(
        config,
        `listen: 127.0.0.1:${port}\nstore: ${store}\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    rule: "dbSizeFree > 8*MiB"\n    auto: { interval: 1s, cooldown: 1h }\n`,
      );
      const first = await startDaemon(config, port, true);
      await until(
        'a member being defragmented',
        async () => ((await (await fetch(`${first.url}/api/v1/clusters/main`)).json()) as { currentMember: unknown }).currentMember,
        60_000,
        first.out,
      );
      // SIGKILL to the namespace's pid 1 (node, unshare's child) ends the container.
      const init = Number(
        execFileSync('pgrep', ['-P', String(first.child.pid)])
          .toString()
          .trim()
          .split('\n')[0],
      );
      expect(init).toBeGreaterThan(1);
      expect(readFileSync(`${store}.lock`, 'utf8')).toMatch(/^1 /);
      process.kill(init, 'SIGKILL');
      await first.exited;
      await until('no Defragment in flight', async () => (await inflightSum(c)) === 0, 60_000);

      const second = await startDaemon(config, port, true);
      try {
        const runs = await until('the dead run closed', async () => {
          const { runs } = (await (await fetch(`${second.url}/api/v1/clusters/main/history`)).json()) as {
            runs: { id: number; outcome: string; message: string | null }[];
          };
          return runs.length > 0 && runs.every((r) => r.outcome !== 'running') ? runs : null;
        });
        expect(runs.at(-1)).toMatchObject({ outcome: 'interrupted' });
        expect(runs.at(-1)?.message).toMatch(/pid 1 on .* died before the run finished/);
      } finally {
        const init2 = Number(
          execFileSync('pgrep', ['-P', String(second.child.pid)])
            .toString()
            .trim()
            .split('\n')[0],
        );
        process.kill(init2, 'SIGTERM');
        await second.exited;
      }
    },
  );
});
