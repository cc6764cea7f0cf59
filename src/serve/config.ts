/**
 * The daemon's configuration file (`defragd serve --config defragd.yaml`):
 * YAML in, one frozen ServeConfig out, split per consumer (each cluster's
 * connection options for the client, policy for the planner, execute options
 * for the executor, its schedule for the scheduler).
 *
 * Everything wrong with a file is reported at once, one line per problem,
 * each naming its path (`clusters[1].schedule: invalid cron expression ...`),
 * so an operator fixes a file in one round instead of one error per restart.
 * Values are parsed with the CLI's own parsers and limits (src/domain/units.ts,
 * src/domain/limits.ts), so a duration means the same in a flag and here.
 *
 * Secrets: no password is written in the file. `password` takes only a
 * `${ENV_VAR}` reference, `passwordFile` a file read at load; `${NAME}` works
 * in every string value (`$${` for a literal `${`). The password then lives
 * only in each cluster's connection options, and redactedConfig() is the
 * printable form. Problems never quote a secret.
 *
 * Keys that go beyond the CLI's flags: `allowedHosts`, `maxConcurrentRuns`, `maxEventStreams`, `storeRetention`,
 * `password` (a `${ENV_VAR}` reference only), `record`, `recordPrefix`,
 * `dashboard`; every key is set in examples/defragd.yaml (a test checks it).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Cron } from 'croner';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { PolicyOptions } from '../app/defragment.js';
import { recordPrefix } from '../app/record.js';
import { checkReadinessUrl, DEFAULT_WAIT_FOR_URL_TIMEOUT_MS, MAX_WAIT_FOR_URL_TIMEOUT_MS, urlReadiness } from '../app/readiness.js';
import { DEFAULT_DISARM_BELOW, DEFAULT_RECORD_PREFIX } from '../domain/defaults.js';
import { UsageError, messageOf } from '../domain/errors.js';
import { formatDuration } from '../domain/format.js';
import {
  MAX_COMMAND_TIMEOUT_MS,
  MAX_DEFRAG_TIMEOUT_MS,
  MAX_DIAL_TIMEOUT_MS,
  MAX_MAX_DEFRAG_DURATION_MS,
  MAX_WAIT_BETWEEN_MS,
} from '../domain/limits.js';
import {
  parseDuration,
  parseFraction,
  parseLongDuration,
  parseNonNegativeInt,
  parsePositiveDuration,
  parseSize,
  type DurationBounds,
} from '../domain/units.js';
import { parseEndpoint } from '../etcd/endpoint.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_DIAL_TIMEOUT_MS, type ConnectionOptions } from '../etcd/options.js';
import { EXECUTE_DEFAULTS, type ExecuteOptions } from '../executor/options.js';
import { compileRule } from '../policy/index.js';
import { isLoopbackAddress } from './hosts.js';
import { parseWindow, validateTimezone, type Window } from './window.js';
import { cronOptions, startsThroughWindows, WINDOW_SEARCH_MS } from './schedule.js';

export type { Window } from './window.js';

/** Defaults of the file's keys, named once. */
export const SERVE_DEFAULTS = Object.freeze({
  /** Loopback: the API can start runs, so it is not on the network unless asked. */
  listen: '127.0.0.1:9479',
  store: './defragd.sqlite',
  maxConcurrentRuns: 1,
  /** Open `GET /api/v1/events` streams at once; more answer 503 (each holds a socket and a subscription). */
  maxEventStreams: 64,
  storeRetention: '90d',
  timezone: 'UTC',
  jitter: '0s',
  /** Observation interval, with or without `auto`. */
  observeInterval: '30s',
  cooldown: '6h',
  nospace: 'recover',
  record: true,
  /** The web dashboard at / on the listen address. */
  dashboard: true,
} as const);

/** A bad config file: every problem, one per line, each naming its path. Exit 2. */
export class ConfigError extends UsageError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(problems.join('\n'), options);
    this.problems = Object.freeze([...problems]);
  }
}

export type NospaceMode = 'recover' | 'ignore';

/** Compaction before each run: to the revision the cluster had `retainMs` ago, or to `revision - retainRevisions`. */
export type CompactionConfig = { readonly retainMs: number } | { readonly retainRevisions: number };

/** A cluster's cron schedule; it is read in the cluster's `timezone`, and its starts are kept to the cluster's `windows`. */
export interface ScheduleConfig {
  /** The cron expression as written (5 or 6 fields, croner). */
  readonly cron: string;
  /** Upper bound of the random delay added to each scheduled start. */
  readonly jitterMs: number;
}

export interface AutoConfig {
  readonly intervalMs: number;
  /** No auto run starts sooner than this after a run of the cluster finished. */
  readonly cooldownMs: number;
}

export interface ServeClusterConfig {
  readonly name: string;
  /** For the client; holds the password, when there is one (the only place that does). */
  readonly connection: ConnectionOptions;
  /**
   * For the planner (buildPolicy). `rule` is checked already; `disarmNospace`
   * is true with `nospace: recover`; `compactKeepRevisions` is
   * `compaction.retainRevisions` (a time-based `retain` is the daemon's to
   * turn into revisions from its samples); `maxDefragDurationMs` is
   * `defrag.maxDefragDuration`, per member: a member whose defrag is forecast
   * (from its own past defrags in the store, which the daemon adds) to take
   * longer is skipped.
   */
  readonly policy: PolicyOptions;
  /** For the executor: waitBetweenMs, continueOnError, and readiness (the URLs of `waitForUrl`, its files read). */
  readonly execute: ExecuteOptions;
  /** For observeCluster / the run's ObserveTarget: every member, from MemberList. */
  readonly observe: { readonly cluster: true; readonly quotaBytes: number | null };
  /** Null without `schedule`. */
  readonly schedule: ScheduleConfig | null;
  /** Null without `auto`. */
  readonly auto: AutoConfig | null;
  /** How often the cluster is observed: auto.interval, or 30 s. */
  readonly observeIntervalMs: number;
  /** IANA time zone the schedule and the windows are read in (the windows', also without a schedule). */
  readonly timezone: string;
  /** Also for auto runs; empty: any time. */
  readonly windows: readonly Window[];
  readonly nospace: NospaceMode;
  /** Null: no compaction before a run (NOSPACE recovery compacts to the newest revision). */
  readonly compaction: CompactionConfig | null;
  /** The in-cluster record of each defragmented member (`defragd last`); false: `record: false`. */
  readonly record: { readonly prefix: string } | false;
}

export interface ServeConfig {
  /** Where the HTTP server listens; port 0 picks a free one. */
  readonly listen: { readonly host: string; readonly port: number };
  /**
   * Host names (lower case, no port) the API serves besides localhost and IP literals, whatever the listen
   * address; null: localhost on a loopback address, any name on another (hosts.ts).
   */
  readonly allowedHosts: readonly string[] | null;
  /** Absolute path of the SQLite history, or ":memory:". */
  readonly store: string;
  /** Samples and runs older than this are deleted from the store. */
  readonly storeRetentionMs: number;
  /** The bearer token of the mutating API endpoints, read from apiTokenFile; null: they answer 403. */
  readonly apiToken: string | null;
  readonly maxConcurrentRuns: number;
  /** Event streams (SSE) open at once; more answer 503. */
  readonly maxEventStreams: number;
  /** Serve the web dashboard at / (`dashboard: false` turns it off; the API stays). */
  readonly dashboard: boolean;
  readonly clusters: readonly ServeClusterConfig[];
  /**
   * What the file allows but is worth a word (an API listening beyond loopback, a token file others can
   * read): logged at start, printed by --check-config.
   */
  readonly warnings: readonly string[];
}

export interface LoadOptions {
  /** Reads a file as UTF-8 text (passwordFile, apiTokenFile, the config itself); node:fs by default. */
  readFile?: ((path: string) => string) | undefined;
  /**
   * A file's permission bits (apiTokenFile), or null when they cannot be told. node:fs by default; with
   * readFile given and this not, null: the caller's files have no modes on disk.
   */
  fileMode?: ((path: string) => number | null) | undefined;
}

/** node:fs's mode bits; null on Windows (no such bits) or when the file cannot be stat'ed (its read says why). */
function diskFileMode(path: string): number | null {
  if (process.platform === 'win32') return null;
  try {
    return statSync(path).mode & 0o7777;
  } catch {
    return null;
  }
}

/** Environment variables by name, as process.env. */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

const REDACTED = '<redacted>';

// ---------------------------------------------------------------------------
// Values: each parser returns the value or throws UsageError with a message
// that starts with `source: `; problems get the path instead.
// ---------------------------------------------------------------------------

/** Placeholder source, cut off again: the message then starts at the reason. */
const SRC = '\u0000';
function reason(err: unknown): string {
  const m = messageOf(err);
  return m.startsWith(`${SRC}: `) ? m.slice(SRC.length + 2) : m;
}

/** Adds a custom issue with this message (the path is the value's own). */
function check<T>(parse: (text: string) => T) {
  return (v: string | number, ctx: z.RefinementCtx): T => {
    try {
      return parse(String(v));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: reason(err) });
      return z.NEVER;
    }
  };
}

const text = z.string();
const scalar = z.union([z.string(), z.number()]);
const duration = (bounds?: DurationBounds) => scalar.transform(check((t) => parseDuration(t, SRC, bounds)));
const positiveDuration = (bounds?: DurationBounds) => scalar.transform(check((t) => parsePositiveDuration(t, SRC, bounds)));
const longDuration = scalar.transform(check((t) => parseLongDuration(t, SRC)));
/** true/false, or "true"/"false" (what a `${VAR}` gives). */
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')]);
const nonNegativeInt = scalar.transform(check((t) => parseNonNegativeInt(t, SRC)));
const positiveInt = scalar.transform(
  check((t) => {
    const n = parseNonNegativeInt(t, SRC);
    if (n < 1) throw new UsageError('must be at least 1');
    return n;
  }),
);

function parseListen(t: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(t.trim());
  const port = Number(m?.[2]);
  if (!m || port > 65_535) throw new UsageError(`invalid address "${t}": expected host:port, e.g. 127.0.0.1:9479 or [::1]:9479`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

/** A DNS name as a Host header carries it: letters, digits, "-" and dots; lower-cased, a trailing dot dropped. */
function parseHostName(t: string): string {
  const name = t.trim().toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(name) || name.length > 253) {
    throw new UsageError(
      `"${t}" is not a host name: give a name as the browser's address bar has it, without scheme, port or path (e.g. defragd.example.com)`,
    );
  }
  return name;
}

/** An IANA zone name, as Intl knows them (croner uses Intl too). */
function isTimezone(t: string): boolean {
  try {
    validateTimezone(t);
    return true;
  } catch {
    return false;
  }
}

function parseTimezone(t: string): string {
  validateTimezone(t);
  return t;
}

/** An endpoint as the client takes it (host:port, http://, https://), checked now rather than at the first connection. */
function checkEndpoint(t: string): string {
  if (t.trim() === '') throw new UsageError('empty endpoint');
  // Never echoed: it may hold a password, which would then be in every problem and --check-config.
  if (/^[a-z]+:\/\/[^/]*@/i.test(t.trim()) || /^[^/]*@/.test(t.trim())) {
    throw new UsageError('has a user or password in it (user:password@): give user and passwordFile instead');
  }
  parseEndpoint(t);
  return t.trim();
}

function parseRule(t: string): string {
  if (t.trim() === '') throw new UsageError('the rule is empty; to defragment every member, leave rule out or write rule: "true"');
  compileRule(t);
  return t;
}

/** The sub-objects: strict, so a typo is a problem. Their keys feed "did you mean". */
const AUTO_SHAPE = { interval: positiveDuration().optional(), cooldown: longDuration.optional() };
const COMPACTION_SHAPE = { retain: longDuration.optional(), retainRevisions: nonNegativeInt.optional() };
const DEFRAG_SHAPE = {
  moveLeader: bool.optional(),
  waitBetween: duration({ maxMs: MAX_WAIT_BETWEEN_MS }).optional(),
  defragTimeout: positiveDuration({ maxMs: MAX_DEFRAG_TIMEOUT_MS }).nullable().optional(),
  continueOnError: bool.optional(),
  skipHealthCheck: bool.optional(),
  allowKnownDefects: bool.optional(),
  disarmBelow: scalar.transform(check((t) => parseFraction(t, SRC))).optional(),
  maxDefragDuration: positiveDuration({ maxMs: MAX_MAX_DEFRAG_DURATION_MS }).optional(),
};

/** --wait-for-url and its options, as a cluster's `waitForUrl`. */
const WAIT_FOR_URL_SHAPE = {
  urls: z.array(text.transform(check((t) => checkReadinessUrl(t, SRC)))).min(1, { message: 'must list at least one URL' }),
  timeout: positiveDuration({ maxMs: MAX_WAIT_FOR_URL_TIMEOUT_MS }).optional(),
  cacert: text.optional(),
  cert: text.optional(),
  key: text.optional(),
  tokenFile: text.optional(),
  insecureSkipTlsVerify: bool.optional(),
};

const CLUSTER_SHAPE = {
  name: text.regex(/^[a-z0-9-]+$/, { message: 'must be lower-case letters, digits and "-" ([a-z0-9-]+)' }),
  endpoints: z.array(text.transform(check(checkEndpoint))).min(1, { message: 'must list at least one endpoint' }),
  cacert: text.optional(),
  cert: text.optional(),
  key: text.optional(),
  serverName: text.optional(),
  insecureSkipTlsVerify: bool.optional(),
  user: text.optional(),
  /** Only a `${ENV_VAR}` reference: checked before interpolation. */
  password: text.optional(),
  passwordFile: text.optional(),
  dialTimeout: positiveDuration({ maxMs: MAX_DIAL_TIMEOUT_MS }).optional(),
  commandTimeout: positiveDuration({ maxMs: MAX_COMMAND_TIMEOUT_MS }).optional(),
  quotaBytes: scalar.transform(check((t) => parseSize(t, SRC))).optional(),
  rule: text.transform(check(parseRule)).optional(),
  schedule: text.optional(),
  timezone: text.transform(check(parseTimezone)).optional(),
  jitter: duration().optional(),
  windows: z.array(text.transform(check(parseWindow))).optional(),
  auto: z.strictObject(AUTO_SHAPE).optional(),
  nospace: z.enum(['recover', 'ignore']).optional(),
  compaction: z.strictObject(COMPACTION_SHAPE).optional(),
  defrag: z.strictObject(DEFRAG_SHAPE).optional(),
  record: bool.optional(),
  recordPrefix: text.transform(check((t) => recordPrefix(t, SRC))).optional(),
  waitForUrl: z.strictObject(WAIT_FOR_URL_SHAPE).optional(),
};

const TOP_SHAPE = {
  listen: text.transform(check(parseListen)).optional(),
  allowedHosts: z.array(text.transform(check(parseHostName))).optional(),
  store: text.optional(),
  apiTokenFile: text.optional(),
  maxConcurrentRuns: positiveInt.optional(),
  maxEventStreams: positiveInt.optional(),
  storeRetention: longDuration.optional(),
  dashboard: bool.optional(),
  clusters: z.array(z.strictObject(CLUSTER_SHAPE)).min(1, { message: 'must list at least one cluster' }),
};

const SCHEMA = z.strictObject(TOP_SHAPE);
type Parsed = z.output<typeof SCHEMA>;
type ParsedCluster = Parsed['clusters'][number];

/** Known keys per object, by its path with the list indexes left out. */
const KEYS: Record<string, readonly string[]> = {
  '': Object.keys(TOP_SHAPE),
  clusters: Object.keys(CLUSTER_SHAPE).filter((k) => k !== 'password'),
  'clusters.auto': Object.keys(AUTO_SHAPE),
  'clusters.compaction': Object.keys(COMPACTION_SHAPE),
  'clusters.defrag': Object.keys(DEFRAG_SHAPE),
  'clusters.waitForUrl': Object.keys(WAIT_FOR_URL_SHAPE),
};

// ---------------------------------------------------------------------------
// Paths and messages
// ---------------------------------------------------------------------------

type Path = readonly PropertyKey[];

/** ['clusters', 1, 'schedule'] → "clusters[1].schedule". */
export function formatPath(path: Path): string {
  return path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : out === '' ? String(p) : `${out}.${String(p)}`), '');
}

function line(path: Path, message: string): string {
  return path.length === 0 ? message : `${formatPath(path)}: ${message}`;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0] as number;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j] as number;
      d[j] = Math.min(cur + 1, (d[j - 1] as number) + 1, prev + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length] as number;
}

function didYouMean(key: string, known: readonly string[]): string {
  const best = known.map((k) => ({ k, d: distance(key, k) })).sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean "${best.k}"?)` : '';
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

/** One zod issue → its problems; the messages are ours, never zod's defaults (they would not say what to write). */
function issueProblems(issue: z.core.$ZodIssue): [Path, string][] {
  const path = issue.path;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = KEYS[path.filter((p) => typeof p !== 'number').join('.')] ?? [];
      return issue.keys.map((k): [Path, string] =>
        k === 'password' && path.length === 0
          ? [['password'], 'unknown key: a password belongs to a cluster, as passwordFile or password: ${ENV_VAR}']
          : [[...path, k], `unknown key${didYouMean(k, known)}`],
      );
    }
    case 'invalid_type':
      return [
        [
          path,
          issue.input === undefined
            ? 'is required'
            : `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${typeName(issue.input)}`,
        ],
      ];
    case 'invalid_union': {
      // Our unions are "a string or a number" and "true or false": say what was given.
      const scalarUnion = issue.errors.every((branch) => branch.some((i) => i.code === 'invalid_type'));
      if (scalarUnion) {
        const expected = issue.errors.flatMap((b) =>
          b.filter((i) => i.code === 'invalid_type').map((i) => (i as { expected: string }).expected),
        );
        const what = expected.includes('boolean') ? 'true or false' : 'a string';
        return [[path, issue.input === undefined ? 'is required' : `expected ${what}, got ${typeName(issue.input)}`]];
      }
      // A branch that got the type right has the real problem (e.g. "maybe" for a boolean).
      const inner = issue.errors.find((b) => !b.some((i) => i.code === 'invalid_type')) ?? issue.errors[0] ?? [];
      return inner.flatMap((i) => issueProblems({ ...i, path: [...path, ...i.path] }));
    }
    case 'invalid_value':
      return [[path, `expected ${issue.values.map((v) => String(v)).join(' or ')}, got ${JSON.stringify(issue.input)}`]];
    default:
      return [[path, issue.message]];
  }
}

const BY_PATH = new Intl.Collator('en', { numeric: true });

/** The problems found so far, each with its path; printed sorted by path, so clusters[2] comes before clusters[10]. */
class Problems {
  private readonly found: { path: Path; message: string }[] = [];

  add(path: Path, message: string): void {
    this.found.push({ path, message });
  }

  /** A problem was reported at this path or above it (then what is below is not judged again). */
  covers(path: Path): boolean {
    return this.found.some((p) => p.path.length <= path.length && p.path.every((k, i) => k === path[i]));
  }

  get size(): number {
    return this.found.length;
  }

  lines(): string[] {
    const sorted = [...this.found].sort((a, b) => BY_PATH.compare(formatPath(a.path), formatPath(b.path)));
    return [...new Set(sorted.map((p) => line(p.path, p.message)))];
  }
}

// ---------------------------------------------------------------------------
// ${VAR} interpolation
// ---------------------------------------------------------------------------

const ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** Replaces `${NAME}` in one string; `$${` is a literal `${`. Problems are reported, the value left as is. */
function interpolate(s: string, env: ConfigEnv, path: Path, problems: Problems): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (s.startsWith('${', i)) {
      const end = s.indexOf('}', i);
      const name = end < 0 ? null : s.slice(i + 2, end);
      if (name === null || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        // A password's text is never quoted, not even a piece of it.
        const what =
          path[path.length - 1] === 'password'
            ? 'an invalid reference'
            : `invalid reference "${s.slice(i, end < 0 ? undefined : end + 1)}"`;
        problems.add(path, `${what}: write \${NAME} (letters, digits, _), or $\${ for a literal \${`);
        return s;
      }
      const value = env[name];
      if (value === undefined) {
        problems.add(path, `environment variable ${name} is not set`);
        return s;
      }
      out += value;
      i = end + 1;
    } else {
      out += s[i];
      i += 1;
    }
  }
  return out;
}

/** Every string value interpolated (keys are not); a new tree. */
function interpolateTree(v: unknown, env: ConfigEnv, path: Path, problems: Problems): unknown {
  if (typeof v === 'string') return interpolate(v, env, path, problems);
  if (Array.isArray(v)) return v.map((x, i) => interpolateTree(x, env, [...path, i], problems));
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateTree(x, env, [...path, k], problems)]));
  }
  return v;
}

/** `password:` in the raw file must be a `${ENV_VAR}` reference: a literal is a secret written down. The value is never quoted. */
function literalPasswords(raw: Record<string, unknown>, problems: Problems): void {
  const clusters = raw['clusters'];
  if (!Array.isArray(clusters)) return;
  clusters.forEach((c: unknown, i) => {
    if (c === null || typeof c !== 'object' || !('password' in c)) return;
    const p = (c as { password: unknown }).password;
    if (typeof p !== 'string' || !ENV_REF.test(p.trim())) {
      problems.add(['clusters', i, 'password'], 'a password is not written in the config file: use passwordFile, or password: ${ENV_VAR}');
    }
  });
}

// ---------------------------------------------------------------------------
// Checks across keys, and the files a config names
// ---------------------------------------------------------------------------

type Loose = Record<string, unknown>;
const asObject = (v: unknown): Loose | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Loose) : null);
const asString = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The API token's shortest length: it guards starting runs. */
export const MIN_TOKEN_LENGTH = 16;

function readSecretFile(file: string, path: Path, readFile: (p: string) => string, problems: Problems): string | null {
  let content: string;
  try {
    content = readFile(file);
  } catch (err) {
    const code = (err as { code?: string }).code;
    problems.add(path, code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot be read (${code ?? messageOf(err)})`);
    return null;
  }
  const secret = content.trim();
  if (secret === '') {
    problems.add(path, `${file}: the file is empty`);
    return null;
  }
  return secret;
}

/**
 * Scheduled runs closer together than this would defragment members back to back (a schedule every second
 * defragmented each follower 57 times in a minute): auto mode, with its rule and cooldown, is for frequent checks.
 */
export const MIN_SCHEDULE_GAP_MS = 60_000;

/** Where a schedule's checks look from: a fixed instant, so a file's verdict does not depend on the day. */
const SCHEDULE_CHECK_FROM_MS = Date.UTC(2026, 0, 1);

function cronProblem(expr: string, timezone: string, jitterMs: number | null): string | null {
  try {
    // Over a year of starts from a fixed instant: the shortest gap between two, and whether it fires at all.
    const starts = new Cron(expr, cronOptions(timezone)).nextRuns(400, new Date(SCHEDULE_CHECK_FROM_MS)).map((d) => d.getTime());
    if (starts.length === 0) return `"${expr}" never fires (no such date)`;
    let gap = Infinity;
    for (let i = 1; i < starts.length; i++) gap = Math.min(gap, (starts[i] as number) - (starts[i - 1] as number));
    if (gap < MIN_SCHEDULE_GAP_MS) {
      return `"${expr}" starts runs ${formatDuration(gap)} apart; scheduled runs at least ${formatDuration(MIN_SCHEDULE_GAP_MS)} apart (for frequent checks, use auto with a rule and a cooldown)`;
    }
    if (jitterMs !== null && Number.isFinite(gap) && jitterMs >= gap) {
      return `jitter ${formatDuration(jitterMs)} is as long as the ${formatDuration(gap)} between two starts of "${expr}": a start would fall after the next one`;
    }
    return null;
  } catch (err) {
    const why = messageOf(err).replace(/^CronPattern: /, '');
    return `invalid cron expression "${expr}": ${why}`;
  }
}

/** How the files a config names are read. */
interface Files {
  readFile: (path: string) => string;
  fileMode: (path: string) => number | null;
}

const octal = (mode: number) => mode.toString(8).padStart(4, '0');

/**
 * The token file's permissions: world-writable is refused (anyone could set the token that starts runs);
 * readable by others is a warning (a Kubernetes secret volume is 0644 by default, inside its pod).
 */
function tokenFileMode(file: string, mode: number | null, problems: Problems, warnings: string[]): void {
  if (mode === null) return;
  if ((mode & 0o002) !== 0) {
    problems.add(
      ['apiTokenFile'],
      `${file}: mode ${octal(mode)} is world-writable: any user could replace the token; fix: chmod o-w ${file}`,
    );
    return;
  }
  const readers = [(mode & 0o040) !== 0 && 'group', (mode & 0o004) !== 0 && 'world'].filter(Boolean);
  if (readers.length > 0) {
    warnings.push(
      `apiTokenFile: ${file}: mode ${octal(mode)} is ${readers.join('- and ')}-readable: other users can read the token that starts runs; chmod go-r ${file} keeps it to defragd's user`,
    );
  }
}

/**
 * A schedule none of whose starts falls inside its windows would never start a run: its starts are all
 * skipped. Looked for over WINDOW_SEARCH_MS from a fixed instant, so a file's verdict does not change with
 * the day it is checked. Windows with problems of their own are not judged here.
 */
function windowsProblem(expr: string, timezone: string, rawWindows: unknown): string | null {
  if (!Array.isArray(rawWindows) || rawWindows.length === 0) return null;
  let windows: Window[];
  try {
    windows = rawWindows.map((w) => parseWindow(String(w)));
  } catch {
    return null;
  }
  if (startsThroughWindows(expr, timezone, windows, SCHEDULE_CHECK_FROM_MS, 1).runs > 0) return null;
  const years = Math.round(WINDOW_SEARCH_MS / (365.25 * 86_400_000));
  return `no start of "${expr}" falls inside the windows (${windows.map((w) => w.text).join(', ')}; looked ${years} years ahead): every one would be skipped, so it never starts a run; move its time into a window, or widen the windows`;
}

interface Secrets {
  /** Per cluster, by index: its password, or null. */
  passwords: (string | null)[];
  apiToken: string | null;
  /** Per cluster, by index: the contents of its waitForUrl files (read once, at load and at each reload). */
  urlFiles: UrlFiles[];
}

interface UrlFiles {
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
}

/** A cluster's waitForUrl files, read; cert and key together. Problems name each key. */
function waitForUrlFiles(w: Loose | null, at: Path, baseDir: string, readFile: (p: string) => string, problems: Problems): UrlFiles {
  const out: UrlFiles = {};
  if (w === null) return out;
  if ((w['cert'] === undefined) !== (w['key'] === undefined))
    problems.add([...at, w['cert'] === undefined ? 'key' : 'cert'], 'cert and key go together: give both or neither');
  const read = (key: 'cacert' | 'cert' | 'key' | 'tokenFile'): string | undefined => {
    const file = asString(w[key]);
    if (file === null || problems.covers([...at, key])) return undefined;
    return readSecretFile(resolve(baseDir, file), [...at, key], readFile, problems) ?? undefined;
  };
  const [ca, cert, key, token] = [read('cacert'), read('cert'), read('key'), read('tokenFile')];
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  if (token !== undefined) out.token = token;
  return out;
}

/**
 * What the schema cannot say key by key: cron (read in the cluster's time
 * zone), names unique, compaction's two forms, user and password together,
 * and the secret files read. Runs on the interpolated tree whether or not the
 * schema passed, so one round reports everything; a value that already has a
 * problem (an unset variable) is not judged again.
 */
function crossChecks(data: Loose, baseDir: string, files: Files, problems: Problems, warnings: string[]): Secrets {
  const { readFile } = files;
  const passwords: (string | null)[] = [];
  const firstIndex = new Map<string, number>();
  const clusters = Array.isArray(data['clusters']) ? (data['clusters'] as unknown[]) : [];
  clusters.forEach((raw, i) => {
    passwords.push(null);
    const c = asObject(raw);
    if (!c) return;
    const at = (...p: PropertyKey[]): Path => ['clusters', i, ...p];
    const ok = (key: string) => c[key] !== undefined && !problems.covers(at(key));

    const name = asString(c['name']);
    if (name !== null) {
      const first = firstIndex.get(name);
      if (first !== undefined) problems.add(at('name'), `duplicate cluster name "${name}" (also clusters[${first}])`);
      else firstIndex.set(name, i);
    }

    const schedule = asString(c['schedule']);
    if (schedule !== null && ok('schedule')) {
      // A bad time zone is its own problem; the expression is still checked, in UTC.
      const tz = asString(c['timezone']);
      const jitter = asString(c['jitter']);
      let jitterMs: number | null = null;
      try {
        jitterMs = jitter === null ? null : parseDuration(jitter, 'jitter');
      } catch {
        // its own problem
      }
      const zone = tz !== null && isTimezone(tz) ? tz : SERVE_DEFAULTS.timezone;
      const problem =
        cronProblem(schedule, zone, jitterMs) ?? (ok('timezone') || tz === null ? windowsProblem(schedule, zone, c['windows']) : null);
      if (problem) problems.add(at('schedule'), problem);
    }

    const compaction = asObject(c['compaction']);
    if (compaction && compaction['retain'] !== undefined && compaction['retainRevisions'] !== undefined) {
      problems.add(at('compaction'), 'give retain or retainRevisions, not both');
    } else if (compaction && compaction['retain'] === undefined && compaction['retainRevisions'] === undefined) {
      problems.add(at('compaction'), 'give retain (a duration) or retainRevisions (a number)');
    }

    const user = asString(c['user']);
    const hasPassword = c['password'] !== undefined || c['passwordFile'] !== undefined;
    if (c['password'] !== undefined && c['passwordFile'] !== undefined) {
      problems.add(at('passwordFile'), 'give password or passwordFile, not both');
    } else if (ok('passwordFile') && typeof c['passwordFile'] === 'string') {
      passwords[i] = readSecretFile(resolve(baseDir, c['passwordFile']), at('passwordFile'), readFile, problems);
    } else if (ok('password') && typeof c['password'] === 'string') {
      // An empty variable is no password (as the CLI reads an empty ETCDCTL_PASSWORD as unset).
      if (c['password'] === '') problems.add(at('password'), 'the environment variable it names is empty');
      else passwords[i] = c['password'];
    }
    if (user?.includes(':')) {
      problems.add(at('user'), 'a user name only (no "user:password"): give the password with passwordFile or password: ${ENV_VAR}');
    } else if (c['user'] !== undefined && !hasPassword) {
      problems.add(at('user'), 'user given without a password: add passwordFile, or password: ${ENV_VAR}');
    } else if (c['user'] === undefined && hasPassword) {
      problems.add(at(c['passwordFile'] !== undefined ? 'passwordFile' : 'password'), 'a password given without user');
    }
  });

  const store = asString(data['store']);
  if (store !== null && store.trim() === '') problems.add(['store'], 'must not be empty (a file, or ":memory:")');
  const tokenFile = asString(data['apiTokenFile']);
  const apiToken =
    tokenFile !== null && !problems.covers(['apiTokenFile'])
      ? readSecretFile(resolve(baseDir, tokenFile), ['apiTokenFile'], readFile, problems)
      : null;
  if (apiToken !== null && tokenFile !== null) {
    // Never quoted: a problem line is printed and logged.
    const file = resolve(baseDir, tokenFile);
    if (/\s/.test(apiToken))
      problems.add(['apiTokenFile'], `${file}: the token has whitespace in it (a bearer token cannot: every request would be refused)`);
    else if (apiToken.length < MIN_TOKEN_LENGTH) {
      problems.add(
        ['apiTokenFile'],
        `${file}: the token is ${apiToken.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)`,
      );
    }
    tokenFileMode(file, files.fileMode(file), problems, warnings);
  }
  const urlFiles = clusters.map((raw, i) =>
    waitForUrlFiles(asObject(asObject(raw)?.['waitForUrl']), ['clusters', i, 'waitForUrl'], baseDir, readFile, problems),
  );
  return { passwords, apiToken, urlFiles };
}

// ---------------------------------------------------------------------------
// Building the frozen config
// ---------------------------------------------------------------------------

function buildCluster(c: ParsedCluster, password: string | null, urlFiles: UrlFiles, baseDir: string): ServeClusterConfig {
  const file = (f: string | undefined) => (f === undefined ? undefined : resolve(baseDir, f));
  const timezone = c.timezone ?? SERVE_DEFAULTS.timezone;
  const windows = Object.freeze(c.windows ?? []);
  const anyTls =
    c.cacert !== undefined || c.cert !== undefined || c.key !== undefined || c.insecureSkipTlsVerify === true || c.serverName !== undefined;
  const connection: ConnectionOptions = Object.freeze({
    endpoints: Object.freeze([...c.endpoints]) as string[],
    tls: anyTls
      ? Object.freeze({
          caFile: file(c.cacert),
          certFile: file(c.cert),
          keyFile: file(c.key),
          insecureSkipVerify: c.insecureSkipTlsVerify ?? false,
          serverName: c.serverName,
        })
      : null,
    auth: c.user !== undefined && password !== null ? Object.freeze({ user: c.user, password }) : null,
    dialTimeoutMs: c.dialTimeout ?? DEFAULT_DIAL_TIMEOUT_MS,
    commandTimeoutMs: c.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS,
  });
  const nospace = c.nospace ?? SERVE_DEFAULTS.nospace;
  const compaction: CompactionConfig | null =
    c.compaction?.retain !== undefined
      ? Object.freeze({ retainMs: c.compaction.retain })
      : c.compaction?.retainRevisions !== undefined
        ? Object.freeze({ retainRevisions: c.compaction.retainRevisions })
        : null;
  const policy: PolicyOptions = Object.freeze({
    rule: c.rule ?? null,
    moveLeader: c.defrag?.moveLeader ?? true,
    skipHealthCheck: c.defrag?.skipHealthCheck ?? false,
    allowKnownDefects: c.defrag?.allowKnownDefects ?? false,
    compactKeepRevisions: compaction && 'retainRevisions' in compaction ? compaction.retainRevisions : null,
    disarmNospace: nospace === 'recover',
    disarmBelow: c.defrag?.disarmBelow ?? DEFAULT_DISARM_BELOW,
    defragTimeoutMs: c.defrag?.defragTimeout ?? null,
    maxDefragDurationMs: c.defrag?.maxDefragDuration ?? null,
  });
  const w = c.waitForUrl;
  const execute: ExecuteOptions = Object.freeze({
    waitBetweenMs: c.defrag?.waitBetween ?? EXECUTE_DEFAULTS.waitBetweenMs,
    continueOnError: c.defrag?.continueOnError ?? false,
    readiness: w
      ? urlReadiness({
          urls: w.urls,
          timeoutMs: w.timeout ?? DEFAULT_WAIT_FOR_URL_TIMEOUT_MS,
          ca: urlFiles.ca,
          cert: urlFiles.cert,
          key: urlFiles.key,
          bearerToken: urlFiles.token,
          insecureSkipTlsVerify: w.insecureSkipTlsVerify ?? false,
        })
      : null,
  });
  const observeIntervalMs = parseDuration(SERVE_DEFAULTS.observeInterval, 'observeInterval');
  const auto: AutoConfig | null = c.auto
    ? Object.freeze({
        intervalMs: c.auto.interval ?? observeIntervalMs,
        cooldownMs: c.auto.cooldown ?? parseLongDuration(SERVE_DEFAULTS.cooldown, 'cooldown'),
      })
    : null;
  return Object.freeze({
    name: c.name,
    connection,
    policy,
    execute,
    observe: Object.freeze({ cluster: true as const, quotaBytes: c.quotaBytes ?? null }),
    schedule:
      c.schedule !== undefined
        ? Object.freeze({ cron: c.schedule, jitterMs: c.jitter ?? parseDuration(SERVE_DEFAULTS.jitter, 'jitter') })
        : null,
    auto,
    observeIntervalMs: auto?.intervalMs ?? observeIntervalMs,
    timezone,
    windows,
    nospace,
    compaction,
    record: (c.record ?? SERVE_DEFAULTS.record) ? Object.freeze({ prefix: c.recordPrefix ?? DEFAULT_RECORD_PREFIX }) : false,
  });
}

/**
 * What a listen address beyond loopback exposes, as http.ts serves it: every read without a token, runs
 * only with the token (off without one); null on loopback.
 */
function exposure(listen: { host: string; port: number }, token: boolean, allowedHosts: boolean): string | null {
  if (isLoopbackAddress(listen.host)) return null;
  const address = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  return [
    `listen: ${address} is beyond loopback: whoever reaches it reads without a token the clusters (members, endpoints, sizes), run history, events, /metrics and the dashboard`,
    token ? 'starting a run needs the API token' : 'starting a run is off (no apiTokenFile)',
    ...(allowedHosts ? [] : ['any Host name is served (allowedHosts limits them)']),
  ].join('; ');
}

/**
 * Parses and checks a config file's text. `baseDir` is what relative paths
 * (store, apiTokenFile, passwordFile, cacert, cert, key) are resolved against:
 * the config file's directory. Throws ConfigError with every problem.
 *
 * @example parseConfig('clusters: [{ name: prod, endpoints: ["127.0.0.1:2379"] }]', process.env, process.cwd())
 */
export function parseConfig(text: string, env: ConfigEnv, baseDir: string, opts: LoadOptions = {}): ServeConfig {
  const files: Files = {
    readFile: opts.readFile ?? ((p: string) => readFileSync(p, 'utf8')),
    fileMode: opts.fileMode ?? (opts.readFile ? () => null : diskFileMode),
  };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return `line ${pos.line}, column ${pos.col}: invalid YAML: ${e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
    );
  }
  const raw = asObject(doc.toJS() ?? {});
  if (!raw) throw new ConfigError([`the config must be a mapping of keys (listen, store, clusters, ...), got ${typeName(doc.toJS())}`]);

  const problems = new Problems();
  literalPasswords(raw, problems);
  const data = interpolateTree(raw, env, [], problems) as Loose;
  const parsed = SCHEMA.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    for (const [path, message] of parsed.error.issues.flatMap(issueProblems)) if (!problems.covers(path)) problems.add(path, message);
  }
  const warnings: string[] = [];
  const secrets = crossChecks(data, baseDir, files, problems, warnings);
  if (!parsed.success || problems.size > 0) throw new ConfigError(problems.lines());

  const c = parsed.data;
  const listen = c.listen ?? parseListen(SERVE_DEFAULTS.listen);
  const exposed = exposure(listen, secrets.apiToken !== null, c.allowedHosts !== undefined);
  if (exposed !== null) warnings.unshift(exposed);
  const store = c.store ?? SERVE_DEFAULTS.store;
  return Object.freeze({
    listen: Object.freeze(listen),
    allowedHosts: c.allowedHosts ? Object.freeze([...new Set(c.allowedHosts)]) : null,
    store: store === ':memory:' ? store : resolve(baseDir, store),
    storeRetentionMs: c.storeRetention ?? parseLongDuration(SERVE_DEFAULTS.storeRetention, 'storeRetention'),
    apiToken: secrets.apiToken,
    maxConcurrentRuns: c.maxConcurrentRuns ?? SERVE_DEFAULTS.maxConcurrentRuns,
    maxEventStreams: c.maxEventStreams ?? SERVE_DEFAULTS.maxEventStreams,
    dashboard: c.dashboard ?? SERVE_DEFAULTS.dashboard,
    clusters: Object.freeze(c.clusters.map((cl, i) => buildCluster(cl, secrets.passwords[i] ?? null, secrets.urlFiles[i] ?? {}, baseDir))),
    warnings: Object.freeze(warnings),
  });
}

/**
 * Reads and parses a config file; relative paths in it resolve against its
 * directory. Throws ConfigError (exit 2) with every problem, one per line.
 *
 * @example const config = loadConfig('/etc/defragd/defragd.yaml', process.env);
 */
export function loadConfig(path: string, env: ConfigEnv, opts: LoadOptions = {}): ServeConfig {
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const file = resolve(path);
  let content: string;
  try {
    content = readFile(file);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ConfigError([`${path}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(err)})`}`], { cause: err });
  }
  return parseConfig(content, env, dirname(file), { readFile, fileMode: opts.fileMode ?? (opts.readFile ? undefined : diskFileMode) });
}

/**
 * A printable copy: the same shape, every secret (passwords, the API token)
 * replaced by "<redacted>". What `--check-config`, logs and the API show.
 *
 * @example JSON.stringify(redactedConfig(config))
 */
export function redactedConfig(config: ServeConfig): ServeConfig {
  return Object.freeze({
    ...config,
    apiToken: config.apiToken === null ? null : REDACTED,
    clusters: Object.freeze(
      config.clusters.map((c) =>
        Object.freeze({
          ...c,
          connection: Object.freeze({
            ...c.connection,
            auth: c.connection.auth ? Object.freeze({ ...c.connection.auth, password: REDACTED }) : c.connection.auth,
          }),
        }),
      ),
    ),
  });
}
