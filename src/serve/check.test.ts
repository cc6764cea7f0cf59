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
    const { starts, end } = nextStarts(
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
    expect(end).toBeNull();
  });

  it('lists the next starts that run, and between them the skipped ones (outside every window) as rows', () => {
    // 2026-11-27 is a Friday.
    const { starts, end } = nextStarts(
      { cron: '0 3 * * *', jitterMs: 0 },
      { timezone: 'UTC', windows: [parseWindow('Sat,Sun 02:00-04:00')] },
      3,
      new Date('2026-11-27T00:00:00Z'),
    );
    expect(starts).toEqual([
      { at: '2026-11-27T03:00:00+00:00', inWindow: false, last: '2026-11-27T03:00:00+00:00' },
      { at: '2026-11-28T03:00:00+00:00', inWindow: true },
      { at: '2026-11-29T03:00:00+00:00', inWindow: true },
      { at: '2026-11-30T03:00:00+00:00', inWindow: false, last: '2026-12-04T03:00:00+00:00' },
      { at: '2026-12-05T03:00:00+00:00', inWindow: true },
    ]);
    expect(end).toBeNull();
  });

  it('folds thousands of skipped starts into one row, quickly (an every-minute schedule, one short window a week)', () => {
    const t0 = Date.now();
    const { starts } = nextStarts(
      { cron: '* * * * *', jitterMs: 0 },
      { timezone: 'Europe/Berlin', windows: [parseWindow('Sat 01:00-01:05')] },
      5,
      new Date('2026-11-25T12:00:30Z'),
    );
    expect(starts).toEqual([
      { at: '2026-11-25T13:01:00+01:00', inWindow: false, last: '2026-11-28T00:59:00+01:00' },
      { at: '2026-11-28T01:00:00+01:00', inWindow: true },
      { at: '2026-11-28T01:01:00+01:00', inWindow: true },
      { at: '2026-11-28T01:02:00+01:00', inWindow: true },
      { at: '2026-11-28T01:03:00+01:00', inWindow: true },
      { at: '2026-11-28T01:04:00+01:00', inWindow: true },
    ]);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('says so, in a bounded search, when no start falls inside the windows', () => {
    const { starts, end } = nextStarts(
      { cron: '0 3 * * *', jitterMs: 0 },
      { timezone: 'UTC', windows: [parseWindow('Sat 01:00-02:00')] },
      5,
      new Date('2026-11-27T00:00:00Z'),
    );
    expect(starts).toEqual([
      { at: '2026-11-27T03:00:00+00:00', inWindow: false, last: expect.stringMatching(/^2030-11-2\dT03:00:00\+00:00$/) },
    ]);
    expect(end).toBe('no start falls inside the windows within 4 years');
  });
});
