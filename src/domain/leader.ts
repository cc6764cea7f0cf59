/**
 * Who leads, as the members say it: defined here once, for observe (which
 * stores it as ClusterSnapshot.leaderId, for full and light observations
 * alike) and, through that field, for the planner's leaderOf. Pure.
 */
import type { MemberSnapshot } from './snapshot.js';

/**
 * The leader most answering members name; a member that says it leads wins ties.
 *
 * @example agreedLeader(snapshot.members) // '8e9e05c52164694d'
 */
export function agreedLeader(members: readonly MemberSnapshot[]): string | null {
  const votes = new Map<string, number>();
  for (const m of members) {
    const l = m.status?.leaderId;
    if (l) votes.set(l, (votes.get(l) ?? 0) + (m.status?.isLeader ? 1.5 : 1));
  }
  let best: string | null = null;
  let bestVotes = 0;
  for (const [id, v] of votes) {
    if (v > bestVotes) {
      best = id;
      bestVotes = v;
    }
  }
  return best;
}
