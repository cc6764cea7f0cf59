/** Text formatting shared by every text printer. */
import Table from 'cli-table3';
import { formatBytes as bytesText, formatPercent as percentText } from '../domain/format.js';

/** Like the domain's formatBytes, with "-" for unknown. */
export function formatBytes(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '-' : bytesText(bytes);
}

/** 0.4567 → "45.7%"; "-" for unknown. */
export function formatPercent(fraction: number | null | undefined): string {
  return fraction === null || fraction === undefined || !Number.isFinite(fraction) ? '-' : percentText(fraction);
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1_000)}s`;
}

/** A bordered table like etcdctl's `-w table`. */
export function renderTable(head: string[], rows: string[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r);
  return t.toString() + '\n';
}
