/**
 * Maintenance windows (`windows: ["Sat 01:00-05:00", "Mon-Fri 22:00-02:00"]`):
 * the grammar, its parser, and the questions the scheduler asks of them (is
 * a window open at this instant, when does one open, when does it close).
 *
 * Windows are read in local wall-clock time of the cluster's timezone, as an
 * operator writes them; Intl converts each instant to that wall clock, so
 * daylight saving time is the zone's own. What that means on the two nights
 * a year the clock jumps (documented because it is what an operator sees):
 * - Spring forward: wall times in the gap do not exist. A window that starts
 *   in the gap opens at the jump (Europe/Berlin "Sun 02:30-04:00" opens at
 *   03:00 CEST); one that lies wholly in the gap does not open that night;
 *   "01:00-05:00" lasts 3 hours instead of 4.
 * - Fall back: the repeated hour is in the window both times it occurs, so
 *   "01:00-05:00" lasts 5 hours, and "Sun 02:00-02:30" opens twice that night.
 *
 * Pure: no clock (every function takes the instant in ms), no I/O.
 */
import { UsageError } from '../domain/errors.js';

/** Day of week as Date#getUTCDay numbers it: 0 = Sunday … 6 = Saturday. */
export type Weekday = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/** A parsed window: on each of `days`, from `startMinute` to `endMinute` local time. */
export interface Window {
  /** As written, for logs and the API. */
  text: string;
  /** The days the window opens on (a window crossing midnight closes the next day). */
  days: ReadonlySet<Weekday>;
  /** Minutes after local midnight, 0..1439. */
  startMinute: number;
  /**
   * Minutes after local midnight, 1..1440 (1440 = 24:00). Not above
   * `startMinute`: the window crosses midnight and closes on the next day.
   */
  endMinute: number;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const MINUTES_PER_DAY = 1440;
const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = MINUTES_PER_DAY * MS_PER_MINUTE;

// `[days ]HH:MM-HH:MM`; days: `Mon`, `Mon-Fri`, `Sat,Sun`, `Mon-Wed,Fri`.
const WINDOW_RE = /^\s*(?:([A-Za-z,\s-]+?)\s+)?(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$/;

/**
 * Parses a window. Days are Mon..Sun (case-insensitive), single or as ranges
 * (`Fri-Mon` wraps round the week), comma-separated; without days the
 * window opens every day. An end at or before the start crosses midnight
 * into the next day; `24:00` is allowed as an end.
 *
 * @throws Error with a one-line reason (the caller prefixes the config path).
 * @example parseWindow('Mon-Fri 22:00-02:00') // Monday 22:00 to Tuesday 02:00, ..., Friday 22:00 to Saturday 02:00
 */
export function parseWindow(text: string): Window {
  const m = WINDOW_RE.exec(text);
  if (!m) throw new Error(`invalid window "${text}": expected "[Mon-Fri] HH:MM-HH:MM", e.g. "Sat 01:00-05:00"`);
  const [, daysText, startText = '', endText = ''] = m;
  const days = daysText === undefined ? new Set<Weekday>([0, 1, 2, 3, 4, 5, 6]) : parseDays(text, daysText);
  const startMinute = parseTime(text, startText, false);
  const endMinute = parseTime(text, endText, true);
  if (startMinute === endMinute) {
    throw new Error(`invalid window "${text}": it starts and ends at ${startText}; write 00:00-24:00 for a whole day`);
  }
  return Object.freeze({ text, days: Object.freeze(days), startMinute, endMinute });
}

function parseDays(text: string, daysText: string): Set<Weekday> {
  const days = new Set<Weekday>();
  for (const part of daysText.split(',')) {
    const [from, to, ...rest] = part
      .trim()
      .split('-')
      .map((s) => s.trim());
    if (rest.length > 0 || from === undefined) throw new Error(`invalid window "${text}": bad day range "${part.trim()}"`);
    const a = dayNumber(text, from);
    const b = to === undefined ? a : dayNumber(text, to);
    // A range wraps round the week: Fri-Mon is Fri, Sat, Sun, Mon.
    for (let d = a; ; d = ((d + 1) % 7) as Weekday) {
      days.add(d);
      if (d === b) break;
    }
  }
  return days;
}

function dayNumber(text: string, name: string): Weekday {
  const i = DAY_NAMES.indexOf(name.toLowerCase() as (typeof DAY_NAMES)[number]);
  if (i < 0) throw new Error(`invalid window "${text}": unknown day "${name}" (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)`);
  return i as Weekday;
}

function parseTime(text: string, hhmm: string, isEnd: boolean): number {
  const [h = NaN, min = NaN] = hhmm.split(':').map(Number);
  if (isEnd && h === 24 && min === 0) return MINUTES_PER_DAY;
  if (!(h >= 0 && h <= 23 && min >= 0 && min <= 59)) {
    throw new Error(`invalid window "${text}": ${hhmm} is not a time of day (00:00-23:59${isEnd ? ', or 24:00 as an end' : ''})`);
  }
  return h * 60 + min;
}

/** The local wall clock of one instant in one zone. */
interface WallClock {
  weekday: Weekday;
  /** Milliseconds since local midnight. */
  msOfDay: number;
  /** Local time minus UTC, in ms. */
  offsetMs: number;
}

/** Reads instants on a zone's wall clock. One per call of a public function (formatters are costly to make). */
function wallClockReader(timezone: string): (atMs: number) => WallClock {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  return (atMs) => {
    const p: Record<string, number> = {};
    for (const { type, value } of fmt.formatToParts(atMs)) p[type] = Number(value);
    const wholeSecondMs = Math.floor(atMs / 1000) * 1000;
    const localAsUtcMs = Date.UTC(p.year ?? 0, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0);
    const midnightAsUtcMs = Date.UTC(p.year ?? 0, (p.month ?? 1) - 1, p.day ?? 1);
    return {
      weekday: new Date(midnightAsUtcMs).getUTCDay() as Weekday,
      msOfDay: localAsUtcMs - midnightAsUtcMs + (atMs - wholeSecondMs),
      offsetMs: localAsUtcMs - wholeSecondMs,
    };
  };
}

/**
 * Checks a timezone name (IANA, as Intl knows it).
 *
 * @throws Error with a one-line reason.
 * @example validateTimezone('Europe/Berlin')
 */
export function validateTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new UsageError(`unknown time zone "${timezone}" (an IANA name such as UTC or Europe/Berlin)`);
  }
}

function openAt(windows: readonly Window[], clock: WallClock): boolean {
  const minute = clock.msOfDay / MS_PER_MINUTE;
  const yesterday = ((clock.weekday + 6) % 7) as Weekday;
  return windows.some((w) =>
    w.endMinute > w.startMinute
      ? w.days.has(clock.weekday) && minute >= w.startMinute && minute < w.endMinute
      : (w.days.has(clock.weekday) && minute >= w.startMinute) || (w.days.has(yesterday) && minute < w.endMinute),
  );
}

/**
 * Whether a start at `atMs` falls inside a window. No windows: always.
 * A window includes its start and excludes its end.
 *
 * @example inWindow([parseWindow('Sat 01:00-05:00')], 'UTC', Date.parse('2026-11-28T04:59:00Z')) // true
 */
export function inWindow(windows: readonly Window[], timezone: string, atMs: number): boolean {
  if (windows.length === 0) return true;
  return openAt(windows, wallClockReader(timezone)(atMs));
}

/**
 * The first instant at or after `afterMs` inside a window: `afterMs` itself
 * when a window is open then (or there are no windows). Null only if no
 * window opens within two weeks, which valid windows cannot do.
 *
 * @example nextWindowOpen([parseWindow('Sat 01:00-05:00')], 'UTC', Date.parse('2026-11-25T12:00:00Z')) // 2026-11-28T01:00Z
 */
export function nextWindowOpen(windows: readonly Window[], timezone: string, afterMs: number): number | null {
  if (windows.length === 0) return afterMs;
  return nextInstantWhere(windows, timezone, afterMs, true);
}

/**
 * The first instant at or after `atMs` outside every window: `atMs` itself
 * when none is open then. Null when there are no windows (never closed).
 * Windows that touch or overlap count as one.
 *
 * @example windowEnd([parseWindow('Sat 01:00-05:00')], 'UTC', Date.parse('2026-11-28T02:00:00Z')) // 2026-11-28T05:00Z
 */
export function windowEnd(windows: readonly Window[], timezone: string, atMs: number): number | null {
  if (windows.length === 0) return null;
  return nextInstantWhere(windows, timezone, atMs, false);
}

/** How far ahead the searches look: a week of windows, with room for DST. */
const SEARCH_HORIZON_MS = 14 * MS_PER_DAY;

/**
 * The first instant ≥ fromMs where openAt(...) === open. The wall clock runs
 * at real speed except where the offset changes, so from any instant the
 * answer can only change at the next wall-clock boundary (a window's start
 * or end, or midnight: the weekday changes), or at an offset change before
 * it (the clock jumps over or back across a boundary). Jump to whichever
 * comes first and look again; a handful of steps per day.
 */
function nextInstantWhere(windows: readonly Window[], timezone: string, fromMs: number, open: boolean): number | null {
  const read = wallClockReader(timezone);
  const boundariesMs = [...new Set(windows.flatMap((w) => [w.startMinute, w.endMinute]).concat(MINUTES_PER_DAY))]
    .map((minute) => minute * MS_PER_MINUTE)
    .sort((a, b) => a - b);
  let t = fromMs;
  while (t - fromMs <= SEARCH_HORIZON_MS) {
    const clock = read(t);
    if (openAt(windows, clock) === open) return t;
    const boundaryMs = boundariesMs.find((b) => b > clock.msOfDay) ?? MS_PER_DAY;
    const next = t + (boundaryMs - clock.msOfDay);
    t = read(next).offsetMs === clock.offsetMs ? next : offsetChange(read, t, next);
  }
  return null;
}

/** The first ms in (loMs, hiMs] whose offset differs from loMs's (there is one: hi's differs). */
function offsetChange(read: (atMs: number) => WallClock, loMs: number, hiMs: number): number {
  const offsetMs = read(loMs).offsetMs;
  let lo = loMs;
  let hi = hiMs;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (read(mid).offsetMs === offsetMs) lo = mid;
    else hi = mid;
  }
  return hi;
}
