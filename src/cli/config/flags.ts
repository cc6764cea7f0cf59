/**
 * The connection flags every cluster command shares, named as etcdctl names
 * them, and their resolution: a flag given on the command line wins, then
 * DEFRAGD_<FLAG>, then the ETCDCTL_<FLAG> operators already have set, then
 * the default. The result is one frozen config object passed down.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../../domain/errors.js';
import type { ConnectionOptions } from '../../etcd/options.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_DIAL_TIMEOUT_MS } from '../../etcd/options.js';
import { parsePositiveDuration, parseSize } from './units.js';

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

export type Env = Readonly<Record<string, string | undefined>>;

/** Flag definitions; `env` is the suffix after DEFRAGD_ / ETCDCTL_. */
const FLAGS = [
  { flags: '--endpoints <list>', description: 'comma-separated gRPC endpoints', env: 'ENDPOINTS', default: '127.0.0.1:2379' },
  { flags: '--cluster', description: 'use every member the cluster lists (MemberList), not only --endpoints', env: 'CLUSTER' },
  { flags: '--cacert <file>', description: 'verify servers with this CA bundle', env: 'CACERT' },
  { flags: '--cert <file>', description: 'client TLS certificate', env: 'CERT' },
  { flags: '--key <file>', description: 'client TLS key', env: 'KEY' },
  { flags: '--insecure-skip-tls-verify', description: 'accept any server certificate (testing only)', env: 'INSECURE_SKIP_TLS_VERIFY' },
  { flags: '--server-name <name>', description: 'verify the server certificate against this name', env: 'SERVER_NAME' },
  { flags: '--user <user[:password]>', description: 'user name, or user:password', env: 'USER' },
  { flags: '--password <password>', description: 'password of --user', env: 'PASSWORD' },
  { flags: '--dial-timeout <duration>', description: 'timeout to connect to a member', env: 'DIAL_TIMEOUT', default: '2s' },
  { flags: '--command-timeout <duration>', description: 'timeout of ordinary requests (Defragment has its own)', env: 'COMMAND_TIMEOUT', default: '5s' },
  { flags: '--quota-bytes <size>', description: 'quota to assume when etcd does not report it (etcd < 3.6 with /metrics unreachable)', env: 'QUOTA_BYTES' },
  { flags: '-w, --write-out <format>', description: 'output format: table or json', env: 'WRITE_OUT', default: 'table' },
  { flags: '--debug', description: 'print stack traces of errors', env: 'DEBUG' },
] as const;

export function addClusterFlags(cmd: Command): Command {
  for (const f of FLAGS) {
    const o = new Option(f.flags, f.description + ` [env DEFRAGD_${f.env}, ETCDCTL_${f.env}]`);
    if ('default' in f) o.default(f.default);
    cmd.addOption(o);
  }
  return cmd;
}

/** Applies env fallbacks to whatever was not given on the command line. */
export function withEnv(cmd: Command, env: Env): Record<string, unknown> {
  const opts = { ...cmd.opts() } as Record<string, unknown>;
  for (const f of FLAGS) {
    const key = attributeName(f.flags);
    if (cmd.getOptionValueSource(key) === 'cli') continue;
    const fromEnv = env[`DEFRAGD_${f.env}`] ?? env[`ETCDCTL_${f.env}`];
    if (fromEnv === undefined || fromEnv === '') continue;
    opts[key] = f.flags.includes('<') ? fromEnv : parseBool(fromEnv, `DEFRAGD_${f.env}`);
  }
  return opts;
}

function attributeName(flags: string): string {
  const long = /--([a-z-]+)/.exec(flags)?.[1] ?? '';
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function parseBool(v: string, name: string): boolean {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new UsageError(`${name}: expected true or false, got "${v}"`);
}

/** Builds the frozen config from resolved option values. Throws UsageError on bad values. */
export function clusterConfig(opts: Record<string, unknown>): ClusterConfig {
  const str = (k: string): string | undefined => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
  const writeOut = str('writeOut') ?? 'table';
  if (writeOut !== 'table' && writeOut !== 'json') throw new UsageError(`--write-out: unknown format "${writeOut}" (use table or json)`);

  let user = str('user');
  let password = str('password');
  if (user !== undefined && password === undefined && user.includes(':')) {
    const i = user.indexOf(':');
    password = user.slice(i + 1);
    user = user.slice(0, i);
  }
  if (user !== undefined && password === undefined) throw new UsageError('--user given without a password: use --password or --user user:password');
  if (user === undefined && password !== undefined) throw new UsageError('--password given without --user');

  const cacert = str('cacert');
  const cert = str('cert');
  const key = str('key');
  const skip = opts['insecureSkipTlsVerify'] === true;
  const serverName = str('serverName');
  const anyTls = cacert !== undefined || cert !== undefined || key !== undefined || skip || serverName !== undefined;
  const endpoints = (str('endpoints') ?? '127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new UsageError('--endpoints: no endpoint given');

  const connection: ConnectionOptions = Object.freeze({
    endpoints,
    tls: anyTls ? Object.freeze({ caFile: cacert, certFile: cert, keyFile: key, insecureSkipVerify: skip, serverName }) : null,
    auth: user !== undefined ? Object.freeze({ user, password: password as string }) : null,
    dialTimeoutMs: str('dialTimeout') ? parsePositiveDuration(str('dialTimeout') as string, '--dial-timeout') : DEFAULT_DIAL_TIMEOUT_MS,
    commandTimeoutMs: str('commandTimeout') ? parsePositiveDuration(str('commandTimeout') as string, '--command-timeout') : DEFAULT_COMMAND_TIMEOUT_MS,
  });
  return Object.freeze({
    connection,
    cluster: opts['cluster'] === true,
    quotaBytes: str('quotaBytes') ? parseSize(str('quotaBytes') as string, '--quota-bytes') : null,
    writeOut,
    debug: opts['debug'] === true,
  });
}
