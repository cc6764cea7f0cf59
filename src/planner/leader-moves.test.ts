import { describe, expect, it } from 'vitest';
import { leaderMovesAllowed, rationedBecause } from './leader-moves.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const NOW = Date.parse('2026-12-07T10:00:00Z');

describe('leaderMovesAllowed', () => {
  it.each<[string, number[], { max?: number; perMs?: number } | undefined, { ok: boolean; waitMs: number; recent: number }]>([
    ['no moves', [], undefined, { ok: true, waitMs: 0, recent: 0 }],
    ['one move', [NOW - MINUTE], undefined, { ok: true, waitMs: 0, recent: 1 }],
    [
      'two moves: wait for the older to age out',
      [NOW - MINUTE, NOW - 2 * MINUTE],
      undefined,
      { ok: false, waitMs: 13 * MINUTE, recent: 2 },
    ],
    ['order does not matter', [NOW - 2 * MINUTE, NOW - MINUTE], undefined, { ok: false, waitMs: 13 * MINUTE, recent: 2 }],
    ['two moves, one older than 15 min', [NOW - MINUTE, NOW - 16 * MINUTE], undefined, { ok: true, waitMs: 0, recent: 1 }],
    ['a move exactly 15 min ago no longer counts', [NOW - MINUTE, NOW - 15 * MINUTE], undefined, { ok: true, waitMs: 0, recent: 1 }],
    [
      'three moves: wait until only one is left',
      [NOW - MINUTE, NOW - 2 * MINUTE, NOW - 3 * MINUTE],
      undefined,
      { ok: false, waitMs: 13 * MINUTE, recent: 3 },
    ],
    ['max 3', [NOW - MINUTE, NOW - 2 * MINUTE], { max: 3 }, { ok: true, waitMs: 0, recent: 2 }],
    ['max 1 per 5 min', [NOW - MINUTE], { max: 1, perMs: 5 * MINUTE }, { ok: false, waitMs: 4 * MINUTE, recent: 1 }],
    ['max 0: never', [], { max: 0 }, { ok: false, waitMs: Infinity, recent: 0 }],
  ])('%s', (_name, moves, opts, expected) => {
    expect(leaderMovesAllowed(moves, NOW, opts)).toEqual(expected);
  });

  it('never lets a third move into any 15-minute span, moving whenever allowed', () => {
    const moves: number[] = [];
    for (let t = 0; t < 2 * HOUR; t += 10_000) {
      if (leaderMovesAllowed(moves, t).ok) moves.push(t);
    }
    for (const m of moves) expect(moves.filter((x) => x >= m && x < m + 15 * MINUTE).length).toBeLessThanOrEqual(2);
    expect(moves.length).toBe(16); // two at the start of each 15 minutes over two hours
  });
});
describe('rationedBecause', () => {
  it('is null while a move fits', () => {
    expect(rationedBecause({ movedAtMs: [NOW - MINUTE], nowMs: NOW })).toBeNull();
  });
  it('says a ration of 0 never moves, with no next time', () => {
    expect(rationedBecause({ movedAtMs: [], nowMs: NOW, max: 0 })).toBe(
      'leadership was moved 0 times in the last 15 min (the ration is 0; etcdHighNumberOfLeaderChanges fires at 4)',
    );
  });
  it('gives a span that is not whole minutes in seconds', () => {
    expect(rationedBecause({ movedAtMs: [NOW - 1000], nowMs: NOW, max: 1, perMs: 90_000 })).toBe(
      'leadership was moved 1 time in the last 90 s (the ration is 1; etcdHighNumberOfLeaderChanges fires at 4); the next move fits at 2026-12-07T10:01:29.000Z',
    );
  });
});
