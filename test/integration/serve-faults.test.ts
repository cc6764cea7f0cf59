/**
 * The daemon under fire, against real etcd (issue 20's fault suite, beside
 * serve-crash, serve-replicas, serve-nospace-replicas and serve-process):
 * its store filled up while NOSPACE must be recovered, and deleted under it,
 * SIGHUP during a run, a member down for many observations and the whole
 * cluster down and back, endpoints that come to reach another cluster, and
 * the HTTP API under concurrent POSTs, bad bodies and too many event streams.
 * What an operator checks: runs and recovery go on, nothing runs twice, and
 * the API, /readyz, /metrics and the logs say what is true.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canLimitDiskSpace, useCluster } from '../../dev/harness/etcd.js';
import { fragment } from '../../dev/workload.js';
import { fragmentAndWait, MiB, observe, tryPut } from './helpers-defrag.js';
import { getJson, observationsOf, sleep, startServe as startServeIn, until, type StartServeOptions } from './serve-support.js';

const TOKEN = 's3cret-token-for-fault-tests';
let dir: string;
const startServe = (name: string, yaml: string, opts: StartServeOptions = {}) => startServeIn(dir, name, yaml, opts);
const disk = await canLimitDiskSpace();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-serve-faults-'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const metric = async (url: string, line: RegExp): Promise<number | null> => {
  const m = line.exec(await (await fetch(`${url}/metrics`)).text());
  return m ? Number(m[1]) : null;
};
const ready = async (url: string) => {
  const r = await fetch(`${url}/readyz`);
  return { status: r.status, text: await r.text() };
};
type RunRow = { id: number; trigger: string; outcome: string; membersDefragmented: number };
const history = async (url: string, cluster: string) =>
  (await getJson(`${url}/api/v1/clusters/${cluster}/history`)).body['runs'] as RunRow[];

describe('serve with a store that fills up, and is deleted, while the cluster runs out of space', () => {
  const cluster = useCluster({ members: 3, quotaBackendBytes: 16 * MiB });

  it.skipIf(!disk.ok)(
    `NOSPACE is recovered though nothing can be recorded; members stay up in /metrics; /readyz says the store fails, then works again; a deleted store file is noticed${disk.ok ? '' : ` [skipped: a small store volume needs a tmpfs mount: ${disk.why}]`}`,
    async () => {
      const c = cluster();
      const mnt = join(dir, 'small');
      mkdirSync(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
      const s = await startServe(
        'store-full',
        `listen: 127.0.0.1:0\nstore: ${join(mnt, 'h.db')}\nclusters:\n  - name: small\n    endpoints: [${c.endpoints.join(', ')}]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "false"\n`,
      );
      try {
        await until('the first observation', async () => (await ready(s.url)).status === 200);
        // The store's disk fills up (another writer on the volume).
        try {
          writeFileSync(join(mnt, 'filler'), Buffer.alloc(8 * MiB));
        } catch {
          // ENOSPC: the volume is full, as intended.
        }
        await expect(
          fragment(
            { endpoints: [c.endpoints[0] as string] },
            { bytes: 6 * MiB, passes: 12, valueSize: 256 * 1024, compact: false, prefix: '/fill/' },
          ),
        ).rejects.toThrow(/database space exceeded/);

        // Recovered without a record: the alarm goes and writes are accepted again.
        await until(
          'NOSPACE recovered',
          async () => (await observe({ endpoints: c.endpoints })).alarms.length === 0,
          90_000,
          () => JSON.stringify(s.logs().slice(-15)),
        );
        expect(await tryPut({ endpoints: c.endpoints }, c.endpoints[0] as string, '/after', 'ok')).toBeNull();
        const r = await ready(s.url);
        expect(r.status).toBe(503);
        expect(r.text).toMatch(/the store fails/);
        expect(await metric(s.url, /^defragd_store_up (\d+)$/m)).toBe(0);
        for (const m of c.members)
          expect(await metric(s.url, new RegExp(`^defragd_member_up\\{[^}]*member="${m.name}"[^}]*\\} (\\d+)$`, 'm')), m.name).toBe(1);
        expect((await getJson(`${s.url}/api/v1/clusters/small`)).body['observeError']).toBeNull();
        const hashes = await c.hashKV();
        expect(new Set(hashes.map((h) => h.hash)).size, JSON.stringify(hashes)).toBe(1);

        // Space again: the store works again, and says so.
        rmSync(join(mnt, 'filler'));
        await until('the store working again', async () => (await ready(s.url)).status === 200, 30_000);
        expect(s.logs().some((l) => l['msg'] === 'the store works again')).toBe(true);

        // The file deleted under it (a cleanup script, an operator): /readyz says so until a restart.
        rmSync(join(mnt, 'h.db'));
        await until('the deleted store in /readyz', async () => /h\.db was deleted while in use/.test((await ready(s.url)).text), 45_000);
        expect(await metric(s.url, /^defragd_store_up (\d+)$/m)).toBe(0);
      } finally {
        await s.stop();
        execFileSync('umount', ['-l', mnt]);
      }
    },
  );
});

describe('serve when members and the cluster go down and come back, and when a reload points a name elsewhere', () => {
  const cluster = useCluster({ members: 3 });
  const other = useCluster({ members: 1 });

  it('a member down for many observations: shown down, nothing runs without it, nothing floods the log; back, the run goes ahead. The whole cluster down: unreachable, /healthz still answers; back: observed again', async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 16 * MiB, passes: 2, minFree: 8 * MiB, members: 3 });
    const victim = c.members.find((m) => m.name !== c.members[0]?.name)?.name as string;
    await c.stopMember(victim);
    const s = await startServe(
      'down',
      `listen: 127.0.0.1:0\nstore: ${join(dir, 'down.db')}\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "dbSizeFree > 4*MiB"\n`,
    );
    try {
      // Down for more than ten observations.
      await until(
        'ten observations',
        async () => (await observationsOf(s.url, 'main')).full + (await observationsOf(s.url, 'main')).light >= 10,
        60_000,
      );
      expect(await metric(s.url, new RegExp(`^defragd_member_up\\{[^}]*member="${victim}"[^}]*\\} (\\d+)$`, 'm'))).toBe(0);
      // With a voter down nothing is defragmented (a run is refused or never started), so nothing is recorded as done.
      expect((await history(s.url, 'main')).filter((r) => r.membersDefragmented > 0)).toEqual([]);
      const warnings = s.logs().filter((l) => l['level'] === 40 || l['level'] === 'warn');
      expect(warnings.length, JSON.stringify(warnings.slice(0, 5))).toBeLessThan(30);

      await c.startMember(victim);
      const done = await until(
        'a run that defragments once the member is back',
        async () => (await history(s.url, 'main')).find((r) => r.membersDefragmented > 0 && r.outcome !== 'running'),
        90_000,
        () => JSON.stringify(s.logs().slice(-10)),
      );
      expect(done.outcome).toBe('success');

      for (const m of c.members) await c.stopMember(m.name);
      await until('the cluster unreachable in the API', async () => {
        const view = (await getJson(`${s.url}/api/v1/clusters/main`)).body;
        return view['state'] === 'unreachable' && typeof view['observeError'] === 'string';
      });
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      // Together: one member alone has no quorum to become healthy.
      await Promise.all(c.members.map((m) => c.startMember(m.name)));
      await until('observed again', async () => (await getJson(`${s.url}/api/v1/clusters/main`)).body['observeError'] === null, 60_000);
    } finally {
      await s.stop();
    }
  });

  it("a reload that points a name at another cluster's endpoints is refused with the reason; pointed back, it is observed again", async () => {
    const c = cluster();
    const o = other();
    const yaml = (eps: string[]) =>
      `listen: 127.0.0.1:0\nstore: ${join(dir, 'ids.db')}\nclusters:\n  - name: main\n    endpoints: [${eps.join(', ')}]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "false"\n`;
    const s = await startServe('ids', yaml(c.endpoints));
    try {
      await until('observed', async () => (await getJson(`${s.url}/api/v1/clusters/main`)).body['snapshot'] !== null);
      writeFileSync(s.file, yaml(o.endpoints));
      s.reload();
      const error = await until('the refusal', async () => {
        const e = (await getJson(`${s.url}/api/v1/clusters/main`)).body['observeError'];
        return typeof e === 'string' && /now reach etcd cluster/.test(e) ? e : null;
      });
      expect(error).toMatch(/^the endpoints now reach etcd cluster [0-9a-f]+, but "main" is cluster [0-9a-f]+ in this daemon's history/);
      writeFileSync(s.file, yaml(c.endpoints));
      s.reload();
      await until('observed again', async () => (await getJson(`${s.url}/api/v1/clusters/main`)).body['observeError'] === null);
    } finally {
      await s.stop();
    }
  });

  it('SIGHUP five times during a run: one loop afterwards (the observation rate of one), and a cluster removed by reload is no longer observed nor in /metrics', async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 48 * MiB, passes: 2, minFree: 24 * MiB, members: 3 });
    const yaml = (rule: string, clusters = true) =>
      `listen: 127.0.0.1:0\nstore: ${join(dir, 'hup.db')}\nclusters:\n${
        clusters
          ? `  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "${rule}"\n`
          : ''
      }  - name: idle\n    endpoints: [${other().endpoints.join(', ')}]\n`;
    const s = await startServe('hup', yaml('dbSizeFree > 4*MiB'));
    try {
      await until(
        'a member being defragmented',
        async () => (await getJson(`${s.url}/api/v1/clusters/main`)).body['currentMember'],
        60_000,
      );
      for (let i = 0; i < 5; i++) {
        writeFileSync(s.file, yaml(`dbSizeFree > ${4 + i + 1}*MiB`));
        s.reload();
        await sleep(300);
      }
      await until('the run to end', async () => (await history(s.url, 'main')).some((r) => r.outcome !== 'running'), 90_000);
      // The reloads apply one after another once the run is over (each new loop observes at once): all five, then measure.
      await until('five reloads applied', async () => s.logs().filter((l) => l['msg'] === 'reloaded the config').length >= 5);
      await sleep(1_000);
      // One loop observes about once a second; five would be five times that.
      const from = await observationsOf(s.url, 'main');
      await sleep(6_000);
      const to = await observationsOf(s.url, 'main');
      const made = to.full + to.light - (from.full + from.light);
      expect(made).toBeGreaterThanOrEqual(3);
      expect(made).toBeLessThanOrEqual(9);

      writeFileSync(s.file, yaml('true', false));
      s.reload();
      await until('main gone from the API', async () => (await fetch(`${s.url}/api/v1/clusters/main`)).status === 404);
      await sleep(2_500);
      const text = await (await fetch(`${s.url}/metrics`)).text();
      expect(text).not.toMatch(/cluster="main"/);
      const later = await observationsOf(s.url, 'main');
      expect(later).toEqual({ full: 0, light: 0 });
    } finally {
      await s.stop();
    }
  });
});

describe('the HTTP API under fire, on a real cluster', () => {
  const cluster = useCluster({ members: 3 });

  it('50 concurrent POSTs: one 202, the rest 409; oversized and malformed bodies refused in one line; event streams capped with 503 while /healthz answers, and a slot freed when a client leaves', async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 16 * MiB, passes: 2, minFree: 8 * MiB, members: 3 });
    const s = await startServe(
      'api',
      `listen: 127.0.0.1:0\nstore: ${join(dir, 'api.db')}\napiTokenFile: ./token\nmaxEventStreams: 4\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    rule: "dbSizeFree > 4*MiB"\n`,
    );
    const streams: AbortController[] = [];
    try {
      const post = (body: string) =>
        fetch(`${s.url}/api/v1/clusters/main/runs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body,
        });
      const answers = await Promise.all(Array.from({ length: 50 }, () => post('{}')));
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses.filter((x) => x === 202)).toHaveLength(1);
      expect(statuses.filter((x) => x === 409)).toHaveLength(49);
      await until('the run to end', async () => (await history(s.url, 'main')).some((r) => r.outcome !== 'running'), 90_000);
      expect((await history(s.url, 'main')).filter((r) => r.trigger === 'api')).toHaveLength(1);

      const big = await post(JSON.stringify({ dryRun: false, pad: 'x'.repeat(100_000) }));
      expect(big.status).toBe(413);
      const bad = await post('{"dryRun": tru');
      expect(bad.status).toBe(400);
      for (const r of [big, bad]) {
        const body = (await r.json()) as { detail?: string; title?: string };
        expect(JSON.stringify(body)).not.toMatch(/\n\s+at /);
      }

      for (let i = 0; i < 4; i++) {
        const ac = new AbortController();
        streams.push(ac);
        const r = await fetch(`${s.url}/api/v1/events`, { signal: ac.signal });
        expect(r.status).toBe(200);
      }
      const fifth = await fetch(`${s.url}/api/v1/events`);
      expect(fifth.status).toBe(503);
      expect(fifth.headers.get('retry-after')).toBe('30');
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      streams.shift()?.abort();
      await until('a slot freed', async () => {
        const ac = new AbortController();
        const r = await fetch(`${s.url}/api/v1/events`, { signal: ac.signal });
        if (r.status === 200) streams.push(ac);
        else await r.body?.cancel();
        return r.status === 200;
      });
    } finally {
      for (const ac of streams) ac.abort();
      await s.stop();
    }
  });
});
