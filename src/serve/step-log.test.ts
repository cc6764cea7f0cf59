import { describe, expect, it } from 'vitest';
import { MiB, aPolicy, aSnapshot } from '../../test/builders.js';
import type { MemberResult, StepEvent } from '../domain/run.js';
import { planDefrag } from '../planner/index.js';
import { stepLogLine } from './step-log.js';

function result(over: Partial<MemberResult> = {}): MemberResult {
  return {
    endpoint: 'https://10.0.0.2:2379',
    memberId: '2a',
    name: 'm2',
    action: 'defragmented',
    reason: '',
    wasLeader: false,
    movedLeaderTo: null,
    before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB },
    after: { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB },
    durationMs: 4_000,
    revision: 42,
    deadlinePassed: false,
    connectionLost: false,
    ...over,
  };
}

describe('stepLogLine', () => {
  it('says a member started at info, with its size and deadline', () => {
    const plan = planDefrag(aSnapshot().withMembers(3).build(), aPolicy());
    const decision = plan.decisions[0]!;
    const e: StepEvent = {
      type: 'member-started',
      decision,
      before: { dbSize: 300 * MiB, dbSizeInUse: 1 },
      timeoutMs: 90_000,
      index: 1,
      total: 3,
    };
    expect(stepLogLine(e)).toEqual({
      level: 'info',
      msg: 'member started',
      fields: { member: decision.name, memberId: decision.memberId, dbSize: 300 * MiB, timeoutMs: 90_000, index: 1, total: 3 },
    });
  });

  it('warns of a lost connection and of each wait, with what is waited for and for how long at most', () => {
    expect(
      stepLogLine({
        type: 'member-no-answer',
        memberId: '2a',
        name: 'm2',
        why: 'connection-lost',
        timeoutMs: 90_000,
        detail: 'connection reset',
      }),
    ).toEqual({
      level: 'warn',
      msg: 'connection lost during defragment',
      fields: { member: 'm2', memberId: '2a', timeoutMs: 90_000, detail: 'connection reset' },
    });
    expect(stepLogLine({ type: 'member-no-answer', memberId: '2a', name: 'm2', why: 'deadline', timeoutMs: 1, detail: '' })?.msg).toBe(
      'defragment deadline passed',
    );
    expect(
      stepLogLine({
        type: 'member-waiting',
        memberId: '2a',
        name: 'm2',
        what: 'm2 to answer again',
        at: '2026-01-01T00:00:00Z',
        limitMs: 60_000,
      }),
    ).toEqual({
      level: 'warn',
      msg: 'waiting for a member',
      fields: { member: 'm2', memberId: '2a', waitingFor: 'm2 to answer again', limitMs: 60_000 },
    });
  });

  it('says a member finished at info, and warns when it failed, with the reason and how its call ended', () => {
    expect(stepLogLine({ type: 'member-finished', result: result() })).toEqual({
      level: 'info',
      msg: 'member finished',
      fields: {
        member: 'm2',
        memberId: '2a',
        action: 'defragmented',
        reason: null,
        durationMs: 4_000,
        dbSizeBefore: 300 * MiB,
        dbSizeAfter: 100 * MiB,
        deadlinePassed: false,
        connectionLost: false,
      },
    });
    const failed = result({ action: 'failed', reason: 'm2 did not answer within 1m', after: null, connectionLost: true });
    expect(stepLogLine({ type: 'member-finished', result: failed })).toMatchObject({
      level: 'warn',
      msg: 'member failed',
      fields: { reason: 'm2 did not answer within 1m', dbSizeAfter: null, deadlinePassed: false, connectionLost: true },
    });
  });

  it('warns of run warnings and a NOSPACE alarm left armed; leader moves are info', () => {
    expect(stepLogLine({ type: 'warning', message: 'm3 runs 3.5.2' })).toEqual({
      level: 'warn',
      msg: 'run warning',
      fields: { warning: 'm3 runs 3.5.2' },
    });
    expect(stepLogLine({ type: 'disarm-skipped', reason: 'm1 is at 95% of its quota' })?.level).toBe('warn');
    expect(stepLogLine({ type: 'leader-move-started', from: '1a', fromName: 'm1', to: '2a', toName: 'm2' })).toEqual({
      level: 'info',
      msg: 'moving leadership',
      fields: { member: 'm1', memberId: '1a', to: 'm2', toMemberId: '2a' },
    });
    expect(stepLogLine({ type: 'leader-move-finished', from: '1a', to: '2a', durationMs: 300 })?.level).toBe('info');
  });

  it('names the members a run will defragment; says nothing of a pause (the launcher logs the end with the report)', () => {
    const plan = planDefrag(aSnapshot().withMembers(3).build(), aPolicy());
    expect(stepLogLine({ type: 'run-started', at: '2026-01-01T00:00:00Z', plan })).toMatchObject({
      level: 'info',
      msg: 'run started',
      fields: { members: expect.arrayContaining(['m1', 'm2', 'm3']) },
    });
    expect(stepLogLine({ type: 'pause', ms: 1_000 })).toBeNull();
  });
});
