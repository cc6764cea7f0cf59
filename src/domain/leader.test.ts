import { describe, expect, it } from 'vitest';
import { aSnapshot } from '../../test/builders.js';
import { agreedLeader } from './leader.js';
import type { MemberSnapshot } from './snapshot.js';

/** Members whose Status names `says[i]` as leader (null: none known), the one named `claims` saying it leads. */
function members(says: (string | null)[], claims: string | null = null): MemberSnapshot[] {
  const b = aSnapshot();
  for (let i = 0; i < says.length; i++) b.withMember(`m${i + 1}`);
  const snap = b.build();
  return snap.members.map((m, i) => ({
    ...m,
    status: m.status && { ...m.status, leaderId: says[i] ?? null, isLeader: m.name === claims },
  }));
}

describe('agreedLeader', () => {
  it('is the leader most members name', () => {
    expect(agreedLeader(members(['a', 'a', 'b']))).toBe('a');
  });
  it('is null when nobody names one', () => {
    expect(agreedLeader(members([null, null, null]))).toBeNull();
  });
  it('breaks a tie for the member that says it leads', () => {
    expect(agreedLeader(members(['a', 'b'], 'm2'))).toBe('b');
  });
  it('ignores members without a status', () => {
    const ms = members(['a', 'b', 'b']).map((m, i) => (i > 0 ? { ...m, status: null } : m));
    expect(agreedLeader(ms)).toBe('a');
  });
});
