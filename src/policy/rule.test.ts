import { describe, expect, it } from 'vitest';
import { RuleError } from '../domain/errors.js';
import type { RuleVariables } from '../domain/plan.js';
import { GiB, MiB } from '../domain/snapshot.js';
import { aSnapshot } from '../../test/builders.js';
import { compileRule, MAX_RULE_LENGTH, ruleVariables } from './rule.js';

function vars(overrides: Partial<RuleVariables> = {}): RuleVariables {
  const dbSize = overrides.dbSize ?? 300 * MiB;
  const dbSizeInUse = overrides.dbSizeInUse ?? 50 * MiB;
  const dbQuota = overrides.dbQuota ?? 2 * GiB;
  return {
    dbSize,
    dbSizeInUse,
    dbSizeFree: dbSize - dbSizeInUse,
    dbQuota,
    dbQuotaUsage: dbSize / dbQuota,
    fragmentation: dbSize === 0 ? 0 : (dbSize - dbSizeInUse) / dbSize,
    isLeader: false,
    isLearner: false,
    memberName: 'm1',
    version: '3.5.17',
    ...overrides,
  };
}

function compileError(source: string): RuleError {
  try {
    compileRule(source);
  } catch (err) {
    expect(err).toBeInstanceOf(RuleError);
    return err as RuleError;
  }
  throw new Error(`expected ${JSON.stringify(source)} to be rejected`);
}

describe('compileRule: ahrtr/etcd-defrag examples verbatim', () => {
  const big = vars({ dbSize: 300 * MiB, dbSizeInUse: 50 * MiB }); // 250 MiB free, 14.6% of quota
  const small = vars({ dbSize: 20 * MiB, dbSizeInUse: 19 * MiB });
  const full = vars({ dbSize: 1.9 * GiB, dbSizeInUse: 1.85 * GiB });
  it.each([
    ['dbQuotaUsage > 0.8 || dbSize - dbSizeInUse > 200*1024*1024', big, true],
    ['dbQuotaUsage > 0.8 || dbSize - dbSizeInUse > 200*1024*1024', small, false],
    ['dbQuotaUsage > 0.8 || dbSize - dbSizeInUse > 200*1024*1024', full, true],
    ['dbSize > dbQuota*80/100 || dbSize - dbSizeInUse > 200*1024*1024', full, true],
    ['dbSize > dbQuota*80/100 || dbSize - dbSizeInUse > 200*1024*1024', big, true],
    ['dbSize > dbQuota*80/100 || dbSize - dbSizeInUse > 200*1024*1024', small, false],
    ['dbSize > dbQuota*80/100 && dbSize - dbSizeInUse > 200*1024*1024', big, false],
    ['dbSize - dbSizeInUse > 200*1024*1024', big, true],
    ['dbSize - dbSizeInUse > 200*1024*1024', small, false],
    ['dbQuotaUsage > 0.8', full, true],
    ['dbQuotaUsage > 0.8', big, false],
    ['dbSizeFree > 100*MiB', big, true],
    ['dbSizeFree > 100*MiB', small, false],
    ['fragmentation >= 0.45 && dbSize >= 100*MiB', big, true],
    ['fragmentation >= 0.45 && dbSize >= 100*MiB', small, false],
    ['isLeader == false', big, true],
    ['isLeader == false', { ...big, isLeader: true }, false],
    ['memberName == "m1"', big, true],
    ['memberName == "m1"', { ...big, memberName: 'm2' }, false],
  ] as const)('%s', (source, v, expected) => {
    const rule = compileRule(source);
    expect(rule.source).toBe(source);
    expect(rule.evaluate(v)).toBe(expected);
  });
});

describe('compileRule: int and double', () => {
  it('orders across int and double either way round', () => {
    expect(compileRule('dbQuotaUsage > 1').evaluate(vars())).toBe(false);
    expect(compileRule('dbSize > 0.5').evaluate(vars())).toBe(true);
    expect(compileRule('fragmentation < 1').evaluate(vars())).toBe(true);
  });

  it('handles sizes above 2^31 and integer-valued doubles', () => {
    const v = vars({ dbSize: 8 * GiB, dbSizeInUse: 2 * GiB, dbQuota: 8 * GiB });
    expect(v.dbQuotaUsage).toBe(1);
    expect(compileRule('dbSize >= 8*GiB && dbQuotaUsage >= 1.0').evaluate(v)).toBe(true);
  });

  it('truncates fractional sizes rather than failing', () => {
    expect(compileRule('dbSize == 1000').evaluate(vars({ dbSize: 1000.7 }))).toBe(true);
  });

  it('compares an int with a double exactly, not through a rounded double', () => {
    // 2^53 + 1 as a double would be 2^53: a conversion would call them equal.
    expect(compileRule('9007199254740993 == 9007199254740992.0').evaluate(vars())).toBe(false);
    expect(compileRule('9007199254740992 == 9007199254740992.0').evaluate(vars())).toBe(true);
    expect(compileRule('dbSize != 1000.5').evaluate(vars({ dbSize: 1000 }))).toBe(true);
  });

  it('refuses % on a double with a hint', () => {
    const err = compileError('dbSize % 2.0 == 0');
    expect(err.message).toMatch(/^invalid rule at column 1: no such overload: int % double/);
    expect(err.message).toContain('% takes two ints');
  });
});

describe('compileRule: rules written for etcd-defrag, where ints and floats mix', () => {
  // Real members: sizes in bytes, quota 2 GiB unless said.
  const at = (dbSize: number, dbSizeInUse: number, dbQuota = 2 * GiB): RuleVariables => vars({ dbSize, dbSizeInUse, dbQuota });
  it.each([
    ['dbSize > dbQuota*0.8', at(1.7 * GiB, GiB), true],
    ['dbSize > dbQuota*0.8', at(1.5 * GiB, GiB), false],
    ['dbSize > dbQuota*0.8', at(7 * GiB, GiB, 8 * GiB), true],
    ['dbQuota*0.8 < dbSize', at(1.7 * GiB, GiB), true],
    ['dbQuota*0.8 < dbSize', at(1.5 * GiB, GiB), false],
    ['dbQuotaUsage > 0.8', at(1.7 * GiB, GiB), true],
    ['dbQuotaUsage > 0.8', at(1.5 * GiB, GiB), false],
    ['dbSize - dbSizeInUse > 200*1024*1024', at(300 * MiB, 50 * MiB), true],
    ['dbSize - dbSizeInUse > 200*1024*1024', at(300 * MiB, 150 * MiB), false],
    ['dbSize > 1.5*GiB', at(1.6 * GiB, GiB), true],
    ['dbSize > 1.5*GiB', at(1.5 * GiB, GiB), false],
    ['fragmentation > 0.45 && dbSize > 100*MiB', at(300 * MiB, 50 * MiB), true],
    ['fragmentation > 0.45 && dbSize > 100*MiB', at(80 * MiB, 10 * MiB), false],
    ['fragmentation > 0.45 && dbSize > 100*MiB', at(300 * MiB, 250 * MiB), false],
    ['fragmentation == 0', at(100 * MiB, 100 * MiB), true],
    ['fragmentation == 0', at(300 * MiB, 50 * MiB), false],
    ['0 == fragmentation', at(100 * MiB, 100 * MiB), true],
    ['fragmentation != 0', at(300 * MiB, 50 * MiB), true],
    ['dbSizeFree * 2 > dbSize', at(300 * MiB, 50 * MiB), true],
    ['dbSizeFree * 2 > dbSize', at(300 * MiB, 200 * MiB), false],
    ['dbSize * 1.5 > dbQuota', at(1.5 * GiB, GiB), true],
    ['dbSize * 1.5 > dbQuota', at(GiB, GiB / 2), false],
    ['dbSizeFree / 2.0 > 100*MiB', at(300 * MiB, 50 * MiB), true],
    ['dbSizeFree / 2.0 > 100*MiB', at(300 * MiB, 150 * MiB), false],
    ['double(dbSize) / double(dbQuota) > 0.5', at(1.5 * GiB, GiB), true],
    ['double(dbSize) / double(dbQuota) > 0.5', at(300 * MiB, 50 * MiB), false],
    ['dbSize / 1024 / 1024 > 100', at(200 * MiB, 50 * MiB), true],
    ['dbSize / 1024 / 1024 > 100', at(50 * MiB, 10 * MiB), false],
    // int / int truncates (CEL, Go): 100.5 MiB is "100" here, while etcd-defrag
    // divides floats and says true. Documented in the module header and README.
    ['dbSize / 1024 / 1024 > 100', at(100.5 * MiB, 10 * MiB), false],
    ['dbSize / 1024 / 1024 > 100', at(101 * MiB, 10 * MiB), true],
  ] as const)('%s', (source, v, expected) => {
    expect(compileRule(source).evaluate(v)).toBe(expected);
  });

  it('fails rather than giving Infinity when a mixed division divides by zero', () => {
    const rule = compileRule('dbSize / fragmentation > 2.0');
    expect(rule.evaluate(vars())).toBe(true);
    expect(() => rule.evaluate(vars({ dbSize: 100 * MiB, dbSizeInUse: 100 * MiB }))).toThrow(/^rule failed at column 1: division by zero$/);
    expect(() => compileRule('fragmentation / dbSizeFree > 0.0').evaluate(vars({ dbSize: 10, dbSizeInUse: 10 }))).toThrow(
      /^rule failed at column 1: division by zero$/,
    );
  });
});

describe('compileRule: mistakes are RuleErrors pointing at them', () => {
  it.each([
    ['dbSize >', 'invalid rule at column 9: unexpected token: EOF', 8],
    ['dbSize > 1 &&& true', 'invalid rule at column 14: unexpected character: &', 13],
    ['"abc', 'invalid rule at column 1: unterminated string', 0],
    ['dbSize > 1 && (', 'invalid rule at column 16: unexpected token: EOF', 15],
  ])('syntax: %s', (source, message, position) => {
    const err = compileError(source);
    expect(err.message).toBe(message);
    expect(err.position).toBe(position);
    expect(err.kind).toBe('usage');
  });

  it('names an unknown variable, where it is, and the known ones', () => {
    const err = compileError('dbQuotaUsage > 0.8 || dbSize - dbSizeInUs > 1');
    expect(err.message).toMatch(/^invalid rule at column 32: unknown variable: dbSizeInUs \(known: dbSize, /);
    expect(err.message).toContain('MiB');
    expect(err.position).toBe(31);
  });

  it('gives line and column in a multi-line rule', () => {
    const err = compileError('dbQuotaUsage > 0.8 ||\n  dbSize - x > 1');
    expect(err.message).toMatch(/^invalid rule at line 2, column 12: unknown variable: x/);
  });

  it('rejects type errors', () => {
    expect(compileError('dbSize > "x"').message).toMatch(/^invalid rule at column 1: no such overload: int > string/);
    expect(compileError('memberName.foo').message).toMatch(/cannot index type 'string'/i);
    expect(compileError('size(dbSize) > 1').message).toMatch(/no matching overload/);
  });

  it.each([
    ['dbSize + 1', /gives int/],
    ['memberName', /gives string/],
    ['dbQuotaUsage * 2.0', /gives double/],
    ['dyn(dbSize)', /gives int \d+ for a sample member/],
  ])('rejects a rule that is not a bool: %s', (source, pattern) => {
    const err = compileError(source);
    expect(err.message).toMatch(pattern);
    expect(err.message).toContain('a rule must be true or false');
  });

  it('accepts a dyn rule that is a bool', () => {
    expect(compileRule('dyn(dbSize) > 1').evaluate(vars())).toBe(true);
  });

  it.each(['', '  ', ' \n\t '])('refuses an empty rule %j and says how to pick every member', (source) => {
    const err = compileError(source);
    expect(err.message).toMatch(/^invalid rule: it is empty, and an empty rule is refused/);
    expect(err.message).toContain('every member');
    expect(err.message).toContain('--rule true');
    expect(err.message).toContain('no --rule');
  });

  it('messages are one line', () => {
    for (const source of ['dbSize >', 'foo > 1', 'dbSize + 1', 'dbSize % 2.0 == 0', '', 'dbSize / 0 > 1', '(true)'.repeat(1000)]) {
      expect(compileError(source).message).not.toContain('\n');
    }
  });
});

describe('Rule.evaluate: run-time failures are RuleErrors', () => {
  it('division by zero', () => {
    const rule = compileRule('dbSize / dbSizeFree > 2');
    expect(rule.evaluate(vars())).toBe(false);
    expect(() => rule.evaluate(vars({ dbSize: 10, dbSizeInUse: 10 }))).toThrow(RuleError);
    expect(() => rule.evaluate(vars({ dbSize: 10, dbSizeInUse: 10 }))).toThrow(/^rule failed at column 1: division by zero$/);
  });

  it('integer overflow', () => {
    const rule = compileRule('dbSize * dbSize > 1');
    expect(rule.evaluate(vars({ dbSize: GiB }))).toBe(true);
    expect(() => rule.evaluate(vars({ dbSize: 8 * GiB }))).toThrow(/^rule failed at column 1: integer overflow/);
  });

  it('a non-finite ratio', () => {
    expect(() => compileRule('fragmentation > 0.5').evaluate(vars({ fragmentation: Number.NaN }))).toThrow(
      /^rule variable fragmentation is not a number \(NaN\)$/,
    );
    expect(() => compileRule('dbQuotaUsage > 0.5').evaluate(vars({ dbQuotaUsage: Infinity }))).toThrow(RuleError);
  });

  it('a non-finite size', () => {
    expect(() => compileRule('dbSize > 1').evaluate(vars({ dbSize: Number.NaN }))).toThrow(RuleError);
  });

  it('a dyn rule that turns out not to be a bool', () => {
    const rule = compileRule('dbSize > 1 ? dyn(true) : dyn(1)');
    expect(rule.evaluate(vars())).toBe(true);
    expect(() => rule.evaluate(vars({ dbSize: 0, dbSizeInUse: 0 }))).toThrow(/^rule failed: it gave int 1/);
  });

  it('uses the KiB, MiB, GiB constants', () => {
    expect(compileRule('KiB == 1024 && MiB == 1024*KiB && GiB == 1024*MiB').evaluate(vars())).toBe(true);
  });
});

describe('compileRule: a rule that fails whatever the member is refused up front', () => {
  it.each([
    ['dbSize / 0 > 1', /^invalid rule at column 1: division by zero \(whatever the member\)$/],
    ['fragmentation > 1/0', /^invalid rule at column 17: division by zero/],
    ['dbSize > 1/0', /^invalid rule at column 10: division by zero/],
    ['fragmentation / 0 > 1.0', /^invalid rule at column 1: division by zero/],
    ['9223372036854775807 + 1 > 0', /^invalid rule at column 1: integer overflow/],
    ['dbSize * GiB * GiB > 1', /^invalid rule at column 1: integer overflow/],
    ['dbSize * 1e308 > 1.0', /^invalid rule at column 1: double overflow/],
    ['dyn(memberName) > 1', /^invalid rule at column 1: no such overload: dyn<string> > int/],
  ])('%s', (source, pattern) => {
    const err = compileError(source);
    expect(err.message).toMatch(pattern);
    expect(err.kind).toBe('usage');
  });

  it('accepts a rule that fails only on some members, and fails there as a RuleError, not false', () => {
    // An empty member (dbSize 0) is real, but the rule is fine for every other one.
    const rule = compileRule('dbSizeFree / dbSize > 0');
    expect(rule.evaluate(vars({ dbSize: 300 * MiB, dbSizeInUse: 50 * MiB }))).toBe(false);
    expect(() => rule.evaluate(vars({ dbSize: 0, dbSizeInUse: 0 }))).toThrow(/^rule failed at column 1: division by zero$/);
    const leaderOnly = compileRule('isLeader ? dyn(memberName) > 1 : true');
    expect(leaderOnly.evaluate(vars())).toBe(true);
    expect(() => leaderOnly.evaluate(vars({ isLeader: true }))).toThrow(/^rule failed at column 12: no such overload: dyn<string> > int$/);
    // Zero on the samples whose quota is 2 GiB, not on the others.
    const quotaRule = compileRule('dbQuota / (dbQuota - 2*GiB) > 1');
    expect(quotaRule.evaluate(vars({ dbQuota: 4 * GiB }))).toBe(true);
    expect(() => quotaRule.evaluate(vars({ dbQuota: 2 * GiB }))).toThrow(/^rule failed at column 1: division by zero$/);
  });
});

describe('compileRule: size and nesting limits', () => {
  it('accepts a rule of exactly MAX_RULE_LENGTH characters', () => {
    const source = 'dbSize > 1' + ' '.repeat(MAX_RULE_LENGTH - 10);
    expect(source).toHaveLength(MAX_RULE_LENGTH);
    expect(compileRule(source).evaluate(vars())).toBe(true);
  });

  it.each([
    ['one character too many', 'dbSize > 1' + ' '.repeat(MAX_RULE_LENGTH - 9)],
    ['a 20,000-term || chain', Array(20_000).fill('dbSize > 1').join(' || ')],
    ['5,000 nested parentheses', '('.repeat(5000) + 'true' + ')'.repeat(5000)],
  ])('refuses a rule longer than MAX_RULE_LENGTH: %s', (_, source) => {
    const err = compileError(source);
    expect(err.message).toBe(`invalid rule: it is ${source.length} characters long; the limit is ${MAX_RULE_LENGTH}`);
  });

  it('refuses more than 250 nested parentheses in words', () => {
    const err = compileError('('.repeat(300) + 'true' + ')'.repeat(300));
    expect(err.message).toMatch(/^invalid rule at column \d+: nested too deeply \(more than 250 levels\)$/);
  });

  it('refuses a short rule that exhausts the stack instead of crashing', () => {
    const source = '!'.repeat(MAX_RULE_LENGTH - 6) + 'true';
    const err = compileError(source);
    expect(err.message).toMatch(/^invalid rule: nested too deeply \(the stack ran out\)/);
    expect(err.cause).toBeInstanceOf(RangeError);
  });

  it('turns a stack overflow while evaluating into a RuleError', () => {
    const rule = compileRule('!'.repeat(1000) + 'true');
    // Evaluate with almost no stack left, as deep inside a caller: each frame
    // that runs out retries one level up, so some call has room for the error
    // handling but not for the rule.
    const nearStackLimit = (): boolean => {
      try {
        return nearStackLimit();
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        return rule.evaluate(vars());
      }
    };
    expect(nearStackLimit).toThrow(/^rule failed: nested too deeply \(the stack ran out\)/);
  });
});

describe('ruleVariables', () => {
  const snapshot = aSnapshot()
    .withMembers(3)
    .withLeader('m2')
    .withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB, version: '3.4.23' })
    .withLearner('m4')
    .unreachable('m3')
    .build();
  const [m1, m2, m3, m4] = snapshot.members;

  it('copies the figures ahrtr/etcd-defrag exposes', () => {
    expect(ruleVariables(m1!, { isLeader: false, isLearner: false })).toEqual({
      dbSize: 300 * MiB,
      dbSizeInUse: 100 * MiB,
      dbSizeFree: 200 * MiB,
      dbQuota: 2 * GiB,
      dbQuotaUsage: (300 * MiB) / (2 * GiB),
      fragmentation: 2 / 3,
      isLeader: false,
      isLearner: false,
      memberName: 'm1',
      version: '3.4.23',
    });
  });

  it('takes isLeader and isLearner from the caller (the planner decides both)', () => {
    expect(ruleVariables(m2!, { isLeader: true, isLearner: false })?.isLeader).toBe(true);
    expect(ruleVariables(m4!, { isLeader: false, isLearner: true })?.isLearner).toBe(true);
  });

  it('is null without a status', () => {
    expect(ruleVariables(m3!, { isLeader: false, isLearner: false })).toBeNull();
  });
});
