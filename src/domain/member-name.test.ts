import { describe, expect, it } from 'vitest';
import { memberLabel, memberName } from './member-name.js';

describe('memberName', () => {
  it.each([
    [{ name: 'm1', endpoint: 'http://127.0.0.1:2379', memberId: 'a1' }, 'm1'],
    [{ name: '', endpoint: 'http://127.0.0.1:2379', memberId: 'a1' }, 'http://127.0.0.1:2379'],
    [{ name: '', endpoint: '', memberId: 'a1' }, 'a1'],
    [{}, '?'],
  ])('%j → %s', (m, expected) => {
    expect(memberName(m)).toBe(expected);
  });
});

describe('memberLabel', () => {
  it.each([
    [{ name: 'm1', endpoint: 'http://127.0.0.1:2379', memberId: 'a1' }, 'm1 (http://127.0.0.1:2379)'],
    [{ name: '', endpoint: 'http://127.0.0.1:2379', memberId: 'a1' }, 'a1 (http://127.0.0.1:2379)'],
    [{ name: 'm1', endpoint: '', memberId: 'a1' }, 'm1'],
  ])('%j → %s', (m, expected) => {
    expect(memberLabel(m)).toBe(expected);
  });
});
