/** Maintenance windows: the grammar, and which wall-clock times are inside. */
import { describe, expect, it } from 'vitest';
import { inWindows, parseWindow, wallClock, windowContains, type Weekday } from './window.js';

const at = (hh: number, mm = 0) => hh * 60 + mm;

describe('parseWindow', () => {
  it.each([
    ['Sat 01:00-05:00', [6], at(1), at(5)],
    ['sat 01:00-05:00', [6], at(1), at(5)],
    ['SATURDAY 01:00-05:00', [6], at(1), at(5)],
    ['Mon-Fri 22:00-06:00', [1, 2, 3, 4, 5], at(22), at(6)],
    ['Fri-Mon 00:00-24:00', [0, 1, 5, 6], 0, 1_440],
    ['Sat,Sun 23:30-00:30', [0, 6], at(23, 30), at(0, 30)],
    ['Mon,Wed-Thu 12:00-13:00', [1, 3, 4], at(12), at(13)],
    ['02:00-04:00', [0, 1, 2, 3, 4, 5, 6], at(2), at(4)],
  ])('%s', (text, days, startMinute, endMinute) => {
    expect(parseWindow(text)).toEqual({ text, days, startMinute, endMinute });
  });

  it.each([
    ['Sat', 'invalid window "Sat": expected [DAYS ]HH:MM-HH:MM, e.g. "Sat 01:00-05:00" or "Mon-Fri 22:00-06:00"'],
    ['Sat 1:00-05:00', 'invalid window "Sat 1:00-05:00": invalid time "1:00" (00:00 to 23:59)'],
    ['Sat 24:00-05:00', 'invalid window "Sat 24:00-05:00": invalid time "24:00" (00:00 to 23:59)'],
    ['Sat 01:00-24:30', 'invalid window "Sat 01:00-24:30": invalid time "24:30" (00:00 to 23:59, or 24:00)'],
    ['Sat 01:60-02:00', 'invalid window "Sat 01:60-02:00": invalid time "01:60" (00:00 to 23:59)'],
    ['Sab 01:00-05:00', 'invalid window "Sab 01:00-05:00": unknown day "Sab" (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)'],
    ['Mon--Fri 01:00-05:00', 'invalid window "Mon--Fri 01:00-05:00": invalid days "Mon--Fri" (e.g. Sat, Sat,Sun or Mon-Fri)'],
    ['Sat 03:00-03:00', 'invalid window "Sat 03:00-03:00": the start equals the end (for a whole day write 00:00-24:00)'],
    ['Sat 00:00-00:00', 'invalid window "Sat 00:00-00:00": the start equals the end (for a whole day write 00:00-24:00)'],
  ])('refuses %s', (text, message) => {
    expect(() => parseWindow(text)).toThrow(message);
  });
});

describe('windowContains', () => {
  const night = parseWindow('Fri 22:00-06:00');
  it.each<[string, Weekday, number, boolean]>([
    ['Friday 21:59: before', 5, at(21, 59), false],
    ['Friday 22:00: the start is inside', 5, at(22), true],
    ['Saturday 05:59: after midnight, still inside', 6, at(5, 59), true],
    ['Saturday 06:00: the end is not inside', 6, at(6), false],
    ['Saturday 22:00: the window starts on Fridays only', 6, at(22), false],
    ['Friday 05:00: belongs to Thursday night, not listed', 5, at(5), false],
  ])('%s', (_name, weekday, minute, inside) => {
    expect(windowContains(night, weekday, minute)).toBe(inside);
  });

  it('a same-day window holds from its start to before its end, on its days only', () => {
    const w = parseWindow('Sat 01:00-05:00');
    expect([windowContains(w, 6, at(1)), windowContains(w, 6, at(4, 59)), windowContains(w, 6, at(5)), windowContains(w, 0, at(2))]).toEqual([true, true, false, false]);
  });
});

describe('inWindows', () => {
  it('reads the instant in the given time zone', () => {
    const w = [parseWindow('Sat 01:00-05:00')];
    // 2026-11-28 is a Saturday; 00:30 UTC is 01:30 in Berlin (CET, UTC+1).
    const t = new Date('2026-11-28T00:30:00Z');
    expect(wallClock(t, 'Europe/Berlin')).toEqual({ weekday: 6, minute: at(1, 30) });
    expect([inWindows(w, t, 'UTC'), inWindows(w, t, 'Europe/Berlin')]).toEqual([false, true]);
  });

  it('no windows: always inside', () => {
    expect(inWindows([], new Date('2026-11-25T12:00:00Z'), 'UTC')).toBe(true);
  });
});
