/** Text formatting shared by every text printer. */
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import { formatBytes as bytesText, formatDuration as durationText, formatPercent as percentText } from '../domain/format.js';

/** Like the domain's formatBytes, with "-" for unknown. */
export function formatBytes(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '-' : bytesText(bytes);
}

/** 0.4567 → "45.7%"; "-" for unknown. */
export function formatPercent(fraction: number | null | undefined): string {
  return fraction === null || fraction === undefined || !Number.isFinite(fraction) ? '-' : percentText(fraction);
}

/** Like the domain's formatDuration, with "-" for unknown. */
export function formatDuration(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : durationText(ms);
}

let Table: typeof TableType | undefined;

/**
 * A bordered table like etcdctl's `-w table`. cli-table3 (CommonJS) is loaded
 * by the first table: `-w json` and the daemon never draw one.
 */
export function renderTable(head: string[], rows: string[][]): string {
  Table ??= createRequire(import.meta.url)('cli-table3') as typeof TableType;
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r);
  return t.toString() + '\n';
}

/**
 * Seconds ago as an operator says it: "45s ago", "12m ago", "3h12m ago", "2d5h ago"; "-" for unknown.
 * Coarser as it grows: minutes matter for a run an hour ago, not for one last week.
 */
export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s ago`;
  if (s < 3_600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${Math.floor((s % 3_600) / 60)}m ago`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3_600)}h ago`;
}
