/**
 * The flags of `defragd defrag` and the frozen config they resolve to, split
 * per consumer: the planner's policy, the executor's options, the cluster
 * lock. Each flag also reads DEFRAGD_<FLAG> (e.g. DEFRAGD_RULE for a cron
 * job) when it is not on the command line; there is no ETCDCTL_ fallback,
 * since etcdctl has no such flags. Errors name the flag or the variable.
 */
import type { Command } from 'commander';
import { UsageError } from '../../domain/errors.js';
import { DEFAULT_DISARM_BELOW, DEFAULT_LOCK_KEY, DEFAULT_RECORD_PREFIX } from '../../domain/defaults.js';
import { recordPrefix } from '../../app/record.js';
import {
  checkReadinessUrl,
  DEFAULT_WAIT_FOR_URL_TIMEOUT_MS,
  MAX_WAIT_FOR_URL_TIMEOUT_MS,
  type WaitForUrlFiles,
} from '../../app/readiness.js';
import { EnvOption, sourceOf, type ResolvedOptions } from './env.js';
import { parseDuration, parseFraction, parseNonNegativeInt, parsePositiveDuration, shortDuration } from './units.js';

/** --wait-between: no extra pause; the executor already waits for each member to catch up. */
export const DEFAULT_WAIT_BETWEEN_MS = 0;
/** --lock-wait: refuse at once when another run holds the lock. */
export const DEFAULT_LOCK_WAIT_MS = 0;

export { MAX_DEFRAG_TIMEOUT_MS, MAX_MAX_DEFRAG_DURATION_MS, MAX_WAIT_BETWEEN_MS } from '../../domain/limits.js';
import { MAX_DEFRAG_TIMEOUT_MS, MAX_MAX_DEFRAG_DURATION_MS, MAX_WAIT_BETWEEN_MS } from '../../domain/limits.js';
/** A member that has not answered for a day after its Defragment is not coming back by itself. */
export const MAX_RECOVERY_TIMEOUT_MS = 24 * 3_600_000;
/** Runs are scheduled daily at most often in practice; waiting a day for the lock means the holder is stuck. */
export const MAX_LOCK_WAIT_MS = 24 * 3_600_000;

export interface DefragPolicyConfig {
  /** --rule as typed; null when absent. '' stays '' so compileRule can refuse it. */
  readonly rule: string | null;
  readonly moveLeader: boolean;
  readonly skipHealthCheck: boolean;
  readonly allowKnownDefects: boolean;
  readonly compactKeepRevisions: number | null;
  readonly disarmNospace: boolean;
  readonly disarmBelow: number;
  /** Null: the planner's size-based default (60 s + 1 s per 10 MiB in use; defragTimeoutMs in src/planner). */
  readonly defragTimeoutMs: number | null;
  /** --max-defrag-duration: skip a member forecast (from --store) to take longer; null: no limit. */
  readonly maxDefragDurationMs: number | null;
}

export interface DefragExecuteConfig {
  readonly waitBetweenMs: number;
  readonly continueOnError: boolean;
  /** Null: as long as the member's defrag deadline, at least a minute. */
  readonly recoveryTimeoutMs: number | null;
}

/** --wait-for-url and its options, with file paths as given (readWaitForUrls reads them); null without --wait-for-url. */
export type DefragWaitForUrlsConfig = WaitForUrlFiles & {
  /** Where each file's path came from (the flag or its DEFRAGD_ variable), for the error when it cannot be read. */
  readonly sources: Readonly<Record<'cacert' | 'cert' | 'key' | 'tokenFile', string>>;
};

export interface DefragLockConfig {
  readonly key: string;
  readonly waitMs: number;
}

export interface DefragRecordConfig {
  /** Trailing slashes dropped. */
  readonly prefix: string;
}

export interface DefragConfig {
  /** --data-dir NAME=PATH: data dirs this host can see, for the free-disk check; empty when none. */
  readonly dataDirs: Readonly<Record<string, string>>;
  readonly policy: DefragPolicyConfig;
  readonly execute: DefragExecuteConfig;
  /** --wait-for-url: URLs that must answer 200 before the first member and between members; null without it. */
  readonly waitForUrls: DefragWaitForUrlsConfig | null;
  /** false: --no-lock. */
  readonly lock: DefragLockConfig | false;
  /** false: --no-record. */
  readonly record: DefragRecordConfig | false;
  readonly dryRun: boolean;
  /** --store: record the run in this history file; null without it. */
  readonly store: DefragStoreConfig | null;
}

export interface DefragStoreConfig {
  readonly path: string;
  /** --store-cluster: the name the run is filed under (several clusters may share one store). */
  readonly cluster: string;
}

/** --store-cluster when not given: the store files runs by name, and the CLI does not know the cluster's before it connects. */
export const DEFAULT_STORE_CLUSTER = 'default';

/**
 * Flag definitions; each reads DEFRAGD_ + the long name in upper snake case,
 * except those that loosen a safety check (`cliOnly`): a variable left over
 * in a cron environment must never quietly weaken every run.
 */
const DEFRAG_FLAGS: readonly { flags: string; description: string; default?: string; cliOnly?: boolean; repeatable?: boolean }[] = [
  {
    flags: '--rule <cel>',
    description:
      'CEL expression evaluated per member right before its turn, e.g. "dbSizeFree > 100*MiB"; variables: dbSize, dbSizeInUse, dbSizeFree, dbQuota, dbQuotaUsage, fragmentation, isLeader, isLearner, memberName, version; constants KiB, MiB, GiB',
  },
  { flags: '--no-move-leader', description: 'do not hand leadership away; the leader is then skipped (never defragmented while it leads)' },
  {
    flags: '--skip-health-check',
    description: 'go ahead although some members are unreachable or unhealthy (they are skipped)',
    cliOnly: true,
  },
  {
    flags: '--allow-known-defects',
    description:
      'defragment although a member runs an etcd release whose known defrag defect can leave it unable to start (3.5.0-3.5.5, etcd#14685); without it such a run is refused',
    cliOnly: true,
  },
  {
    flags: '--compact-keep-revisions <n>',
    description: 'compact (physically) to revision - n once before the first defrag; breaks watchers older than that',
  },
  { flags: '--disarm-nospace', description: 'disarm NOSPACE alarms after the run when every member is under the margin' },
  {
    flags: '--disarm-below <fraction>',
    description: 'margin for --disarm-nospace: every dbSize under this fraction of the quota',
    default: String(DEFAULT_DISARM_BELOW),
  },
  {
    flags: '--defrag-timeout <duration>',
    description: `deadline of each Defragment call, at most ${shortDuration(MAX_DEFRAG_TIMEOUT_MS)} (default: 60s + 1s per 10 MiB in use); a passed deadline is never retried`,
  },
  {
    flags: '--max-defrag-duration <duration>',
    description: `skip a member whose defrag is expected to take longer than this (at most ${shortDuration(MAX_MAX_DEFRAG_DURATION_MS)}), forecast from its own past defrags in --store (required); a defrag blocks every request to the member, and kubeadm's liveness probe restarts a member blocked for about 80-95s`,
  },
  {
    flags: '--wait-between <duration>',
    description: `extra pause after each member has caught up (at most ${shortDuration(MAX_WAIT_BETWEEN_MS)})`,
    default: `${DEFAULT_WAIT_BETWEEN_MS / 1_000}s`,
  },
  {
    flags: '--wait-for-url <url>',
    description:
      "an http(s) URL that must answer 200 before the first member and before each next one, e.g. every kube-apiserver's /readyz (repeat the flag, or separate with commas); one that does not within --wait-for-url-timeout stops the run before the next member",
    repeatable: true,
  },
  {
    flags: '--wait-for-url-timeout <duration>',
    description: `how long the --wait-for-url URLs may stay unready before the run stops (at most ${shortDuration(MAX_WAIT_FOR_URL_TIMEOUT_MS)})`,
    default: shortDuration(DEFAULT_WAIT_FOR_URL_TIMEOUT_MS),
  },
  {
    flags: '--wait-for-url-cacert <file>',
    description: "CA bundle for the --wait-for-url servers' certificates (kubeadm: /etc/kubernetes/pki/ca.crt)",
  },
  { flags: '--wait-for-url-cert <file>', description: 'client certificate for the --wait-for-url servers' },
  { flags: '--wait-for-url-key <file>', description: 'key of --wait-for-url-cert' },
  {
    flags: '--wait-for-url-token-file <file>',
    description: 'a bearer token for the --wait-for-url servers, read from this file (an apiserver without anonymous requests)',
  },
  { flags: '--wait-for-url-insecure-skip-tls-verify', description: "do not check the --wait-for-url servers' certificates" },
  { flags: '--continue-on-error', description: 'go on with the next member after one fails (still exits 1)', cliOnly: true },
  {
    flags: '--recovery-timeout <duration>',
    description: `how long to wait for a member whose Defragment got no answer (deadline passed, connection lost) to answer again before the run fails, at most ${shortDuration(MAX_RECOVERY_TIMEOUT_MS)} (default: its defrag deadline, at least 1m)`,
  },
  {
    flags: '--data-dir <name=path>',
    description:
      "a member's data dir on this host (member name or hex ID = path; repeat the flag, or separate with commas): a member without room for the copy a defrag writes is skipped",
    repeatable: true,
  },
  { flags: '--dry-run', description: 'print the plan with each rule result and reason; change nothing' },
  { flags: '--no-lock', description: 'do not take the cluster lock (only when nothing else can defragment this cluster)', cliOnly: true },
  {
    flags: '--lock-key <key>',
    description: 'key of the lease-bound cluster lock that keeps runs from overlapping',
    default: DEFAULT_LOCK_KEY,
  },
  {
    flags: '--lock-wait <duration>',
    description: `wait this long for another run to finish instead of refusing at once (at most ${shortDuration(MAX_LOCK_WAIT_MS)})`,
    default: `${DEFAULT_LOCK_WAIT_MS / 1_000}s`,
  },
  { flags: '--no-record', description: "do not record each member's defragmentation in the cluster (read by `defragd last`)" },
  {
    flags: '--record-prefix <key>',
    description: 'prefix of the records: <key>/members/<member ID>/last-defrag',
    default: DEFAULT_RECORD_PREFIX,
  },
  {
    flags: '--store <file>',
    description:
      'record the run (its events, member results and outcome) in this SQLite history file, created when missing; see defragd history',
  },
  { flags: '--store-cluster <name>', description: 'name the run is recorded under in --store', default: DEFAULT_STORE_CLUSTER },
];

/** DEFRAGD_ + the long flag in upper snake case: --no-lock → DEFRAGD_NO_LOCK. */
function envName(flags: string): string {
  const long = /--([a-z-]+)/.exec(flags)?.[1] ?? '';
  return `DEFRAGD_${long.replace(/-/g, '_').toUpperCase()}`;
}

/**
 * Adds the defrag flags to `cmd` (the connection flags come from addClusterFlags).
 *
 * @example defragConfig(withEnv(addDefragFlags(addClusterFlags(new Command('defrag'))).parse(argv), env))
 */
export function addDefragFlags(cmd: Command): Command {
  for (const f of DEFRAG_FLAGS) {
    const o = new EnvOption(f.flags, f.description, f.cliOnly ? [] : [envName(f.flags)]);
    if (f.default !== undefined) o.default(f.default);
    if (f.repeatable)
      o.argParser((value: string, previous: unknown) => (typeof previous === 'string' && previous !== '' ? `${previous},${value}` : value));
    cmd.addOption(o);
  }
  return cmd;
}

/**
 * Builds the frozen defrag config from resolved option values (see withEnv).
 * Throws UsageError naming the flag or variable of the first bad value.
 *
 * @example
 * const opts = withEnv(cmd, io.env);
 * const { policy, execute, lock, dryRun } = defragConfig(opts);
 */
export function defragConfig(opts: ResolvedOptions): DefragConfig {
  const str = (k: string): string | undefined => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
  const from = (k: string): string => sourceOf(opts, k);
  const text = {
    compactKeepRevisions: str('compactKeepRevisions'),
    disarmBelow: str('disarmBelow'),
    defragTimeout: str('defragTimeout'),
    maxDefragDuration: str('maxDefragDuration'),
    waitBetween: str('waitBetween'),
    lockKey: str('lockKey'),
    lockWait: str('lockWait'),
    recoveryTimeout: str('recoveryTimeout'),
    recordPrefix: str('recordPrefix'),
    waitForUrl: str('waitForUrl'),
    waitForUrlTimeout: str('waitForUrlTimeout'),
  };

  const policy: DefragPolicyConfig = Object.freeze({
    rule: str('rule') ?? null,
    moveLeader: opts['moveLeader'] !== false,
    skipHealthCheck: opts['skipHealthCheck'] === true,
    allowKnownDefects: opts['allowKnownDefects'] === true,
    compactKeepRevisions:
      text.compactKeepRevisions !== undefined ? parseNonNegativeInt(text.compactKeepRevisions, from('compactKeepRevisions')) : null,
    disarmNospace: opts['disarmNospace'] === true,
    disarmBelow: text.disarmBelow !== undefined ? parseFraction(text.disarmBelow, from('disarmBelow')) : DEFAULT_DISARM_BELOW,
    defragTimeoutMs:
      text.defragTimeout !== undefined
        ? parsePositiveDuration(text.defragTimeout, from('defragTimeout'), { maxMs: MAX_DEFRAG_TIMEOUT_MS })
        : null,
    maxDefragDurationMs:
      text.maxDefragDuration !== undefined
        ? parsePositiveDuration(text.maxDefragDuration, from('maxDefragDuration'), { maxMs: MAX_MAX_DEFRAG_DURATION_MS })
        : null,
  });
  const execute: DefragExecuteConfig = Object.freeze({
    waitBetweenMs:
      text.waitBetween !== undefined
        ? parseDuration(text.waitBetween, from('waitBetween'), { maxMs: MAX_WAIT_BETWEEN_MS })
        : DEFAULT_WAIT_BETWEEN_MS,
    continueOnError: opts['continueOnError'] === true,
    recoveryTimeoutMs:
      text.recoveryTimeout !== undefined
        ? parsePositiveDuration(text.recoveryTimeout, from('recoveryTimeout'), { maxMs: MAX_RECOVERY_TIMEOUT_MS })
        : null,
  });

  const waitForUrlTimeoutMs =
    text.waitForUrlTimeout !== undefined
      ? parsePositiveDuration(text.waitForUrlTimeout, from('waitForUrlTimeout'), { maxMs: MAX_WAIT_FOR_URL_TIMEOUT_MS })
      : DEFAULT_WAIT_FOR_URL_TIMEOUT_MS;
  const urlFiles = {
    cacert: str('waitForUrlCacert'),
    cert: str('waitForUrlCert'),
    key: str('waitForUrlKey'),
    tokenFile: str('waitForUrlTokenFile'),
  };
  const waitForUrls = parseWaitForUrls(text.waitForUrl, from('waitForUrl'));
  if (waitForUrls === null) {
    const stray = Object.entries(urlFiles).find(([, v]) => v !== undefined);
    const strayFlag = stray ? `waitForUrl${stray[0][0]?.toUpperCase()}${stray[0].slice(1)}` : null;
    if (strayFlag !== null) throw new UsageError(`${from(strayFlag)} needs --wait-for-url`);
    if (opts['waitForUrlInsecureSkipTlsVerify'] === true)
      throw new UsageError(`${from('waitForUrlInsecureSkipTlsVerify')} needs --wait-for-url`);
  }
  if ((urlFiles.cert === undefined) !== (urlFiles.key === undefined))
    throw new UsageError(
      `${from(urlFiles.cert === undefined ? 'waitForUrlKey' : 'waitForUrlCert')} needs --wait-for-url-${urlFiles.cert === undefined ? 'cert' : 'key'} too`,
    );

  // Validated even under --no-lock, so a bad value fails the same way whichever flags accompany it.
  const lockKey = text.lockKey ?? DEFAULT_LOCK_KEY;
  if (lockKey === '') throw new UsageError(`${from('lockKey')}: the lock key must not be empty`);
  const lockWaitMs =
    text.lockWait !== undefined ? parseDuration(text.lockWait, from('lockWait'), { maxMs: MAX_LOCK_WAIT_MS }) : DEFAULT_LOCK_WAIT_MS;
  const lock: DefragLockConfig | false = opts['lock'] === false ? false : Object.freeze({ key: lockKey, waitMs: lockWaitMs });

  // Validated even under --no-record, as the lock key is.
  const prefix = recordPrefix(text.recordPrefix ?? DEFAULT_RECORD_PREFIX, from('recordPrefix'));
  const record: DefragRecordConfig | false = opts['record'] === false ? false : Object.freeze({ prefix });

  const storePath = str('store');
  if (storePath === '') throw new UsageError(`${from('store')}: the store file must not be empty`);
  const storeCluster = str('storeCluster') ?? DEFAULT_STORE_CLUSTER;
  if (storeCluster.trim() === '') throw new UsageError(`${from('storeCluster')}: the cluster name must not be empty`);
  const store: DefragStoreConfig | null = storePath === undefined ? null : Object.freeze({ path: storePath, cluster: storeCluster });
  // Without a history nothing can be forecast: a limit that silently never applies would be a false promise.
  if (policy.maxDefragDurationMs !== null && store === null) {
    throw new UsageError(`${from('maxDefragDuration')} needs --store: the forecast is made from each member's past defrags recorded there`);
  }

  return Object.freeze({
    dataDirs: parseDataDirs(str('dataDir'), from('dataDir')),
    policy,
    execute,
    waitForUrls:
      waitForUrls === null
        ? null
        : Object.freeze({
            urls: waitForUrls,
            timeoutMs: waitForUrlTimeoutMs,
            ...urlFiles,
            insecureSkipTlsVerify: opts['waitForUrlInsecureSkipTlsVerify'] === true,
            sources: Object.freeze({
              cacert: from('waitForUrlCacert'),
              cert: from('waitForUrlCert'),
              key: from('waitForUrlKey'),
              tokenFile: from('waitForUrlTokenFile'),
            }),
          }),
    lock,
    record,
    dryRun: opts['dryRun'] === true,
    store,
  });
}

/** "https://a:6443/readyz,https://b:6443/readyz" → each URL checked; null when the flag is absent. */
function parseWaitForUrls(text: string | undefined, source: string): readonly string[] | null {
  if (text === undefined) return null;
  const urls = text
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (urls.length === 0) throw new UsageError(`${source}: no URL given`);
  return Object.freeze(urls.map((u) => checkReadinessUrl(u, source)));
}

/** "m1=/var/lib/etcd,m2=/data/etcd" → { m1: '/var/lib/etcd', m2: '/data/etcd' }; UsageError naming the source otherwise. */
function parseDataDirs(text: string | undefined, source: string): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (text === undefined) return Object.freeze(out);
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    const name = part.slice(0, i).trim();
    const path = part.slice(i + 1).trim();
    if (i <= 0 || name === '' || path === '')
      throw new UsageError(`${source}: expected NAME=PATH (a member's name or hex ID, then its data dir), got "${part}"`);
    if (out[name] !== undefined) throw new UsageError(`${source}: ${name} is given twice`);
    out[name] = path;
  }
  return Object.freeze(out);
}
