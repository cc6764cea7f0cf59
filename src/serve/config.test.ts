/**
 * The daemon's config file: each kind of mistake gives exactly its line(s),
 * naming the path; a valid file gives each consumer its options; secrets stay
 * out of everything printable.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../domain/errors.js';
import { ConfigError, loadConfig, parseConfig, redactedConfig, type ServeConfig } from './config.js';
import type { Weekday } from './window.js';

const BASE = '/etc/defragd';
const EP = '["127.0.0.1:2379"]';

/** The problems of a config that must fail; fails the test when it parses. */
function problems(text: string, env: Record<string, string> = {}, files: Record<string, string> = {}): string[] {
  try {
    parseConfig(text, env, BASE, { readFile: fakeFiles(files) });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(UsageError);
    return (err as ConfigError).message.split('\n');
  }
  throw new Error('the config parsed, but should not have');
}

function fakeFiles(files: Record<string, string>): (path: string) => string {
  return (path) => {
    const content = files[path];
    if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return content;
  };
}

/** One cluster with the given extra lines (indented under it). */
const cluster = (...lines: string[]) => `clusters:\n  - name: prod\n    endpoints: ${EP}\n${lines.map((l) => `    ${l}\n`).join('')}`;

describe('invalid configs: exactly the expected line(s)', () => {
  const cases: [string, string, string[], Record<string, string>?, Record<string, string>?][] = [
    [
      "a bad cron expression, with croner's reason",
      cluster('schedule: "61 * * * *"'),
      ['clusters[0].schedule: invalid cron expression "61 * * * *": Invalid value for minute: 61'],
    ],
    [
      'a cron expression of 7 fields',
      cluster('schedule: "0 0 3 * * 0 2030"'),
      [
        "clusters[0].schedule: invalid cron expression \"0 0 3 * * 0 2030\": mode '5-or-6-parts' requires exactly 5 or 6 parts, but pattern '0 0 3 * * 0 2030' has 7 parts.",
      ],
    ],
    [
      'an unknown time zone',
      cluster('timezone: Mars/Base'),
      ['clusters[0].timezone: unknown time zone "Mars/Base" (an IANA name such as UTC or Europe/Berlin)'],
    ],
    [
      'a rule that does not compile: the RuleError message',
      cluster('rule: "dbsize > 1"'),
      [
        'clusters[0].rule: invalid rule at column 1: unknown variable: dbsize (known: dbSize, dbSizeInUse, dbSizeFree, dbQuota, dbQuotaUsage, fragmentation, isLeader, isLearner, memberName, version, KiB, MiB, GiB)',
      ],
    ],
    [
      'an empty rule',
      cluster('rule: ""'),
      ['clusters[0].rule: the rule is empty; to defragment every member, leave rule out or write rule: "true"'],
    ],
    [
      'a duplicate cluster name',
      `clusters:\n  - { name: prod, endpoints: ${EP} }\n  - { name: test, endpoints: ${EP} }\n  - { name: prod, endpoints: ${EP} }\n`,
      ['clusters[2].name: duplicate cluster name "prod" (also clusters[0])'],
    ],
    [
      'a name with capitals',
      `clusters:\n  - { name: Prod_1, endpoints: ${EP} }\n`,
      ['clusters[0].name: must be lower-case letters, digits and "-" ([a-z0-9-]+)'],
    ],
    ['a cluster without a name', `clusters:\n  - { endpoints: ${EP} }\n`, ['clusters[0].name: is required']],
    ['a misspelt key, with a suggestion', cluster('shedule: "0 3 * * 0"'), ['clusters[0].shedule: unknown key (did you mean "schedule"?)']],
    [
      'a misspelt key in a sub-object',
      cluster('auto: { interval: 30s, cooldwn: 6h }'),
      ['clusters[0].auto.cooldwn: unknown key (did you mean "cooldown"?)'],
    ],
    ['an unknown key without a near one', 'colour: blue\n' + cluster(), ['colour: unknown key']],
    [
      'a literal password',
      cluster('user: root', 'password: hunter2'),
      ['clusters[0].password: a password is not written in the config file: use passwordFile, or password: ${ENV_VAR}'],
    ],
    [
      'a password at the top',
      'password: x\n' + cluster(),
      ['password: unknown key: a password belongs to a cluster, as passwordFile or password: ${ENV_VAR}'],
    ],
    [
      'user:password in user',
      cluster('user: "root:hunter2"'),
      ['clusters[0].user: a user name only (no "user:password"): give the password with passwordFile or password: ${ENV_VAR}'],
    ],
    [
      'a user without a password',
      cluster('user: root'),
      ['clusters[0].user: user given without a password: add passwordFile, or password: ${ENV_VAR}'],
    ],
    [
      'an unset ${VAR}',
      cluster('user: root', 'password: ${ETCD_PASSWORD}'),
      ['clusters[0].password: environment variable ETCD_PASSWORD is not set'],
    ],
    [
      'an empty ${VAR} as the password',
      cluster('user: root', 'password: ${ETCD_PASSWORD}'),
      ['clusters[0].password: the environment variable it names is empty'],
      { ETCD_PASSWORD: '' },
    ],
    [
      'an unset ${VAR} in a duration: named once, not judged again',
      cluster('dialTimeout: ${DIAL}'),
      ['clusters[0].dialTimeout: environment variable DIAL is not set'],
    ],
    [
      'a broken ${',
      cluster('serverName: "${not closed"'),
      ['clusters[0].serverName: invalid reference "${not closed": write ${NAME} (letters, digits, _), or $${ for a literal ${'],
    ],
    [
      'a missing passwordFile',
      cluster('user: root', 'passwordFile: secrets/etcd'),
      ['clusters[0].passwordFile: /etc/defragd/secrets/etcd: no such file'],
    ],
    [
      'an empty passwordFile',
      cluster('user: root', 'passwordFile: /run/pw'),
      ['clusters[0].passwordFile: /run/pw: the file is empty'],
      {},
      { '/run/pw': ' \n' },
    ],
    ['a missing apiTokenFile', 'apiTokenFile: token\n' + cluster(), ['apiTokenFile: /etc/defragd/token: no such file']],
    [
      'a token with whitespace in it (every request would be refused), never quoted',
      'apiTokenFile: token\n' + cluster(),
      ['apiTokenFile: /etc/defragd/token: the token has whitespace in it (a bearer token cannot: every request would be refused)'],
      {},
      { '/etc/defragd/token': 'correct horse battery staple\n' },
    ],
    [
      'a token too short to guard starting runs',
      'apiTokenFile: token\n' + cluster(),
      ['apiTokenFile: /etc/defragd/token: the token is 1 characters; use at least 16 (e.g. openssl rand -hex 32)'],
      {},
      { '/etc/defragd/token': 'x\n' },
    ],
    ['a schedule that never fires', cluster('schedule: "0 0 30 2 *"'), ['clusters[0].schedule: "0 0 30 2 *" never fires (no such date)']],
    [
      'a schedule whose every start falls outside the windows (each would be skipped)',
      cluster('schedule: "0 3 * * *"', 'timezone: Europe/Berlin', 'windows: ["Sat 01:00-02:00", "Sun 04:00-05:00"]'),
      [
        'clusters[0].schedule: no start of "0 3 * * *" falls inside the windows (Sat 01:00-02:00, Sun 04:00-05:00; looked 4 years ahead): every one would be skipped, so it never starts a run; move its time into a window, or widen the windows',
      ],
    ],
    [
      'a schedule every second',
      cluster('schedule: "* * * * * *"'),
      [
        'clusters[0].schedule: "* * * * * *" starts runs 1s apart; scheduled runs at least 1m0s apart (for frequent checks, use auto with a rule and a cooldown)',
      ],
    ],
    [
      'a jitter as long as the time between two starts',
      cluster('schedule: "0 * * * *"', 'jitter: 2h'),
      [
        'clusters[0].schedule: jitter 2h0m0s is as long as the 1h0m0s between two starts of "0 * * * *": a start would fall after the next one',
      ],
    ],
    [
      'a password in an endpoint, never echoed',
      'clusters:\n  - name: prod\n    endpoints: ["https://root:hunter2@10.0.0.1:2379"]\n',
      ['clusters[0].endpoints[0]: has a user or password in it (user:password@): give user and passwordFile instead'],
    ],
    ['a duration without a unit', cluster('jitter: 10'), ['clusters[0].jitter: "10" has no unit; write 10s (units: ms, s, m, h)']],
    [
      'a duration that is not one',
      cluster('defrag: { waitBetween: soon }'),
      ['clusters[0].defrag.waitBetween: invalid duration "soon" (examples: 5s, 500ms, 1m30s)'],
    ],
    [
      'a waitForUrl that is not a URL, and a cert without its key',
      cluster('waitForUrl: { urls: ["apiserver:6443/readyz"], cert: /c.pem }'),
      [
        'clusters[0].waitForUrl.cert: cert and key go together: give both or neither',
        'clusters[0].waitForUrl.urls[0]: "apiserver:6443/readyz" is not an http:// or https:// URL',
      ],
    ],
    [
      'a waitForUrl without URLs, a typo and a timeout above the maximum',
      cluster('waitForUrl: { urls: [], timout: 1m, timeout: 2h }'),
      [
        'clusters[0].waitForUrl.timeout: 2h is more than the maximum of 1h',
        'clusters[0].waitForUrl.timout: unknown key (did you mean "timeout"?)',
        'clusters[0].waitForUrl.urls: must list at least one URL',
      ],
    ],
    ["a dial timeout above the CLI's maximum", cluster('dialTimeout: 2h'), ['clusters[0].dialTimeout: 2h is more than the maximum of 1h']],
    ['a zero command timeout', cluster('commandTimeout: 0s'), ['clusters[0].commandTimeout: must be more than 0 (got "0s")']],
    ['a bad size', cluster('quotaBytes: lots'), ['clusters[0].quotaBytes: invalid size "lots" (examples: 2147483648, 2GiB, 256MiB)']],
    [
      'both compaction forms',
      cluster('compaction: { retain: 1h, retainRevisions: 1000 }'),
      ['clusters[0].compaction: give retain or retainRevisions, not both'],
    ],
    [
      'neither compaction form',
      cluster('compaction: {}'),
      ['clusters[0].compaction: give retain (a duration) or retainRevisions (a number)'],
    ],
    [
      'a bad window time',
      cluster('windows: ["Sat 01:00-05:00", "Sat 25:00-05:00"]'),
      ['clusters[0].windows[1]: invalid window "Sat 25:00-05:00": 25:00 is not a time of day (00:00-23:59)'],
    ],
    [
      'a bad window day',
      cluster('windows: ["Caturday 01:00-05:00"]'),
      ['clusters[0].windows[0]: invalid window "Caturday 01:00-05:00": unknown day "Caturday" (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)'],
    ],
    [
      'a YAML syntax error, with its line',
      `listen: 127.0.0.1:9479\nclusters:\n  - name: prod\n    endpoints: [127.0.0.1:2379\n    rule: x\n`,
      ['line 5, column 5: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ],
    [
      'an unterminated quote',
      'listen: 127.0.0.1:9479\nstore: "unterminated\nclusters: []\n',
      ['line 4, column 1: invalid YAML: Missing closing "quote'],
    ],
    ['a key given twice', `store: a.db\nstore: b.db\n${cluster()}`, ['line 2, column 1: invalid YAML: Map keys must be unique']],
    ['no endpoints', `clusters:\n  - { name: prod, endpoints: [] }\n`, ['clusters[0].endpoints: must list at least one endpoint']],
    [
      'a malformed endpoint',
      `clusters:\n  - { name: prod, endpoints: ["127.0.0.1"] }\n`,
      ['clusters[0].endpoints[0]: malformed endpoint "127.0.0.1": no port (etcd\'s client port is usually 2379)'],
    ],
    ['no clusters', 'listen: 127.0.0.1:9479\nclusters: []\n', ['clusters: must list at least one cluster']],
    [
      'allowedHosts with a port, a scheme, a wildcard or not a list',
      'allowedHosts: ["defragd.example.com:9479", "https://defragd.example.com", "*.example.com", ""]\n' + cluster(),
      [
        'allowedHosts[0]: "defragd.example.com:9479" is not a host name: give a name as the browser\'s address bar has it, without scheme, port or path (e.g. defragd.example.com)',
        'allowedHosts[1]: "https://defragd.example.com" is not a host name: give a name as the browser\'s address bar has it, without scheme, port or path (e.g. defragd.example.com)',
        'allowedHosts[2]: "*.example.com" is not a host name: give a name as the browser\'s address bar has it, without scheme, port or path (e.g. defragd.example.com)',
        'allowedHosts[3]: "" is not a host name: give a name as the browser\'s address bar has it, without scheme, port or path (e.g. defragd.example.com)',
      ],
    ],
    ['allowedHosts not a list', 'allowedHosts: defragd.example.com\n' + cluster(), ['allowedHosts: expected a list, got a string']],
    [
      'a bad listen address',
      'listen: localhost\n' + cluster(),
      ['listen: invalid address "localhost": expected host:port, e.g. 127.0.0.1:9479 or [::1]:9479'],
    ],
    ['a bad nospace mode', cluster('nospace: panic'), ['clusters[0].nospace: expected recover or ignore, got "panic"']],
    [
      'a boolean that is not one',
      cluster('defrag: { moveLeader: maybe }'),
      ['clusters[0].defrag.moveLeader: expected true or false, got "maybe"'],
    ],
    ['a list where a string belongs', cluster('schedule: [1, 2]'), ['clusters[0].schedule: expected a string, got a list']],
    ['maxConcurrentRuns 0', 'maxConcurrentRuns: 0\n' + cluster(), ['maxConcurrentRuns: must be at least 1']],
    ['maxEventStreams 0', 'maxEventStreams: 0\n' + cluster(), ['maxEventStreams: must be at least 1']],
    ['dashboard not a boolean', 'dashboard: maybe\n' + cluster(), ['dashboard: expected true or false, got "maybe"']],
    [
      'a disarmBelow above 1',
      cluster('defrag: { disarmBelow: 1.5 }'),
      ['clusters[0].defrag.disarmBelow: expected a fraction in (0, 1], got "1.5"'],
    ],
    [
      "a maxDefragDuration above the CLI's maximum",
      cluster('defrag: { maxDefragDuration: 25h }'),
      ['clusters[0].defrag.maxDefragDuration: 25h is more than the maximum of 24h'],
    ],
    ['an empty record prefix', cluster('recordPrefix: " "'), ['clusters[0].recordPrefix: the record prefix must not be empty']],
    ['a file that is a list', '- a\n- b\n', ['the config must be a mapping of keys (listen, store, clusters, ...), got a list']],
  ];
  it.each(cases)('%s', (_name, text, expected, env = {}, files = {}) => {
    expect(problems(text, env, files)).toEqual(expected);
  });

  it('reports every problem of a file at once, sorted by path (clusters[2] before clusters[10])', () => {
    const many = Array.from(
      { length: 11 },
      (_, i) => `  - { name: c${i}, endpoints: ${EP}${i === 2 || i === 10 ? ', timezone: Mars/Base' : ''} }`,
    ).join('\n');
    const text = `listen: nowhere\nclusters:\n${many}\n  - { name: c0, endpoints: [], schedule: "61 * * * *", rule: "" }\n`;
    expect(problems(text)).toEqual([
      'clusters[2].timezone: unknown time zone "Mars/Base" (an IANA name such as UTC or Europe/Berlin)',
      'clusters[10].timezone: unknown time zone "Mars/Base" (an IANA name such as UTC or Europe/Berlin)',
      'clusters[11].endpoints: must list at least one endpoint',
      'clusters[11].name: duplicate cluster name "c0" (also clusters[0])',
      'clusters[11].rule: the rule is empty; to defragment every member, leave rule out or write rule: "true"',
      'clusters[11].schedule: invalid cron expression "61 * * * *": Invalid value for minute: 61',
      'listen: invalid address "nowhere": expected host:port, e.g. 127.0.0.1:9479 or [::1]:9479',
    ]);
  });
});

describe('a valid config', () => {
  const full = `
listen: 0.0.0.0:9000
allowedHosts: [Defragd.Example.com., defragd-0.defragd.svc]
store: data/history.sqlite
apiTokenFile: /run/secrets/api-token
maxConcurrentRuns: 2
maxEventStreams: 8
storeRetention: 30d
dashboard: false
clusters:
  - name: prod
    endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379]
    cacert: tls/ca.pem
    cert: /etc/etcd/client.pem
    key: /etc/etcd/client-key.pem
    serverName: etcd.internal
    user: root
    passwordFile: /run/secrets/etcd
    dialTimeout: 3s
    commandTimeout: 10s
    quotaBytes: 8GiB
    rule: "dbSizeFree > 512*MiB || dbQuotaUsage > 0.8"
    schedule: "0 3 * * 0"
    timezone: Europe/Berlin
    jitter: 10m
    windows: ["Sat 01:00-05:00", "Sun 01:00-05:00"]
    auto: { interval: 1m, cooldown: 12h }
    nospace: ignore
    compaction: { retainRevisions: 100000 }
    defrag: { moveLeader: false, waitBetween: 30s, defragTimeout: 5m, continueOnError: true, skipHealthCheck: true, allowKnownDefects: true, disarmBelow: 0.8, maxDefragDuration: 2h }
    record: true
    recordPrefix: /ops/defragd/
    waitForUrl:
      urls: [https://10.0.0.1:6443/readyz, https://10.0.0.2:6443/readyz]
      timeout: 5m
      cacert: /etc/kubernetes/pki/ca.crt
      tokenFile: /run/secrets/readyz-token
  - name: test
    endpoints: [127.0.0.1:2379]
    compaction: { retain: 1h }
    record: false
`;
  const files = {
    '/run/secrets/api-token': 'tok-1234567890abcdef\n',
    '/run/secrets/etcd': 's3cret-pw\n',
    '/etc/kubernetes/pki/ca.crt': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    '/run/secrets/readyz-token': 'readyz-token-1\n',
  };

  it("is parsed into each consumer's options, with the defaults filled in", () => {
    const config = parseConfig(full, {}, BASE, { readFile: fakeFiles(files) });
    const expected: ServeConfig = {
      listen: { host: '0.0.0.0', port: 9000 },
      allowedHosts: ['defragd.example.com', 'defragd-0.defragd.svc'],
      store: '/etc/defragd/data/history.sqlite',
      storeRetentionMs: 30 * 86_400_000,
      apiToken: 'tok-1234567890abcdef',
      maxConcurrentRuns: 2,
      maxEventStreams: 8,
      dashboard: false,
      clusters: [
        {
          name: 'prod',
          connection: {
            endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'],
            tls: {
              caFile: '/etc/defragd/tls/ca.pem',
              certFile: '/etc/etcd/client.pem',
              keyFile: '/etc/etcd/client-key.pem',
              insecureSkipVerify: false,
              serverName: 'etcd.internal',
            },
            auth: { user: 'root', password: 's3cret-pw' },
            dialTimeoutMs: 3_000,
            commandTimeoutMs: 10_000,
          },
          policy: {
            rule: 'dbSizeFree > 512*MiB || dbQuotaUsage > 0.8',
            moveLeader: false,
            skipHealthCheck: true,
            allowKnownDefects: true,
            compactKeepRevisions: 100_000,
            disarmNospace: false,
            disarmBelow: 0.8,
            defragTimeoutMs: 300_000,
            maxDefragDurationMs: 7_200_000,
          },
          execute: {
            waitBetweenMs: 30_000,
            continueOnError: true,
            readiness: expect.objectContaining({
              urls: ['https://10.0.0.1:6443/readyz', 'https://10.0.0.2:6443/readyz'],
              timeoutMs: 300_000,
              credentialsDigest: expect.stringMatching(/^[0-9a-f]{16}$/),
              check: expect.any(Function),
            }),
          },
          observe: { cluster: true, quotaBytes: 8 * 1024 ** 3 },
          schedule: { cron: '0 3 * * 0', jitterMs: 600_000 },
          auto: { intervalMs: 60_000, cooldownMs: 12 * 3_600_000 },
          observeIntervalMs: 60_000,
          timezone: 'Europe/Berlin',
          windows: [
            { text: 'Sat 01:00-05:00', days: new Set<Weekday>([6]), startMinute: 60, endMinute: 300 },
            { text: 'Sun 01:00-05:00', days: new Set<Weekday>([0]), startMinute: 60, endMinute: 300 },
          ],
          nospace: 'ignore',
          compaction: { retainRevisions: 100_000 },
          record: { prefix: '/ops/defragd' },
        },
        {
          name: 'test',
          connection: { endpoints: ['127.0.0.1:2379'], tls: null, auth: null, dialTimeoutMs: 2_000, commandTimeoutMs: 5_000 },
          policy: {
            rule: null,
            moveLeader: true,
            skipHealthCheck: false,
            allowKnownDefects: false,
            compactKeepRevisions: null,
            disarmNospace: true,
            disarmBelow: 0.9,
            defragTimeoutMs: null,
            maxDefragDurationMs: null,
          },
          execute: { waitBetweenMs: 0, continueOnError: false, readiness: null },
          observe: { cluster: true, quotaBytes: null },
          schedule: null,
          auto: null,
          observeIntervalMs: 30_000,
          timezone: 'UTC',
          windows: [],
          nospace: 'recover',
          compaction: { retainMs: 3_600_000 },
          record: false,
        },
      ],
      warnings: [
        'listen: 0.0.0.0:9000 is beyond loopback: whoever reaches it reads without a token the clusters (members, endpoints, sizes), run history, events, /metrics and the dashboard; starting a run needs the API token',
      ],
    };
    expect(config).toEqual(expected);
    expectDeepFrozen(config);
  });

  it('needs only clusters: name and endpoints; everything else has its default', () => {
    const config = parseConfig(`clusters: [{ name: a, endpoints: ${EP} }]`, {}, BASE);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9479 });
    expect(config.allowedHosts).toBeNull();
    expect(config.store).toBe('/etc/defragd/defragd.sqlite');
    expect(config.storeRetentionMs).toBe(90 * 86_400_000);
    expect([config.apiToken, config.maxConcurrentRuns, config.dashboard]).toEqual([null, 1, true]);
    expect(config.clusters[0]?.record).toEqual({ prefix: '/defragd' });
  });

  it('keeps ":memory:" as the store, and reads [::1]:port', () => {
    const config = parseConfig(`listen: "[::1]:0"\nstore: ":memory:"\nclusters: [{ name: a, endpoints: ${EP} }]`, {}, BASE);
    expect([config.store, config.listen]).toEqual([':memory:', { host: '::1', port: 0 }]);
  });

  it('a schedule with some starts inside the windows, however few: a weekly one, a first-of-the-month one on a Saturday', () => {
    for (const lines of [
      ['schedule: "0 3 * * *"', 'windows: ["Sat 02:00-04:00"]'],
      ['schedule: "30 2 * * 0"', 'timezone: Europe/Berlin', 'windows: ["Sat 22:00-03:00"]'],
      // The 1st is a Saturday in August 2026.
      ['schedule: "0 3 1 * *"', 'windows: ["Sat 00:00-24:00"]'],
    ]) {
      expect(parseConfig(cluster(...lines), {}, BASE).clusters[0]?.schedule).not.toBeNull();
    }
  });

  it('auto without interval observes every 30s and cools down 6h', () => {
    const config = parseConfig(cluster('auto: {}'), {}, BASE);
    expect([config.clusters[0]?.auto, config.clusters[0]?.observeIntervalMs]).toEqual([
      { intervalMs: 30_000, cooldownMs: 6 * 3_600_000 },
      30_000,
    ]);
  });
});

function expectDeepFrozen(v: unknown, path = 'config'): void {
  if (v === null || typeof v !== 'object') return;
  expect(Object.isFrozen(v), `${path} is not frozen`).toBe(true);
  for (const [k, x] of Object.entries(v)) expectDeepFrozen(x, `${path}.${k}`);
}

describe('${VAR} interpolation', () => {
  it('works in every string value, numbers and booleans included; $${ is a literal ${', () => {
    const env = { EP: 'https://10.0.0.9:2379', T: '7s', SKIP: 'true', PW: 'pw-from-env', PREFIX: '/x' };
    const config = parseConfig(
      cluster(
        'dialTimeout: ${T}',
        'insecureSkipTlsVerify: ${SKIP}',
        'user: root',
        'password: ${PW}',
        'recordPrefix: "${PREFIX}/$${literal}"',
      ).replace(EP, '["${EP}", "127.0.0.1:2379"]'),
      env,
      BASE,
    );
    const c = config.clusters[0];
    expect(c?.connection.endpoints).toEqual(['https://10.0.0.9:2379', '127.0.0.1:2379']);
    expect(c?.connection.dialTimeoutMs).toBe(7_000);
    expect(c?.connection.tls?.insecureSkipVerify).toBe(true);
    expect(c?.connection.auth).toEqual({ user: 'root', password: 'pw-from-env' });
    expect(c?.record).toEqual({ prefix: '/x/${literal}' });
  });

  it('names every unset variable, each at its path', () => {
    expect(problems(`listen: "\${HOST}:9479"\n${cluster('schedule: "${CRON}"')}`)).toEqual([
      'clusters[0].schedule: environment variable CRON is not set',
      'listen: environment variable HOST is not set',
    ]);
  });
});

describe('secrets', () => {
  const secret = 'Sup3r-S3cret-Pa55';

  it('redactedConfig replaces every password and the API token; the secret appears nowhere in it', () => {
    const text = `apiTokenFile: /t\nclusters:\n  - { name: a, endpoints: ${EP}, user: root, passwordFile: /p }\n  - { name: b, endpoints: ${EP}, user: root, password: "\${PW}" }\n`;
    const config = parseConfig(text, { PW: secret }, BASE, { readFile: fakeFiles({ '/t': `${secret}-token`, '/p': secret }) });
    expect(config.clusters.map((c) => c.connection.auth?.password)).toEqual([secret, secret]);
    const printed = JSON.stringify(redactedConfig(config));
    expect(printed).not.toContain(secret);
    expect(printed).not.toContain('S3cret');
    const redacted = redactedConfig(config);
    expect(redacted.apiToken).toBe('<redacted>');
    expect(redacted.clusters.map((c) => c.connection.auth)).toEqual([
      { user: 'root', password: '<redacted>' },
      { user: 'root', password: '<redacted>' },
    ]);
    // The original is untouched: the client still needs the password.
    expect(config.clusters[0]?.connection.auth?.password).toBe(secret);
  });

  it('no problem quotes a secret: a literal password, a broken reference in one, a password with a bad type elsewhere', () => {
    for (const text of [
      cluster('user: root', `password: ${secret}`),
      cluster('user: root', `password: "\${${secret}"`),
      cluster(`user: "root:${secret}"`),
      cluster('user: root', `password: "${secret}"`, `dialTimeout: nope`),
    ]) {
      const lines = problems(text);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toContain(secret);
    }
  });
});

describe('a listen address beyond loopback', () => {
  const reads =
    'whoever reaches it reads without a token the clusters (members, endpoints, sizes), run history, events, /metrics and the dashboard';
  const warnings = (top: string) =>
    parseConfig(`${top}${cluster()}`, {}, BASE, { readFile: fakeFiles({ '/t': 'tok-1234567890abcdef' }) }).warnings;

  it.each(['127.0.0.1:9479', '127.0.0.2:9479', '"[::1]:9479"', 'localhost:9479'])('%s: no word', (listen) => {
    expect(warnings(`listen: ${listen}\napiTokenFile: /t\n`)).toEqual([]);
  });

  it.each([
    [
      '0.0.0.0:9479',
      'apiTokenFile: /t\n',
      `listen: 0.0.0.0:9479 is beyond loopback: ${reads}; starting a run needs the API token; any Host name is served (allowedHosts limits them)`,
    ],
    [
      '"[::]:9479"',
      '',
      `listen: [::]:9479 is beyond loopback: ${reads}; starting a run is off (no apiTokenFile); any Host name is served (allowedHosts limits them)`,
    ],
    [
      '10.0.0.5:80',
      'allowedHosts: [defragd.example.com]\n',
      `listen: 10.0.0.5:80 is beyond loopback: ${reads}; starting a run is off (no apiTokenFile)`,
    ],
  ])('%s (%j): one warning saying what is exposed', (listen, more, warning) => {
    expect(warnings(`listen: ${listen}\n${more}`)).toEqual([warning]);
  });
});

describe('the API token file: who else may read or write it', () => {
  const text = `apiTokenFile: token\n${cluster()}`;
  const files = { '/etc/defragd/token': 'tok-1234567890abcdef\n' };
  const load = (mode: number) => parseConfig(text, {}, BASE, { readFile: fakeFiles(files), fileMode: () => mode });

  it.each(['0666', '0602', '0777', '4602'])(
    'mode %s (world-writable) is refused: one line naming the file, its mode and the fix',
    (mode) => {
      expect(() => load(Number.parseInt(mode, 8))).toThrow(
        new ConfigError([
          `apiTokenFile: /etc/defragd/token: mode ${mode} is world-writable: any user could replace the token; fix: chmod o-w /etc/defragd/token`,
        ]),
      );
    },
  );

  it.each([
    ['0640', 'group'],
    ['0604', 'world'],
    ['0644', 'group- and world'],
  ])('mode %s is taken, with a warning that it is %s-readable', (mode, who) => {
    expect(load(Number.parseInt(mode, 8)).warnings).toEqual([
      `apiTokenFile: /etc/defragd/token: mode ${mode} is ${who}-readable: other users can read the token that starts runs; chmod go-r /etc/defragd/token keeps it to defragd's user`,
    ]);
  });

  it.each(['0600', '0400'])('mode %s is taken without a word', (mode) => {
    const config = load(Number.parseInt(mode, 8));
    expect([config.apiToken, config.warnings]).toEqual(['tok-1234567890abcdef', []]);
  });
});

describe('loadConfig: files on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'defragd-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("resolves relative paths against the config file's directory, not the working directory", () => {
    mkdirSync(join(dir, 'conf', 'secrets'), { recursive: true });
    writeFileSync(join(dir, 'conf', 'secrets', 'pw'), '  from-file  \n');
    writeFileSync(join(dir, 'conf', 'token'), 'api-token-0123456789\n');
    writeFileSync(
      join(dir, 'conf', 'defragd.yaml'),
      `store: ./state/h.sqlite\napiTokenFile: token\nclusters:\n  - { name: a, endpoints: ${EP}, user: root, passwordFile: secrets/pw, cacert: ../ca.pem }\n`,
    );
    const config = loadConfig(join(dir, 'conf', 'defragd.yaml'), {});
    expect(config.store).toBe(join(dir, 'conf', 'state', 'h.sqlite'));
    expect(config.apiToken).toBe('api-token-0123456789');
    expect(config.clusters[0]?.connection.auth?.password).toBe('from-file');
    expect(config.clusters[0]?.connection.tls?.caFile).toBe(join(dir, 'ca.pem'));
  });

  it("reads the token file's mode from the disk: world-writable is refused, readable by others a warning", () => {
    const token = join(dir, 'token');
    const file = join(dir, 'defragd.yaml');
    writeFileSync(token, 'api-token-0123456789\n');
    writeFileSync(file, `apiTokenFile: token\nclusters:\n  - { name: a, endpoints: ${EP} }\n`);
    chmodSync(token, 0o600);
    expect(loadConfig(file, {}).warnings).toEqual([]);
    chmodSync(token, 0o640);
    expect(loadConfig(file, {}).warnings).toEqual([expect.stringMatching(/^apiTokenFile: .*: mode 0640 is group-readable: /)]);
    chmodSync(token, 0o666);
    expect(() => loadConfig(file, {})).toThrow(`apiTokenFile: ${token}: mode 0666 is world-writable`);
  });

  it('a missing config file is one problem naming it', () => {
    const file = join(dir, 'none.yaml');
    expect(() => loadConfig(file, {})).toThrow(new ConfigError([`${file}: no such file`]));
  });

  it('examples/defragd.yaml is valid and uses every key', () => {
    const example = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples/defragd.yaml');
    const files: Record<string, string> = { [example]: readFileSync(example, 'utf8') };
    const exampleDir = dirname(example);
    for (const f of ['api-token', 'secrets/etcd-prod-password']) files[resolve(exampleDir, f)] = 'x'.repeat(32);
    files['/etc/kubernetes/pki/ca.crt'] = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const config = loadConfig(example, { ETCD_STAGING_PASSWORD: 'y' }, { readFile: fakeFiles(files) });
    expect(config.clusters.length).toBeGreaterThanOrEqual(2);
    const text = files[example] as string;
    const keys = [
      'listen',
      'allowedHosts',
      'store',
      'apiTokenFile',
      'maxConcurrentRuns',
      'storeRetention',
      'dashboard',
      'clusters',
      'name',
      'endpoints',
      'cacert',
      'cert',
      'key',
      'serverName',
      'insecureSkipTlsVerify',
      'user',
      'password',
      'passwordFile',
      'dialTimeout',
      'commandTimeout',
      'quotaBytes',
      'rule',
      'schedule',
      'timezone',
      'jitter',
      'windows',
      'waitForUrl',
      'urls',
      'timeout',
      'auto',
      'interval',
      'cooldown',
      'nospace',
      'compaction',
      'retain',
      'retainRevisions',
      'defrag',
      'moveLeader',
      'waitBetween',
      'defragTimeout',
      'continueOnError',
      'skipHealthCheck',
      'allowKnownDefects',
      'disarmBelow',
      'maxDefragDuration',
      'record',
      'recordPrefix',
    ];
    // Uncommented: each key is set somewhere in the example, not only mentioned in a comment.
    const set = text
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    for (const k of keys) expect(set, k).toMatch(new RegExp(`\\b${k}:`));
  });
});
