/**
 * A run in progress as the page shows it, folded from its StepEvents (live
 * from the SSE stream, or replayed from GET /runs/:id when the page opens
 * mid-run): the members to defragment in order, which are done, which one is
 * being defragmented since when, and what the run is doing between members.
 */
import type { DaemonEvent } from './api.js';

export type MemberProgress = 'pending' | 'running' | 'defragmented' | 'skipped' | 'failed';

export interface RunProgress {
  runId: number | null;
  /** The plan's members to defragment, in execution order (leader last). */
  order: { memberId: string; name: string; isLeader: boolean; state: MemberProgress }[];
  current: { memberId: string; name: string; startedAtMs: number } | null;
  /** What the run does now besides a member's defrag (compaction, leader hand-over, a wait). */
  note: string | null;
  /** When the page last applied an event to it (epoch ms). */
  updatedAtMs: number;
}

/** The progress after one event; null once the run finished. */
export function applyEvent(p: RunProgress | null, e: DaemonEvent): RunProgress | null {
  const next = fold(p, e);
  return next === null ? null : { ...next, updatedAtMs: Date.now() };
}

function fold(p: RunProgress | null, e: DaemonEvent): RunProgress | null {
  const ev = e.event;
  const base: RunProgress = p ?? { runId: e.runId, order: [], current: null, note: null, updatedAtMs: 0 };
  const at = Date.parse(e.at);
  const setState = (memberId: string, state: MemberProgress) => base.order.map((m) => (m.memberId === memberId ? { ...m, state } : m));
  switch (ev.type) {
    case 'run-started':
      return {
        runId: e.runId,
        order: ev.plan.decisions
          .filter((d) => d.action === 'defragment')
          .map((d) => ({ memberId: d.memberId, name: d.name, isLeader: d.isLeader, state: 'pending' as const })),
        current: null,
        note: ev.plan.refusal ? `refused: ${ev.plan.refusal.reason}` : null,
        updatedAtMs: 0,
      };
    case 'compaction-started':
      return { ...base, note: `compacting to revision ${ev.revision}` };
    case 'compaction-finished':
      return { ...base, note: null };
    case 'leader-move-started':
      return { ...base, note: `moving leadership from ${ev.fromName} to ${ev.toName}` };
    case 'leader-move-finished':
      return { ...base, note: null };
    case 'member-started':
      return {
        ...base,
        order: base.order.some((m) => m.memberId === ev.decision.memberId)
          ? setState(ev.decision.memberId, 'running')
          : [...base.order, { memberId: ev.decision.memberId, name: ev.decision.name, isLeader: ev.decision.isLeader, state: 'running' }],
        current: { memberId: ev.decision.memberId, name: ev.decision.name, startedAtMs: Number.isFinite(at) ? at : Date.now() },
        note: null,
      };
    case 'member-waiting':
      return { ...base, note: `${ev.name}: waiting for ${ev.what}` };
    case 'member-no-answer':
      return {
        ...base,
        note: `${ev.name}: no answer (${ev.why === 'deadline' ? 'deadline passed' : 'connection lost'}); etcd may still be defragmenting`,
      };
    case 'member-skipped':
      return { ...base, order: setState(ev.decision.memberId, 'skipped') };
    case 'member-finished':
      return {
        ...base,
        order: setState(ev.result.memberId, ev.result.action),
        current: base.current?.memberId === ev.result.memberId ? null : base.current,
        note: null,
      };
    case 'pause':
      return { ...base, note: `pausing ${Math.round(ev.ms / 100) / 10}s before the next member` };
    case 'run-finished':
      // Another run's end (one noticed from someone else) does not end this one.
      return p !== null && p.runId !== null && e.runId !== null && p.runId !== e.runId ? p : null;
    default:
      return base;
  }
}
