import { describe, expect, it } from 'vitest';
import type { DefragRecord } from '../domain/record.js';
import type { MemberResult, RunReport } from '../domain/run.js';
import type { StoredRun } from '../store/types.js';
import {
  type CountObservation,
  type DefragBaseline,
  countRose,
  decideExternal,
  externalMemberResult,
  ownRunTouched,
  UNKNOWN_BY,
} from './external.js';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const MiB = 1024 * 1024;
const OURS = 'serve1:7 (us)';
const BEFORE = { dbSize: 30 * MiB, dbSizeInUse: 10 * MiB };
const AFTER = { dbSize: 11 * MiB, dbSizeInUse: 10 * MiB };

const base = (o: Partial<DefragBaseline> = {}): DefragBaseline => ({
  count: 3,
  atMs: T0,
  sizes: BEFORE,
  pending: null,
  attributedAt: null,
  ...o,
});

const record = (o: Partial<DefragRecord> = {}): DefragRecord => ({
  at: iso(T0 + 4_000),
  revision: 77,
  durationMs: 900,
  before: { dbSize: 31 * MiB, dbSizeInUse: 10 * MiB },
  after: { dbSize: 10 * MiB, dbSizeInUse: 10 * MiB },
  trigger: 'manual',
  by: 'ops1:4242',
  ...o,
});

const obs = (o: Partial<CountObservation> = {}): CountObservation => ({
  memberId: '5213b109e7acd4a8',
  name: 'm2',
  endpoint: 'http://127.0.0.1:2379',
  previous: base(),
  count: 3,
  atMs: T0 + 5_000,
  sizes: AFTER,
  record: null,
  ownRun: false,
  ...o,
});

const decide = (o: Partial<CountObservation>, graceMs = 5_000) => decideExternal(obs(o), { ourBy: OURS, graceMs });

describe('decideExternal: nothing to record', () => {
  it.each<[string, Partial<CountObservation>, Partial<DefragBaseline> | null]>([
    ['first observation: a baseline', { previous: null, count: 5 }, { count: 5, atMs: T0 + 5_000, sizes: AFTER, pending: null }],
    ['count unchanged: the window moves on', { count: 3 }, { count: 3, atMs: T0 + 5_000, sizes: AFTER }],
    ['count went down (member restarted): a new baseline', { count: 0 }, { count: 0, atMs: T0 + 5_000 }],
    [
      'count went up by our own run',
      { count: 4, ownRun: true, record: record({ by: OURS, trigger: 'auto' }) },
      { count: 4, atMs: T0 + 5_000, attributedAt: null },
    ],
    ['our own run, even with two defrags in the window', { count: 5, ownRun: true }, { count: 5 }],
    ['count unreadable: the old baseline is kept', { count: null }, base()],
  ])('%s', (_, o, baseline) => {
    const d = decide(o);
    expect(d.entries).toEqual([]);
    expect(d.waiting).toBe(false);
    expect(d.baseline).toMatchObject(baseline ?? {});
  });

  it('unreadable before anything was read: nothing known', () => {
    expect(decide({ previous: null, count: null })).toEqual({ entries: [], baseline: null, waiting: false });
  });
});

describe('decideExternal: a rise', () => {
  it('explained by another defragd record inside the window: recorded as theirs with its details', () => {
    const d = decide({ count: 4, record: record() });
    expect(d.waiting).toBe(false);
    expect(d.entries).toHaveLength(1);
    expect(d.entries[0]).toMatchObject({
      kind: 'defragd',
      by: 'ops1:4242',
      trigger: 'manual',
      startedAt: iso(T0 + 4_000 - 900),
      finishedAt: iso(T0 + 4_000),
      window: { from: iso(T0), to: iso(T0 + 5_000) },
      countBefore: 3,
      countAfter: 4,
      before: { dbSize: 31 * MiB, dbSizeInUse: 10 * MiB },
      after: { dbSize: 10 * MiB, dbSizeInUse: 10 * MiB },
      durationMs: 900,
      revision: 77,
    });
    expect(d.entries[0]?.message).toMatch(/another defragd \(ops1:4242, trigger manual\) defragmented m2 \(5213b109e7acd4a8\)/);
    expect(d.entries[0]?.message).toContain('etcd_disk_backend_defrag_duration_seconds_count on http://127.0.0.1:2379 went from 3 to 4');
    expect(d.baseline).toEqual({ count: 4, atMs: T0 + 5_000, sizes: AFTER, pending: null, attributedAt: iso(T0 + 4_000) });
  });

  it('a record without sizes or duration: the observed sizes, the record time as both start and end', () => {
    const d = decide({ count: 4, record: record({ before: null, after: null, durationMs: null, revision: null }) });
    expect(d.entries[0]).toMatchObject({
      kind: 'defragd',
      before: BEFORE,
      after: AFTER,
      startedAt: iso(T0 + 4_000),
      finishedAt: iso(T0 + 4_000),
      durationMs: null,
      revision: null,
    });
  });

  it.each<[string, Partial<CountObservation>]>([
    ['no record', { record: null }],
    ['a record older than the previous observation', { record: record({ at: iso(T0 - 1) }) }],
    ['a record at exactly the previous observation', { record: record({ at: iso(T0) }) }],
    ['a record of our own', { record: record({ by: OURS }) }],
    ['a record already recorded as theirs', { record: record(), previous: base({ attributedAt: iso(T0 + 4_000) }) }],
  ])('not explained (%s): waits for a record first, then records it as unknown with the window and observed sizes', (_, o) => {
    const first = decide({ count: 4, ...o });
    expect(first.entries).toEqual([]);
    expect(first.waiting).toBe(true);
    expect(first.baseline).toMatchObject({ count: 3, atMs: T0, pending: { sinceMs: T0 + 5_000, count: 4, sizes: AFTER } });

    // Within the grace: still waiting, the rise as first seen is kept.
    const again = decide({
      ...o,
      count: 4,
      previous: first.baseline,
      atMs: T0 + 8_000,
      sizes: { dbSize: 12 * MiB, dbSizeInUse: 11 * MiB },
    });
    expect(again).toMatchObject({ entries: [], waiting: true, baseline: first.baseline });

    const late = decide({
      ...o,
      count: 4,
      previous: again.baseline,
      atMs: T0 + 10_000,
      sizes: { dbSize: 12 * MiB, dbSizeInUse: 11 * MiB },
    });
    expect(late.waiting).toBe(false);
    expect(late.entries).toHaveLength(1);
    expect(late.entries[0]).toMatchObject({
      kind: 'unknown',
      by: UNKNOWN_BY,
      trigger: null,
      startedAt: iso(T0),
      finishedAt: iso(T0 + 5_000),
      window: { from: iso(T0), to: iso(T0 + 5_000) },
      before: BEFORE,
      after: AFTER,
      durationMs: null,
      revision: null,
    });
    expect(late.entries[0]?.message).toMatch(
      /m2 \(5213b109e7acd4a8\) was defragmented by something other than defragd \(etcdctl defrag or another tool\) between/,
    );
    expect(late.entries[0]?.message).toContain('no defragd record explains it');
    expect(late.baseline).toMatchObject({ count: 4, atMs: T0 + 10_000, pending: null });
  });

  it('a record that comes during the grace explains the rise', () => {
    const first = decide({ count: 4 });
    const then = decide({ count: 4, previous: first.baseline, atMs: T0 + 6_000, record: record({ at: iso(T0 + 5_500) }) });
    expect(then.entries.map((e) => [e.kind, e.by, e.finishedAt])).toEqual([['defragd', 'ops1:4242', iso(T0 + 5_500)]]);
    expect(then.entries[0]?.window).toEqual({ from: iso(T0), to: iso(T0 + 5_000) });
  });

  it('without grace the rise is recorded at the next observation, not at the first', () => {
    const first = decide({ count: 4 }, 0);
    expect(first.waiting).toBe(true);
    expect(decide({ count: 4, previous: first.baseline, atMs: T0 + 6_000 }, 0).entries).toHaveLength(1);
  });

  it('a count that rose again while waiting: the window ends at this observation', () => {
    const first = decide({ count: 4 });
    const d = decide({ count: 5, previous: first.baseline, atMs: T0 + 11_000 });
    expect(d.entries.map((e) => [e.kind, e.window.to])).toEqual([
      ['unknown', iso(T0 + 11_000)],
      ['unknown', iso(T0 + 11_000)],
    ]);
  });

  it('two defrags in one window, one of them by another defragd: one theirs, one unknown', () => {
    const d = decide({ count: 5, record: record() });
    expect(d.entries.map((e) => [e.kind, e.by])).toEqual([
      ['defragd', 'ops1:4242'],
      ['unknown', UNKNOWN_BY],
    ]);
  });

  it('records that could not be read are said so in the message', () => {
    const first = decide({ count: 4, recordError: 'permission denied' });
    const d = decide({ count: 4, previous: first.baseline, atMs: T0 + 20_000, recordError: 'permission denied' });
    expect(d.entries[0]?.message).toContain('the records could not be read (permission denied)');
  });

  it('an unreadable count while waiting keeps waiting', () => {
    const first = decide({ count: 4 });
    expect(decide({ count: null, previous: first.baseline, atMs: T0 + 20_000 })).toEqual({
      entries: [],
      baseline: first.baseline,
      waiting: true,
    });
  });

  it('a record recorded once is never recorded again, and a late record is remembered as seen', () => {
    const d = decide({ count: 4, record: record() });
    const next = decide({ count: 5, previous: d.baseline, atMs: T0 + 30_000, record: record() });
    expect(next.waiting).toBe(true);
    // A record arriving after its rise was recorded as unknown never explains a later rise.
    const late = decide({ count: 3, previous: base(), atMs: T0 + 6_000, record: record({ at: iso(T0 + 5_500) }) });
    expect(late.baseline?.attributedAt).toBe(iso(T0 + 5_500));
    expect(decide({ count: 4, previous: late.baseline, atMs: T0 + 9_000, record: record({ at: iso(T0 + 5_500) }) }).waiting).toBe(true);
  });
});

describe('countRose', () => {
  it.each<[DefragBaseline | null, number | null, boolean]>([
    [null, 4, false],
    [base(), null, false],
    [base(), 3, false],
    [base(), 2, false],
    [base(), 4, true],
  ])('%j → %s: %s', (prev, count, want) => expect(countRose(prev, count)).toBe(want));
});

describe('ownRunTouched', () => {
  const result = (memberId: string, action: MemberResult['action']): MemberResult => ({
    endpoint: 'e',
    memberId,
    name: memberId,
    action,
    reason: '',
    wasLeader: false,
    movedLeaderTo: null,
    before: null,
    after: null,
    durationMs: null,
    revision: null,
    deadlinePassed: false,
    connectionLost: false,
  });
  const run = (
    o: Partial<StoredRun> = {},
    members: MemberResult[] | null = [result('a', 'defragmented'), result('b', 'skipped'), result('c', 'failed')],
  ) => ({
    run: {
      id: 1,
      cluster: 'c',
      trigger: 'auto',
      by: OURS,
      startedAt: iso(T0 + 1_000),
      finishedAt: iso(T0 + 3_000),
      outcome: 'success',
      message: null,
      dryRun: false,
      compactedRevision: null,
      disarmed: false,
      reclaimedBytes: 0,
      membersTotal: 3,
      membersDefragmented: 1,
      membersFailed: 1,
      durationMs: 2_000,
      ...o,
    } as StoredRun,
    report: members === null ? null : ({ members } as RunReport),
  });

  it.each<[string, ReturnType<typeof run>[], string, boolean]>([
    ['a member our run defragmented', [run()], 'a', true],
    ['a member our run skipped', [run()], 'b', false],
    ['a member whose defrag failed (it may have finished on the server)', [run()], 'c', true],
    ['a run finished before the window', [run({ finishedAt: iso(T0) })], 'a', false],
    ['a run still without a report', [run({ finishedAt: null, outcome: 'running' }, null)], 'b', true],
    ['a run of someone else', [run({ by: 'ops1:1' })], 'a', false],
    ['an external entry', [run({ trigger: 'external' })], 'a', false],
    ['a dry run', [run({ dryRun: true })], 'a', false],
    ['no runs', [], 'a', false],
  ])('%s', (_, runs, member, want) => expect(ownRunTouched(runs, OURS, member, T0)).toBe(want));
});

describe('externalMemberResult', () => {
  it('is a defragmented result with the entry figures and who did it', () => {
    const e = decide({ count: 4, record: record() }).entries[0]!;
    expect(externalMemberResult(e)).toEqual({
      endpoint: 'http://127.0.0.1:2379',
      memberId: '5213b109e7acd4a8',
      name: 'm2',
      action: 'defragmented',
      reason: 'by another defragd (ops1:4242, trigger manual)',
      wasLeader: false,
      movedLeaderTo: null,
      before: e.before,
      after: e.after,
      durationMs: 900,
      revision: 77,
      deadlinePassed: false,
      connectionLost: false,
    });
  });
});
