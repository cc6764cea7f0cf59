import { describe, expect, it } from 'vitest';
import { MiB } from '../domain/snapshot.js';
import { describeForecast, exceedsMaxDuration, forecastDefragMs, forecastOrigin, memberForecast } from './forecast.js';

describe('forecastDefragMs', () => {
  const at100MiBps = (inUseMiB: number) => ({ dbSizeInUse: inUseMiB * MiB, durationMs: inUseMiB * 10 });
  it.each<[string, { dbSizeInUse: number; durationMs: number }[], number, number | null]>([
    ['no history', [], 300 * MiB, null],
    ['one defrag: its throughput', [{ dbSizeInUse: 100 * MiB, durationMs: 1000 }], 300 * MiB, 3000],
    ['steady throughput', [at100MiBps(50), at100MiBps(200), at100MiBps(400)], 1000 * MiB, 10_000],
    [
      'the median ignores one slow defrag',
      [at100MiBps(100), { dbSizeInUse: 100 * MiB, durationMs: 60_000 }, at100MiBps(100)],
      100 * MiB,
      1000,
    ],
    [
      'even count: mean of the middle two',
      [
        { dbSizeInUse: 100, durationMs: 1 },
        { dbSizeInUse: 300, durationMs: 1 },
      ],
      200,
      1,
    ],
    [
      'only the last five count',
      [
        ...Array.from({ length: 5 }, () => ({ dbSizeInUse: 100, durationMs: 100 })),
        ...Array.from({ length: 5 }, () => ({ dbSizeInUse: 100, durationMs: 1 })),
      ],
      1000,
      10,
    ],
    [
      'unusable entries are left out',
      [
        { dbSizeInUse: 0, durationMs: 5 },
        { dbSizeInUse: 100, durationMs: 0 },
      ],
      100,
      null,
    ],
    ['nothing in use', [at100MiBps(100)], 0, 0],
  ])('%s', (_name, history, inUse, expected) => {
    expect(forecastDefragMs(history, inUse)).toBe(expected);
  });

  it('takes the number of samples', () => {
    const history = [
      { dbSizeInUse: 100, durationMs: 100 },
      { dbSizeInUse: 100, durationMs: 1 },
    ];
    expect(forecastDefragMs(history, 100, { samples: 1 })).toBe(1);
  });
});

describe('exceedsMaxDuration', () => {
  it.each([
    [31_000, 30_000, true],
    [30_000, 30_000, false],
    [1_000, 30_000, false],
    [null, 30_000, false],
    [31_000, null, false],
  ])('forecast %s, max %s: %s', (forecastMs, maxMs, expected) => {
    expect(exceedsMaxDuration(forecastMs, maxMs)).toBe(expected);
  });
});

describe('memberForecast', () => {
  const history = [
    { dbSizeInUse: 100 * MiB, durationMs: 10_000 },
    { dbSizeInUse: 100 * MiB, durationMs: 8_000 },
    { dbSizeInUse: 50 * MiB, durationMs: 2_000 },
  ];
  it('forecasts from the median throughput, saying how many defrags it is based on', () => {
    // 10, 12.5 and 25 MiB/s: the median is 12.5 MiB/s.
    expect(memberForecast(history, 250 * MiB)).toEqual({
      forecastMs: 20_000,
      forecastBasis: { source: 'history', defrags: 3, bytesPerSecond: Math.round(12.5 * MiB) },
    });
  });
  it.each<[string, Parameters<typeof memberForecast>[0], number | null, string]>([
    ['no history given at all', undefined, 100 * MiB, 'history-not-given'],
    ['the member sent no status', history, null, 'no-status'],
    ['none for this member', [], 100 * MiB, 'no-history'],
    ['none usable', [{ dbSizeInUse: 100, durationMs: 0 }], 100 * MiB, 'no-history'],
  ])('unknown: %s', (_name, h, inUse, why) => {
    expect(memberForecast(h, inUse)).toEqual({ forecastMs: null, forecastBasis: { source: 'none', why } });
  });
});

describe('describing a forecast', () => {
  it.each<[number | null, Parameters<typeof describeForecast>[1], string]>([
    [12_300, { source: 'history', defrags: 3, bytesPerSecond: 10 * MiB }, '~12.3s'],
    [95_000, { source: 'history', defrags: 3, bytesPerSecond: 10 * MiB }, '~1m35s'],
    [450, { source: 'history', defrags: 1, bytesPerSecond: 10 * MiB }, '~450ms'],
    [null, { source: 'none', why: 'no-history' }, 'unknown: no history'],
    [null, { source: 'none', why: 'no-status' }, 'unknown: no status'],
    [null, { source: 'none', why: 'history-not-given' }, 'unknown: no history given'],
  ])('%s → %s', (ms, basis, text) => {
    expect(describeForecast(ms, basis)).toBe(text);
  });

  it('says where it came from', () => {
    expect(forecastOrigin(812 * MiB, { source: 'history', defrags: 3, bytesPerSecond: 8.5 * MiB })).toBe(
      '812.0 MiB in use at 8.5 MiB/s, the median of its last 3 defrags',
    );
    expect(forecastOrigin(100 * MiB, { source: 'history', defrags: 1, bytesPerSecond: 50 * MiB })).toBe(
      '100.0 MiB in use at 50.0 MiB/s, its last defrag',
    );
  });
});
