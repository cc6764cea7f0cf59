import { describe, expect, it } from 'vitest';
import { aSnapshot, MiB } from '../../test/builders.js';
import { EtcdError } from '../domain/errors.js';
import type { MemberResult, RunReport, StepEvent } from '../domain/run.js';
import { memberStatuses } from './last.js';
import type { EtcdClient } from '../etcd/client.js';
import { parseRecord, recordWriter, recordKey, recordPrefix, recording, recordRange, recordSettings, recordValue } from './record.js';

const result = (over: Partial<MemberResult> = {}): MemberResult => ({
  endpoint: 'http://127.0.0.1:2379',
  memberId: '8e9e05c52164694d',
  name: 'm1',
  action: 'defragmented',
  reason: 'rule true',
  wasLeader: false,
  movedLeaderTo: null,
  before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB },
  after: { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB },
  durationMs: 1_234,
  revision: 4_711,
  deadlinePassed: false,
  connectionLost: false,
  ...over,
});

describe('the record of a defragmented member', () => {
  it('is at <prefix>/members/<hex id>/last-defrag and holds exactly the agreed fields', () => {
    expect(recordKey('/defragd', '8e9e05c52164694d')).toBe('/defragd/members/8e9e05c52164694d/last-defrag');
    const v = recordValue(result(), '2026-11-25T21:00:00.000Z', { trigger: 'manual', by: 'host:42' });
    expect(JSON.parse(JSON.stringify(v))).toEqual({
      at: '2026-11-25T21:00:00.000Z',
      revision: 4_711,
      durationMs: 1_234,
      before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB },
      after: { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB },
      trigger: 'manual',
      by: 'host:42',
    });
  });

  it('is not made for a member that was skipped or failed', () => {
    expect(recordValue(result({ action: 'skipped' }), 'x', { trigger: 'manual', by: 'h' })).toBeNull();
    expect(recordValue(result({ action: 'failed' }), 'x', { trigger: 'manual', by: 'h' })).toBeNull();
  });

  it('settings: default prefix /defragd, trigger api, by host:pid; bad values are usage errors', () => {
    const s = recordSettings();
    expect(s.prefix).toBe('/defragd');
    expect(s.trigger).toBe('api');
    expect(s.by).toMatch(new RegExp(`^.+:${process.pid}$`));
    expect(recordSettings({ prefix: '/ops/', trigger: 'schedule', by: 'cron' })).toEqual({
      prefix: '/ops',
      trigger: 'schedule',
      by: 'cron',
    });
    expect(() => recordSettings({ prefix: '' })).toThrow(expect.objectContaining({ kind: 'usage' }));
    expect(() => recordSettings({ trigger: 'whenever' as never })).toThrow(/unknown trigger "whenever"/);
    expect(() => recordPrefix('  ', '--record-prefix')).toThrow(/^--record-prefix: /);
  });

  it('the range covers every member record under the prefix and nothing of a longer prefix', () => {
    const { key, rangeEnd } = recordRange('/defragd');
    const inRange = (k: string) => Buffer.compare(Buffer.from(k), key) >= 0 && Buffer.compare(Buffer.from(k), rangeEnd) < 0;
    expect(inRange(recordKey('/defragd', 'ffffffffffffffff'))).toBe(true);
    expect(inRange('/defragd/lock')).toBe(false);
    expect(inRange('/defragd2/members/1/last-defrag')).toBe(false);
  });
});

describe('reading records back', () => {
  it('round-trips a record', () => {
    const v = recordValue(result(), '2026-11-25T21:00:00.000Z', { trigger: 'manual', by: 'h:1' });
    expect(parseRecord(JSON.stringify(v))).toEqual({ record: v });
  });

  it('a value that is not a record gives a warning, never an exception', () => {
    for (const text of ['', 'not json', '[1]', 'null', '{"at":"yesterday","trigger":"manual","by":"x"}', '{"at":"2026-11-25T21:00:00Z"}']) {
      const p = parseRecord(text);
      expect('warning' in p, text).toBe(true);
    }
  });

  it('per member: found (age, reclaimed), none (null), invalid (warning); current free space either way', () => {
    const snap = aSnapshot()
      .withMembers(3)
      .withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 200 * MiB })
      .build();
    const [m1, m2, m3] = snap.members.map((m) => m.memberId) as [string, string, string];
    const v = recordValue(result({ memberId: m1 }), '2026-11-25T18:00:00.000Z', { trigger: 'manual', by: 'h:1' });
    const records = new Map([
      [recordKey('/defragd', m1), Buffer.from(JSON.stringify(v))],
      [recordKey('/defragd', m3), Buffer.from('{oops')],
      [recordKey('/other', m2), Buffer.from(JSON.stringify(v))],
    ]);
    const rows = memberStatuses(snap, '/defragd', records, new Date('2026-11-25T21:12:30.000Z'));
    expect(rows[0]).toMatchObject({
      name: 'm1',
      record: 'found',
      lastDefrag: v,
      ageSeconds: 3 * 3_600 + 12 * 60 + 30,
      reclaimedBytes: 200 * MiB,
      dbSizeFree: 100 * MiB,
      warning: null,
      error: null,
    });
    expect(rows[1]).toMatchObject({ name: 'm2', record: 'none', lastDefrag: null, ageSeconds: null, reclaimedBytes: null, warning: null });
    expect(rows[2]).toMatchObject({ name: 'm3', record: 'invalid', lastDefrag: null, reclaimedBytes: null });
    expect(rows[2]!.warning).toMatch(/last-defrag: not valid JSON/);
    const unreadable = memberStatuses(snap, '/defragd', { error: 'could not read the records: permission denied' }, new Date());
    expect(unreadable.map((r) => [r.record, r.error])).toEqual(
      Array(3).fill(['unreadable', 'could not read the records: permission denied']),
    );
  });
});

describe('recording(): records as a listener on the run', () => {
  const report = (): RunReport => ({
    outcome: 'success',
    dryRun: false,
    message: null,
    startedAt: 'a',
    finishedAt: 'b',
    compactedRevision: null,
    disarmed: true,
    disarmNote: null,
    reclaimedBytes: 0,
    members: [],
    warnings: ['from the plan'],
    plan: null,
  });

  async function* run(results: MemberResult[]): AsyncGenerator<StepEvent, RunReport> {
    for (const r of results) yield { type: 'member-finished', result: r };
    yield { type: 'alarm-disarmed', alarms: [] };
    yield { type: 'run-finished', report: report() };
    return report();
  }

  /** The real writer over a fake client: puts refused with NOSPACE while `nospace`, or failing for member `broken`. */
  function fakeWriter(state: { nospace: boolean; broken?: string }, log: string[] = []) {
    const written: string[] = [];
    const client = {
      member: (ep: string) => ({
        put: async (key: string, value: string) => {
          const id = /members\/([^/]+)\//.exec(key)?.[1] ?? '?';
          log.push(`put ${id} via ${ep}`);
          if (id === state.broken) throw new EtcdError(ep, 'UNAVAILABLE', 'connection refused');
          if (state.nospace)
            throw new EtcdError(ep, 'RESOURCE_EXHAUSTED', 'etcdserver: mvcc: database space exceeded', { reason: 'nospace' });
          expect(JSON.parse(value)).toMatchObject({ trigger: 'manual', by: 'h:1' });
          written.push(id);
          return { revision: 1 };
        },
      }),
    } as unknown as EtcdClient;
    const snap = aSnapshot().withMembers(3).withLeader('m2').build();
    const writer = recordWriter(client, snap, { prefix: '/defragd', trigger: 'manual', by: 'h:1' }, () => new Date('2026-11-25T21:00:00Z'));
    return { writer, written, leader: snap.members[1]!.endpoint };
  }

  async function drain(events: AsyncGenerator<StepEvent, RunReport>) {
    const seen: StepEvent[] = [];
    for (;;) {
      const n = await events.next();
      if (n.done) return { seen, report: n.value };
      seen.push(n.value);
    }
  }

  it('writes each record right after its member-finished, before the next event is asked for; none for a skipped member', async () => {
    const log: string[] = [];
    const f = fakeWriter({ nospace: false }, log);
    async function* logged(): AsyncGenerator<StepEvent, RunReport> {
      const inner = run([result({ memberId: 'a1' }), result({ memberId: 'a2', action: 'skipped' }), result({ memberId: 'a3' })]);
      for (;;) {
        const n = await inner.next();
        if (n.done) return n.value;
        log.push(n.value.type);
        yield n.value;
      }
    }
    const { seen, report: r } = await drain(recording(logged(), f.writer));
    expect(f.written).toEqual(['a1', 'a3']);
    // Through the leader of the snapshot, and each before the executor is asked for its next step.
    expect(log).toEqual([
      'member-finished',
      `put a1 via ${f.leader}`,
      'member-finished',
      'member-finished',
      `put a3 via ${f.leader}`,
      'alarm-disarmed',
      'run-finished',
    ]);
    expect(seen.map((e) => e.type)).toEqual(['member-finished', 'member-finished', 'member-finished', 'alarm-disarmed', 'run-finished']);
    expect(r.warnings).toEqual(['from the plan']);
  });

  it('under NOSPACE the records wait until execution (disarm included) has finished, then are written', async () => {
    const state = { nospace: true };
    const f = fakeWriter(state);
    const events = recording(run([result({ memberId: 'a1' }), result({ memberId: 'a2' })]), f.writer);
    const seen: StepEvent[] = [];
    for (;;) {
      const n = await events.next();
      if (n.done) break;
      seen.push(n.value);
      if (n.value.type === 'alarm-disarmed') state.nospace = false;
    }
    expect(f.written).toEqual(['a1', 'a2']);
    expect(seen.filter((e) => e.type === 'warning')).toEqual([]);
  });

  it('still refused after the run: a warning event before run-finished and in the report; the run is not failed', async () => {
    const f = fakeWriter({ nospace: true });
    const { seen, report: r } = await drain(recording(run([result({ memberId: 'a1', name: 'm1' })]), f.writer));
    expect(f.written).toEqual([]);
    expect(seen.map((e) => e.type)).toEqual(['member-finished', 'alarm-disarmed', 'warning', 'run-finished']);
    const finished = seen.at(-1) as Extract<StepEvent, { type: 'run-finished' }>;
    expect(finished.report.outcome).toBe('success');
    expect(finished.report.warnings).toEqual([
      'from the plan',
      'm1: could not record its defragmentation at /defragd/members/a1/last-defrag: etcdserver: mvcc: database space exceeded',
    ]);
    expect(r.warnings).toEqual(finished.report.warnings);
  });

  it('another failure warns at once, right after the member, and is not retried', async () => {
    const log: string[] = [];
    const f = fakeWriter({ nospace: false, broken: 'a1' }, log);
    const { seen, report: r } = await drain(recording(run([result({ memberId: 'a1', name: 'm1' }), result({ memberId: 'a2' })]), f.writer));
    expect(seen.map((e) => e.type)).toEqual(['member-finished', 'warning', 'member-finished', 'alarm-disarmed', 'run-finished']);
    expect(f.written).toEqual(['a2']);
    // A member that does not answer: the next one is tried (3 members), then it is given up, not retried at the end.
    expect(log.filter((l) => l.startsWith('put a1'))).toHaveLength(3);
    expect(r.outcome).toBe('success');
    expect(r.warnings).toEqual([
      'from the plan',
      'm1: could not record its defragmentation at /defragd/members/a1/last-defrag: connection refused',
    ]);
  });
});
