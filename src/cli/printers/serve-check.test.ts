/** --check-config's rows: the starts that run, the skipped ones between them as rows, and why fewer are listed. */
import { describe, expect, it } from 'vitest';
import type { ClusterCheck } from '../../serve/check.js';
import { checkRows } from './serve-check.js';

const aCheck = (overrides: Partial<ClusterCheck>): ClusterCheck => ({
  name: 'prod',
  endpoints: ['10.0.0.1:2379'],
  membersTotal: 3,
  membersReachable: 3,
  reachable: ['m1', 'm2', 'm3'],
  unreachable: [],
  error: null,
  rule: null,
  schedule: '0 3 * * *',
  timezone: 'UTC',
  windows: ['Sat 02:00-04:00'],
  nextStarts: [],
  nextStartsEnd: null,
  auto: null,
  waitsFor: [],
  ...overrides,
});

describe('checkRows: the next scheduled starts', () => {
  it('lists the starts that run, a skipped one and a row of skipped ones between them', () => {
    const [row] = checkRows([
      aCheck({
        nextStarts: [
          { at: '2026-11-27T03:00:00+00:00', inWindow: false, last: '2026-11-27T03:00:00+00:00' },
          { at: '2026-11-28T03:00:00+00:00', inWindow: true },
          { at: '2026-11-29T03:00:00+00:00', inWindow: false, last: '2026-12-04T03:00:00+00:00' },
          { at: '2026-12-05T03:00:00+00:00', inWindow: true },
        ],
      }),
    ]);
    expect(row?.[4]?.split('\n')).toEqual([
      '0 3 * * * (UTC)',
      'skipped: 2026-11-27T03:00:00+00:00 (outside the windows)',
      '2026-11-28T03:00:00+00:00',
      'skipped: 2026-11-29T03:00:00+00:00 to 2026-12-04T03:00:00+00:00 (outside the windows)',
      '2026-12-05T03:00:00+00:00',
    ]);
  });

  it('ends with why fewer are listed', () => {
    const [row] = checkRows([
      aCheck({
        nextStarts: [{ at: '2026-11-27T03:00:00+00:00', inWindow: false, last: '2030-11-28T03:00:00+00:00' }],
        nextStartsEnd: 'no start falls inside the windows within 4 years',
      }),
    ]);
    expect(row?.[4]?.split('\n').slice(1)).toEqual([
      'skipped: 2026-11-27T03:00:00+00:00 to 2030-11-28T03:00:00+00:00 (outside the windows)',
      'no start falls inside the windows within 4 years',
    ]);
  });
});

describe('checkRows: waitForUrl', () => {
  it("lists each URL's answer under the members reached", () => {
    const [row] = checkRows([
      aCheck({
        waitsFor: [
          { url: 'https://10.0.0.1:6443/readyz', ready: true, detail: '200' },
          { url: 'https://10.0.0.2:6443/readyz', ready: false, detail: 'connection refused' },
        ],
      }),
    ]);
    expect(row?.[2]?.split('\n')).toEqual([
      '3/3: m1, m2, m3',
      'waits for https://10.0.0.1:6443/readyz: ready',
      'waits for https://10.0.0.2:6443/readyz: not ready (connection refused)',
    ]);
  });
});
