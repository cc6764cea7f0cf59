import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addClusterFlags, clusterConfig, DEFAULT_ENDPOINT, MAX_COMMAND_TIMEOUT_MS, MAX_DIAL_TIMEOUT_MS, withEnv } from './flags.js';
import { MAX_TIMER_MS, parseDuration, parseFraction, parseNonNegativeInt, parseSize, shortDuration } from './units.js';

function resolve(argv: string[], env: Record<string, string> = {}) {
  const cmd = addClusterFlags(new Command('x')).exitOverride();
  cmd.parse(argv, { from: 'user' });
  return clusterConfig(withEnv(cmd, env));
}

describe('connection flags', () => {
  it('defaults like etcdctl', () => {
    const c = resolve([]);
    expect(c.connection.endpoints).toEqual(['127.0.0.1:2379']);
    expect(DEFAULT_ENDPOINT).toBe('127.0.0.1:2379');
    expect(c.connection.dialTimeoutMs).toBe(2_000);
    expect(c.connection.commandTimeoutMs).toBe(5_000);
    expect(c.connection.tls).toBeNull();
    expect(c.connection.auth).toBeNull();
    expect(c.writeOut).toBe('table');
    expect(c.cluster).toBe(false);
  });

  it('flag > DEFRAGD_* > ETCDCTL_* > default', () => {
    expect(resolve([], { ETCDCTL_ENDPOINTS: 'a:1' }).connection.endpoints).toEqual(['a:1']);
    expect(resolve([], { ETCDCTL_ENDPOINTS: 'a:1', DEFRAGD_ENDPOINTS: 'b:2,c:3' }).connection.endpoints).toEqual(['b:2', 'c:3']);
    expect(resolve(['--endpoints', 'd:4'], { DEFRAGD_ENDPOINTS: 'b:2' }).connection.endpoints).toEqual(['d:4']);
    expect(resolve([], { ETCDCTL_COMMAND_TIMEOUT: '30s' }).connection.commandTimeoutMs).toBe(30_000);
    expect(resolve([], { ETCDCTL_INSECURE_SKIP_TLS_VERIFY: 'true' }).connection.tls?.insecureSkipVerify).toBe(true);
    expect(resolve([], { DEFRAGD_CLUSTER: '1' }).cluster).toBe(true);
  });

  it('user:password splits at the first colon; the password may contain colons', () => {
    expect(resolve(['--user', 'root:a:b']).connection.auth).toEqual({ user: 'root', password: 'a:b' });
    expect(resolve(['--user', 'root', '--password', 'x']).connection.auth).toEqual({ user: 'root', password: 'x' });
  });

  it.each([
    [['--user', 'root'], /without a password/],
    [['--password', 'x'], /without --user/],
    [['-w', 'yaml'], /unknown format/],
    [['--dial-timeout', '2 seconds'], /invalid duration/],
    [['--quota-bytes', 'lots'], /invalid size/],
    [['--command-timeout', '0s'], /--command-timeout: must be more than 0/],
    [['--dial-timeout', '0'], /--dial-timeout: must be more than 0/],
    [['--dial-timeout', ''], /--dial-timeout: invalid duration ""/],
    [['--dial-timeout', '5'], /^--dial-timeout: "5" has no unit; write 5s \(units: ms, s, m, h\)$/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => resolve(argv)).toThrow(message);
  });

  it.each([
    [{ DEFRAGD_CLUSTER: 'maybe' }, /^DEFRAGD_CLUSTER: expected true or false, got "maybe"$/],
    [{ ETCDCTL_DEBUG: 'maybe' }, /^ETCDCTL_DEBUG: expected true or false/],
    [{ ETCDCTL_DIAL_TIMEOUT: 'abc' }, /^ETCDCTL_DIAL_TIMEOUT: invalid duration "abc" \(examples: 5s, 500ms, 1m30s\)$/],
    [{ DEFRAGD_DIAL_TIMEOUT: 'abc', ETCDCTL_DIAL_TIMEOUT: '1s' }, /^DEFRAGD_DIAL_TIMEOUT: invalid duration "abc"/],
    [{ ETCDCTL_COMMAND_TIMEOUT: '5' }, /^ETCDCTL_COMMAND_TIMEOUT: "5" has no unit; write 5s/],
    [{ DEFRAGD_COMMAND_TIMEOUT: '2h' }, /^DEFRAGD_COMMAND_TIMEOUT: 2h is more than the maximum of 1h$/],
    [{ ETCDCTL_QUOTA_BYTES: 'lots' }, /^ETCDCTL_QUOTA_BYTES: invalid size "lots"/],
    [{ ETCDCTL_ENDPOINTS: ' , ' }, /^ETCDCTL_ENDPOINTS: no endpoint given/],
    [{ DEFRAGD_WRITE_OUT: 'yaml' }, /^DEFRAGD_WRITE_OUT: unknown format "yaml" \(use table or json\)$/],
    [
      { ETCDCTL_WRITE_OUT: 'simple' },
      /^ETCDCTL_WRITE_OUT: unknown format "simple" \(use table or json; DEFRAGD_WRITE_OUT overrides it for defragd\)$/,
    ],
    [{ ETCDCTL_USER: 'root' }, /^ETCDCTL_USER given without a password: set --password or ETCDCTL_PASSWORD, or write user:password$/],
    [{ DEFRAGD_PASSWORD: 'x' }, /^DEFRAGD_PASSWORD given without --user$/],
  ])('a bad value from the environment names the variable read: %j', (env, message) => {
    expect(() => resolve([], env)).toThrow(message);
  });

  it('a flag on the command line is blamed on the flag even when the environment has the same setting', () => {
    expect(() => resolve(['--dial-timeout', 'abc'], { ETCDCTL_DIAL_TIMEOUT: 'abc' })).toThrow(/^--dial-timeout: invalid duration/);
    expect(() => resolve(['-w', 'yaml'], { ETCDCTL_WRITE_OUT: 'yaml' })).toThrow(
      /^--write-out: unknown format "yaml" \(use table or json\)$/,
    );
  });

  it('an empty variable counts as unset', () => {
    expect(resolve([], { DEFRAGD_DIAL_TIMEOUT: '', ETCDCTL_DIAL_TIMEOUT: '3s' }).connection.dialTimeoutMs).toBe(3_000);
  });

  it('spreading the resolved options keeps their sources', () => {
    const cmd = addClusterFlags(new Command('x')).exitOverride();
    cmd.parse([], { from: 'user' });
    expect(() => clusterConfig({ ...withEnv(cmd, { ETCDCTL_DIAL_TIMEOUT: 'abc' }), cluster: true })).toThrow(/^ETCDCTL_DIAL_TIMEOUT:/);
  });

  it('durations are bounded: a typo cannot reach grpc-js or Node timers', () => {
    expect(resolve(['--dial-timeout', '1h', '--command-timeout', '60m']).connection).toMatchObject({
      dialTimeoutMs: MAX_DIAL_TIMEOUT_MS,
      commandTimeoutMs: MAX_COMMAND_TIMEOUT_MS,
    });
    expect(() => resolve(['--command-timeout', '999999999h'])).toThrow(/^--command-timeout: 999999999h is more than the maximum of 1h$/);
    expect(() => resolve(['--dial-timeout', '9999h'])).toThrow(/^--dial-timeout: 9999h is more than the maximum of 1h$/);
    expect(() => resolve(['--dial-timeout', '1h1ms'])).toThrow(/maximum of 1h/);
  });

  it('help names the variables and the maximum', () => {
    const help = addClusterFlags(new Command('x')).helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(
      /--dial-timeout <duration> timeout to connect to a member \(at most 1h\) \[env DEFRAGD_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\]/,
    );
  });

  it('the config is frozen', () => {
    const c = resolve([]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.connection)).toBe(true);
  });
});

describe('units', () => {
  it.each([
    ['5s', 5_000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['0', 0],
    [' 0 ', 0],
    ['0s', 0],
    ['1.5s', 1_500],
  ])('duration %s', (t, ms) => expect(parseDuration(t, '--x')).toBe(ms));
  it.each(['', '5x', 's', '1m 30s', '-5s'])('bad duration %j', (t) =>
    expect(() => parseDuration(t, '--x')).toThrow(/--x: invalid duration/),
  );
  it.each([
    ['10', /^--x: "10" has no unit; write 10s \(units: ms, s, m, h\)$/],
    ['1.5', /^--x: "1.5" has no unit; write 1.5s/],
    ['0.0', /^--x: "0.0" has no unit/],
  ])('a bare number other than 0 is refused, as Go refuses it: %j', (t, message) => expect(() => parseDuration(t, '--x')).toThrow(message));
  it("no duration passes the maximum given, nor Node's timer limit", () => {
    expect(parseDuration('2s', '--x', { maxMs: 2_000 })).toBe(2_000);
    expect(() => parseDuration('2001ms', '--x', { maxMs: 2_000 })).toThrow(/^--x: 2001ms is more than the maximum of 2s$/);
    expect(parseDuration('596h', '--x')).toBe(596 * 3_600_000);
    expect(() => parseDuration('597h', '--x')).toThrow(/more than the maximum/);
    expect(() => parseDuration('597h', '--x', { maxMs: Infinity })).toThrow(/more than the maximum/);
    expect(() => parseDuration(`${'9'.repeat(400)}h`, '--x')).toThrow(/more than the maximum/);
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
  });
  it.each([
    [3_600_000, '1h'],
    [86_400_000, '24h'],
    [5_400_000, '1h30m'],
    [1_500, '1.5s'],
    [250, '250ms'],
    [MAX_TIMER_MS, '596h31m23.647s'],
  ])('shortDuration(%d) = %s', (ms, text) => {
    expect(shortDuration(ms)).toBe(text);
    if (ms >= 1_000) expect(parseDuration(text, '--x')).toBe(ms);
  });
  it.each([
    ['2147483648', 2147483648],
    ['2GiB', 2 * 1024 ** 3],
    ['256Mi', 256 * 1024 ** 2],
    ['8GB', 8e9],
    ['1.5 KiB', 1536],
  ])('size %s', (t, n) => expect(parseSize(t, '--x')).toBe(n));
  it('bad sizes, counts and fractions', () => {
    expect(() => parseSize('2 parsecs', '--q')).toThrow(/--q: invalid size/);
    expect(() => parseSize('9'.repeat(400), '--q')).toThrow(/--q: 9+ is too large/);
    expect(() => parseNonNegativeInt('-1', '--n')).toThrow(/whole number/);
    expect(() => parseNonNegativeInt('1e3', '--n')).toThrow(/whole number/);
    expect(parseNonNegativeInt('1000', '--n')).toBe(1000);
    expect(() => parseFraction('1.5', '--f')).toThrow(/fraction/);
    expect(() => parseFraction('0', '--f')).toThrow(/fraction/);
    expect(parseFraction('0.9', '--f')).toBe(0.9);
  });
});
