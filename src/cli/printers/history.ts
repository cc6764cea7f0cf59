/** Printers for `defragd history`: one pure row builder, then table or JSON (the stored runs as they are). */
import type { StoredRun } from '../../store/index.js';
import { formatBytes, formatDuration, renderTable } from '../format.js';

export const HISTORY_HEAD = ['STARTED', 'CLUSTER', 'TRIGGER', 'OUTCOME', 'DEFRAGMENTED', 'RECLAIMED', 'DURATION', 'MESSAGE'];

/** One row per run, newest first as given. DEFRAGMENTED is members defragmented / members in the run's results. */
export function historyRows(runs: readonly StoredRun[]): string[][] {
  return runs.map((r) => [
    r.startedAt,
    r.cluster,
    r.trigger,
    r.dryRun && r.outcome !== 'dry-run' ? `${r.outcome} (dry run)` : r.outcome,
    `${r.membersDefragmented}/${r.membersTotal}`,
    formatBytes(r.reclaimedBytes),
    formatDuration(r.durationMs),
    r.message ?? '-',
  ]);
}

export function printHistory(runs: readonly StoredRun[], format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(runs, null, 2) + '\n';
  return renderTable(HISTORY_HEAD, historyRows(runs));
}
