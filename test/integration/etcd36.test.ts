/**
 * What no etcd here can be made to show, against a fake gRPC member: a
 * Status with a zero quota and no /metrics to fall back on (3.6.0-3.6.5
 * report 0 when the quota is unset), and CORRUPT alarms that must never be
 * disarmed. (Real 3.6 and 3.7 members are tested by every other file.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, observeCluster } from '../../src/internals.js';
import { cli, json } from '../support/cli.js';
import { startFakeEtcd, STATUS_36, type FakeEtcd } from '../fakes/etcd36.js';
import type { StatusJson } from '../../src/cli/printers/status.js';

const ID = '10276657743932975437'; // above 2^53
const HEX = BigInt(ID).toString(16);
let fake: FakeEtcd | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

describe('etcd 3.6 Status fields', () => {
  it('uses dbSizeQuota and storageVersion when the server sends them', async () => {
    fake = await startFakeEtcd({ id: ID, name: 'etcd-0', status: STATUS_36 });
    const client = connect({ endpoints: [fake.url] });
    try {
      const snap = await observeCluster(client, { cluster: true });
      const m = snap.members[0];
      expect(m?.memberId).toBe(HEX);
      expect(m?.status?.quota).toBe(8 * 1024 ** 3);
      expect(m?.status?.quotaSource).toBe('status');
      expect(m?.status?.storageVersion).toBe('3.6.0');
      expect(m?.status?.isLeader).toBe(true);
      expect(m?.status?.dbSizeFree).toBe(209715200);
      expect(snap.leaderId).toBe(HEX);
    } finally {
      client.close();
    }
  });

  it('without dbSizeQuota and without /metrics, falls back to --quota-bytes, then to the 2 GiB default, and says so', async () => {
    fake = await startFakeEtcd({
      id: ID,
      name: 'etcd-0',
      status: { ...STATUS_36, version: '3.4.23', storageVersion: '', dbSizeQuota: '0' },
    });
    const withFlag = json<StatusJson[]>(await cli(['status', '--endpoints', fake.url, '--quota-bytes', '4GiB', '-w', 'json']));
    expect(withFlag[0]?.quota).toBe(4 * 1024 ** 3);
    expect(withFlag[0]?.quotaSource).toBe('flag');
    expect(withFlag[0]?.storageVersion).toBeNull();
    const byDefault = json<StatusJson[]>(await cli(['status', '--endpoints', fake.url, '-w', 'json']));
    expect(byDefault[0]?.quota).toBe(2 * 1024 ** 3);
    expect(byDefault[0]?.quotaSource).toBe('default');
    expect(byDefault[0]?.quotaUsage).toBeCloseTo(314572800 / 2 ** 31, 4);
    const table = await cli(['status', '--endpoints', fake.url]);
    expect(table.stdout).toContain('2.0 GiB (default)');
  });
});

describe('CORRUPT', () => {
  it('alarm disarm never disarms CORRUPT, even with --all, and says why', async () => {
    fake = await startFakeEtcd(
      { id: ID, name: 'etcd-0', status: STATUS_36 },
      {
        alarms: [
          { memberID: ID, alarm: 'CORRUPT' },
          { memberID: ID, alarm: 'NOSPACE' },
        ],
      },
    );
    const r = await cli(['alarm', 'disarm', '--all', '--endpoints', fake.url]);
    const deactivated = fake.calls
      .filter((c) => c.method === 'Alarm' && (c.request as { action: string }).action === 'DEACTIVATE')
      .map((c) => (c.request as { alarm: string }).alarm);
    expect(deactivated).toEqual(['NOSPACE']);
    expect(fake.alarms).toEqual([{ memberID: ID, alarm: 'CORRUPT' }]);
    expect(r.stderr).toMatch(/CORRUPT alarms are never disarmed/);
  });

  it('defrag refuses a cluster with a CORRUPT alarm and sends no Defragment', async () => {
    fake = await startFakeEtcd({ id: ID, name: 'etcd-0', status: STATUS_36 }, { alarms: [{ memberID: ID, alarm: 'CORRUPT' }] });
    // The fake serves no Lease/Txn, so the cluster lock is off here; the lock has its own tests.
    const r = await cli(['defrag', '--endpoints', fake.url, '--no-lock', '-w', 'json']);
    expect(r.code).toBe(3);
    expect(json<{ outcome: string }>(r).outcome).toBe('refused');
    expect(fake.calls.some((c) => c.method === 'Defragment')).toBe(false);
    const skip = await cli(['defrag', '--endpoints', fake.url, '--no-lock', '--skip-health-check']);
    expect(skip.code).toBe(3);
    expect(fake.calls.some((c) => c.method === 'Defragment')).toBe(false);
  });
});
