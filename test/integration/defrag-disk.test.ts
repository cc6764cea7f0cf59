/**
 * The free-disk check against real etcd: each member's data dir is a small
 * tmpfs, so "not enough room for the copy a defrag writes" is real. A member
 * whose dir is given with --data-dir and lacks room is skipped with the
 * figures; one whose dir defragd cannot see is defragmented, and the dry run
 * says the check was not made for it.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canLimitDiskSpace, useCluster } from '../../dev/harness/etcd.js';
import { cli, defragCount, MiB, parseJson, show, type ReportJson } from './helpers-defrag.js';

const disk = await canLimitDiskSpace();

describe.skipIf(!disk.ok)(`free disk (${disk.ok ? 'tmpfs data dirs' : `skipped: ${disk.why}`})`, () => {
  const cluster = useCluster({ members: 3, dataDirSizeBytes: 160 * MiB });
  const eps = () => cluster().endpoints.join(',');

  it('a member without room for the copy is skipped with the figures; members whose disk is not visible go ahead; with room, it is defragmented', async () => {
    // Without a rule every voter is defragmented, fragmented or not: the sizes here only need to exist.
    const m1 = cluster().members[0]!;
    const dataDir = `m1=${m1.dataDir}`;

    // Fill m1's filesystem so that less than dbSizeInUse + 10% + 64 MiB is free.
    const filler = join(m1.dataDir, 'filler');
    writeFileSync(filler, Buffer.alloc(120 * MiB));
    try {
      const dry = await cli(['defrag', '--endpoints', eps(), '--data-dir', dataDir, '--dry-run']);
      expect(dry.code, show(dry)).toBe(0);
      expect(dry.stdout).toMatch(/m1 .*skip .*not enough free disk for the copy a defrag writes: .* free in .*m1\.etcd, needs /);
      expect(dry.stdout).toMatch(/Free disk not checked for m[23], m[23]: defragd cannot see their data dirs/);

      const before = await defragCount(m1.clientUrl);
      const r = await cli(['defrag', '--endpoints', eps(), '--data-dir', dataDir, '-w', 'json']);
      expect(r.code, show(r)).toBe(0);
      const report = parseJson<ReportJson>(r);
      expect(report.members.find((m) => m.name === 'm1')).toMatchObject({
        action: 'skipped',
        reason: expect.stringMatching(/^not enough free disk/),
      });
      expect(
        report.members
          .filter((m) => m.action === 'defragmented')
          .map((m) => m.name)
          .sort(),
      ).toEqual(['m2', 'm3']);
      expect(await defragCount(m1.clientUrl)).toBe(before);
    } finally {
      rmSync(filler, { force: true });
    }

    // With the room back, m1 is checked and defragmented (no rule: every voter, fragmented or not).
    const again = await cli(['defrag', '--endpoints', eps(), '--data-dir', dataDir, '-w', 'json']);
    expect(again.code, show(again)).toBe(0);
    const report = parseJson<ReportJson>(again);
    expect(report.members.find((m) => m.name === 'm1')?.action).toBe('defragmented');
    expect(report.plan?.decisions.find((d) => d.name === 'm1')?.disk).toMatchObject({ path: m1.dataDir, neededBytes: expect.any(Number) });
  });

  it('a malformed --data-dir is a usage error naming the flag', async () => {
    const r = await cli(['defrag', '--endpoints', eps(), '--data-dir', '/var/lib/etcd']);
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr.trim()).toBe(
      'defragd: --data-dir: expected NAME=PATH (a member\'s name or hex ID, then its data dir), got "/var/lib/etcd"',
    );
  });
});
