/**
 * `defragd serve` against real etcd: the daemon in this process (the
 * library's serve(), as the CLI command calls it), its store in a temp file,
 * its HTTP API on a loopback port. What an operator checks: an auto run
 * happens on a fragmented cluster and not on a clean one, is recorded in the
 * store with its trigger, shows in the API and the in-cluster record; a
 * cron start fires inside its window and is skipped outside it; NOSPACE is
 * recovered without a person; /metrics equals `status`; the API's auth.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { fragment } from '../../dev/workload.js';
import { openStore } from '../../src/store/index.js';
import type { ServeConfig } from '../../src/serve/config.js';
import { getJson, startServe as startServeIn, until, type StartServeOptions } from './serve-support.js';
import { cli, fragmentAndWait, MiB, observe, parseJson, tryPut } from './helpers-defrag.js';

const TOKEN = 's3cret-token-for-tests';
let dir: string;
const startServe = (name: string, yaml: string, opts: StartServeOptions = {}) => startServeIn(dir, name, yaml, opts);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-serve-it-'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type RunRow = { id: number; trigger: string; outcome: string; reclaimedBytes: number; membersDefragmented: number };

describe('serve: auto mode, the API and the metrics on a 3-member cluster', () => {
  const cluster = useCluster({ members: 3 });

  it('runs when the rule holds, records it (store, API, in-cluster record), not again within the cooldown; /metrics equals status; the API needs the token', async () => {
    const c = cluster();
    const store = join(dir, 'auto.sqlite');
    const config = (rule: string) =>
      `listen: 127.0.0.1:0\nstore: ${store}\napiTokenFile: ./token\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    rule: "${rule}"\n    auto: { interval: 1s, cooldown: 1h }\n`;
    const s = await startServe('auto', config('dbSizeFree > 4*MiB'));
    // A config change, applied: the daemon logs it once the cluster's new loop has started.
    const reloadTo = async (rule: string) => {
      const before = s.logs().filter((l) => l['msg'] === 'reloaded the config').length;
      writeFileSync(s.file, config(rule));
      s.reload();
      await until(`the reload to rule ${rule}`, async () => s.logs().filter((l) => l['msg'] === 'reloaded the config').length > before);
    };
    try {
      // Clean: observed, ready, no run.
      await until('ready', async () => (await fetch(`${s.url}/readyz`)).status === 200);
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await getJson(`${s.url}/api/v1/clusters/main/history`)).body['runs']).toEqual([]);

      // Fragmented: an auto run, recorded with its trigger. The rule is switched off while the
      // members fragment, and back on once every one of them is: else an observation between
      // two members' compactions can find the rule holding on one member only, and the run
      // (rightly) defragments that one, leaving the others to the cooldown.
      await reloadTo('false');
      // (Freed pages sometimes show only after more writes: try again.)
      for (let attempt = 0; ; attempt++) {
        try {
          await fragmentAndWait(
            { endpoints: c.endpoints },
            { bytes: 16 * MiB, passes: 2, minFree: 6 * MiB, members: 3, prefix: `/frag${attempt}/` },
          );
          break;
        } catch (err) {
          if (attempt >= 2) throw err;
        }
      }
      await reloadTo('dbSizeFree > 4*MiB');
      const runs = await until('an auto run', async () => {
        const r = (await getJson(`${s.url}/api/v1/clusters/main/history`)).body['runs'] as RunRow[];
        return r.length > 0 && r[0]!.outcome !== 'running' ? r : null;
      });
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ trigger: 'auto', outcome: 'success', membersDefragmented: 3 });
      expect(runs[0]!.reclaimedBytes).toBeGreaterThan(6 * MiB);
      const detail = (await getJson(`${s.url}/api/v1/runs/${runs[0]!.id}`)).body as {
        report: { members: { action: string }[] };
        events: unknown[];
      };
      expect(detail.report.members.every((m) => m.action === 'defragmented')).toBe(true);
      expect(detail.events.length).toBeGreaterThan(5);

      // The in-cluster record says who did it, for any host to read.
      const last = parseJson<{ lastDefrag: { trigger: string } | null }[]>(
        await cli(['last', '--endpoints', c.endpoints.join(','), '--cluster', '-w', 'json']),
      );
      expect(last.map((m) => m.lastDefrag?.trigger)).toEqual(['auto', 'auto', 'auto']);

      // Fragmented again within the cooldown: no second auto run.
      await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 16 * MiB, passes: 2, minFree: 6 * MiB, members: 3 });
      await new Promise((r) => setTimeout(r, 3_000));
      expect(((await getJson(`${s.url}/api/v1/clusters/main/history`)).body['runs'] as RunRow[]).length).toBe(1);
      expect(((await getJson(`${s.url}/api/v1/clusters/main`)).body as { state: string }).state).toBe('cooldown');

      // /metrics equals status, member by member.
      const status = parseJson<{ name: string; dbSize: number; dbSizeInUse: number }[]>(
        await cli(['status', '--endpoints', c.endpoints.join(','), '--cluster', '-w', 'json']),
      );
      const metrics = await until('metrics after the next observation', async () => {
        const text = await (await fetch(`${s.url}/metrics`)).text();
        return status.every(
          (m) =>
            text.includes(`defragd_member_db_size_bytes{cluster="main",member="${m.name}"`) &&
            new RegExp(`defragd_member_db_size_bytes\\{[^}]*member="${m.name}"[^}]*\\} ${m.dbSize}\\b`).test(text),
        )
          ? text
          : null;
      });
      expect(metrics).toMatch(/defragd_runs_total\{cluster="main",trigger="auto",outcome="success"\} 1/);

      // The API: no token 401, wrong token 401, right token 202 (a run starts though auto is cooling down).
      expect((await fetch(`${s.url}/api/v1/clusters/main/runs`, { method: 'POST', body: '{}' })).status).toBe(401);
      expect(
        (await fetch(`${s.url}/api/v1/clusters/main/runs`, { method: 'POST', body: '{}', headers: { authorization: 'Bearer nope' } }))
          .status,
      ).toBe(401);
      const started = await getJson(`${s.url}/api/v1/clusters/main/runs`, {
        method: 'POST',
        body: '{"dryRun":false}',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      });
      expect(started.status).toBe(202);
      const apiRun = await until('the API run to finish', async () => {
        const r = (await getJson(`${s.url}/api/v1/runs/${started.body['runId'] as number}`)).body as { run: RunRow };
        return r.run.outcome !== 'running' ? r.run : null;
      });
      expect(apiRun).toMatchObject({ trigger: 'api', outcome: 'success' });
    } finally {
      await s.stop();
    }
    // The store opens cleanly afterwards and holds both runs.
    const reopened = openStore(store, { mustExist: true });
    try {
      expect(reopened.runs({ cluster: 'main' }).map((r) => r.trigger)).toEqual(['api', 'auto']);
    } finally {
      reopened.close();
    }
  });

  it('a cron start fires inside its window and is recorded as schedule; outside the window it is skipped and logged', async () => {
    const c = cluster();
    const dayNames = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
    const today = dayNames[new Date().getUTCDay()] as string;
    const other = dayNames[(new Date().getUTCDay() + 3) % 7] as string;
    const yaml = (window: string) =>
      `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n  - name: sched\n    endpoints: [${c.endpoints.join(', ')}]\n    schedule: "* * * * *"\n    windows: ["${window}"]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "false"\n`;

    // Every 2 s, past the config's 1-minute minimum between scheduled runs, to see starts within the test.
    const everyTwoSeconds = (loaded: ServeConfig): ServeConfig => ({
      ...loaded,
      clusters: loaded.clusters.map((k) => ({ ...k, schedule: { cron: '*/2 * * * * *', jitterMs: 0 } })),
    });
    const outside = await startServe('outside', yaml(`${other} 00:00-24:00`), { adjust: everyTwoSeconds });
    try {
      await until('a skipped start in the log', async () => outside.logs().some((l) => l['msg'] === 'scheduled start skipped'), 15_000);
      expect((await getJson(`${outside.url}/api/v1/clusters/sched/history`)).body['runs'] as RunRow[]).toEqual([]);
    } finally {
      await outside.stop();
    }

    const inside = await startServe('inside', yaml(`${today} 00:00-24:00`), { adjust: everyTwoSeconds });
    try {
      const runs = await until(
        'a scheduled run',
        async () => {
          const r = (await getJson(`${inside.url}/api/v1/clusters/sched/history`)).body['runs'] as RunRow[];
          return r.find((x) => x.outcome !== 'running') ? r : null;
        },
        20_000,
      );
      // The rule holds for nobody: the run is recorded as nothing-to-do, with its trigger.
      expect(runs[runs.length - 1]).toMatchObject({ trigger: 'schedule', outcome: 'nothing-to-do' });
    } finally {
      await inside.stop();
    }
  });
});

describe('serve: SIGHUP reloads the config', () => {
  const cluster = useCluster({ members: 1 });

  it('a valid new config adds and removes clusters; an invalid one is logged and the running config kept', async () => {
    const c = cluster();
    const one = (name: string) => `  - name: ${name}\n    endpoints: [${c.endpoints.join(', ')}]\n`;
    const s = await startServe('reload', `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n${one('a')}`);
    const names = async () =>
      ((await getJson(`${s.url}/api/v1/clusters`)).body['clusters'] as { name: string }[]).map((x) => x.name).sort();
    try {
      expect(await names()).toEqual(['a']);
      writeFileSync(s.file, `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n${one('a')}${one('b')}`);
      s.reload();
      await until('cluster b', async () => (await names()).includes('b'));
      expect(await names()).toEqual(['a', 'b']);

      writeFileSync(s.file, `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n  - name: Bad\n    endpoints: []\n`);
      s.reload();
      await until('the invalid reload in the log', async () => s.logs().some((l) => /the new config is invalid/.test(String(l['msg']))));
      expect(await names()).toEqual(['a', 'b']);

      writeFileSync(s.file, `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n${one('b')}`);
      s.reload();
      await until('cluster a gone', async () => !(await names()).includes('a'));
      expect(await names()).toEqual(['b']);
      expect((await fetch(`${s.url}/api/v1/clusters/a`)).status).toBe(404);
    } finally {
      await s.stop();
    }
  });
});

describe('serve: NOSPACE is recovered without a person', () => {
  const cluster = useCluster({ members: 3, quotaBackendBytes: 16 * MiB });

  it('a member raising NOSPACE starts a run at once (trigger nospace): compacted, defragmented, disarmed, writes accepted again', async () => {
    const c = cluster();
    await expect(
      fragment(
        { endpoints: [c.endpoints[0] as string] },
        { bytes: 6 * MiB, passes: 12, valueSize: 256 * 1024, compact: false, prefix: '/fill/' },
      ),
    ).rejects.toThrow(/database space exceeded/);
    const before = await observe({ endpoints: c.endpoints });
    expect(before.alarms.some((a) => a.alarm === 'NOSPACE')).toBe(true);

    const s = await startServe(
      'nospace',
      `listen: 127.0.0.1:0\nstore: ":memory:"\nclusters:\n  - name: small\n    endpoints: [${c.endpoints.join(', ')}]\n    auto: { interval: 1s, cooldown: 1h }\n    rule: "false"\n`,
    );
    try {
      const run = await until(
        'the NOSPACE run',
        async () => {
          const r = ((await getJson(`${s.url}/api/v1/clusters/small/history`)).body['runs'] as RunRow[]).find(
            (x) => x.outcome !== 'running',
          );
          return r ?? null;
        },
        60_000,
      );
      expect(run, JSON.stringify((await getJson(`${s.url}/api/v1/clusters/small/history`)).body)).toMatchObject({
        trigger: 'nospace',
        outcome: 'success',
      });
      expect(((await getJson(`${s.url}/api/v1/clusters/small/history`)).body['runs'] as RunRow[]).length).toBe(1);
      const after = await observe({ endpoints: c.endpoints });
      expect(after.alarms).toEqual([]);
      expect(await tryPut({ endpoints: c.endpoints }, c.endpoints[0] as string, '/after', 'ok')).toBeNull();
      expect(s.logs().some((l) => /compacting to the newest revision/.test(String(l['msg'])))).toBe(true);
    } finally {
      await s.stop();
    }
  });
});
