/**
 * Figures as the CLI prints them: the same functions (src/domain/format.ts,
 * bundled in), with "-" for unknown; and times as people read them.
 */
import { formatBytes as bytes, formatDuration as duration, formatPercent as percent } from '../src/domain/format.js';

export const formatBytes = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : bytes(n));
export const formatPercent = (f: number | null | undefined): string =>
  f === null || f === undefined || !Number.isFinite(f) ? '-' : percent(f);
export const formatDuration = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '-' : duration(ms));

const pad = (n: number) => String(n).padStart(2, '0');

/** Local time "2026-11-26 01:02:03"; "-" for unknown. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "45s ago", "12m ago", "3h12m ago", "2d5h ago" (as `defragd last`); "in 5m" for the future. */
export function formatRelative(iso: string | null | undefined, nowMs = Date.now()): string {
  if (!iso) return '-';
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return '-';
  const future = ms > nowMs;
  const s = Math.floor(Math.abs(nowMs - ms) / 1000);
  const text =
    s < 60
      ? `${s}s`
      : s < 3_600
        ? `${Math.floor(s / 60)}m`
        : s < 86_400
          ? `${Math.floor(s / 3_600)}h${Math.floor((s % 3_600) / 60)}m`
          : `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3_600)}h`;
  return future ? `in ${text}` : `${text} ago`;
}
