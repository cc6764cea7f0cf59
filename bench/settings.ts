/** What every benchmark does with its settings before it starts anything: one error class, one way out. */

/** A bad setting: printed as one line above the benchmark's usage, exit 2. */
export class ConfigError extends Error {}

/**
 * The settings `load` returns, or the process ends: null (--help) prints the
 * usage and exits 0; a ConfigError or a bad flag (node:util parseArgs) prints
 * "NAME: message" and the usage on stderr and exits 2. Anything else is a bug and is thrown.
 */
export function settingsOrExit<T>(name: string, usage: string, load: () => T | null): T {
  let settings: T | null;
  try {
    settings = load();
  } catch (err) {
    if (err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${name}: ${(err as Error).message}\n\n${usage}`);
      process.exit(2);
    }
    throw err;
  }
  if (settings === null) {
    console.log(usage);
    process.exit(0);
  }
  return settings;
}

/** A number from the environment (unset or empty: the default), or a ConfigError naming the variable and the range. */
export function envNumber(env: NodeJS.ProcessEnv, name: string, dflt: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) throw new ConfigError(`${name}=${raw}: expected a number from ${min} to ${max}`);
  return v;
}

/** A duration such as 10s or 1m30s from the environment (unset or empty: the default), as written. */
export function envDuration(env: NodeJS.ProcessEnv, name: string, dflt: string): string {
  const raw = env[name] || dflt;
  if (!/^(\d+(ms|s|m|h))+$/.test(raw)) throw new ConfigError(`${name}=${raw}: expected a duration such as 10s or 1m`);
  return raw;
}
