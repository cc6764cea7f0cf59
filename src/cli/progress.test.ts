import { describe, expect, it } from 'vitest';
import type { StepEvent } from '../domain/run.js';
import { createProgress } from './progress.js';

const waiting = (what: string, limitMs: number): StepEvent => ({
  type: 'member-waiting',
  memberId: 'a',
  name: 'm2',
  what,
  at: '2026-01-01T00:00:00.000Z',
  limitMs,
});
const noAnswer: StepEvent = {
  type: 'member-no-answer',
  memberId: 'a',
  name: 'm2',
  why: 'connection-lost',
  timeoutMs: 75_000,
  detail: 'http://127.0.0.1:2379: connection dropped',
};

describe('progress', () => {
  it('on a terminal, a lost connection is said as such, and the wait for the member shows what it waits for, its limit and a live elapsed time', () => {
    let out = '';
    let t = 0;
    const p = createProgress(
      (s) => (out += s),
      true,
      () => t,
    );
    p.onEvent(noAnswer);
    p.onEvent(waiting('the member to answer again (the connection was lost during its defragmentation)', 75_000));
    t = 12_300;
    p.onEvent(waiting('the member to catch up with the leader', 60_000)); // keeps the live line
    p.close();
    expect(out).toContain(
      'm2: connection lost during its defragmentation (http://127.0.0.1:2379: connection dropped); etcd may still be defragmenting, NOT retrying\n',
    );
    expect(out).not.toMatch(/deadline/);
    expect(out).toContain(
      '⟳ m2: waiting for the member to answer again (the connection was lost during its defragmentation) (at most 1m15s) 0ms',
    );
    expect(out).not.toContain('catch up');
  });

  it('in a log, every wait is one timestamped line with its limit', () => {
    let out = '';
    const p = createProgress(
      (s) => (out += s),
      false,
      () => Date.parse('2026-01-01T00:00:00Z'),
    );
    p.onEvent(waiting('etcd to finish the defragmentation it kept running after the deadline', 90_000));
    p.close();
    expect(out).toBe(
      '2026-01-01T00:00:00.000Z m2: waiting for etcd to finish the defragmentation it kept running after the deadline (at most 1m30s)\n',
    );
  });

  it('plan warnings reach the terminal', () => {
    let out = '';
    const p = createProgress(
      (s) => (out += s),
      true,
      () => 0,
    );
    p.onEvent({ type: 'warning', message: 'no compaction: the current revision 12 is not above --compact-keep-revisions 99' });
    expect(out).toBe('warning: no compaction: the current revision 12 is not above --compact-keep-revisions 99\n');
  });
});
