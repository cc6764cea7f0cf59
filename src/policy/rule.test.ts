import { describe, expect, it } from 'vitest';
import { RuleError } from '../domain/errors.js';
import type { RuleVariables } from '../domain/plan.js';
import { GiB, MiB } from '../domain/snapshot.js';
import { aSnapshot } from '../../test/builders.js';
import { compileRule, ruleVariables } from './rule.js';

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

  it('rejects == between double and int with a hint to write 0.0', () => {
    const err = compileError('fragmentation == 0');
    expect(err.message).toMatch(/^invalid rule at column 1: no such overload: double == int/);
    expect(err.message).toContain('write 0.0');
    expect(compileRule('fragmentation == 0.0').evaluate(vars({ dbSize: 0, dbSizeInUse: 0 }))).toBe(true);
  });

  it('rejects int * double, and accepts it with double()', () => {
    expect(compileError('dbSize * 1.5 > 2').message).toContain('double(dbSize)');
    expect(compileRule('double(dbSize) * 1.5 > 2.0').evaluate(vars())).toBe(true);
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

  it('rejects an empty rule', () => {
    expect(compileError('  ').message).toMatch(/^invalid rule: it is empty/);
  });

  it('messages are one line', () => {
    for (const source of ['dbSize >', 'foo > 1', 'dbSize + 1', 'fragmentation == 0']) {
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
    const rule = compileRule('dbSize * GiB * GiB > 1');
    expect(() => rule.evaluate(vars({ dbSize: 8 * GiB }))).toThrow(/^rule failed at column 1: integer overflow/);
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
    expect(ruleVariables(m1!, false)).toEqual({
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

  it('takes isLeader from the caller and isLearner from the member', () => {
    expect(ruleVariables(m2!, true)?.isLeader).toBe(true);
    expect(ruleVariables(m4!, false)?.isLearner).toBe(true);
  });

  it('is null without a status', () => {
    expect(ruleVariables(m3!, false)).toBeNull();
  });
});
