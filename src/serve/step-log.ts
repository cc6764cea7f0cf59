/**
 * What the daemon's log says of a run while it goes: one short structured
 * line per step an operator needs to see as it happens (a member started, is
 * waited for, finished or failed; a leader move; a warning), so a member that
 * goes down mid-defrag is in the log when it happens, not only in the report
 * at the end. Pure: the caller adds the cluster and the run id and writes it.
 * Fields are picked one by one (never a whole object passed through), so a
 * line carries names, IDs, sizes and reasons only.
 */
import type { StepEvent } from '../domain/run.js';

export interface StepLogLine {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * The log line of a run's event; null for the events not worth a line of their own (a pause between
 * members, and the end of the run, which the launcher logs with its report).
 *
 * @example stepLogLine({ type: 'member-waiting', memberId: '8e9e05c52164694d', name: 'm1', what: 'm1 to answer again', at, limitMs: 60_000 })
 * // { level: 'warn', msg: 'waiting for a member', fields: { member: 'm1', memberId: '8e9e05c52164694d', waitingFor: 'm1 to answer again', limitMs: 60000 } }
 */
export function stepLogLine(e: StepEvent): StepLogLine | null {
  switch (e.type) {
    case 'run-started': {
      if (e.plan.refusal) return null;
      const members = e.plan.decisions.filter((d) => d.action === 'defragment').map((d) => d.name);
      return info('run started', { members });
    }
    case 'compaction-started':
      return info('compacting', { revision: e.revision, keepRevisions: e.keepRevisions });
    case 'compaction-finished':
      return info('compacted', { revision: e.revision, durationMs: e.durationMs, note: e.note });
    case 'member-skipped':
      return info('member skipped', { member: e.decision.name, memberId: e.decision.memberId, reason: e.reason });
    case 'leader-move-started':
      return info('moving leadership', { member: e.fromName, memberId: e.from, to: e.toName, toMemberId: e.to });
    case 'leader-move-finished':
      return info('leadership moved', { memberId: e.from, toMemberId: e.to, durationMs: e.durationMs });
    case 'member-started':
      return info('member started', {
        member: e.decision.name,
        memberId: e.decision.memberId,
        dbSize: e.before.dbSize,
        timeoutMs: e.timeoutMs,
        index: e.index,
        total: e.total,
      });
    case 'member-no-answer':
      return warn(e.why === 'deadline' ? 'defragment deadline passed' : 'connection lost during defragment', {
        member: e.name,
        memberId: e.memberId,
        timeoutMs: e.timeoutMs,
        detail: e.detail,
      });
    case 'member-waiting':
      return warn('waiting for a member', { member: e.name, memberId: e.memberId, waitingFor: e.what, limitMs: e.limitMs });
    case 'member-finished': {
      const r = e.result;
      const fields = {
        member: r.name,
        memberId: r.memberId,
        action: r.action,
        reason: r.reason === '' ? null : r.reason,
        durationMs: r.durationMs,
        dbSizeBefore: r.before?.dbSize ?? null,
        dbSizeAfter: r.after?.dbSize ?? null,
        deadlinePassed: r.deadlinePassed,
        connectionLost: r.connectionLost,
      };
      return r.action === 'failed' ? warn('member failed', fields) : info('member finished', fields);
    }
    case 'alarm-disarmed':
      return info('NOSPACE alarm disarmed', { memberIds: e.alarms.map((a) => a.memberId) });
    case 'disarm-skipped':
      return warn('NOSPACE alarm not disarmed', { reason: e.reason });
    case 'warning':
      return warn('run warning', { warning: e.message });
    case 'pause':
    case 'run-finished':
      return null;
  }
}

function info(msg: string, fields: Record<string, unknown>): StepLogLine {
  return { level: 'info', msg, fields };
}

function warn(msg: string, fields: Record<string, unknown>): StepLogLine {
  return { level: 'warn', msg, fields };
}
