/** Text formatting shared by every text printer. */
import Table from 'cli-table3';
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

/** A bordered table like etcdctl's `-w table`. */
export function renderTable(head: string[], rows: string[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r);
  return t.toString() + '\n';
}
