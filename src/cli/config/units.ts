/** Parsing of the units operators type: Go durations (etcdctl's "5s", "1m30s") and byte sizes ("256MiB"). */
import { UsageError } from '../../domain/errors.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** "5s", "1m30s", "500ms", "2h"; a bare number is seconds. Returns milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1_000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (t === '' || consumed !== t.length) throw new UsageError(`${flag}: invalid duration "${text}" (examples: 5s, 500ms, 1m30s)`);
  return Math.round(total);
}

/** A duration that must be above zero (timeouts: 0 would fail every call at once). */
export function parsePositiveDuration(text: string, flag: string): number {
  const ms = parseDuration(text, flag);
  if (ms <= 0) throw new UsageError(`${flag}: must be more than 0 (got "${text}")`);
  return ms;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

/** "2147483648", "2GiB", "256Mi", "8GB". Returns bytes. */
export function parseSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = SIZE_UNITS[(m?.[2] ?? 'x').toLowerCase()];
  if (!m || unit === undefined) throw new UsageError(`${flag}: invalid size "${text}" (examples: 2147483648, 2GiB, 256MiB)`);
  return Math.round(Number(m[1]) * unit);
}

export function parseNonNegativeInt(text: string, flag: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new UsageError(`${flag}: expected a whole number >= 0, got "${text}"`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${flag}: ${text} is too large`);
  return n;
}

export function parseFraction(text: string, flag: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new UsageError(`${flag}: expected a fraction in (0, 1], got "${text}"`);
  return n;
}
