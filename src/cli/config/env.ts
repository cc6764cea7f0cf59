/**
 * Options that fall back to environment variables, and the memory of where
 * each value came from. A value read from ETCDCTL_DIAL_TIMEOUT must be
 * blamed on ETCDCTL_DIAL_TIMEOUT, not on --dial-timeout, or the operator
 * looks for a flag they never typed. The sources travel inside the resolved
 * options (under a symbol key, which survives `{ ...opts, cluster: true }`),
 * so the config builders find them without commands passing anything.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../../domain/errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Key of the per-option source names inside ResolvedOptions. */
export const SOURCES: unique symbol = Symbol('defragd.optionSources');

/** Option values by attribute name (commander's `opts()`), plus where each came from. */
export type ResolvedOptions = Record<string, unknown> & {
  /** Attribute name → "--flag", "DEFRAGD_X" or "ETCDCTL_X". */
  readonly [SOURCES]?: Readonly<Record<string, string>>;
};

/**
 * A commander Option that falls back to environment variables, tried in the
 * order given, when it is not on the command line. Its help text lists them.
 *
 * @example cmd.addOption(new EnvOption('--rule <cel>', 'rule per member', ['DEFRAGD_RULE']))
 */
export class EnvOption extends Option {
  readonly envNames: readonly string[];
  constructor(flags: string, description: string, envNames: readonly string[]) {
    super(flags, envNames.length > 0 ? `${description} [env ${envNames.join(', ')}]` : description);
    this.envNames = Object.freeze([...envNames]);
  }
}

/**
 * Option values of `cmd` after parsing, with environment fallbacks applied to
 * every EnvOption not given on the command line. An empty variable counts as
 * unset. Booleans read from the environment take true/false/1/0/yes/no/on/off;
 * a negated flag (--no-lock, env DEFRAGD_NO_LOCK) is set by a true value.
 * Throws UsageError naming the variable for a bad boolean.
 *
 * @example clusterConfig(withEnv(cmd, process.env))
 */
export function withEnv(cmd: Command, env: Env): ResolvedOptions {
  const opts: Record<string, unknown> = { ...cmd.opts() };
  const sources: Record<string, string> = {};
  for (const o of cmd.options) {
    const key = o.attributeName();
    // --move-leader and --no-move-leader would share a key: the first one declared names it.
    sources[key] ??= o.long ?? o.flags;
    if (!(o instanceof EnvOption) || cmd.getOptionValueSource(key) === 'cli') continue;
    for (const name of o.envNames) {
      const text = env[name];
      if (text === undefined || text === '') continue;
      opts[key] = o.required || o.optional ? text : o.negate ? !parseBool(text, name) : parseBool(text, name);
      sources[key] = name;
      break;
    }
  }
  return { ...opts, [SOURCES]: Object.freeze(sources) };
}

/** Where the value of option `key` came from: "--flag", or the variable read. */
export function sourceOf(opts: ResolvedOptions, key: string): string {
  return opts[SOURCES]?.[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export function parseBool(text: string, source: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new UsageError(`${source}: expected true or false, got "${text}"`);
}
