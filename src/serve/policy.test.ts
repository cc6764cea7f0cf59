/**
 * One policy per run, whatever asks for it: the auto check starts a run exactly when the run it would
 * start defragments some member. Checked against the real executor on a fake cluster, over generated
 * clusters (sizes, leaders, health, learners, rules, durations, leader moves, NOSPACE).
 */
import { describe, expect, it } from 'vitest';
import { aPolicy, MiB } from '../../test/builders.js';
import { FakeCluster } from '../../test/fakes/cluster.js';
import { mulberry32 } from '../../dev/prng.js';
import { compileRule } from '../policy/rule.js';
import { executePlan } from '../executor/execute.js';
import { planDefrag } from '../planner/index.js';
import { autoCheck, policyFor, type PolicyFacts } from './policy.js';

const NOW = Date.parse('2026-12-07T10:00:00Z');
const MINUTE = 60_000;

describe('policyFor', () => {
  const facts: PolicyFacts = {
    base: aPolicy({ rule: compileRule('dbSizeFree > 1*MiB') }),
    defragHistory: {},
    leaderMovesMs: [NOW - MINUTE],
    nowMs: NOW,
    keepRevisions: null,
  };

  it('gives every trigger the history and the leader moves', () => {
    for (const trigger of ['auto', 'schedule', 'api', 'nospace'] as const) {
      expect(policyFor(trigger, facts)).toMatchObject({ defragHistory: {}, leaderMoves: { movedAtMs: [NOW - MINUTE], nowMs: NOW } });
    }
  });

  it('compacts by the retention when there is one, and not otherwise', () => {
    expect(policyFor('schedule', facts).compactKeepRevisions).toBeNull();
    expect(policyFor('schedule', { ...facts, keepRevisions: 5000 }).compactKeepRevisions).toBe(5000);
  });

  it('recovers NOSPACE on every member, compacting (to the newest revision without a retention) and disarming', () => {
    expect(policyFor('nospace', facts)).toMatchObject({ rule: null, compactKeepRevisions: 0, disarmNospace: true });
    expect(policyFor('nospace', { ...facts, keepRevisions: 5000 })).toMatchObject({
      rule: null,
      compactKeepRevisions: 5000,
      disarmNospace: true,
    });
  });

  it('leaves the history out when the store could not be read (every forecast unknown)', () => {
    expect(policyFor('auto', { ...facts, defragHistory: undefined })).not.toHaveProperty('defragHistory');
  });
});

describe('the auto check and the run it starts', () => {
  it('agree on 300 generated clusters: "start" exactly when the run defragments some member', async () => {
    const rnd = mulberry32(20261207);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    let started = 0;
    for (let i = 0; i < 300; i++) {
      const n = pick([1, 3, 3, 5]);
      const members = Array.from({ length: n }, () => ({
        dbSize: 100 * MiB,
        dbSizeInUse: Math.round((20 + rnd() * 80) * MiB),
        healthy: rnd() > 0.08,
        isLearner: n > 1 && rnd() < 0.1,
        alarms: rnd() < 0.05 ? ['NOSPACE'] : [],
      }));
      const leader = rnd() < 0.05 ? null : `m${1 + Math.floor(rnd() * n)}`;
      const fake = new FakeCluster(members, leader);
      if (leader !== null) fake.m(leader).isLearner = false;
      const names = fake.members.map((m) => m.memberId);
      const facts: PolicyFacts = {
        base: aPolicy({
          rule: rnd() < 0.2 ? null : compileRule(`dbSizeFree > ${pick([5, 20, 40, 60])}*MiB`),
          moveLeader: rnd() > 0.1,
          skipHealthCheck: rnd() < 0.3,
          maxDefragDurationMs: rnd() < 0.3 ? 10_000 : null,
        }),
        // Some members defragment at 5 MiB/s: over the 10 s limit for most of them.
        defragHistory: Object.fromEntries(
          names.filter(() => rnd() < 0.4).map((id) => [id, [{ dbSizeInUse: 50 * MiB, durationMs: 10_000 }]]),
        ),
        leaderMovesMs: Array.from({ length: pick([0, 1, 2, 3]) }, () => NOW - Math.floor(rnd() * 20 * MINUTE)),
        nowMs: NOW,
        keepRevisions: null,
      };
      const check = autoCheck(await fake.observe(), facts);
      const policy = policyFor('auto', facts);
      const events = executePlan(planDefrag(await fake.observe(), policy), fake.port, policy, {
        pollIntervalMs: 1,
        firstPollMs: 1,
        catchUpTimeoutMs: 100,
        leaderMoveTimeoutMs: 100,
        recoveryTimeoutMs: 100,
      });
      for (let e = await events.next(); !e.done; e = await events.next()) {
        /* drained */
      }
      const context = JSON.stringify({
        i,
        members: fake.members.map((m) => [m.name, m.dbSizeInUse, m.healthy, m.isLearner, m.alarms]),
        leader,
        facts,
      });
      expect(check.due, context).toBe(fake.callsOf('defragment').length > 0);
      expect(fake.violations, context).toEqual([]);
      if (check.due) started++;
    }
    // The generator reaches both answers often.
    expect(started).toBeGreaterThan(60);
    expect(started).toBeLessThan(240);
  });
});
