import { describe, expect, it } from 'vitest';
import { inWindow, nextWindowOpen, parseWindow, validateTimezone, windowEnd, type Window } from './window.js';

const at = (iso: string): number => Date.parse(iso);
const w = (...texts: string[]): Window[] => texts.map(parseWindow);
const MINUTE = 60_000;

describe('parseWindow', () => {
  it.each([
    ['Sat 01:00-05:00', [6], 60, 300],
    ['sat 01:00-05:00', [6], 60, 300],
    ['MON-fri 22:00-02:00', [1, 2, 3, 4, 5], 1320, 120],
    ['Sat,Sun 1:00-5:30', [0, 6], 60, 330],
    ['Mon-Wed, Fri 00:00-24:00', [1, 2, 3, 5], 0, 1440],
    ['Fri-Mon 23:00-01:00', [0, 1, 5, 6], 1380, 60],
    ['Sun-Sun 03:00-04:00', [0], 180, 240],
    ['01:00-05:00', [0, 1, 2, 3, 4, 5, 6], 60, 300],
    ['  Sat   01:00 - 05:00 ', [6], 60, 300],
  ])('%s', (text, days, startMinute, endMinute) => {
    const parsed = parseWindow(text);
    expect([...parsed.days].sort()).toEqual(days);
    expect(parsed).toMatchObject({ text, startMinute, endMinute });
  });

  it.each([
    ['', 'expected "[Mon-Fri] HH:MM-HH:MM"'],
    ['Sat', 'expected "[Mon-Fri] HH:MM-HH:MM"'],
    ['Sat 01:00', 'expected "[Mon-Fri] HH:MM-HH:MM"'],
    ['Sat 01:00-05:00 daily', 'expected "[Mon-Fri] HH:MM-HH:MM"'],
    ['Xyz 01:00-05:00', 'unknown day "Xyz"'],
    ['Saturday 01:00-05:00', 'unknown day "Saturday"'],
    ['Mon-Tue-Wed 01:00-05:00', 'bad day range "Mon-Tue-Wed"'],
    ['Mon, 01:00-05:00', 'unknown day ""'],
    ['Sat 25:00-05:00', '25:00 is not a time of day'],
    ['Sat 01:60-05:00', '01:60 is not a time of day'],
    ['Sat 24:00-05:00', '24:00 is not a time of day (00:00-23:59)'],
    ['Sat 01:00-24:01', '24:01 is not a time of day (00:00-23:59, or 24:00 as an end)'],
    ['Sat 03:00-03:00', 'starts and ends at 03:00'],
  ])('rejects %j: %s', (text, reason) => {
    expect(() => parseWindow(text)).toThrow(reason);
    try {
      parseWindow(text);
    } catch (e) {
      expect((e as Error).message).not.toContain('\n');
      expect((e as Error).message).toContain(`invalid window "${text}"`);
    }
  });
});

describe('validateTimezone', () => {
  it('accepts IANA names and refuses others in one line', () => {
    expect(() => validateTimezone('Europe/Berlin')).not.toThrow();
    expect(() => validateTimezone('UTC')).not.toThrow();
    expect(() => validateTimezone('Mars/Olympus')).toThrow('unknown time zone "Mars/Olympus"');
  });
});

describe('inWindow', () => {
  it('is always true without windows', () => {
    expect(inWindow([], 'Europe/Berlin', at('2026-11-25T12:00:00Z'))).toBe(true);
  });

  // 2026-11-28 is a Saturday.
  it.each([
    ['Sat 01:00-05:00', '2026-11-28T00:59:59.999Z', false],
    ['Sat 01:00-05:00', '2026-11-28T01:00:00Z', true],
    ['Sat 01:00-05:00', '2026-11-28T04:59:59.999Z', true],
    ['Sat 01:00-05:00', '2026-11-28T05:00:00Z', false],
    ['Sat 01:00-05:00', '2026-11-29T02:00:00Z', false],
    ['Sat 01:00-05:00', '2026-11-21T02:00:00Z', true],
    ['Sat 22:00-02:00', '2026-11-28T21:59:00Z', false],
    ['Sat 22:00-02:00', '2026-11-28T22:00:00Z', true],
    ['Sat 22:00-02:00', '2026-11-29T00:00:00Z', true],
    ['Sat 22:00-02:00', '2026-11-29T01:59:00Z', true],
    ['Sat 22:00-02:00', '2026-11-29T02:00:00Z', false],
    ['Sat 22:00-02:00', '2026-11-28T01:00:00Z', false], // Friday night's part: Friday is not a window day
    ['Sat 22:00-02:00', '2026-11-29T23:00:00Z', false],
    ['Sat 22:00-24:00', '2026-11-28T23:59:59Z', true],
    ['Sat 22:00-24:00', '2026-11-29T00:00:00Z', false],
    ['Fri-Mon 23:00-01:00', '2026-11-25T00:30:00Z', false], // Wednesday, Tuesday night
    ['Fri-Mon 23:00-01:00', '2026-11-24T00:30:00Z', true], // Tuesday, Monday night
    ['01:00-05:00', '2026-11-25T03:00:00Z', true],
  ])('%s at %s (UTC): %s', (text, iso, expected) => {
    expect(inWindow(w(text), 'UTC', at(iso))).toBe(expected);
  });

  it('reads the wall clock of the zone, not UTC', () => {
    // 01:30Z on Saturday is 02:30 in Berlin (CET) and 20:30 on Friday in New York.
    const t = at('2026-11-28T01:30:00Z');
    expect(inWindow(w('Sat 02:00-03:00'), 'Europe/Berlin', t)).toBe(true);
    expect(inWindow(w('Sat 02:00-03:00'), 'UTC', t)).toBe(false);
    expect(inWindow(w('Fri 20:00-21:00'), 'America/New_York', t)).toBe(true);
  });

  it('is open if any window is', () => {
    const ws = w('Sat 01:00-02:00', 'Sun 01:00-02:00');
    expect(inWindow(ws, 'UTC', at('2026-11-29T01:30:00Z'))).toBe(true);
    expect(inWindow(ws, 'UTC', at('2026-11-29T02:30:00Z'))).toBe(false);
  });

  describe('Europe/Berlin, spring forward (2026-03-29 02:00 CET → 03:00 CEST, at 01:00Z)', () => {
    it('a window over the gap lasts an hour less', () => {
      const ws = w('Sun 01:00-05:00');
      expect(inWindow(ws, 'Europe/Berlin', at('2026-03-28T23:59:00Z'))).toBe(false);
      expect(nextWindowOpen(ws, 'Europe/Berlin', at('2026-03-28T12:00:00Z'))).toBe(at('2026-03-29T00:00:00Z')); // 01:00 CET
      expect(windowEnd(ws, 'Europe/Berlin', at('2026-03-29T00:00:00Z'))).toBe(at('2026-03-29T03:00:00Z')); // 05:00 CEST: 3 h
    });

    it('a window that starts in the gap opens at the jump', () => {
      const ws = w('Sun 02:30-04:00');
      expect(inWindow(ws, 'Europe/Berlin', at('2026-03-29T00:59:59Z'))).toBe(false); // 01:59:59 CET
      expect(inWindow(ws, 'Europe/Berlin', at('2026-03-29T01:00:00Z'))).toBe(true); // 03:00 CEST
      expect(nextWindowOpen(ws, 'Europe/Berlin', at('2026-03-28T12:00:00Z'))).toBe(at('2026-03-29T01:00:00Z'));
      expect(windowEnd(ws, 'Europe/Berlin', at('2026-03-29T01:00:00Z'))).toBe(at('2026-03-29T02:00:00Z')); // 04:00 CEST
    });

    it('a window wholly in the gap does not open that night, but the next Sunday', () => {
      const ws = w('Sun 02:00-02:30');
      expect(nextWindowOpen(ws, 'Europe/Berlin', at('2026-03-28T12:00:00Z'))).toBe(at('2026-04-05T00:00:00Z')); // 02:00 CEST
    });

    it('a window crossing midnight into the gap closes at the jump', () => {
      const ws = w('Sat 23:00-03:00');
      expect(nextWindowOpen(ws, 'Europe/Berlin', at('2026-03-28T12:00:00Z'))).toBe(at('2026-03-28T22:00:00Z')); // 23:00 CET
      expect(windowEnd(ws, 'Europe/Berlin', at('2026-03-28T22:30:00Z'))).toBe(at('2026-03-29T01:00:00Z')); // 03:00 CEST
    });
  });

  describe('Europe/Berlin, fall back (2026-10-25 03:00 CEST → 02:00 CET, at 01:00Z)', () => {
    it('a window over the repeated hour lasts an hour more', () => {
      const ws = w('Sun 01:00-05:00');
      expect(nextWindowOpen(ws, 'Europe/Berlin', at('2026-10-24T12:00:00Z'))).toBe(at('2026-10-24T23:00:00Z')); // 01:00 CEST
      expect(windowEnd(ws, 'Europe/Berlin', at('2026-10-24T23:00:00Z'))).toBe(at('2026-10-25T04:00:00Z')); // 05:00 CET: 5 h
    });

    it('a window inside the repeated hour opens twice', () => {
      const ws = w('Sun 02:00-02:30');
      const first = nextWindowOpen(ws, 'Europe/Berlin', at('2026-10-24T12:00:00Z'));
      expect(first).toBe(at('2026-10-25T00:00:00Z')); // 02:00 CEST
      const firstEnd = windowEnd(ws, 'Europe/Berlin', first ?? 0);
      expect(firstEnd).toBe(at('2026-10-25T00:30:00Z'));
      const second = nextWindowOpen(ws, 'Europe/Berlin', firstEnd ?? 0);
      expect(second).toBe(at('2026-10-25T01:00:00Z')); // 02:00 CET
      expect(windowEnd(ws, 'Europe/Berlin', second ?? 0)).toBe(at('2026-10-25T01:30:00Z'));
    });
  });

  describe('America/New_York', () => {
    it('spring forward (2026-03-08 02:00 EST → 03:00 EDT, at 07:00Z): a window starting in the gap opens at the jump', () => {
      const ws = w('Sun 02:15-04:00');
      expect(nextWindowOpen(ws, 'America/New_York', at('2026-03-07T12:00:00Z'))).toBe(at('2026-03-08T07:00:00Z'));
      expect(windowEnd(ws, 'America/New_York', at('2026-03-08T07:00:00Z'))).toBe(at('2026-03-08T08:00:00Z')); // 04:00 EDT
    });

    it('fall back (2026-11-01 02:00 EDT → 01:00 EST, at 06:00Z): the repeated hour stays open in one stretch', () => {
      const ws = w('Sun 01:00-02:00');
      expect(nextWindowOpen(ws, 'America/New_York', at('2026-10-31T12:00:00Z'))).toBe(at('2026-11-01T05:00:00Z')); // 01:00 EDT
      expect(windowEnd(ws, 'America/New_York', at('2026-11-01T05:00:00Z'))).toBe(at('2026-11-01T07:00:00Z')); // 02:00 EST: 2 h
    });
  });
});

describe('nextWindowOpen and windowEnd', () => {
  it('are the instant itself when already there', () => {
    const ws = w('Sat 01:00-05:00');
    expect(nextWindowOpen(ws, 'UTC', at('2026-11-28T02:00:00Z'))).toBe(at('2026-11-28T02:00:00Z'));
    expect(windowEnd(ws, 'UTC', at('2026-11-28T06:00:00Z'))).toBe(at('2026-11-28T06:00:00Z'));
  });

  it('without windows: open now, never closing', () => {
    expect(nextWindowOpen([], 'UTC', 123)).toBe(123);
    expect(windowEnd([], 'UTC', 123)).toBeNull();
  });

  it('finds the next week and the earliest of several windows', () => {
    const ws = w('Sat 01:00-05:00', 'Wed 13:00-14:00');
    expect(nextWindowOpen(ws, 'UTC', at('2026-11-25T12:59:30Z'))).toBe(at('2026-11-25T13:00:00Z'));
    expect(nextWindowOpen(ws, 'UTC', at('2026-11-28T05:00:00Z'))).toBe(at('2026-12-02T13:00:00Z'));
    expect(nextWindowOpen(w('Sat 01:00-05:00'), 'UTC', at('2026-11-28T05:00:00Z'))).toBe(at('2026-12-05T01:00:00Z'));
  });

  it('closes touching windows as one', () => {
    const ws = w('Sat 22:00-24:00', 'Sun 00:00-02:00');
    expect(windowEnd(ws, 'UTC', at('2026-11-28T23:00:00Z'))).toBe(at('2026-11-29T02:00:00Z'));
  });

  it('keeps sub-minute instants exact', () => {
    const ws = w('Sat 01:00-05:00');
    expect(nextWindowOpen(ws, 'UTC', at('2026-11-28T00:59:59.250Z'))).toBe(at('2026-11-28T01:00:00Z'));
    expect(windowEnd(ws, 'UTC', at('2026-11-28T04:59:59.250Z'))).toBe(at('2026-11-28T05:00:00Z'));
  });

  // Every zone's offset changes on a whole minute, so stepping minute by minute
  // finds the true first instant; the searches must agree with it everywhere
  // around a DST change, for windows placed before, across and after it.
  describe.each([
    ['Europe/Berlin', '2026-03-28T12:00:00Z'],
    ['Europe/Berlin', '2026-10-24T12:00:00Z'],
    ['America/New_York', '2026-03-07T18:00:00Z'],
    ['America/New_York', '2026-10-31T18:00:00Z'],
    ['Australia/Lord_Howe', '2026-04-04T06:00:00Z'], // a half-hour DST change
  ])('agree with a minute-by-minute search in %s from %s', (timezone, fromIso) => {
    it.each(['Sun 01:00-05:00', 'Sun 02:00-02:30', 'Sun 02:30-03:00', 'Sat 23:00-03:00', 'Sun 01:45-02:15', 'Sun 03:00-04:00'])(
      '%s',
      (text) => {
        const ws = w(text);
        const fromMs = at(fromIso);
        const horizonMs = 40 * 60 * MINUTE;
        const firstOpen = bruteForce(ws, timezone, fromMs, true, horizonMs);
        const found = nextWindowOpen(ws, timezone, fromMs);
        if (firstOpen === null) {
          // Wholly in the gap (Berlin and New York spring forward): next week's Sunday.
          expect(found).toBeGreaterThan(fromMs + 6 * 24 * 60 * MINUTE);
          expect(found).toBe(bruteForce(ws, timezone, fromMs + 6 * 24 * 60 * MINUTE, true, horizonMs));
          return;
        }
        expect(found).toBe(firstOpen);
        expect(windowEnd(ws, timezone, firstOpen)).toBe(bruteForce(ws, timezone, firstOpen, false, horizonMs));
      },
    );
  });
});

function bruteForce(ws: Window[], timezone: string, fromMs: number, open: boolean, horizonMs: number): number | null {
  for (let t = fromMs; t < fromMs + horizonMs; t += MINUTE) if (inWindow(ws, timezone, t) === open) return t;
  return null;
}
