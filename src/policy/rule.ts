/**
 * Defragmentation rules: CEL expressions (the language Kubernetes uses for
 * validation rules) that say, per member, whether it is worth defragmenting.
 * Variable names follow ahrtr/etcd-defrag, so its documented rules compile
 * unchanged, e.g. `dbQuotaUsage > 0.8 || dbSize - dbSizeInUse > 200*1024*1024`.
 *
 * A rule is parsed, type-checked and tried on sample members once, when it is
 * compiled, so a typo or a rule that can only fail is a usage error before
 * anything touches the cluster, not a surprise per member.
 *
 * Numbers. etcd-defrag (goval) hands every size over as a float64, so ints and
 * floats mix freely there; plain CEL refuses `dbSize > dbQuota*0.8` ("no such
 * overload: int * double"). Two ways out were weighed:
 * - sizes as double: float division like goval, but double/double is IEEE
 *   (cel-js will not let the built-in be replaced), so `dbSize / dbSizeFree`
 *   on a member with nothing free gives Infinity, and `dbSizeFree / dbSize` on
 *   an empty one NaN: a failed rule that reads as true or false.
 * - sizes as int (chosen): byte counts stay exact (BigInt), int overflow and
 *   int division by zero are errors, and we register the mixed overloads CEL
 *   lacks: int and double under + - * / give a double (the int converted first,
 *   exact for any byte count, which is < 2^53), and int == double compares
 *   exactly. A mixed division by zero and a non-finite mixed result are errors
 *   too. Ordering across int and double (`dbSize > 0.5`) is built in.
 * The one difference from etcd-defrag: int / int truncates, as in CEL and Go, so
 * `dbSize / 1024 / 1024 > 100` holds from 101 MiB on (etcd-defrag: above 100
 * MiB); `dbSize > 100*MiB` says it exactly. `%` stays int-only. An explicit
 * double / double (`double(dbSize) / double(dbQuota)`) is IEEE, as in CEL.
 * fragmentation and dbQuotaUsage are doubles that defragd computes as 0 when
 * their divisor is 0.
 *
 * Limits. A rule is at most MAX_RULE_LENGTH characters and nests at most 250
 * levels deep (cel-js's parser limit); the evaluator recurses over the syntax
 * tree, so what passes both can still exhaust the JavaScript stack (4,000
 * `!`s): that is caught and reported as "nested too deeply", never a crash.
 */
import { createRequire } from 'node:module';
import type * as Cel from '@marcbachmann/cel-js';
import type { ASTNode, Environment, TypeCheckResult } from '@marcbachmann/cel-js';
import { RuleError } from '../domain/errors.js';
import type { Rule, RuleVariables } from '../domain/plan.js';
import type { MemberSnapshot } from '../domain/snapshot.js';
import { GiB, KiB, MiB } from '../domain/snapshot.js';

let cel: typeof Cel | undefined;

/**
 * cel-js, loaded by the first compileRule rather than with this module: it
 * takes ~50 ms to load, and most runs have no rule (`defragd status`,
 * `defragd defrag` without --rule, `--help`). cel-js is ESM-only and
 * compileRule is synchronous, so this is require() of an ES module, which
 * Node has without a flag since 20.19 (package.json's engines).
 */
function celJs(): typeof Cel {
  cel ??= createRequire(import.meta.url)('@marcbachmann/cel-js') as typeof Cel;
  return cel;
}

/**
 * The longest rule accepted, in characters. Longer rules are refused before
 * parsing: real rules are a line or two, and a limit in words beats a stack
 * overflow somewhere in the parser.
 */
export const MAX_RULE_LENGTH = 4096;

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

function sampleMember(dbSize: number, dbSizeInUse: number, dbQuota: number, more: Partial<RuleVariables> = {}): RuleVariables {
  return {
    dbSize,
    dbSizeInUse,
    dbSizeFree: dbSize - dbSizeInUse,
    dbQuota,
    dbQuotaUsage: dbSize / dbQuota,
    fragmentation: (dbSize - dbSizeInUse) / dbSize,
    isLeader: false,
    isLearner: false,
    memberName: 'sample',
    version: '3.5.17',
    ...more,
  };
}

/**
 * Plausible members a rule is tried on when compiled. A rule that fails on
 * every one of them fails for a reason that does not depend on the member
 * (`1/0`, a literal overflow) and is refused. A rule that fails on only some
 * is accepted: `dbSizeFree / dbSize` fails on an empty member, yet is a fine
 * rule for every other one, and on an empty member it fails at run time as a
 * RuleError, never as false. So no sample has a zero size (a zero would only
 * let such rules through, it cannot catch more), and the samples' sizes and
 * quotas differ, so that a divisor like `dbQuota - 2*GiB` is zero on some only.
 * The cost: an error behind a member-dependent branch (`isLeader && 1/0 > 0`)
 * is not all-failing and is only reported when it is hit, as a RuleError.
 */
const SAMPLES: readonly RuleVariables[] = [
  sampleMember(300 * MiB, 100 * MiB, 2 * GiB),
  sampleMember(1536 * MiB, 1228 * MiB, 8 * GiB, { isLeader: true, memberName: 'sample-leader' }),
  sampleMember(64 * MiB, 63 * MiB, 4 * GiB, { isLearner: true, memberName: 'sample-learner', version: '3.4.23' }),
  sampleMember(1945 * MiB, 410 * MiB, 2 * GiB, { version: '3.6.5' }),
];

type Arithmetic = '+' | '-' | '*' | '/';
const ARITHMETIC: Record<Arithmetic, (x: number, y: number) => number> = {
  '+': (x, y) => x + y,
  '-': (x, y) => x - y,
  '*': (x, y) => x * y,
  '/': (x, y) => x / y,
};

/** int ⊕ double in double arithmetic, failing where CEL's int arithmetic would rather than giving Infinity or NaN. */
function mixed(op: Arithmetic, x: number, y: number, node: ASTNode | undefined): number {
  // cel-js hands handlers the operator's AST node; an error built on it carries its position.
  if (op === '/' && y === 0) throw new (celJs().EvaluationError)({ code: 'division_by_zero', message: 'division by zero', node });
  const result = ARITHMETIC[op](x, y);
  if (!Number.isFinite(result)) {
    throw new (celJs().EvaluationError)({ code: 'numeric_overflow', message: `double overflow: ${x} ${op} ${y}`, node });
  }
  return result;
}

/** Exact: 2^53 + 1 == 9007199254740992.0 is false, as the values differ. */
function intEqualsDouble(a: bigint, b: number): boolean {
  return Number.isInteger(b) && a === BigInt(b);
}

function newEnvironment(): Environment {
  const env = new (celJs().Environment)();
  for (const [name, type] of Object.entries(VARIABLE_TYPES)) env.registerVariable(name, type);
  for (const [name, value] of Object.entries(CONSTANTS)) env.registerConstant(name, 'int', BigInt(value));
  for (const op of Object.keys(ARITHMETIC) as Arithmetic[]) {
    env.registerOperator(`int ${op} double: double`, (a: bigint, b: number, node?: ASTNode) => mixed(op, Number(a), b, node));
    env.registerOperator(`double ${op} int: double`, (a: number, b: bigint, node?: ASTNode) => mixed(op, a, Number(b), node));
  }
  // Also gives double == int and both != (cel-js derives them).
  env.registerOperator('int == double', intEqualsDouble);
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
    // The mixed overloads cover + - * / == and ordering; what is left is mostly %.
    return summary.includes('%') ? ' (% takes two ints: convert with int(...))' : ' (convert with int(...) or double(...))';
  }
  if (code === 'unknown_variable') return ` (known: ${RULE_NAMES.join(', ')})`;
  return '';
}

/**
 * V8's RangeError for a recursion that ran out of stack; cel-js parses, checks
 * and evaluates recursively. No regular expression here: compiling one needs
 * stack, which is what just ran out.
 */
function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && err.message.includes('call stack');
}

const TOO_DEEP = 'nested too deeply (the stack ran out); write it with fewer nested operators';

/** Turn a cel-js error into a one-line RuleError that points at the mistake. */
function toRuleError(prefix: string, source: string, err: unknown, suffix = ''): RuleError {
  if (isStackOverflow(err)) return new RuleError(`${prefix}: ${TOO_DEEP}`, null, { cause: err });
  const e = asCelError(err);
  const summary = (e.summary ?? e.message ?? 'unknown error').split('\n')[0] ?? '';
  const position = typeof e.range?.start === 'number' ? e.range.start : null;
  const at = position === null ? '' : ` at ${where(source, position)}`;
  const depth = e.code === 'limit_exceeded' ? /maxDepth \((\d+)\)/.exec(summary) : null;
  const what = depth ? `nested too deeply (more than ${depth[1]} levels)` : `${lowerFirst(summary)}${hint(e.code, summary)}`;
  return new RuleError(`${prefix}${at}: ${what}${suffix}`, position, { cause: err });
}

/** Integers as CEL ints (BigInt); throws on a non-finite figure, which no rule can judge. */
function toContext(vars: RuleVariables): Record<string, unknown> {
  const finite = (name: string, v: number): number => {
    if (!Number.isFinite(v)) throw new RuleError(`rule variable ${name} is not a number (${v})`);
    return v;
  };
  const int = (name: string, v: number): bigint => BigInt(Math.trunc(finite(name, v)));
  return {
    dbSize: int('dbSize', vars.dbSize),
    dbSizeInUse: int('dbSizeInUse', vars.dbSizeInUse),
    dbSizeFree: int('dbSizeFree', vars.dbSizeFree),
    dbQuota: int('dbQuota', vars.dbQuota),
    dbQuotaUsage: finite('dbQuotaUsage', vars.dbQuotaUsage),
    fragmentation: finite('fragmentation', vars.fragmentation),
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
 * Parse, type-check and try a CEL rule on sample members.
 *
 * @throws RuleError with a one-line message (and `position` when known) on an
 *   empty or over-long rule, a syntax error, an unknown variable, a type
 *   mismatch, a result that is not a bool, a rule nested too deeply, or one
 *   that fails whatever the member (`dbSize / 0 > 1`).
 * @example
 * const rule = compileRule('fragmentation >= 0.45 && dbSize >= 100*MiB');
 * rule.evaluate(vars); // true or false; throws RuleError if the rule fails for this member
 */
export function compileRule(source: string): Rule {
  if (source.trim() === '') {
    throw new RuleError(
      'invalid rule: it is empty, and an empty rule is refused; to defragment every member, pass --rule true or no --rule at all',
      0,
    );
  }
  if (source.length > MAX_RULE_LENGTH) {
    throw new RuleError(`invalid rule: it is ${source.length} characters long; the limit is ${MAX_RULE_LENGTH}`, MAX_RULE_LENGTH);
  }

  const env = newEnvironment();
  let program: ReturnType<Environment['parse']>;
  let checked: TypeCheckResult;
  try {
    program = env.parse(source);
    checked = program.check();
  } catch (err) {
    throw toRuleError('invalid rule', source, err);
  }
  if (!checked.valid) throw toRuleError('invalid rule', source, checked.error);
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw new RuleError(`invalid rule: it gives ${checked.type ?? 'an unknown type'}, but ${MUST_BE_BOOL}`, 0);
  }

  // See SAMPLES: refuse what fails on all of them, and a dyn rule that gives a non-bool on any.
  const failures: unknown[] = [];
  for (const sample of SAMPLES) {
    let result: unknown;
    try {
      result = program(toContext(sample));
    } catch (err) {
      if (isStackOverflow(err)) throw toRuleError('invalid rule', source, err);
      failures.push(err);
      continue;
    }
    if (typeof result !== 'boolean') {
      throw new RuleError(`invalid rule: it gives ${describe(result)} for a sample member, but ${MUST_BE_BOOL}`, 0);
    }
  }
  if (failures.length === SAMPLES.length) {
    throw toRuleError('invalid rule', source, failures[0], ' (whatever the member)');
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
 * did not answer (a rule cannot be judged without sizes). Who leads and who
 * is a learner are the planner's to say, so the caller passes them in.
 *
 * @example
 * const vars = ruleVariables(member, { isLeader: leaderOf(snapshot) === member.memberId, isLearner: isLearner(member) });
 * if (vars) rule.evaluate(vars);
 */
export function ruleVariables(member: MemberSnapshot, role: { isLeader: boolean; isLearner: boolean }): RuleVariables | null {
  const s = member.status;
  if (s === null) return null;
  return {
    dbSize: s.dbSize,
    dbSizeInUse: s.dbSizeInUse,
    dbSizeFree: s.dbSizeFree,
    dbQuota: s.quota,
    dbQuotaUsage: s.quotaUsage,
    fragmentation: s.fragmentation,
    isLeader: role.isLeader,
    isLearner: role.isLearner,
    memberName: member.name,
    version: s.version,
  };
}
