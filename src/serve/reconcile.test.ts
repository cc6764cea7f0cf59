/**
 * What etcd's evidence says of a Defragment that was in flight when defragd
 * died (judgeInFlight), what is then recorded (judgedResult), and when a
 * member's in-cluster record is written again (recordWanted).
 */
import { describe, expect, it } from 'vitest';
import { MiB } from '../../test/builders.js';
import type { MemberResult } from '../domain/run.js';
import { IN_FLIGHT_REASON, type MemberToReconcile } from '../store/index.js';
import { judgedResult, judgeInFlight, recordWanted, SIZE_TELLS_BYTES } from './reconcile.js';

const before = { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB };

describe('judgeInFlight', () => {
  it('a member that does not answer is asked again later', () => {
    expect(judgeInFlight({ before, countAtStart: 3, now: null, countNow: 4 })).toEqual({ kind: 'wait' });
  });

  it("etcd's defrag count rising says it completed, whatever the size", () => {
    const now = { dbSize: 310 * MiB, dbSizeInUse: 300 * MiB };
    expect(judgeInFlight({ before, countAtStart: 3, now, countNow: 4 })).toEqual({
      kind: 'defragmented',
      evidence: "etcd's defrag count rose from 3 to 4",
      after: now,
    });
  });

  it('a file that shrank says it completed when the count is not known or the member restarted', () => {
    const now = { dbSize: 101 * MiB, dbSizeInUse: 100 * MiB };
    for (const counts of [
      { countAtStart: null, countNow: 9 },
      { countAtStart: 5, countNow: 0 },
      { countAtStart: 5, countNow: null },
    ]) {
      const v = judgeInFlight({ before, now, ...counts });
      expect(v.kind, JSON.stringify(counts)).toBe('defragmented');
      expect(v.kind === 'defragmented' && v.evidence).toBe('its file shrank from 300.0 MiB to 101.0 MiB');
    }
  });

  it('an unchanged count says it did not complete; so does a file that kept its free space', () => {
    const now = { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB };
    expect(judgeInFlight({ before, countAtStart: 3, now, countNow: 3 })).toEqual({
      kind: 'not-defragmented',
      evidence: "etcd's defrag count is still 3 and its file did not shrink (300.0 MiB before, 300.0 MiB now)",
    });
    expect(judgeInFlight({ before, countAtStart: null, now, countNow: null })).toEqual({
      kind: 'not-defragmented',
      evidence: 'its file did not shrink (300.0 MiB before, 300.0 MiB now)',
    });
  });

  it('with no count and almost nothing to reclaim, nothing tells: possibly defragmented', () => {
    const tight = { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB - (SIZE_TELLS_BYTES - 1) };
    const v = judgeInFlight({ before: tight, countAtStart: null, now: { dbSize: 100 * MiB, dbSizeInUse: 99 * MiB }, countNow: null });
    expect(v.kind).toBe('possibly');
    expect(v.kind === 'possibly' && v.evidence).toMatch(/^etcd's defrag count is not known, and it had only 1024\.0 KiB to reclaim$/);
  });
});

describe('judgedResult', () => {
  const result: MemberResult = {
    endpoint: 'http://127.0.0.1:2379',
    memberId: '8e9e05c52164694d',
    name: 'm2',
    action: 'failed',
    reason: IN_FLIGHT_REASON,
    wasLeader: false,
    movedLeaderTo: null,
    before,
    after: null,
    durationMs: null,
    revision: null,
    deadlinePassed: false,
    connectionLost: false,
  };
  const m: MemberToReconcile = { result, inFlight: true, at: '2026-01-01T00:00:00.000Z', countAtStart: 3 };

  it('defragmented with the sizes found; failed saying why otherwise; nothing while it waits', () => {
    const after = { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB };
    expect(judgedResult(m, { kind: 'defragmented', evidence: 'e', after })).toMatchObject({
      action: 'defragmented',
      after,
      reason: expect.stringMatching(/^its Defragment completed although the process running it died: found at a restart \(e;/),
    });
    expect(judgedResult(m, { kind: 'not-defragmented', evidence: 'e' })).toMatchObject({
      action: 'failed',
      reason: 'its Defragment was in flight when the process running it died and did not complete (e)',
    });
    expect(judgedResult(m, { kind: 'possibly', evidence: 'e' })?.reason).toMatch(/^possibly defragmented: /);
    expect(judgedResult(m, { kind: 'wait' })).toBeNull();
  });
});

describe('recordWanted', () => {
  const record = (at: string) => ({ at, revision: 1, durationMs: 1, before: null, after: null, trigger: 'api' as const, by: 'x' });
  it('written when the cluster holds none or an older one; an equal or newer one stays', () => {
    expect(recordWanted('2026-01-01T00:00:10Z', null)).toBe(true);
    expect(recordWanted('2026-01-01T00:00:10Z', record('2026-01-01T00:00:09Z'))).toBe(true);
    expect(recordWanted('2026-01-01T00:00:10Z', record('2026-01-01T00:00:10Z'))).toBe(false);
    expect(recordWanted('2026-01-01T00:00:10Z', record('2026-01-01T00:00:11Z'))).toBe(false);
  });
});
