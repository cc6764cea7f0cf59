/**
 * Printers for `defragd defrag`: the plan (dry run), live progress from the
 * event stream, and the run summary, each as table or JSON.
 */
import type { MemberDecision, Plan } from '../../domain/plan.js';
import type { RunReport, StepEvent } from '../../domain/run.js';
import { describeForecast } from '../../planner/index.js';
import { formatBytes, formatDuration, renderTable } from '../format.js';
import { memberName } from '../../domain/member-name.js';

export const PLAN_HEAD = ['#', 'MEMBER', 'ENDPOINT', 'ID', 'ACTION', 'LEADER', 'RULE', 'DB SIZE', 'FREE', 'TIMEOUT', 'EXPECTED', 'REASON'];

/** A member's expected defrag duration: "~12s", "unknown: no history"; the CLI's history is its --store. */
export function expectedDuration(d: Pick<MemberDecision, 'forecastMs' | 'forecastBasis'>): string {
  if (d.forecastBasis.source === 'none' && d.forecastBasis.why === 'history-not-given') return 'unknown: no --store';
  return describeForecast(d.forecastMs, d.forecastBasis);
}

/** " ~12s" after a member's name in progress lines; nothing when unknown. */
const expectedSuffix = (d: Pick<MemberDecision, 'forecastMs'>): string =>
  d.forecastMs === null ? '' : ` ~${formatDuration(d.forecastMs)}`;

export function planRows(plan: Plan): string[][] {
  let order = 0;
  return plan.decisions.map((d) => [
    d.action === 'defragment' ? String(++order) : '-',
    d.name || '-',
    d.endpoint || '-',
    d.memberId || '-',
    d.action,
    d.isLeader ? (d.moveLeaderTo ? `yes, move to ${nameOf(plan, d.moveLeaderTo)}` : 'yes') : 'no',
    d.ruleResult === null ? '-' : String(d.ruleResult),
    formatBytes(d.dbSize),
    formatBytes(d.dbSizeFree),
    d.action === 'defragment' ? formatDuration(d.timeoutMs) : '-',
    expectedDuration(d),
    d.reason,
  ]);
}

const nameOf = (plan: Plan, id: string) => plan.decisions.find((d) => d.memberId === id)?.name || id;

/** A dry run: the plan as a table, or the dry-run report (with the plan in `plan`) as JSON, the same shape the library returns. */
export function printDryRun(report: RunReport, format: 'table' | 'json'): string {
  if (format === 'json' || report.plan === null) return printReport(report, format);
  return printPlan(report.plan);
}

export function printPlan(plan: Plan): string {
  let out = 'Dry run: nothing will be changed.\n';
  if (plan.refusal) out += `REFUSED: ${plan.refusal.reason}\n`;
  if (plan.compaction)
    out += `Would compact (physically) to revision ${plan.compaction.revision}, keeping the last ${plan.compaction.keepRevisions} revisions.\n`;
  out += renderTable(PLAN_HEAD, planRows(plan));
  const n = plan.decisions.filter((d) => d.action === 'defragment').length;
  out += `${n} member(s) to defragment, about ${formatBytes(plan.expectedReclaimBytes)} to reclaim.${plan.disarmNospace ? ' NOSPACE would be disarmed afterwards if every member is under the margin.' : ''}\n`;
  const todo = plan.decisions.filter((d) => d.action === 'defragment');
  if (todo.length > 0 && todo.every((d) => d.forecastMs !== null)) {
    out += `Expected defrag time ~${formatDuration(todo.reduce((sum, d) => sum + (d.forecastMs ?? 0), 0))} in all, from each member's own past defrags (waits between members not counted).\n`;
  }
  const unchecked = plan.decisions.filter((d) => d.action === 'defragment' && d.disk === null).map((d) => memberName(d));
  if (unchecked.length > 0)
    out += `Free disk not checked for ${unchecked.join(', ')}: defragd cannot see their data dirs (--data-dir NAME=PATH for members on this host).\n`;
  for (const w of plan.warnings) out += `warning: ${w}\n`;
  return out;
}

export const SUMMARY_HEAD = [
  'MEMBER',
  'ENDPOINT',
  'ACTION',
  'WAS LEADER',
  'BEFORE',
  'AFTER',
  'RECLAIMED',
  'DURATION',
  'REVISION',
  'REASON',
];

export function summaryRows(report: RunReport): string[][] {
  return report.members.map((m) => [
    m.name || '-',
    m.endpoint || '-',
    m.action,
    m.wasLeader ? 'yes' : 'no',
    m.before ? `${formatBytes(m.before.dbSize)} (${formatBytes(m.before.dbSizeInUse)} used)` : '-',
    m.after ? `${formatBytes(m.after.dbSize)} (${formatBytes(m.after.dbSizeInUse)} used)` : '-',
    m.before && m.after ? formatBytes(m.before.dbSize - m.after.dbSize) : '-',
    formatDuration(m.durationMs),
    m.revision === null ? '-' : String(m.revision),
    m.reason,
  ]);
}

/** The JSON shape of a run (stable field names). */
export function reportJson(report: RunReport): object {
  return {
    outcome: report.outcome,
    dryRun: report.dryRun,
    message: report.message,
    startedAt: report.startedAt,
    finishedAt: report.finishedAt,
    compactedRevision: report.compactedRevision,
    disarmed: report.disarmed,
    disarmNote: report.disarmNote,
    reclaimedBytes: report.reclaimedBytes,
    warnings: report.warnings,
    members: report.members.map((m) => ({
      endpoint: m.endpoint,
      memberId: m.memberId,
      name: m.name,
      action: m.action,
      reason: m.reason,
      wasLeader: m.wasLeader,
      movedLeaderTo: m.movedLeaderTo,
      before: m.before,
      after: m.after,
      durationMs: m.durationMs,
      revision: m.revision,
      deadlinePassed: m.deadlinePassed,
      connectionLost: m.connectionLost,
    })),
    plan: report.plan,
    ...(report.timings && { timings: report.timings }),
  };
}

export function printReport(report: RunReport, format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(reportJson(report), null, 2) + '\n';
  // A run refused before it saw any member has no rows to show.
  let out = report.members.length > 0 ? renderTable(SUMMARY_HEAD, summaryRows(report)) : '';
  const n = report.members.filter((m) => m.action === 'defragmented').length;
  const headline: Record<RunReport['outcome'], string> = {
    success: `defragmented ${n} member(s), reclaimed ${formatBytes(report.reclaimedBytes)}`,
    'nothing-to-do': 'nothing to do: no member needed defragmenting',
    failed: 'FAILED',
    refused: 'REFUSED: nothing was changed',
    interrupted: `INTERRUPTED: defragmented ${n} member(s) before stopping`,
    'dry-run': 'dry run: nothing was changed',
  };
  out += `${headline[report.outcome]}${report.message ? `: ${report.message}` : ''}\n`;
  if (report.compactedRevision !== null) out += `compacted to revision ${report.compactedRevision}\n`;
  if (report.disarmed) out += 'NOSPACE alarm disarmed\n';
  if (report.disarmNote) out += `${report.disarmNote}\n`;
  for (const w of report.warnings) out += `warning: ${w}\n`;
  return out;
}

/** One human line per event, for logs and for terminals between live updates; null for events not worth a line. */
export function eventLine(e: StepEvent): string | null {
  switch (e.type) {
    case 'run-started': {
      const todo = e.plan.decisions.filter((d) => d.action === 'defragment');
      if (e.plan.refusal) return null;
      if (todo.length === 0) return 'plan: no member to defragment';
      // The transferee is chosen again at the leader's turn (the best voter then), so it is not named here.
      const order = todo.map(
        (d) => `${memberName(d)}${expectedSuffix(d)}${d.moveLeaderTo ? ' (leader: hands leadership over first)' : ''}`,
      );
      return `plan: ${todo.length} member(s) to defragment, one at a time: ${order.join(' → ')}`;
    }
    case 'compaction-started':
      return `compacting to revision ${e.revision} (keeping ${e.keepRevisions})`;
    case 'compaction-finished':
      return `compacted to revision ${e.revision} in ${formatDuration(e.durationMs)}${e.note ? ` (${e.note})` : ''}`;
    case 'member-skipped':
      return `${memberName(e.decision)}: skipped: ${e.reason}`;
    case 'leader-move-started':
      return `${e.fromName}: is leader; moving leadership to ${e.toName}`;
    case 'leader-move-finished':
      return `leadership moved in ${formatDuration(e.durationMs)}`;
    case 'member-started':
      return `${memberName(e.decision)}: defragmenting (${e.index}/${e.total}, ${formatBytes(e.before.dbSize)}, ${e.decision.forecastMs === null ? '' : `expected ~${formatDuration(e.decision.forecastMs)}, `}deadline ${formatDuration(e.timeoutMs)})`;
    case 'member-no-answer':
      return e.why === 'deadline'
        ? `${e.name}: deadline of ${formatDuration(e.timeoutMs)} passed; etcd keeps defragmenting, NOT retrying`
        : `${e.name}: connection lost during its defragmentation (${e.detail}); etcd may still be defragmenting, NOT retrying`;
    case 'member-waiting':
      return `${e.name}: waiting for ${e.what} (at most ${formatDuration(e.limitMs)})`;
    case 'member-finished': {
      const r = e.result;
      if (r.action === 'defragmented') {
        return `${memberName(r)}: done in ${formatDuration(r.durationMs)}: ${formatBytes(r.before?.dbSize)} → ${formatBytes(r.after?.dbSize)}`;
      }
      return `${memberName(r)}: ${r.action}: ${r.reason}`;
    }
    case 'pause':
      return `waiting ${formatDuration(e.ms)} before the next member`;
    case 'alarm-disarmed':
      return `NOSPACE alarm disarmed on ${e.alarms.length} member(s)`;
    case 'disarm-skipped':
      return e.reason;
    case 'warning':
      return `warning: ${e.message}`;
    case 'run-finished':
      return null;
  }
}
