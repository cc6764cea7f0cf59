/** Printers for `defragd serve --check-config`: one pure row builder, then table or JSON. */
import { formatDuration } from '../../domain/format.js';
import type { ClusterCheck, ScheduledStart } from '../../serve/check.js';
import type { ServeConfig } from '../../serve/config.js';
import { renderTable } from '../format.js';

export const CHECK_HEAD = ['NAME', 'ENDPOINTS', 'MEMBERS REACHED', 'RULE', 'NEXT SCHEDULED STARTS'];

/** A start that runs as its time; a row of skipped ones as its first and last. */
function startCell(s: ScheduledStart): string {
  if (s.inWindow) return s.at;
  return `skipped: ${s.at === s.last ? s.at : `${s.at} to ${s.last}`} (outside the windows)`;
}

/** One row per cluster; multi-line cells list endpoints, members and starts (those that run, and the skipped ones between). */
export function checkRows(checks: readonly ClusterCheck[]): string[][] {
  return checks.map((c) => {
    const members =
      c.error !== null
        ? `unreachable: ${c.error}`
        : [
            `${c.membersReachable}/${c.membersTotal}${c.reachable.length > 0 ? `: ${c.reachable.join(', ')}` : ''}`,
            ...c.unreachable.map((u) => `not ${u.member}: ${u.error}`),
          ].join('\n');
    const waits = c.waitsFor.map((w) => `waits for ${w.url}: ${w.ready ? 'ready' : `not ready (${w.detail})`}`);
    const reach = [members, ...waits].join('\n');
    const starts =
      c.schedule === null
        ? `no schedule${c.auto ? `\n(auto every ${formatDuration(c.auto.intervalMs)}, cooldown ${formatDuration(c.auto.cooldownMs)})` : ''}`
        : [`${c.schedule} (${c.timezone})`, ...c.nextStarts.map(startCell), ...(c.nextStartsEnd === null ? [] : [c.nextStartsEnd])].join(
            '\n',
          );
    return [c.name, c.endpoints.join('\n'), reach, c.rule ?? 'every member', starts];
  });
}

/** The JSON form: the config as printed (secrets redacted by the caller) and each cluster's check. */
export interface CheckJson {
  config: ServeConfig;
  clusters: ClusterCheck[];
}

export function printCheck(checks: ClusterCheck[], redacted: ServeConfig, format: 'table' | 'json'): string {
  if (format === 'json') return `${JSON.stringify({ config: redacted, clusters: checks } satisfies CheckJson, null, 2)}\n`;
  return renderTable(CHECK_HEAD, checkRows(checks));
}
