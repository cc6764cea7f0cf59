/**
 * `defragd status` against real etcd members (every version make test runs): sizes, fragmentation after
 * a compaction, quota, leader/learner marks, alarms, and a stopped member.
 */
import { describe, expect, it } from 'vitest';
import { startCluster, useCluster } from '../../dev/harness/etcd.js';
import { cli, json } from '../support/cli.js';
import { fragment } from '../../dev/workload.js';
import type { StatusJson } from '../../src/cli/printers/status.js';
import { defectsOf } from '../../src/domain/known-defects.js';
import { apartFromDefectWarnings, ETCD_VERSION, QUOTA_SOURCE_WITH_FLAG, STOP_GRPC_DEFAULT } from '../support/etcd-version.js';

const MiB = 1024 * 1024;

describe('status on a 3-member cluster', () => {
  const cluster = useCluster({ members: 3, quotaBackendBytes: 512 * MiB });

  it('shows one row per member with the JSON fields an operator scripts against', async () => {
    const r = await cli(['status', '--endpoints', cluster().endpoints[0] as string, '--cluster', '-w', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = json<StatusJson[]>(r);
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(
        expect.arrayContaining([
          'endpoint',
          'memberId',
          'name',
          'version',
          'dbSize',
          'dbSizeInUse',
          'dbSizeFree',
          'fragmentation',
          'quota',
          'quotaSource',
          'quotaUsage',
          'revision',
          'raftTerm',
          'raftIndex',
          'raftAppliedIndex',
          'isLeader',
          'isLearner',
          'alarms',
          'healthy',
          'error',
          'stopGrpcServiceOnDefrag',
          'knownDefects',
        ]),
      );
      expect(row.memberId).toMatch(/^[0-9a-f]+$/);
      expect(row.version).toBe(ETCD_VERSION);
      expect(row.knownDefects.map((d) => d.issue)).toEqual(defectsOf(ETCD_VERSION).map((f) => f.defect.issue));
      expect(row.stopGrpcServiceOnDefrag).toBe(STOP_GRPC_DEFAULT);
      expect(row.healthy).toBe(true);
      expect(row.error).toBeNull();
      // 3.6+ tell the quota in Status; before, it is read from each member's /metrics.
      expect(row.quota).toBe(512 * MiB);
      expect(row.quotaSource).toBe(QUOTA_SOURCE_WITH_FLAG);
    }
    expect(rows.filter((x) => x.isLeader)).toHaveLength(1);
    expect(rows.map((x) => x.name).sort()).toEqual(['m1', 'm2', 'm3']);
    const leader = await cluster().leaderName();
    expect(rows.find((x) => x.isLeader)?.name).toBe(leader);
  });

  it('member IDs match etcdctl exactly (64-bit, hex)', async () => {
    const r = await cluster().etcdctl(['member', 'list', '-w', 'json']);
    // etcdctl prints IDs as JSON numbers above 2^53: read the digits, never JSON.parse them.
    const ids = [...r.stdout.matchAll(/"ID":(\d+)/g)].map((m) => BigInt(m[1] as string).toString(16)).sort();
    const rows = json<StatusJson[]>(await cli(['status', '--endpoints', cluster().endpoints.join(','), '-w', 'json']));
    expect(rows.map((x) => x.memberId).sort()).toEqual(ids);
  });

  it('after writes and a physical compaction, dbSizeFree and fragmentation show what a defrag would reclaim', async () => {
    await fragment({ endpoints: [cluster().endpoints[0] as string] }, { bytes: 8 * MiB, passes: 2 });
    // A physical compaction waits on the member it was sent to; the others compact on their own schedule.
    let rows: StatusJson[] = [];
    for (let i = 0; i < 50; i++) {
      rows = json<StatusJson[]>(await cli(['status', '--endpoints', cluster().endpoints[1] as string, '--cluster', '-w', 'json']));
      if (rows.every((x) => (x.dbSizeFree as number) > 6 * MiB)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const row of rows) {
      expect(row.dbSize).toBeGreaterThan(16 * MiB);
      expect(row.dbSizeInUse).toBeLessThan(row.dbSize as number);
      expect(row.dbSizeFree).toBe((row.dbSize as number) - (row.dbSizeInUse as number));
      expect(row.dbSizeFree).toBeGreaterThan(6 * MiB);
      expect(row.fragmentation).toBeGreaterThan(0.3);
      expect(row.quotaUsage).toBeCloseTo((row.dbSize as number) / (512 * MiB), 3);
    }
    const table = await cli(['status', '--endpoints', cluster().endpoints.join(',')]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/DB SIZE.*IN USE.*FREE.*FRAG/);
    expect(table.stdout).toMatch(/\d+\.\d MiB/);
  });

  it('without --cluster, only the given endpoints are shown; with it, every member is discovered', async () => {
    const one = json<StatusJson[]>(await cli(['status', '--endpoints', cluster().endpoints[2] as string, '-w', 'json']));
    expect(one).toHaveLength(1);
    expect(one[0]?.name).toBe('m3');
    const all = json<StatusJson[]>(await cli(['status', '--endpoints', cluster().endpoints[2] as string, '--cluster', '-w', 'json']));
    expect(all).toHaveLength(3);
  });

  it('takes endpoints from DEFRAGD_ENDPOINTS, then ETCDCTL_ENDPOINTS; a flag wins over both', async () => {
    const [e1, e2, e3] = cluster().endpoints as [string, string, string];
    const viaEtcdctl = json<StatusJson[]>(await cli(['status', '-w', 'json'], { ETCDCTL_ENDPOINTS: e1 }));
    expect(viaEtcdctl.map((x) => x.endpoint)).toEqual([e1]);
    const viaDefragd = json<StatusJson[]>(await cli(['status', '-w', 'json'], { ETCDCTL_ENDPOINTS: e1, DEFRAGD_ENDPOINTS: e2 }));
    expect(viaDefragd.map((x) => x.endpoint)).toEqual([e2]);
    const viaFlag = json<StatusJson[]>(await cli(['status', '--endpoints', e3, '-w', 'json'], { DEFRAGD_ENDPOINTS: e2 }));
    expect(viaFlag.map((x) => x.endpoint)).toEqual([e3]);
    const writeOut = await cli(['status', '--endpoints', e1], { ETCDCTL_WRITE_OUT: 'json' });
    expect(() => JSON.parse(writeOut.stdout)).not.toThrow();
  });
});

describe('status when a member is down', () => {
  it('still shows its row with the error and exits 1', async () => {
    const c = await startCluster({ members: 3 });
    try {
      await c.stopMember('m3');
      const r = await cli(['status', '--endpoints', c.endpoints[0] as string, '--cluster', '-w', 'json', '--command-timeout', '2s']);
      expect(r.code).toBe(1);
      const rows = json<StatusJson[]>(r);
      const down = rows.find((x) => x.name === 'm3');
      expect(down?.error).toMatch(/connection refused/);
      expect(down?.healthy).toBe(false);
      expect(down?.dbSize).toBeNull();
      expect(rows.filter((x) => x.error === null)).toHaveLength(2);
      expect(apartFromDefectWarnings(r.stderr.trim().split('\n'))).toHaveLength(1);
      expect(r.stderr).toContain(c.endpoints[2]);
    } finally {
      await c.close();
    }
  });
});

describe('status with a learner', () => {
  it('marks the learner, which is healthy although it refuses linearizable reads', async () => {
    const c = await startCluster({ members: 1, learner: true });
    try {
      const r = await cli(['status', '--endpoints', c.endpoints[0] as string, '--cluster', '-w', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const rows = json<StatusJson[]>(r);
      expect(rows).toHaveLength(2);
      const learner = rows.find((x) => x.isLearner);
      expect(learner?.name).toBe(c.members.find((m) => m.isLearner)?.name);
      expect(learner?.isLeader).toBe(false);
      expect(learner?.healthy).toBe(true);
      const table = await cli(['status', '--endpoints', c.endpoints[0] as string, '--cluster']);
      expect(table.stdout).toMatch(/LEARNER/);
      // The learner's own row says LEARNER true (the column is read by position, not by pattern).
      const cells = (line: string) =>
        line
          .split('│')
          .slice(1, -1)
          .map((c) => c.trim());
      const lines = table.stdout.split('\n');
      const head = cells(lines.find((l) => l.includes('LEARNER')) as string);
      const learnerRow = cells(lines.find((l) => l.includes(`│ ${learner?.name} `)) as string);
      expect(learnerRow[head.indexOf('LEARNER')]).toBe('true');
      expect(learnerRow[head.indexOf('LEADER')]).toBe('false');
    } finally {
      await c.close();
    }
  });
});

describe('status with NOSPACE', () => {
  it('shows the alarm on every member once a small quota is filled', async () => {
    const c = await startCluster({ members: 1, quotaBackendBytes: 8 * MiB });
    try {
      // Writes fail once the quota is hit; the workload throws then.
      await expect(fragment({ endpoints: [c.endpoints[0] as string] }, { bytes: 6 * MiB, passes: 4, compact: false })).rejects.toThrow(
        /database space exceeded/,
      );
      const r = await cli(['status', '--endpoints', c.endpoints[0] as string, '--cluster', '-w', 'json']);
      const rows = json<StatusJson[]>(r);
      expect(rows[0]?.alarms).toEqual(['NOSPACE']);
      expect(rows[0]?.quota).toBe(8 * MiB);
      expect(rows[0]?.quotaUsage).toBeGreaterThanOrEqual(0.9);
      // A NOSPACE member still serves reads: it is healthy, the alarm is what the row shows.
      expect(rows[0]?.healthy).toBe(true);
      const table = await cli(['status', '--endpoints', c.endpoints[0] as string]);
      expect(table.stdout).toContain('NOSPACE');
    } finally {
      await c.close();
    }
  });
});
