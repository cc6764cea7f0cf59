/**
 * The cluster lock keeps two runs from defragmenting the same cluster at
 * once (cron overlapping a daemon, two replicas): a second run refuses and
 * changes nothing, or waits with --lock-wait; a dead holder's key expires.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { cli, json } from '../support/cli.js';
import { fragment } from '../../dev/workload.js';
import { acquireLock, connect, DEFAULT_LOCK_KEY } from '../../src/index.js';

const MiB = 1024 * 1024;
type Report = { outcome: string; message: string | null; members: { action: string; reason: string }[] };

describe('cluster lock', () => {
  const cluster = useCluster({ members: 3 });

  it('a run while another holds the lock refuses (exit 3), names the holder and changes nothing', async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      await fragment({ endpoints: [cluster().endpoints[0] as string] }, { bytes: 4 * MiB, passes: 2 });
      const before = await cli(['status', '--endpoints', cluster().endpoints.join(','), '-w', 'json']);
      const lock = await acquireLock({ connection: client, holder: 'cron@node-7' });
      try {
        const r = await cli(['defrag', '--endpoints', cluster().endpoints[0] as string, '-w', 'json']);
        expect(r.code).toBe(3);
        const report = json<Report>(r);
        expect(report.outcome).toBe('refused');
        expect(report.message).toMatch(/cron@node-7/);
        expect(report.members).toEqual([]);
        const after = await cli(['status', '--endpoints', cluster().endpoints.join(','), '-w', 'json']);
        expect(json<{ dbSize: number }[]>(after).map((m) => m.dbSize)).toEqual(json<{ dbSize: number }[]>(before).map((m) => m.dbSize));
      } finally {
        await lock.release();
      }
      // Released: the key is gone and the next run goes ahead.
      expect((await client.member(cluster().endpoints[0] as string).range(DEFAULT_LOCK_KEY)).count).toBe(0);
      const ok = await cli(['defrag', '--endpoints', cluster().endpoints[0] as string, '-w', 'json']);
      expect(ok.code, ok.stderr).toBe(0);
      expect((await client.member(cluster().endpoints[1] as string).range(DEFAULT_LOCK_KEY)).count).toBe(0);
    } finally {
      client.close();
    }
  });

  it('two runs started together: exactly one defragments, the other refuses', async () => {
    const ep = cluster().endpoints[1] as string;
    const [a, b] = await Promise.all([cli(['defrag', '--endpoints', ep, '-w', 'json']), cli(['defrag', '--endpoints', ep, '-w', 'json'])]);
    const show = `a: exit ${a.code}\n${a.stdout}\n${a.stderr}\nb: exit ${b.code}\n${b.stdout}\n${b.stderr}`;
    // Exactly one got the lock; the other refused, naming it, and changed nothing.
    expect(
      [a.code, b.code].filter((code) => code === 3),
      show,
    ).toHaveLength(1);
    const [won, lost] = a.code === 3 ? [b, a] : [a, b];
    expect(json<Report>(lost), show).toMatchObject({ outcome: 'refused', members: [], message: expect.stringMatching(/lock/) });
    // The winner defragmented every member. On a busy machine an election can make it fail a member instead
    // (a leader is never defragmented), seen once in CI: that is its report's business, shown here, not the lock's.
    if (won.code === 0)
      expect(
        json<Report>(won).members.filter((m) => m.action === 'defragmented'),
        show,
      ).toHaveLength(3);
    else {
      expect(won.code, show).toBe(1);
      console.warn(`[lock] the run that got the lock failed on its own (not the lock's doing):\n${show}`);
    }
  });

  it("a dead holder's key expires with its lease; --lock-wait waits for that, and the report says so", async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const m = client.member(cluster().endpoints[0] as string);
      // A holder that died without releasing: its key is bound to a 2 s lease nobody renews.
      const lease = await m.leaseGrant(2);
      await m.put(DEFAULT_LOCK_KEY, JSON.stringify({ holder: 'crashed', since: 'earlier' }), { lease: lease.id });
      const busy = await cli(['defrag', '--endpoints', cluster().endpoints[0] as string, '-w', 'json']);
      expect(busy.code).toBe(3);
      const waited = await cli(['defrag', '--endpoints', cluster().endpoints[0] as string, '--lock-wait', '20s', '-w', 'json']);
      expect(waited.code, waited.stderr).toBe(0);
      const report = json<Report & { warnings: string[] }>(waited);
      expect(report.outcome).toBe('success');
      // The report says it waited, for whom, and that its plan came after the wait.
      expect(report.warnings.join('\n')).toMatch(
        /^waited \d[\d.]*m?s\S* for the cluster lock held by crashed \(since earlier\); planned again from a fresh observation/m,
      );
    } finally {
      client.close();
    }
  });

  it('--no-lock ignores a held lock', async () => {
    const client = connect({ endpoints: cluster().endpoints });
    try {
      const lock = await acquireLock({ connection: client, holder: 'other' });
      try {
        const r = await cli(['defrag', '--endpoints', cluster().endpoints[2] as string, '--no-lock', '-w', 'json']);
        expect(r.code, r.stderr).toBe(0);
      } finally {
        await lock.release();
      }
    } finally {
      client.close();
    }
  });
});
