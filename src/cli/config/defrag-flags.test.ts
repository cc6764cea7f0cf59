import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DISARM_BELOW, DEFAULT_LOCK_KEY, DEFAULT_RECORD_PREFIX } from '../../domain/defaults.js';
import {
  addDefragFlags,
  defragConfig,
  MAX_DEFRAG_TIMEOUT_MS,
  MAX_MAX_DEFRAG_DURATION_MS,
  MAX_LOCK_WAIT_MS,
  MAX_WAIT_BETWEEN_MS,
} from './defrag-flags.js';
import { addClusterFlags, clusterConfig, withEnv } from './flags.js';

function command() {
  return addDefragFlags(addClusterFlags(new Command('defrag'))).exitOverride();
}

function resolve(argv: string[], env: Record<string, string> = {}) {
  const cmd = command();
  cmd.parse(argv, { from: 'user' });
  return defragConfig(withEnv(cmd, env));
}

describe('defrag flags', () => {
  it('defaults: a safe run that moves the leader, takes the lock and refuses to wait for it', () => {
    expect(resolve([])).toEqual({
      dataDirs: {},
      policy: {
        rule: null,
        moveLeader: true,
        skipHealthCheck: false,
        allowKnownDefects: false,
        compactKeepRevisions: null,
        disarmNospace: false,
        disarmBelow: 0.9,
        defragTimeoutMs: null,
        maxDefragDurationMs: null,
      },
      execute: { waitBetweenMs: 0, continueOnError: false, recoveryTimeoutMs: null },
      waitForUrls: null,
      lock: { key: '/defragd/lock', waitMs: 0 },
      record: { prefix: '/defragd' },
      dryRun: false,
      store: null,
    });
    expect(DEFAULT_RECORD_PREFIX).toBe('/defragd');
    expect(DEFAULT_DISARM_BELOW).toBe(0.9);
    expect(DEFAULT_LOCK_KEY).toBe('/defragd/lock');
  });

  it('every flag lands in its consumer', () => {
    const c = resolve([
      '--rule',
      'dbSizeFree > 100*MiB',
      '--no-move-leader',
      '--skip-health-check',
      '--compact-keep-revisions',
      '1000',
      '--disarm-nospace',
      '--disarm-below',
      '0.8',
      '--defrag-timeout',
      '2m',
      '--wait-between',
      '1m30s',
      '--continue-on-error',
      '--dry-run',
      '--lock-key',
      '/ops/lock',
      '--lock-wait',
      '10m',
      '--recovery-timeout',
      '5m',
      '--data-dir',
      'm1=/var/lib/etcd',
      '--data-dir',
      'm2=/data/etcd,8e9e05c52164694d=/x',
      '--record-prefix',
      '/ops/defragd/',
      '--store',
      '/var/lib/defragd/h.db',
      '--store-cluster',
      'prod',
      '--max-defrag-duration',
      '1m',
      '--allow-known-defects',
      '--wait-for-url',
      'https://10.0.0.1:6443/readyz',
      '--wait-for-url',
      'https://10.0.0.2:6443/readyz,https://10.0.0.3:6443/readyz',
      '--wait-for-url-timeout',
      '90s',
      '--wait-for-url-cacert',
      '/etc/kubernetes/pki/ca.crt',
      '--wait-for-url-cert',
      '/c.pem',
      '--wait-for-url-key',
      '/k.pem',
      '--wait-for-url-token-file',
      '/t',
      '--wait-for-url-insecure-skip-tls-verify',
    ]);
    expect(c).toEqual({
      dataDirs: { m1: '/var/lib/etcd', m2: '/data/etcd', '8e9e05c52164694d': '/x' },
      policy: {
        rule: 'dbSizeFree > 100*MiB',
        moveLeader: false,
        skipHealthCheck: true,
        allowKnownDefects: true,
        compactKeepRevisions: 1000,
        disarmNospace: true,
        disarmBelow: 0.8,
        defragTimeoutMs: 120_000,
        maxDefragDurationMs: 60_000,
      },
      execute: { waitBetweenMs: 90_000, continueOnError: true, recoveryTimeoutMs: 300_000 },
      waitForUrls: {
        urls: ['https://10.0.0.1:6443/readyz', 'https://10.0.0.2:6443/readyz', 'https://10.0.0.3:6443/readyz'],
        timeoutMs: 90_000,
        cacert: '/etc/kubernetes/pki/ca.crt',
        cert: '/c.pem',
        key: '/k.pem',
        tokenFile: '/t',
        insecureSkipTlsVerify: true,
        sources: {
          cacert: '--wait-for-url-cacert',
          cert: '--wait-for-url-cert',
          key: '--wait-for-url-key',
          tokenFile: '--wait-for-url-token-file',
        },
      },
      lock: { key: '/ops/lock', waitMs: 600_000 },
      record: { prefix: '/ops/defragd' },
      dryRun: true,
      store: { path: '/var/lib/defragd/h.db', cluster: 'prod' },
    });
  });

  it('--wait-for-url: from DEFRAGD_ variables too; its options need it; cert and key go together', () => {
    const c = resolve([], { DEFRAGD_WAIT_FOR_URL: 'http://127.0.0.1:8080/readyz', DEFRAGD_WAIT_FOR_URL_TOKEN_FILE: '/t' });
    expect(c.waitForUrls).toMatchObject({ urls: ['http://127.0.0.1:8080/readyz'], timeoutMs: 120_000, tokenFile: '/t' });
    expect(c.waitForUrls?.sources.tokenFile).toBe('DEFRAGD_WAIT_FOR_URL_TOKEN_FILE');
    expect(() => resolve(['--wait-for-url-cacert', '/ca.crt'])).toThrow('--wait-for-url-cacert needs --wait-for-url');
    expect(() => resolve(['--wait-for-url-insecure-skip-tls-verify'])).toThrow('needs --wait-for-url');
    expect(() => resolve(['--wait-for-url', 'https://a/readyz', '--wait-for-url-cert', '/c'])).toThrow(
      '--wait-for-url-cert needs --wait-for-url-key too',
    );
    expect(() => resolve(['--wait-for-url', ','])).toThrow('--wait-for-url: no URL given');
    expect(() => resolve(['--wait-for-url', 'https://a/readyz', '--wait-for-url-timeout', '0s'])).toThrow('--wait-for-url-timeout');
  });

  it('--store alone files runs under "default"; DEFRAGD_STORE and DEFRAGD_STORE_CLUSTER work like the flags', () => {
    expect(resolve(['--store', 'h.db']).store).toEqual({ path: 'h.db', cluster: 'default' });
    expect(resolve([], { DEFRAGD_STORE: '/s.db', DEFRAGD_STORE_CLUSTER: 'lab' }).store).toEqual({ path: '/s.db', cluster: 'lab' });
  });

  it('--no-lock gives lock: false', () => {
    expect(resolve(['--no-lock']).lock).toBe(false);
  });

  it('--no-record gives record: false; an empty --record-prefix is a usage error naming its source, also with --no-record', () => {
    expect(resolve(['--no-record']).record).toBe(false);
    expect(resolve([], { DEFRAGD_NO_RECORD: 'true' }).record).toBe(false);
    expect(resolve([], { DEFRAGD_RECORD_PREFIX: '/env' }).record).toEqual({ prefix: '/env' });
    expect(() => resolve(['--record-prefix', ''])).toThrow(/^--record-prefix: the record prefix must not be empty$/);
    expect(() => resolve(['--no-record', '--record-prefix', ' '])).toThrow(/^--record-prefix: /);
    expect(() => resolve([], { DEFRAGD_RECORD_PREFIX: ' ' })).toThrow(/^DEFRAGD_RECORD_PREFIX: /);
  });

  it('an empty --rule stays empty, for compileRule to refuse', () => {
    expect(resolve(['--rule', '']).policy.rule).toBe('');
  });

  it('the config and each part are frozen', () => {
    const c = resolve([]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.policy)).toBe(true);
    expect(Object.isFrozen(c.execute)).toBe(true);
    expect(Object.isFrozen(c.lock)).toBe(true);
  });

  it('reads DEFRAGD_<FLAG> when the flag is not given; the flag wins; no ETCDCTL_ fallback', () => {
    const env = {
      DEFRAGD_RULE: 'fragmentation > 0.5',
      DEFRAGD_NO_MOVE_LEADER: 'true',
      DEFRAGD_DEFRAG_TIMEOUT: '5m',
      DEFRAGD_WAIT_BETWEEN: '10s',
      DEFRAGD_LOCK_WAIT: '1m',
      DEFRAGD_LOCK_KEY: '/x',
      DEFRAGD_DRY_RUN: 'yes',
    };
    const c = resolve([], env);
    expect(c.policy).toMatchObject({ rule: 'fragmentation > 0.5', moveLeader: false, defragTimeoutMs: 300_000 });
    expect(c.execute.waitBetweenMs).toBe(10_000);
    expect(c.lock).toEqual({ key: '/x', waitMs: 60_000 });
    expect(c.dryRun).toBe(true);
    expect(resolve(['--rule', 'isLeader', '--defrag-timeout', '1m'], env).policy).toMatchObject({
      rule: 'isLeader',
      defragTimeoutMs: 60_000,
    });
    expect(resolve([], { ETCDCTL_RULE: 'isLeader', ETCDCTL_DEFRAG_TIMEOUT: '1m' }).policy).toMatchObject({
      rule: null,
      defragTimeoutMs: null,
    });
  });

  it('negated flags from the environment: DEFRAGD_NO_MOVE_LEADER=true keeps leadership, =0 moves it', () => {
    expect(resolve([], { DEFRAGD_NO_MOVE_LEADER: 'true' }).policy.moveLeader).toBe(false);
    expect(resolve([], { DEFRAGD_NO_MOVE_LEADER: '0' }).policy.moveLeader).toBe(true);
  });

  it('flags that loosen a safety check are command-line only: a leftover variable never weakens a run', () => {
    const c = resolve([], {
      DEFRAGD_NO_LOCK: 'true',
      DEFRAGD_SKIP_HEALTH_CHECK: 'true',
      DEFRAGD_CONTINUE_ON_ERROR: 'true',
      DEFRAGD_ALLOW_KNOWN_DEFECTS: 'true',
    });
    expect(c.lock).toEqual({ key: DEFAULT_LOCK_KEY, waitMs: 0 });
    expect(c.policy.skipHealthCheck).toBe(false);
    expect(c.policy.allowKnownDefects).toBe(false);
    expect(c.execute.continueOnError).toBe(false);
  });

  it('an empty variable counts as unset', () => {
    expect(resolve([], { DEFRAGD_RULE: '' }).policy.rule).toBeNull();
  });

  it('help names the variable and the maximum', () => {
    const help = command().helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(/--rule <cel> CEL expression .* constants KiB, MiB, GiB \[env DEFRAGD_RULE\]/);
    expect(help).toMatch(/--no-lock do not take the cluster lock/);
    expect(help).not.toMatch(/DEFRAGD_NO_LOCK|DEFRAGD_SKIP_HEALTH_CHECK|DEFRAGD_CONTINUE_ON_ERROR|DEFRAGD_ALLOW_KNOWN_DEFECTS/);
    expect(help).toMatch(/--defrag-timeout <duration> deadline of each Defragment call, at most 24h .* \[env DEFRAGD_DEFRAG_TIMEOUT\]/);
    expect(help).toMatch(/--lock-key <key> .* \[env DEFRAGD_LOCK_KEY\] \(default: "\/defragd\/lock"\)/);
  });

  it.each([
    [['--defrag-timeout', '999999999h'], /^--defrag-timeout: 999999999h is more than the maximum of 24h$/],
    [['--defrag-timeout', '5'], /^--defrag-timeout: "5" has no unit; write 5s \(units: ms, s, m, h\)$/],
    [['--defrag-timeout', '0'], /^--defrag-timeout: must be more than 0/],
    [['--defrag-timeout', ''], /^--defrag-timeout: invalid duration ""/],
    [['--wait-between', '25h'], /^--wait-between: 25h is more than the maximum of 24h$/],
    [['--wait-between', '3'], /^--wait-between: "3" has no unit; write 3s/],
    [['--lock-wait', '24h1s'], /^--lock-wait: 24h1s is more than the maximum of 24h$/],
    [['--lock-wait', 'soon'], /^--lock-wait: invalid duration "soon"/],
    [['--compact-keep-revisions', '-1'], /^--compact-keep-revisions: expected a whole number >= 0/],
    [['--disarm-below', '1.5'], /^--disarm-below: expected a fraction in \(0, 1\]/],
    [['--lock-key', ''], /^--lock-key: the lock key must not be empty$/],
  ])('%j is a usage error naming the flag', (argv, message) => {
    expect(() => resolve(argv)).toThrow(message);
  });

  it.each([
    [{ DEFRAGD_DEFRAG_TIMEOUT: '999999999h' }, /^DEFRAGD_DEFRAG_TIMEOUT: 999999999h is more than the maximum of 24h$/],
    [{ DEFRAGD_DEFRAG_TIMEOUT: '5' }, /^DEFRAGD_DEFRAG_TIMEOUT: "5" has no unit; write 5s/],
    [{ DEFRAGD_WAIT_BETWEEN: 'abc' }, /^DEFRAGD_WAIT_BETWEEN: invalid duration "abc"/],
    [{ DEFRAGD_LOCK_WAIT: '48h' }, /^DEFRAGD_LOCK_WAIT: 48h is more than the maximum of 24h$/],
    [{ DEFRAGD_COMPACT_KEEP_REVISIONS: 'many' }, /^DEFRAGD_COMPACT_KEEP_REVISIONS: expected a whole number/],
    [{ DEFRAGD_DISARM_BELOW: '2' }, /^DEFRAGD_DISARM_BELOW: expected a fraction/],
    [{ DEFRAGD_DRY_RUN: 'maybe' }, /^DEFRAGD_DRY_RUN: expected true or false, got "maybe"$/],
    [{ DEFRAGD_NO_MOVE_LEADER: 'maybe' }, /^DEFRAGD_NO_MOVE_LEADER: expected true or false/],
    [{ DEFRAGD_RECOVERY_TIMEOUT: '2d' }, /^DEFRAGD_RECOVERY_TIMEOUT: invalid duration "2d"/],
  ])('a bad value from the environment names the variable: %j', (env, message) => {
    expect(() => resolve([], env)).toThrow(message);
  });

  it('the limits are the documented ones and each is accepted', () => {
    expect([MAX_DEFRAG_TIMEOUT_MS, MAX_WAIT_BETWEEN_MS, MAX_LOCK_WAIT_MS]).toEqual([86_400_000, 86_400_000, 86_400_000]);
    const c = resolve(['--defrag-timeout', '24h', '--wait-between', '24h', '--lock-wait', '1440m']);
    expect([c.policy.defragTimeoutMs, c.execute.waitBetweenMs, c.lock === false ? null : c.lock.waitMs]).toEqual([
      86_400_000, 86_400_000, 86_400_000,
    ]);
  });

  it('--max-defrag-duration (or DEFRAGD_MAX_DEFRAG_DURATION) goes to the policy, bounded, and needs --store', () => {
    expect(resolve(['--store', 'h.db', '--max-defrag-duration', '1m']).policy.maxDefragDurationMs).toBe(60_000);
    expect(resolve(['--store', 'h.db'], { DEFRAGD_MAX_DEFRAG_DURATION: '90s' }).policy.maxDefragDurationMs).toBe(90_000);
    expect(
      resolve(['--store', 'h.db', '--max-defrag-duration', '2m'], { DEFRAGD_MAX_DEFRAG_DURATION: '90s' }).policy.maxDefragDurationMs,
    ).toBe(120_000);
    expect(resolve([]).policy.maxDefragDurationMs).toBeNull();
    expect(MAX_MAX_DEFRAG_DURATION_MS).toBe(86_400_000);
    expect(() => resolve(['--store', 'h.db', '--max-defrag-duration', '25h'])).toThrow(
      /^--max-defrag-duration: 25h is more than the maximum of 24h$/,
    );
    expect(() => resolve(['--store', 'h.db', '--max-defrag-duration', '60'])).toThrow(
      /^--max-defrag-duration: "60" has no unit; write 60s/,
    );
    expect(() => resolve(['--store', 'h.db', '--max-defrag-duration', '0s'])).toThrow(/^--max-defrag-duration: must be more than 0/);
    expect(() => resolve(['--max-defrag-duration', '1m'])).toThrow(
      /^--max-defrag-duration needs --store: the forecast is made from each member's past defrags recorded there$/,
    );
    expect(() => resolve([], { DEFRAGD_MAX_DEFRAG_DURATION: '1m' })).toThrow(/^DEFRAGD_MAX_DEFRAG_DURATION needs --store/);
    const help = command().helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(
      /--max-defrag-duration <duration> skip a member whose defrag is expected to take longer than this \(at most 24h\).* \[env DEFRAGD_MAX_DEFRAG_DURATION\]/,
    );
  });

  it('the same resolved options feed both builders; defrag implies --cluster as the command does', () => {
    const cmd = command();
    cmd.parse(['--endpoints', 'a:1', '--rule', 'isLeader'], { from: 'user' });
    const opts = withEnv(cmd, { ETCDCTL_COMMAND_TIMEOUT: '7s' });
    expect(clusterConfig({ ...opts, cluster: true })).toMatchObject({
      cluster: true,
      connection: { endpoints: ['a:1'], commandTimeoutMs: 7_000 },
    });
    expect(defragConfig(opts).policy.rule).toBe('isLeader');
  });
});
