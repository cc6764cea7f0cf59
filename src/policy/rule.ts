/**
 * Defragmentation rules: CEL expressions (the language Kubernetes uses for
 * validation rules) that say, per member, whether it is worth defragmenting.
 * Variable names follow ahrtr/etcd-defrag so its documented rules work
 * verbatim, e.g. `dbQuotaUsage > 0.8 || dbSize - dbSizeInUse > 200*1024*1024`.
 *
 * A rule is parsed and type-checked once, when it is compiled, so a typo is a
 * usage error before anything touches the cluster, not a surprise per member.
 *
 * CEL keeps int and double apart. In @marcbachmann/cel-js 8:
 * - ints are BigInt at run time, so sizes are handed over as BigInt (a JS
 *   number for an int variable is rejected at run time);
 * - ordering comparisons across int and double work (`dbQuotaUsage > 1`,
 *   `dbSize > 0.5`), as the CEL spec allows;
 * - `==`/`!=` and arithmetic across them do not (`fragmentation == 0`,
 *   `dbSize * 1.5`): the checker reports "no such overload", which we turn into
 *   a hint to write `0.0` or `double(dbSize)`.
 * So sizes are ints and the ratios doubles, as in etcd-defrag (cel-go), and
 * every documented example type-checks unchanged.
 */
import { Environment, type TypeCheckResult } from '@marcbachmann/cel-js';
import { RuleError } from '../domain/errors.js';
import type { Rule, RuleVariables } from '../domain/plan.js';
import type { MemberSnapshot } from '../domain/snapshot.js';
import { GiB, KiB, MiB } from '../domain/snapshot.js';

/** CEL type of each variable a rule may use. */
const VARIABLE_TYPES = {
  dbSize: 'int',
  dbSizeInUse: 'int',
  dbSizeFree: 'int',
  dbQuota: 'int',
  dbQuotaUsage: 'double',
  fragmentation: 'double',
  isLeader: 'bool',
  isLearner: 'bool',
  memberName: 'string',
  version: 'string',
} as const satisfies Record<keyof RuleVariables, 'int' | 'double' | 'bool' | 'string'>;

const CONSTANTS = { KiB, MiB, GiB } as const;

/** Every name a rule can refer to, for "unknown variable" messages. */
export const RULE_NAMES: readonly string[] = [...Object.keys(VARIABLE_TYPES), ...Object.keys(CONSTANTS)];

/** A plausible member, used to check rules whose type is only known at run time (dyn). */
const SAMPLE: RuleVariables = {
  dbSize: 300 * MiB,
  dbSizeInUse: 100 * MiB,
  dbSizeFree: 200 * MiB,
  dbQuota: 2 * GiB,
  dbQuotaUsage: (300 * MiB) / (2 * GiB),
  fragmentation: 2 / 3,
  isLeader: false,
  isLearner: false,
  memberName: 'sample',
  version: '3.5.17',
};

function newEnvironment(): Environment {
  const env = new Environment();
  for (const [name, type] of Object.entries(VARIABLE_TYPES)) env.registerVariable(name, type);
  for (const [name, value] of Object.entries(CONSTANTS)) env.registerConstant(name, 'int', BigInt(value));
  return env;
}

/** What cel-js errors carry that we use; kept structural so we do not depend on its class identities. */
interface CelErrorLike {
  name?: string;
  code?: string;
  summary?: string;
  message?: string;
  range?: { start: number; end: number };
}

function asCelError(err: unknown): CelErrorLike {
  return typeof err === 'object' && err !== null ? (err as CelErrorLike) : { message: String(err) };
}

/** "line 2, column 5" for multi-line sources, "column 12" otherwise; both 1-based. */
function where(source: string, position: number): string {
  const before = source.slice(0, position);
  const line = before.split('\n').length;
  const column = position - (before.lastIndexOf('\n') + 1) + 1;
  return source.includes('\n') ? `line ${line}, column ${column}` : `column ${column}`;
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]!.toLowerCase() + s.slice(1) : s;
}

/** A short hint for the mistakes people make most with CEL. */
function hint(code: string | undefined, summary: string): string {
  if (/overload/.test(code ?? summary) && /\bint\b/.test(summary) && /\bdouble\b/.test(summary)) {
    return ' (CEL does not mix int and double here: write 0.0 instead of 0, or convert with double(dbSize))';
  }
  if (code === 'unknown_variable') return ` (known: ${RULE_NAMES.join(', ')})`;
  return '';
}

/** Turn a cel-js error into a one-line RuleError that points at the mistake. */
function toRuleError(prefix: string, source: string, err: unknown): RuleError {
  const e = asCelError(err);
  const summary = (e.summary ?? e.message ?? 'unknown error').split('\n')[0] ?? '';
  const position = typeof e.range?.start === 'number' ? e.range.start : null;
  const at = position === null ? '' : ` at ${where(source, position)}`;
  return new RuleError(`${prefix}${at}: ${lowerFirst(summary)}${hint(e.code, summary)}`, position, { cause: err });
}

/** Integers as CEL ints (BigInt); throws on a non-finite size. */
function toContext(vars: RuleVariables): Record<string, unknown> {
  const int = (name: string, v: number): bigint => {
    if (!Number.isFinite(v)) throw new RuleError(`rule variable ${name} is not a number (${v})`);
    return BigInt(Math.trunc(v));
  };
  return {
    dbSize: int('dbSize', vars.dbSize),
    dbSizeInUse: int('dbSizeInUse', vars.dbSizeInUse),
    dbSizeFree: int('dbSizeFree', vars.dbSizeFree),
    dbQuota: int('dbQuota', vars.dbQuota),
    dbQuotaUsage: vars.dbQuotaUsage,
    fragmentation: vars.fragmentation,
    isLeader: vars.isLeader,
    isLearner: vars.isLearner,
    memberName: vars.memberName,
    version: vars.version,
  };
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `int ${value}`;
  if (typeof value === 'number') return `double ${value}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (value === null) return 'null';
  return typeof value;
}

const MUST_BE_BOOL = 'a rule must be true or false, e.g. "dbSizeFree > 100*MiB"';

/**
 * Parse and type-check a CEL rule.
 *
 * @throws RuleError with a one-line message (and `position`) on a syntax error,
 *   an unknown variable, a type mismatch, or a result that is not a bool.
 * @example
 * const rule = compileRule('fragmentation >= 0.45 && dbSize >= 100*MiB');
 * rule.evaluate(vars); // true or false
 */
export function compileRule(source: string): Rule {
  if (source.trim() === '') throw new RuleError('invalid rule: it is empty; ' + MUST_BE_BOOL, 0);

  const env = newEnvironment();
  let program: ReturnType<Environment['parse']>;
  try {
    program = env.parse(source);
  } catch (err) {
    throw toRuleError('invalid rule', source, err);
  }

  let checked: TypeCheckResult;
  try {
    checked = program.check();
  } catch (err) {
    throw toRuleError('invalid rule', source, err);
  }
  if (!checked.valid) throw toRuleError('invalid rule', source, checked.error);

  if (checked.type !== 'bool') {
    if (checked.type !== 'dyn') {
      throw new RuleError(`invalid rule: it gives ${checked.type ?? 'an unknown type'}, but ${MUST_BE_BOOL}`, 0);
    }
    // The type is only known at run time: try it on a sample member. A run-time
    // failure here proves nothing about real members, so only a non-bool result rejects.
    let sample: unknown;
    try {
      sample = program(toContext(SAMPLE));
    } catch {
      sample = true;
    }
    if (typeof sample !== 'boolean') {
      throw new RuleError(`invalid rule: it gives ${describe(sample)} for a sample member, but ${MUST_BE_BOOL}`, 0);
    }
  }

  return Object.freeze({
    source,
    evaluate(vars: RuleVariables): boolean {
      let result: unknown;
      try {
        result = program(toContext(vars));
      } catch (err) {
        if (err instanceof RuleError) throw err;
        throw toRuleError('rule failed', source, err);
      }
      if (typeof result !== 'boolean') {
        throw new RuleError(`rule failed: it gave ${describe(result)}, but ${MUST_BE_BOOL}`, 0);
      }
      return result;
    },
  });
}

/**
 * The variables a rule sees for one member; null when the member's Status
 * did not answer (a rule cannot be judged without sizes).
 *
 * @example
 * const vars = ruleVariables(member, member.memberId === snapshot.leaderId);
 * if (vars) rule.evaluate(vars);
 */
export function ruleVariables(member: MemberSnapshot, isLeader: boolean): RuleVariables | null {
  const s = member.status;
  if (s === null) return null;
  return {
    dbSize: s.dbSize,
    dbSizeInUse: s.dbSizeInUse,
    dbSizeFree: s.dbSizeFree,
    dbQuota: s.quota,
    dbQuotaUsage: s.quotaUsage,
    fragmentation: s.fragmentation,
    isLeader,
    isLearner: member.isLearner || s.isLearner,
    memberName: member.name,
    version: s.version,
  };
}
