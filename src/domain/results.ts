/** Member results made from a plan's decision: shared by the executor and the store's crash recovery. */
import type { MemberDecision } from './plan.js';
import type { MemberResult } from './run.js';

/** A result for a member that was not defragmented (the other fields say nothing happened to it). */
export function skippedResult(d: MemberDecision, reason: string): MemberResult {
  return {
    endpoint: d.endpoint,
    memberId: d.memberId,
    name: d.name,
    action: 'skipped',
    reason,
    wasLeader: d.isLeader,
    movedLeaderTo: null,
    before: null,
    after: null,
    durationMs: null,
    revision: null,
    deadlinePassed: false,
    connectionLost: false,
  };
}
