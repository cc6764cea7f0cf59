/** --check-config's pure parts: the next scheduled starts, in the cluster's time zone, with its offset. */
import { describe, expect, it } from 'vitest';
import { isoInZone, nextStarts } from './check.js';
import { parseWindow } from './window.js';

describe('isoInZone', () => {
  it.each([
    ['2026-11-29T02:00:00Z', 'Europe/Berlin', '2026-11-29T03:00:00+01:00'],
    ['2026-07-01T01:00:00Z', 'Europe/Berlin', '2026-07-01T03:00:00+02:00'],
    ['2026-07-01T01:00:00Z', 'America/New_York', '2026-06-30T21:00:00-04:00'],
    ['2026-07-01T01:00:00Z', 'Asia/Kolkata', '2026-07-01T06:30:00+05:30'],
    ['2026-07-01T01:00:00Z', 'UTC', '2026-07-01T01:00:00+00:00'],
  ])('%s in %s', (utc, tz, expected) => {
    expect(isoInZone(new Date(utc), tz)).toBe(expected);
  });
});

describe('nextStarts', () => {
  it("reads the cron expression in the cluster's time zone, across a DST change", () => {
    const starts = nextStarts(
      { cron: '0 3 * * *', jitterMs: 0 },
      { timezone: 'Europe/Berlin', windows: [] },
      3,
      new Date('2026-03-28T00:00:00Z'),
    );
    expect(starts).toEqual([
      { at: '2026-03-28T03:00:00+01:00', inWindow: true },
      { at: '2026-03-29T03:00:00+02:00', inWindow: true },
      { at: '2026-03-30T03:00:00+02:00', inWindow: true },
    ]);
  });

  it('marks the starts outside every window (they are skipped)', () => {
    const schedule = { cron: '0 3 * * *', jitterMs: 0 };
    // 2026-11-27 is a Friday.
    const starts = nextStarts(
      schedule,
      { timezone: 'UTC', windows: [parseWindow('Sat,Sun 02:00-04:00')] },
      3,
      new Date('2026-11-27T00:00:00Z'),
    );
    expect(starts.map((s) => [s.at, s.inWindow])).toEqual([
      ['2026-11-27T03:00:00+00:00', false],
      ['2026-11-28T03:00:00+00:00', true],
      ['2026-11-29T03:00:00+00:00', true],
    ]);
  });
});
