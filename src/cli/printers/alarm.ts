/** Printers for `defragd alarm list | disarm`: one pure row builder, then table or JSON. */
import type { ClusterAlarm, ClusterSnapshot } from '../../domain/snapshot.js';
import { renderTable } from '../format.js';

export const ALARM_HEAD = ['MEMBER ID', 'NAME', 'ENDPOINT', 'ALARM'];

/** One row per alarm, with the member's name and endpoint when the member is known. */
export function alarmRows(snapshot: ClusterSnapshot, alarms: readonly ClusterAlarm[]): string[][] {
  return alarms.map((a) => {
    const m = snapshot.members.find((x) => x.memberId === a.memberId);
    return [a.memberId, m?.name || '-', m?.endpoint || '-', a.alarm];
  });
}

/** The JSON shape of one alarm: the member's hex ID, its name (null when not a member) and the alarm type. */
export function alarmJson(
  snapshot: ClusterSnapshot,
  alarms: readonly ClusterAlarm[],
): { memberId: string; alarm: string; name: string | null }[] {
  return alarms.map((a) => ({ ...a, name: snapshot.members.find((m) => m.memberId === a.memberId)?.name ?? null }));
}

export function printAlarmList(snapshot: ClusterSnapshot, format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(alarmJson(snapshot, snapshot.alarms), null, 2) + '\n';
  return snapshot.alarms.length === 0 ? 'no alarms\n' : renderTable(ALARM_HEAD, alarmRows(snapshot, snapshot.alarms));
}

export function printDisarm(
  snapshot: ClusterSnapshot,
  disarmed: readonly ClusterAlarm[],
  remaining: readonly ClusterAlarm[],
  format: 'table' | 'json',
): string {
  if (format === 'json') return JSON.stringify({ disarmed, remaining }, null, 2) + '\n';
  let out = disarmed.length === 0 ? 'nothing to disarm\n' : `disarmed ${disarmed.length} alarm(s)\n`;
  if (remaining.length > 0) out += renderTable(ALARM_HEAD, alarmRows(snapshot, remaining));
  return out;
}
