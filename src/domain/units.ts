/**
 * Parsing of the units operators type: Go durations (etcdctl's "5s", "1m30s") and byte sizes ("256MiB").
 * `source` is what the text came from (a flag such as "--dial-timeout", or the
 * environment variable that was read): every error starts with it.
 */
import { UsageError } from './errors.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * The longest duration any flag may take unless it sets a lower maximum:
 * Node's timers hold at most 2^31-1 ms (about 24.8 days); anything longer
 * fires at once with a TimeoutOverflowWarning, so it can never be meant.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DurationBounds {
  /** Largest accepted value in ms; defaults to MAX_TIMER_MS and is never above it. */
  maxMs?: number | undefined;
}

/**
 * "5s", "1m30s", "500ms", "2h", or "0". Returns milliseconds.
 * Like Go's time.ParseDuration (which etcdctl uses for the same flags), a
 * bare number other than 0 is refused: "5" could mean seconds or ms.
 *
 * @example parseDuration('1m30s', '--wait-between', { maxMs: MAX_WAIT_BETWEEN_MS }) // 90_000
 */
export function parseDuration(text: string, source: string, bounds: DurationBounds = {}): number {
  return sumDuration(text, source, DURATION_UNITS, Math.min(bounds.maxMs ?? MAX_TIMER_MS, MAX_TIMER_MS));
}

/** parseDuration's units plus days. */
const LONG_DURATION_UNITS: Record<string, number> = { ...DURATION_UNITS, d: 86_400_000 };

/**
 * Ten years: the longest retention or cooldown accepted. These durations are
 * compared with timestamps, never handed to a timer, so Node's timer limit
 * does not bound them; ten years bounds a typo.
 */
export const MAX_LONG_DURATION_MS = 3_650 * 86_400_000;

/**
 * A duration compared with timestamps, never given to a timer (a store
 * retention, a cooldown): parseDuration's units plus days ("90d", "1d12h"),
 * up to MAX_LONG_DURATION_MS.
 *
 * @example parseLongDuration('90d', 'storeRetention') // 7_776_000_000
 */
export function parseLongDuration(text: string, source: string): number {
  return sumDuration(text, source, LONG_DURATION_UNITS, MAX_LONG_DURATION_MS);
}

function sumDuration(text: string, source: string, units: Record<string, number>, maxMs: number): number {
  const t = text.trim();
  const names = Object.keys(units).join(', ');
  if (t === '0') return 0;
  if (/^\d+(\.\d+)?$/.test(t)) throw new UsageError(`${source}: "${text}" has no unit; write ${t}s (units: ${names})`);
  // Longest unit names first, so "ms" is not read as "m" then "s".
  const alternatives = Object.keys(units)
    .sort((a, b) => b.length - a.length)
    .join('|');
  const re = new RegExp(`(\\d+(?:\\.\\d+)?)(${alternatives})`, 'gy');
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * (units[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (t === '' || consumed !== t.length)
    throw new UsageError(`${source}: invalid duration "${text}" (examples: 5s, 500ms, 1m30s${units['d'] ? ', 90d' : ''})`);
  // `!(<=)` also catches Infinity from absurdly long digit strings.
  if (!(total <= maxMs)) throw new UsageError(`${source}: ${t} is more than the maximum of ${shortDuration(maxMs)}`);
  return Math.round(total);
}

/** A duration that must be above zero (timeouts: 0 would fail every call at once). */
export function parsePositiveDuration(text: string, source: string, bounds: DurationBounds = {}): number {
  const ms = parseDuration(text, source, bounds);
  if (ms <= 0) throw new UsageError(`${source}: must be more than 0 (got "${text}")`);
  return ms;
}

/** 3_600_000 → "1h", 5_400_000 → "1h30m", 1_500 → "1.5s": limits as an operator would type them. */
export function shortDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1_000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${Number(s.toFixed(3))}s` : ''}`;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** "2147483648", "2GiB", "256Mi", "8GB". Returns bytes. */
export function parseSize(text: string, source: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = SIZE_UNITS[(m?.[2] ?? 'x').toLowerCase()];
  if (!m || unit === undefined) throw new UsageError(`${source}: invalid size "${text}" (examples: 2147483648, 2GiB, 256MiB)`);
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${source}: ${text.trim()} is too large`);
  return bytes;
}

export function parseNonNegativeInt(text: string, source: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new UsageError(`${source}: expected a whole number >= 0, got "${text}"`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${source}: ${text} is too large`);
  return n;
}

export function parseFraction(text: string, source: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1)
    throw new UsageError(`${source}: expected a fraction in (0, 1], got "${text}"`);
  return n;
}
