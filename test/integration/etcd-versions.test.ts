/**
 * What defragd reads that differs between etcd releases, on real members:
 *
 * - StopGRPCServiceOnDefrag: a gate 3.6+ export on /metrics (shown as true or
 *   false), a flag 3.5.14+ do not export (shown as null), absent from 3.4;
 * - a cluster mid-upgrade, as during a rolling upgrade from 3.6 to 3.7 (3.7
 *   needs 3.6.11+ beside it): two members on the newest pinned 3.6, one
 *   restarted in place on the newest pinned 3.7. `status` shows each member's
 *   release and says the cluster is mid-upgrade; `defrag` plans and runs on
 *   every member, leader last, and every member keeps the same data. It starts
 *   its own 3.6 and 3.7 whatever version the run is on, so it runs once, in
 *   the run on the default version; the other runs skip it, by name;
 * - a release with a known defect that can leave a member unable to start
 *   (3.5.5, etcd#14685, built as a test fixture, never supported): `status`
 *   warns, `defrag` and the daemon refuse (exit 3, 409), changing nothing,
 *   until the operator passes --allow-known-defects. Also once, in the run
 *   on the default version.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_ETCD_LINE, etcdRelease, etcdUnderTest, startCluster, type EtcdCluster } from '../../dev/harness/etcd.js';
import type { Plan } from '../../src/domain/plan.js';
import type { StatusJson } from '../../src/cli/printers/status.js';
import { cli, fragmentAndWait, MiB, parseJson, show, type ReportJson } from './helpers-defrag.js';
import { etcdAtLeast } from '../support/etcd-version.js';
import { defragCount } from './helpers-defrag.js';
import { getJson, startServe, until } from './serve-support.js';

const underTest = etcdUnderTest().version;
const onDefault = underTest.startsWith(`${DEFAULT_ETCD_LINE}.`);
const skipNote = onDefault ? '' : ` [skipped on ${underTest}: runs once, in the run on ${DEFAULT_ETCD_LINE}, with its own 3.6 and 3.7]`;

/** How the release under test turns StopGRPCServiceOnDefrag on, and what defragd can read of it; null: it has no such setting. */
const gate: { args: string[]; reads: boolean | null } | null = etcdAtLeast('3.6.0')
  ? { args: ['--feature-gates=StopGRPCServiceOnDefrag=true'], reads: true }
  : etcdAtLeast('3.5.14')
    ? { args: ['--experimental-stop-grpc-service-on-defrag=true'], reads: null }
    : null;

describe('StopGRPCServiceOnDefrag', () => {
  it.skipIf(gate === null)(
    `status shows it on where etcd exports its gates (3.6+) and unknown where it does not (3.5); the plan explains it${gate === null ? ` [skipped on ${underTest}: 3.4 has no StopGRPCServiceOnDefrag]` : ''}`,
    async () => {
      let c: EtcdCluster | undefined;
      try {
        c = await startCluster({ members: 3, extraArgs: gate!.args });
        const eps = c.endpoints.join(',');
        const status = await cli(['status', '--endpoints', eps, '-w', 'json']);
        expect(status.code, show(status)).toBe(0);
        expect(parseJson<StatusJson[]>(status).map((r) => r.stopGrpcServiceOnDefrag)).toEqual([gate!.reads, gate!.reads, gate!.reads]);
        const table = await cli(['status', '--endpoints', eps]);
        expect(table.stdout).toContain(
          gate!.reads
            ? 'StopGRPCServiceOnDefrag: on on m1, m2, m3'
            : 'StopGRPCServiceOnDefrag: unknown on m1, m2, m3 (etcd before 3.6 does not export its feature gates)',
        );

        const dry = await cli(['defrag', '--endpoints', eps, '--dry-run', '-w', 'json']);
        expect(dry.code, show(dry)).toBe(0);
        const notes = parseJson<{ plan: Plan }>(dry).plan.warnings.filter((w) => w.startsWith('StopGRPCServiceOnDefrag'));
        // Only where the member tells: a guess would be worse than nothing.
        expect(notes).toEqual(gate!.reads ? [expect.stringMatching(/^StopGRPCServiceOnDefrag is on for m1, m2, m3: .*NOT_SERVING/)] : []);
      } finally {
        await c?.close();
      }
    },
    90_000,
  );
});

describe('a cluster mid-upgrade from 3.6 to 3.7', () => {
  it.skipIf(!onDefault)(
    `status shows each member's release and says mid-upgrade; defrag plans it, runs on all three and the data stays equal${skipNote}`,
    async () => {
      const v36 = etcdRelease('3.6');
      const v37 = etcdRelease('3.7');
      let c: EtcdCluster | undefined;
      try {
        c = await startCluster({ members: 3, release: v36 });
        const conn = { endpoints: c.endpoints };
        await fragmentAndWait(conn, { bytes: 6 * MiB, passes: 2, minFree: 2 * MiB, members: 3 });
        await c.stopMember('m3');
        await c.startMember('m3', { release: v37 });
        const eps = c.endpoints.join(',');

        const status = await cli(['status', '--endpoints', eps, '-w', 'json']);
        expect(status.code, show(status)).toBe(0);
        const rows = parseJson<StatusJson[]>(status);
        expect(Object.fromEntries(rows.map((r) => [r.name, r.version]))).toEqual({ m1: v36.version, m2: v36.version, m3: v37.version });
        const upgrade = `the cluster is mid-upgrade: etcd ${v36.version} on m1, m2; ${v37.version} on m3`;
        expect(status.stderr).toContain(`defragd: warning: ${upgrade}`);

        const dry = await cli(['defrag', '--endpoints', eps, '--dry-run', '-w', 'json']);
        expect(dry.code, show(dry)).toBe(0);
        const plan = parseJson<{ plan: Plan }>(dry).plan;
        expect(plan.warnings.some((w) => w.startsWith(upgrade))).toBe(true);
        expect(
          plan.decisions
            .filter((d) => d.action === 'defragment')
            .map((d) => d.name)
            .sort(),
        ).toEqual(['m1', 'm2', 'm3']);

        const run = await cli(['defrag', '--endpoints', eps, '-w', 'json']);
        expect(run.code, show(run)).toBe(0);
        const report = parseJson<ReportJson>(run);
        expect(report.outcome).toBe('success');
        expect(report.members.map((m) => [m.name, m.action]).sort()).toEqual([
          ['m1', 'defragmented'],
          ['m2', 'defragmented'],
          ['m3', 'defragmented'],
        ]);
        expect(report.warnings.some((w) => w.startsWith(upgrade))).toBe(true);

        const hashes = await c.hashKV();
        expect(new Set(hashes.map((h) => h.hash)).size, JSON.stringify(hashes)).toBe(1);
      } finally {
        await c?.close();
      }
    },
    120_000,
  );
});

describe('a release with a known defect that can leave a member unable to start (3.5.5, etcd#14685)', () => {
  it.skipIf(!onDefault)(
    `status warns; defrag and the daemon refuse it and change nothing; --allow-known-defects goes ahead${skipNote.replace('with its own 3.6 and 3.7', 'with its own 3.5.5')}`,
    async () => {
      const v355 = etcdRelease('3.5.5', { fixture: true });
      let c: EtcdCluster | undefined;
      const dir = mkdtempSync(join(tmpdir(), 'defragd-defect-'));
      try {
        c = await startCluster({ members: 3, release: v355 });
        const conn = { endpoints: c.endpoints };
        await fragmentAndWait(conn, { bytes: 4 * MiB, passes: 2, minFree: 1 * MiB, members: 3 });
        const eps = c.endpoints.join(',');
        const counts = async () => Promise.all(c!.members.map((m) => defragCount(m.clientUrl)));
        const before = await counts();

        const status = await cli(['status', '--endpoints', eps, '-w', 'json']);
        expect(status.code, show(status)).toBe(0);
        expect(parseJson<StatusJson[]>(status).map((r) => r.knownDefects[0]?.issue)).toEqual(['etcd#14685', 'etcd#14685', 'etcd#14685']);
        expect(status.stderr).toMatch(
          /defragd: warning: m\d \(http:\/\/127\.0\.0\.1:\d+\) runs etcd 3\.5\.5, which has 4 known defrag defects: a defrag interrupted by a crash or kill can leave the member with inconsistent revisions, unable to start \(etcd#14685, fixed in 3\.5\.6\)/,
        );

        const dry = await cli(['defrag', '--endpoints', eps, '--dry-run']);
        expect(dry.code, show(dry)).toBe(3);
        expect(dry.stdout + dry.stderr).toMatch(
          /refusing to defragment: m\d .* runs etcd 3\.5\.5.*\(upgrade the member, or pass --allow-known-defects to defragment it anyway\)/,
        );

        const refused = await cli(['defrag', '--endpoints', eps, '-w', 'json']);
        expect(refused.code, show(refused)).toBe(3);
        expect(parseJson<ReportJson>(refused).outcome).toBe('refused');
        expect(await counts()).toEqual(before);

        // The daemon: an API run is refused for the same reason, and nothing is defragmented.
        writeFileSync(join(dir, 'token'), 'a-token-for-this-test\n');
        const s = await startServe(
          dir,
          'defect',
          `listen: 127.0.0.1:0\nstore: ${join(dir, 'store.sqlite')}\napiTokenFile: ./token\nclusters:\n  - name: old\n    endpoints: [${c.endpoints.join(', ')}]\n`,
        );
        try {
          await until('the daemon to observe the cluster', async () => (await fetch(`${s.url}/readyz`)).status === 200);
          const auth = { authorization: 'Bearer a-token-for-this-test', 'content-type': 'application/json' };
          const started = await getJson(`${s.url}/api/v1/clusters/old/runs`, { method: 'POST', body: '{"dryRun":false}', headers: auth });
          const run =
            started.status === 202
              ? await until('the API run to finish', async () => {
                  const r = (await getJson(`${s.url}/api/v1/runs/${started.body['runId'] as number}`)).body as {
                    run: { outcome: string; message: string | null };
                  };
                  return r.run.outcome !== 'running' ? r.run : null;
                })
              : { outcome: `HTTP ${started.status}`, message: JSON.stringify(started.body) };
          expect(run.outcome, JSON.stringify(run)).toBe('refused');
          expect(JSON.stringify(run)).toContain('etcd#14685');
          expect(s.logs().some((l) => l['msg'] === 'etcd version' && String(l['warning']).includes('etcd#14685'))).toBe(true);
        } finally {
          await s.stop();
        }
        expect(await counts()).toEqual(before);

        const allowed = await cli(['defrag', '--endpoints', eps, '--allow-known-defects', '-w', 'json']);
        expect(allowed.code, show(allowed)).toBe(0);
        const report = parseJson<ReportJson>(allowed);
        expect(report.outcome).toBe('success');
        expect(report.warnings.filter((w) => w.endsWith('going ahead (--allow-known-defects)'))).toHaveLength(3);
        expect((await counts()).map((n, i) => (n as number) - (before[i] as number))).toEqual([1, 1, 1]);
      } finally {
        await c?.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
