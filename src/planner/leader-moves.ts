/**
 * The ration of leader moves a daemon keeps to: every MoveLeader is a leader
 * change, and etcd-mixin's etcdHighNumberOfLeaderChanges alert fires at 4
 * changes in 15 minutes. Two moves in any 15 minutes leave room for etcd's own
 * elections. The planner applies it to the leader's decision (code
 * `leader-move-rationed`, with the numbers in the reason); the daemon passes
 * the moves it made (Policy.leaderMoves). Pure: the caller gives the time.
 */
import type { LeaderMoveHistory } from '../domain/plan.js';

export const DEFAULT_LEADER_MOVES_MAX = 2;
export const DEFAULT_LEADER_MOVES_PER_MS = 15 * 60_000;

/**
 * Whether one more MoveLeader fits the ration: fewer than `max` moves in
 * the last `perMs` (a move counts until exactly `perMs` after it). When it
 * does not, `waitMs` says how long until it does (Infinity when max < 1) and
 * `recent` how many moves count now.
 *
 * @example leaderMovesAllowed([now - 60_000, now - 120_000], now) // { ok: false, waitMs: 13 * 60_000, recent: 2 }
 */
export function leaderMovesAllowed(
  moveTimesMs: readonly number[],
  now: number,
  { max = DEFAULT_LEADER_MOVES_MAX, perMs = DEFAULT_LEADER_MOVES_PER_MS }: { max?: number | undefined; perMs?: number | undefined } = {},
): { ok: boolean; waitMs: number; recent: number } {
  const recent = moveTimesMs.filter((t) => t > now - perMs).sort((a, b) => a - b);
  if (max < 1) return { ok: false, waitMs: Infinity, recent: recent.length };
  if (recent.length < max) return { ok: true, waitMs: 0, recent: recent.length };
  // One more fits once all but max - 1 of the recent moves have aged out.
  const mustAgeOut = recent[recent.length - max];
  return { ok: false, waitMs: mustAgeOut === undefined ? perMs : mustAgeOut + perMs - now, recent: recent.length };
}

/**
 * Why the ration holds the leader back, with its numbers; null when a move fits.
 *
 * @example rationedBecause({ movedAtMs: [t - 60_000, t - 120_000], nowMs: t })
 * // 'leadership was moved 2 times in the last 15 min (the ration is 2; etcdHighNumberOfLeaderChanges fires at 4); the next move fits at 2026-…Z'
 */
export function rationedBecause(h: LeaderMoveHistory): string | null {
  const perMs = h.perMs ?? DEFAULT_LEADER_MOVES_PER_MS;
  const max = h.max ?? DEFAULT_LEADER_MOVES_MAX;
  const r = leaderMovesAllowed(h.movedAtMs, h.nowMs, { max, perMs });
  if (r.ok) return null;
  const span = perMs % 60_000 === 0 ? `${perMs / 60_000} min` : `${Math.round(perMs / 1000)} s`;
  const next = Number.isFinite(r.waitMs) ? `; the next move fits at ${new Date(h.nowMs + r.waitMs).toISOString()}` : '';
  return (
    `leadership was moved ${r.recent} time${r.recent === 1 ? '' : 's'} in the last ${span} ` +
    `(the ration is ${max}; etcdHighNumberOfLeaderChanges fires at 4)${next}`
  );
}
