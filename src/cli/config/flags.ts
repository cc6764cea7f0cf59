/**
 * The connection flags every cluster command shares, named as etcdctl names
 * them, and their resolution: a flag given on the command line wins, then
 * DEFRAGD_<FLAG>, then the ETCDCTL_<FLAG> operators already have set, then
 * the default. The result is one frozen config object passed down. Errors
 * name the flag or the variable the bad value was read from.
 */
import type { Command } from 'commander';
import { UsageError } from '../../domain/errors.js';
import type { ConnectionOptions } from '../../etcd/options.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_DIAL_TIMEOUT_MS } from '../../etcd/options.js';
import { EnvOption, sourceOf, type ResolvedOptions } from './env.js';
import { parsePositiveDuration, parseSize, shortDuration } from './units.js';

export { withEnv, sourceOf, SOURCES, EnvOption, type Env, type ResolvedOptions } from './env.js';

export type WriteOut = 'table' | 'json';

export interface ClusterConfig {
  readonly connection: ConnectionOptions;
  /** --cluster: discover every member from MemberList. */
  readonly cluster: boolean;
  /** --quota-bytes: the quota to assume when etcd does not say; null: 2 GiB default. */
  readonly quotaBytes: number | null;
  readonly writeOut: WriteOut;
  readonly debug: boolean;
}

export { DEFAULT_ENDPOINT } from '../../domain/defaults.js';
import { DEFAULT_ENDPOINT } from '../../domain/defaults.js';

export { MAX_DIAL_TIMEOUT_MS, MAX_COMMAND_TIMEOUT_MS } from '../../domain/limits.js';
import { MAX_COMMAND_TIMEOUT_MS, MAX_DIAL_TIMEOUT_MS } from '../../domain/limits.js';

/** Flag definitions; `env` is the suffix after DEFRAGD_ / ETCDCTL_. */
const FLAGS = [
  { flags: '--endpoints <list>', description: 'comma-separated gRPC endpoints', env: 'ENDPOINTS', default: DEFAULT_ENDPOINT },
  { flags: '--cluster', description: 'use every member the cluster lists (MemberList), not only --endpoints', env: 'CLUSTER' },
  { flags: '--cacert <file>', description: 'verify servers with this CA bundle', env: 'CACERT' },
  { flags: '--cert <file>', description: 'client TLS certificate', env: 'CERT' },
  { flags: '--key <file>', description: 'client TLS key', env: 'KEY' },
  { flags: '--insecure-skip-tls-verify', description: 'accept any server certificate (testing only)', env: 'INSECURE_SKIP_TLS_VERIFY' },
  { flags: '--server-name <name>', description: 'verify the server certificate against this name', env: 'SERVER_NAME' },
  { flags: '--user <user[:password]>', description: 'user name, or user:password', env: 'USER' },
  { flags: '--password <password>', description: 'password of --user', env: 'PASSWORD' },
  {
    flags: '--dial-timeout <duration>',
    description: `timeout to connect to a member (at most ${shortDuration(MAX_DIAL_TIMEOUT_MS)})`,
    env: 'DIAL_TIMEOUT',
    default: '2s',
  },
  {
    flags: '--command-timeout <duration>',
    description: `timeout of ordinary requests, at most ${shortDuration(MAX_COMMAND_TIMEOUT_MS)} (Defragment has its own)`,
    env: 'COMMAND_TIMEOUT',
    default: '5s',
  },
  {
    flags: '--quota-bytes <size>',
    description: 'quota to assume when etcd does not report it (etcd < 3.6 with /metrics unreachable)',
    env: 'QUOTA_BYTES',
  },
  { flags: '-w, --write-out <format>', description: 'output format: table or json', env: 'WRITE_OUT', default: 'table' },
  { flags: '--debug', description: 'print stack traces of errors', env: 'DEBUG' },
] as const;

export function addClusterFlags(cmd: Command): Command {
  for (const f of FLAGS) {
    const o = new EnvOption(f.flags, f.description, [`DEFRAGD_${f.env}`, `ETCDCTL_${f.env}`]);
    if ('default' in f) o.default(f.default);
    cmd.addOption(o);
  }
  return cmd;
}

/** Builds the frozen config from resolved option values (see withEnv). Throws UsageError on bad values, naming their source. */
export function clusterConfig(opts: ResolvedOptions): ClusterConfig {
  const str = (k: string): string | undefined => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
  const from = (k: string): string => sourceOf(opts, k);

  const writeOut = str('writeOut') ?? 'table';
  if (writeOut !== 'table' && writeOut !== 'json') {
    // etcdctl knows more formats (simple, fields, protobuf): say how to keep an etcdctl setting and still run defragd.
    const hint = from('writeOut').startsWith('ETCDCTL_') ? '; DEFRAGD_WRITE_OUT overrides it for defragd' : '';
    throw new UsageError(`${from('writeOut')}: unknown format "${writeOut}" (use table or json${hint})`);
  }

  let user = str('user');
  let password = str('password');
  if (user !== undefined && password === undefined && user.includes(':')) {
    const i = user.indexOf(':');
    password = user.slice(i + 1);
    user = user.slice(0, i);
  }
  if (user !== undefined && password === undefined) {
    throw new UsageError(
      from('user').startsWith('-')
        ? '--user given without a password: use --password or --user user:password'
        : `${from('user')} given without a password: set --password or ${from('user').replace(/USER$/, 'PASSWORD')}, or write user:password`,
    );
  }
  if (user === undefined && password !== undefined) throw new UsageError(`${from('password')} given without --user`);

  const cacert = str('cacert');
  const cert = str('cert');
  const key = str('key');
  const skip = opts['insecureSkipTlsVerify'] === true;
  const serverName = str('serverName');
  const anyTls = cacert !== undefined || cert !== undefined || key !== undefined || skip || serverName !== undefined;
  const endpoints = (str('endpoints') ?? DEFAULT_ENDPOINT)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (endpoints.length === 0) throw new UsageError(`${from('endpoints')}: no endpoint given`);

  const dialTimeout = str('dialTimeout');
  const commandTimeout = str('commandTimeout');
  const quotaBytes = str('quotaBytes');
  const connection: ConnectionOptions = Object.freeze({
    endpoints,
    tls: anyTls ? Object.freeze({ caFile: cacert, certFile: cert, keyFile: key, insecureSkipVerify: skip, serverName }) : null,
    auth: user !== undefined ? Object.freeze({ user, password: password as string }) : null,
    dialTimeoutMs:
      dialTimeout !== undefined
        ? parsePositiveDuration(dialTimeout, from('dialTimeout'), { maxMs: MAX_DIAL_TIMEOUT_MS })
        : DEFAULT_DIAL_TIMEOUT_MS,
    commandTimeoutMs:
      commandTimeout !== undefined
        ? parsePositiveDuration(commandTimeout, from('commandTimeout'), { maxMs: MAX_COMMAND_TIMEOUT_MS })
        : DEFAULT_COMMAND_TIMEOUT_MS,
  });
  return Object.freeze({
    connection,
    cluster: opts['cluster'] === true,
    quotaBytes: quotaBytes !== undefined ? parseSize(quotaBytes, from('quotaBytes')) : null,
    writeOut,
    debug: opts['debug'] === true,
  });
}
