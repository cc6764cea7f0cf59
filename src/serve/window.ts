/**
 * Maintenance windows (`windows: ["Sat 01:00-05:00", "Mon-Fri 22:00-06:00"]`):
 * when a scheduled or automatic run may start. Pure: the grammar, and whether
 * a wall-clock time in the cluster's time zone falls inside.
 *
 * Grammar: `[DAYS ]HH:MM-HH:MM`.
 * - DAYS: comma-separated days or day ranges, `Mon`..`Sun` (any case; also
 *   the full names): `Sat`, `Sat,Sun`, `Mon-Fri`, `Fri-Mon` (wraps the week).
 *   Absent: every day.
 * - HH:MM: 00:00 to 23:59; the end may also be 24:00.
 * - An end at or before the start crosses midnight: `Fri 22:00-06:00` runs
 *   from Friday 22:00 to Saturday 06:00. The DAYS are the days a window
 *   starts on. A start equal to the end is refused (empty, or a whole day?
 *   write `00:00-24:00` for a whole day).
 * - The start is inside, the end is not.
 */
import { UsageError } from '../domain/errors.js';

/** 0 = Sunday … 6 = Saturday, as Date#getDay and cron. */
export type Weekday = 0 | 1 | 2 | 3 | 4 | 5 | 6;

export interface Window {
  /** As written in the config. */
  readonly text: string;
  /** The days the window starts on, sorted, without duplicates. */
  readonly days: readonly Weekday[];
  /** Minutes after midnight, 0..1439. */
  readonly startMinute: number;
  /** Minutes after midnight, 1..1440; at or before startMinute: the window ends the next day. */
  readonly endMinute: number;
}

const DAY_NAMES: readonly (readonly string[])[] = [
  ['sun', 'sunday'],
  ['mon', 'monday'],
  ['tue', 'tuesday'],
  ['wed', 'wednesday'],
  ['thu', 'thursday'],
  ['fri', 'friday'],
  ['sat', 'saturday'],
];

const MINUTES_PER_DAY = 1_440;
const GRAMMAR = 'expected [DAYS ]HH:MM-HH:MM, e.g. "Sat 01:00-05:00" or "Mon-Fri 22:00-06:00"';

function day(name: string, text: string): Weekday {
  const i = DAY_NAMES.findIndex((names) => names.includes(name.toLowerCase()));
  if (i < 0) throw new UsageError(`invalid window "${text}": unknown day "${name}" (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
  return i as Weekday;
}

function minuteOf(hhmm: string, text: string, isEnd: boolean): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  const h = Number(m?.[1]);
  const min = Number(m?.[2]);
  const ok = m !== null && min < 60 && (h < 24 || (isEnd && h === 24 && min === 0));
  if (!ok) throw new UsageError(`invalid window "${text}": invalid time "${hhmm}" (00:00 to 23:59${isEnd ? ', or 24:00' : ''})`);
  return h * 60 + min;
}

/**
 * Parses one window; UsageError (without a path: the caller adds it) when it does not fit the grammar.
 *
 * @example parseWindow('Mon-Fri 22:00-06:00') // { text, days: [1,2,3,4,5], startMinute: 1320, endMinute: 360 }
 */
export function parseWindow(text: string): Window {
  const m = /^\s*(?:(\S+)\s+)?(\S+)-(\S+)\s*$/.exec(text);
  if (!m) throw new UsageError(`invalid window "${text}": ${GRAMMAR}`);
  const [, daysText, startText, endText] = m as unknown as [string, string | undefined, string, string];
  if (!/^\d/.test(startText)) throw new UsageError(`invalid window "${text}": ${GRAMMAR}`);
  const days = new Set<Weekday>();
  if (daysText === undefined) for (let d = 0; d < 7; d++) days.add(d as Weekday);
  else {
    for (const part of daysText.split(',')) {
      const [from, to, more] = part.split('-');
      if (from === undefined || from === '' || more !== undefined || to === '') throw new UsageError(`invalid window "${text}": invalid days "${daysText}" (e.g. Sat, Sat,Sun or Mon-Fri)`);
      const first = day(from, text);
      const last = to === undefined ? first : day(to, text);
      // Fri-Mon wraps over the weekend.
      for (let d = first; ; d = ((d + 1) % 7) as Weekday) {
        days.add(d);
        if (d === last) break;
      }
    }
  }
  const startMinute = minuteOf(startText, text, false);
  const endMinute = minuteOf(endText, text, true);
  if (startMinute === endMinute % MINUTES_PER_DAY && !(startMinute === 0 && endMinute === MINUTES_PER_DAY)) {
    throw new UsageError(`invalid window "${text}": the start equals the end (for a whole day write 00:00-24:00)`);
  }
  return Object.freeze({ text, days: Object.freeze([...days].sort((a, b) => a - b)), startMinute, endMinute });
}

/**
 * Whether a wall-clock time (a weekday and minutes after midnight, in the
 * cluster's time zone) is inside the window.
 *
 * @example windowContains(parseWindow('Fri 22:00-06:00'), 6, 5 * 60) // true: Saturday 05:00
 */
export function windowContains(w: Window, weekday: Weekday, minute: number): boolean {
  if (w.endMinute > w.startMinute) return w.days.includes(weekday) && minute >= w.startMinute && minute < w.endMinute;
  const yesterday = ((weekday + 6) % 7) as Weekday;
  return (w.days.includes(weekday) && minute >= w.startMinute) || (w.days.includes(yesterday) && minute < w.endMinute);
}

/** The weekday and minute after midnight of an instant in an IANA time zone. */
export function wallClock(at: Date, timezone: string): { weekday: Weekday; minute: number } {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return { weekday: day(get('weekday'), get('weekday')), minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

/**
 * Whether an instant is inside any of the windows, in the given time zone.
 * No windows: always (a cluster without windows may start at any time).
 *
 * @example inWindows([parseWindow('Sat 01:00-05:00')], new Date('2026-11-28T02:00:00Z'), 'UTC') // true
 */
export function inWindows(windows: readonly Window[], at: Date, timezone: string): boolean {
  if (windows.length === 0) return true;
  const { weekday, minute } = wallClock(at, timezone);
  return windows.some((w) => windowContains(w, weekday, minute));
}
