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
