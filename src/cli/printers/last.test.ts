import { describe, expect, it } from 'vitest';
import { aSnapshot, MiB } from '../../../test/builders.js';
import { memberStatuses } from '../../app/last.js';
import { recordKey, recordValue } from '../../app/record.js';
import type { MemberResult } from '../../domain/run.js';
import { formatAge } from '../format.js';
import { LAST_HEAD, lastRows, printLast } from './last.js';

const snap = aSnapshot()
  .withMembers(3)
  .withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 200 * MiB })
  .unreachable('m3')
  .build();
const [id1, id2] = snap.members.map((m) => m.memberId) as [string, string];
const defragmented = {
  action: 'defragmented',
  revision: 4_711,
  durationMs: 900,
  before: { dbSize: 500 * MiB, dbSizeInUse: 180 * MiB },
  after: { dbSize: 180 * MiB, dbSizeInUse: 180 * MiB },
} as MemberResult;
const record = recordValue(defragmented, '2026-11-25T18:00:00.123Z', { trigger: 'manual', by: 'ops1:4242' });
const members = memberStatuses(
  snap,
  '/defragd',
  new Map([
    [recordKey('/defragd', id1), Buffer.from(JSON.stringify(record))],
    [recordKey('/defragd', id2), Buffer.from('garbage')],
  ]),
  new Date('2026-11-25T21:12:00.500Z'),
);

describe('`defragd last` printers', () => {
  it('table: when, how long ago, the revision and what it reclaimed then, who; what is free now', () => {
    const rows = lastRows(members);
    for (const r of rows) expect(r).toHaveLength(LAST_HEAD.length);
    const col = (row: string[], name: string) => row[LAST_HEAD.indexOf(name)];
    const [m1, m2, m3] = rows as [string[], string[], string[]];
    expect(col(m1, 'LAST DEFRAG')).toBe('2026-11-25T18:00:00Z');
    expect(col(m1, 'AGE')).toBe('3h12m ago');
    expect(col(m1, 'REVISION')).toBe('4711');
    expect(col(m1, 'RECLAIMED')).toBe('320.0 MiB');
    expect(col(m1, 'TRIGGER')).toBe('manual');
    expect(col(m1, 'BY')).toBe('ops1:4242');
    expect(col(m1, 'FREE NOW')).toBe('100.0 MiB');
    expect(col(m1, 'FRAG NOW')).toBe('33.3%');
    expect(col(m2, 'LAST DEFRAG')).toBe('unknown (bad record)');
    expect(col(m2, 'AGE')).toBe('-');
    expect(col(m3, 'LAST DEFRAG')).toBe('never (no record)');
    expect(col(m3, 'FREE NOW')).toBe('-');
    expect(printLast(members, 'table')).toContain('3h12m ago');
  });

  it('JSON: the library objects, stable field names, memberId in hex, lastDefrag null when unknown', () => {
    const out = JSON.parse(printLast(members, 'json')) as Record<string, unknown>[];
    expect(out).toEqual(JSON.parse(JSON.stringify(members)));
    expect(Object.keys(out[0]!)).toEqual([
      'endpoint',
      'memberId',
      'name',
      'lastDefrag',
      'record',
      'ageSeconds',
      'reclaimedBytes',
      'version',
      'dbSize',
      'dbSizeInUse',
      'dbSizeFree',
      'fragmentation',
      'warning',
      'error',
    ]);
    expect(out[0]).toMatchObject({
      memberId: id1,
      ageSeconds: 3 * 3_600 + 12 * 60,
      reclaimedBytes: 320 * MiB,
      lastDefrag: { revision: 4_711, trigger: 'manual' },
    });
    expect(out[1]).toMatchObject({ lastDefrag: null, record: 'invalid' });
    expect(out[2]).toMatchObject({ lastDefrag: null, record: 'none', dbSizeFree: null });
    expect(out[2]!['error']).not.toBeNull();
  });

  it('ages read as an operator says them', () => {
    expect([0, 59, 60, 3_599, 3_600, 11_520, 86_399, 86_400, 190_800].map(formatAge)).toEqual([
      '0s ago',
      '59s ago',
      '1m ago',
      '59m ago',
      '1h0m ago',
      '3h12m ago',
      '23h59m ago',
      '1d0h ago',
      '2d5h ago',
    ]);
    expect(formatAge(null)).toBe('-');
  });
});
