/**
 * The duration forecast against a real 3-member etcd 3.4: what an operator
 * checks is that after a recorded run `defrag --dry-run --store F` says how
 * long each member will take; that a member forecast to take longer than
 * `--max-defrag-duration` (or the daemon's `maxDefragDuration`) is skipped,
 * saying why, and etcd's own defrag counter shows nothing was defragmented;
 * and that the daemon records the skip.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import { fragment } from '../../dev/workload.js';
import type { MemberDecision } from '../../src/domain/plan.js';
import type { RunReport } from '../../src/domain/run.js';
import { openStore } from '../../src/store/index.js';
import { cli, MiB, observe, parseJson, show } from './helpers-defrag.js';
import { getJson, startServe, until } from './serve-support.js';

const TOKEN = 'forecast-test-token';
const DEFRAG_COUNT = 'etcd_disk_backend_defrag_duration_seconds_count';

describe('duration forecast and maxDefragDuration', () => {
  let c: EtcdCluster;
  let dir: string;
  const eps = () => c.endpoints.join(',');
  /** etcd's own count of defrags, per member. */
  const defragCounts = async () => Promise.all(c.members.map(async (m) => (await c.memberMetrics(m.name)).get(DEFRAG_COUNT) ?? 0));
  /** A store whose history says every member defragments at 16 KiB/s: a few MiB in use take minutes. */
  const slowStore = async (file: string, cluster: string) => {
    const snap = await observe({ endpoints: c.endpoints });
    const store = openStore(file);
    try {
      for (const m of snap.members) {
        for (let i = 0; i < 3; i++) {
          store.recordExternal({
            cluster,
            by: 'seeded by the test',
            startedAt: new Date(Date.now() - (10 - i) * 3_600_000).toISOString(),
            finishedAt: new Date(Date.now() - (10 - i) * 3_600_000 + 64_000).toISOString(),
            message: 'a slow defrag, seeded',
            member: {
              endpoint: m.endpoint,
              memberId: m.memberId,
              name: m.name,
              action: 'defragmented',
              reason: 'seeded',
              wasLeader: false,
              movedLeaderTo: null,
              before: { dbSize: 2 * MiB, dbSizeInUse: MiB },
              after: { dbSize: MiB, dbSizeInUse: MiB },
              durationMs: 64_000,
              revision: null,
              deadlinePassed: false,
              connectionLost: false,
            },
          });
        }
      }
    } finally {
      store.close();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'defragd-forecast-it-'));
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    c = await startCluster({ members: 3 });
    // A few MiB in use, so a defrag copies something and a slow history forecasts minutes.
    await fragment({ endpoints: c.endpoints }, { bytes: 4 * MiB, valueSize: 256 * 1024, passes: 1 });
  }, 60_000);
  afterAll(async () => {
    await c?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("after a recorded run, defrag --dry-run --store shows each member's expected duration (table and JSON)", async () => {
    const file = join(dir, 'history.db');
    const before = await cli(['defrag', '--endpoints', eps(), '--dry-run', '--store', file]);
    expect(before.code, show(before)).toBe(0);
    expect(before.stdout).toMatch(/ EXPECTED /);
    expect(before.stdout.match(/unknown: no history/g)).toHaveLength(3);

    const run = await cli(['defrag', '--endpoints', eps(), '--store', file, '-w', 'json']);
    expect(run.code, show(run)).toBe(0);
    const done = parseJson<RunReport>(run).members;
    expect(done.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);

    const dry = await cli(['defrag', '--endpoints', eps(), '--dry-run', '--store', file, '-w', 'json']);
    expect(dry.code, show(dry)).toBe(0);
    const decisions = parseJson<RunReport>(dry).plan!.decisions;
    for (const d of decisions) {
      const past = done.find((m) => m.memberId === d.memberId)!;
      expect(d.forecastBasis, d.name).toEqual({
        source: 'history',
        defrags: 1,
        bytesPerSecond: Math.round((past.before!.dbSizeInUse / past.durationMs!) * 1_000),
      });
      // Its in-use size at the throughput of its one past defrag.
      expect(d.forecastMs).toBe(Math.round(d.dbSizeInUse! / (past.before!.dbSizeInUse / past.durationMs!)));
    }

    const table = await cli(['defrag', '--endpoints', eps(), '--dry-run', '--store', file]);
    expect(table.code, show(table)).toBe(0);
    for (const m of c.members) expect(table.stdout, table.stdout).toMatch(new RegExp(`│ ${m.name} .*│ ~\\d+(\\.\\d)?m?s +│`));
    expect(table.stdout).not.toMatch(/unknown: no history/);
    expect(table.stdout).toMatch(/Expected defrag time ~[\d.]+m?s in all/);
  });

  it('--max-defrag-duration skips every member forecast over it, saying why, and nothing is defragmented', async () => {
    const file = join(dir, 'slow.db');
    await slowStore(file, 'default');
    const leader = (await observe({ endpoints: c.endpoints })).leaderId;
    const counts = await defragCounts();

    const r = await cli(['defrag', '--endpoints', eps(), '--store', file, '--max-defrag-duration', '1m', '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const report = parseJson<RunReport>(r);
    expect(report.outcome).toBe('nothing-to-do');
    expect(report.members.map((m) => m.action)).toEqual(['skipped', 'skipped', 'skipped']);
    for (const m of report.members) {
      expect(m.reason).toMatch(
        /^forecast ~\d+m\d+s is over the max defrag duration 1m0s \([\d.]+ MiB in use at 16\.0 KiB\/s, the median of its last 3 defrags\): every request to the member would block that long/,
      );
    }
    expect(report.plan!.decisions.map((d: MemberDecision) => d.code)).toEqual([
      'over-max-duration',
      'over-max-duration',
      'over-max-duration',
    ]);
    expect(await defragCounts()).toEqual(counts);
    // The leader was skipped too: leadership was not handed away for nothing.
    expect((await observe({ endpoints: c.endpoints })).leaderId).toBe(leader);

    const usage = await cli(['defrag', '--endpoints', eps(), '--max-defrag-duration', '1m']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe(
      "defragd: --max-defrag-duration needs --store: the forecast is made from each member's past defrags recorded there\n",
    );
  });

  it('the daemon with maxDefragDuration records the skip, and its dry run shows the forecast', async () => {
    const store = join(dir, 'serve.sqlite');
    await slowStore(store, 'main');
    const counts = await defragCounts();
    const s = await startServe(
      dir,
      'forecast',
      `listen: 127.0.0.1:0\nstore: ${store}\napiTokenFile: ./token\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    defrag: { maxDefragDuration: 1m }\n`,
    );
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    try {
      await until('ready', async () => (await fetch(`${s.url}/readyz`)).status === 200);
      const dry = await getJson<{ report: RunReport }>(`${s.url}/api/v1/clusters/main/runs`, {
        method: 'POST',
        body: '{"dryRun":true}',
        headers: auth,
      });
      expect(dry.status).toBe(200);
      for (const d of dry.body.report.plan!.decisions) {
        expect(d).toMatchObject({
          action: 'skip',
          code: 'over-max-duration',
          forecastBasis: { source: 'history', defrags: 3, bytesPerSecond: 16 * 1024 },
        });
        expect(d.forecastMs).toBeGreaterThan(60_000);
      }

      const started = await getJson<{ runId: number }>(`${s.url}/api/v1/clusters/main/runs`, {
        method: 'POST',
        body: '{"dryRun":false}',
        headers: auth,
      });
      expect(started.status).toBe(202);
      const detail = await until('the run to finish', async () => {
        const d = (await getJson<{ run: { outcome: string }; report: RunReport | null }>(`${s.url}/api/v1/runs/${started.body.runId}`))
          .body;
        return d.run.outcome !== 'running' ? d : null;
      });
      expect(detail.run.outcome).toBe('nothing-to-do');
      expect(detail.report!.members.map((m) => [m.action, m.reason.replace(/ \(.*/, '')])).toEqual(
        Array(3).fill(['skipped', expect.stringMatching(/^forecast ~\d+m\d+s is over the max defrag duration 1m0s/)]),
      );
      expect(await defragCounts()).toEqual(counts);
    } finally {
      await s.stop();
    }
  });
});
