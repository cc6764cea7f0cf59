/**
 * Figures as operators read them, shared by plan reasons, warnings and every
 * text printer. Pure.
 */

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/**
 * Bytes in binary units with one decimal.
 * @example formatBytes(12.5 * 1024 * 1024) // "12.5 MiB"
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${Math.round(value)} B`;
  let unit: string = 'B';
  for (const u of UNITS) {
    if (value < 1024) break;
    value /= 1024;
    unit = u;
  }
  return `${sign}${value.toFixed(1)} ${unit}`;
}

/**
 * A fraction as a percentage with one decimal.
 * @example formatPercent(0.006) // "0.6%"
 */
export function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

/**
 * A duration as Go and etcdctl print them, shortened: "850ms", "5s", "2.5s",
 * "1m15s", "10h0m0s". Sub-second precision is kept only under a minute.
 * @example formatDuration(75_300) // "1m15s"
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${sign}${Math.round(abs)}ms`;
  if (abs < 60_000) return `${sign}${Math.round(abs / 100) / 10}s`;
  const total = Math.round(abs / 1_000);
  const h = Math.floor(total / 3_600);
  const m = Math.floor((total % 3_600) / 60);
  const s = total % 60;
  return h > 0 ? `${sign}${h}h${m}m${s}s` : `${sign}${m}m${s}s`;
}
