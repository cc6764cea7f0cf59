/**
 * `defragd serve`: the daemon, until SIGTERM/SIGINT (then it stops starting
 * runs, lets a run in progress finish its current member, and exits 0).
 * `--check-config` validates the config file (every problem on its own line,
 * exit 2), prints its warnings (as the daemon logs them at start) and shows
 * per cluster the members it reaches and its next scheduled starts (exit 0,
 * also when a cluster is unreachable: that is the cluster's state, not the
 * config's fault).
 */
import { Command } from 'commander';
import { UsageError } from '../../domain/errors.js';
import type { ServeConfig } from '../../serve/config.js';
import { EnvOption, sourceOf, withEnv, type ResolvedOptions, type WriteOut } from '../config/flags.js';
import { EXIT } from '../exit-codes.js';
import type { CliIO } from '../io.js';

/** pino's levels. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface ServeOptions {
  /** --config / DEFRAGD_CONFIG, as given. */
  readonly configPath: string;
  readonly checkConfig: boolean;
  readonly writeOut: WriteOut;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

/** Resolves and checks serve's own flags; UsageError naming the flag or variable. */
export function serveOptions(opts: ResolvedOptions): ServeOptions {
  const str = (k: string): string | undefined => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T => {
    const v = str(k) as string;
    if (!allowed.includes(v as T)) throw new UsageError(`${sourceOf(opts, k)}: unknown value "${v}" (use ${allowed.join(', ')})`);
    return v as T;
  };
  const configPath = str('config');
  if (configPath === undefined || configPath.trim() === '') throw new UsageError('serve needs --config FILE (or DEFRAGD_CONFIG)');
  const writeOut = str('writeOut');
  if (writeOut !== 'table' && writeOut !== 'json')
    throw new UsageError(`${sourceOf(opts, 'writeOut')}: unknown format "${writeOut}" (use table or json)`);
  return Object.freeze({
    configPath,
    checkConfig: opts['checkConfig'] === true,
    writeOut,
    logLevel: oneOf('logLevel', LOG_LEVELS),
    logFormat: oneOf('logFormat', LOG_FORMATS),
  });
}

export function serveCommand(io: CliIO, done: (code: number) => void): Command {
  const cmd = new Command('serve').description(
    'run the daemon: scheduled, automatic and NOSPACE-recovery runs of every configured cluster, with an HTTP API and metrics',
  );
  cmd.addOption(new EnvOption('--config <file>', 'the YAML config file (see examples/defragd.yaml)', ['DEFRAGD_CONFIG']));
  cmd.addOption(
    new EnvOption(
      '--check-config',
      'validate the config, show the members each cluster reaches and its next 5 scheduled starts that run (and the skipped ones between), and exit',
      [],
    ),
  );
  cmd.addOption(
    new EnvOption('-w, --write-out <format>', 'output format of --check-config: table or json', ['DEFRAGD_WRITE_OUT']).default('table'),
  );
  cmd.addOption(new EnvOption('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')}`, ['DEFRAGD_LOG_LEVEL']).default('info'));
  cmd.addOption(
    new EnvOption('--log-format <format>', 'log format: json (one object per line) or pretty', ['DEFRAGD_LOG_FORMAT']).default('json'),
  );
  cmd.action(async () => {
    const options = serveOptions(withEnv(cmd, io.env));
    // The daemon's modules (HTTP server, logger, metrics, store, config schema) are loaded only here:
    // importing them with every command cost the other commands most of a second of start-up.
    const { ConfigError, loadConfig, redactedConfig } = await import('../../serve/config.js');
    let config: ServeConfig;
    try {
      config = loadConfig(options.configPath, io.env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // Every problem on its own line, each as the CLI prints one error.
      for (const problem of err.problems) io.stderr(`defragd: ${problem}\n`);
      done(EXIT.USAGE);
      return;
    }
    if (!options.checkConfig) {
      const { createLogger, serve } = await import('../../serve/serve.js');
      const logger = createLogger({ level: options.logLevel, format: options.logFormat, write: io.stdout, colorize: io.isTTY });
      await serve(config, {
        logger,
        signal: io.signal ?? new AbortController().signal,
        subscribeReload: io.onReload,
        reloadConfig: () => loadConfig(options.configPath, io.env),
      });
      done(EXIT.OK);
      return;
    }
    // Allowed, so exit 0; said before the table, as the daemon logs them at start.
    for (const w of config.warnings) io.stderr(`defragd: warning: ${w}\n`);
    const [{ checkConfig }, { printCheck }] = await Promise.all([import('../../serve/check.js'), import('../printers/serve-check.js')]);
    const checks = await checkConfig(config, { now: new Date(), signal: io.signal });
    io.stdout(printCheck(checks, redactedConfig(config), options.writeOut));
    done(EXIT.OK);
  });
  return cmd;
}
