/** Printers for `defragd last`: one pure row builder, then table or JSON. */
import type { MemberDefragStatus } from '../../domain/record.js';
import { formatAge, formatBytes, formatPercent, renderTable } from '../format.js';

export const LAST_HEAD = ['NAME', 'ID', 'LAST DEFRAG', 'AGE', 'REVISION', 'RECLAIMED', 'TRIGGER', 'BY', 'FREE NOW', 'FRAG NOW'];

/** What the LAST DEFRAG column says when there is no record to show. */
const NO_RECORD: Record<Exclude<MemberDefragStatus['record'], 'found'>, string> = {
  none: 'never (no record)',
  invalid: 'unknown (bad record)',
  unreadable: 'unknown (unreadable)',
};

export function lastRows(members: readonly MemberDefragStatus[]): string[][] {
  return members.map((m) => {
    const r = m.lastDefrag;
    return [
      m.name || '-',
      m.memberId || '-',
      r ? r.at.replace(/\.\d+Z$/, 'Z') : NO_RECORD[m.record === 'found' ? 'none' : m.record],
      formatAge(m.ageSeconds),
      r?.revision != null ? String(r.revision) : '-',
      formatBytes(m.reclaimedBytes),
      r?.trigger ?? '-',
      r?.by || '-',
      formatBytes(m.dbSizeFree),
      formatPercent(m.fragmentation),
    ];
  });
}

/** JSON: the library's objects as they are (stable field names, memberId in hex). */
export function printLast(members: readonly MemberDefragStatus[], format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(members, null, 2) + '\n';
  return renderTable(LAST_HEAD, lastRows(members));
}
