/**
 * `defragd serve --check-config` through runCli: a bad file prints every
 * problem on its own line and exits 2; a valid one shows per cluster the
 * members it reaches (a real 3-member cluster, and one on a closed port that
 * is shown, not an error) and its next five scheduled starts.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type EtcdCluster } from '../../../dev/harness/etcd.js';
import { cli, json } from '../../../test/support/cli.js';
import type { ClusterCheck } from '../../serve/check.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-serve-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A port nothing listens on: bound once by us, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((res) => server.close(() => res()));
  return port;
}

describe('serve: without etcd', () => {
  it('an invalid file: every problem on its own line, each prefixed, exit 2, nothing on stdout', async () => {
    const file = configFile(
      'bad.yaml',
      'clusters:\n  - name: Prod\n    endpoints: []\n    schedule: "61 * * * *"\n    timezone: Mars/Base\n',
    );
    const r = await cli(['serve', '--config', file, '--check-config']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'defragd: clusters[0].endpoints: must list at least one endpoint',
      'defragd: clusters[0].name: must be lower-case letters, digits and "-" ([a-z0-9-]+)',
      'defragd: clusters[0].schedule: invalid cron expression "61 * * * *": Invalid value for minute: 61',
      'defragd: clusters[0].timezone: unknown time zone "Mars/Base" (an IANA name such as UTC or Europe/Berlin)',
    ]);
  });

  it('reads --config from DEFRAGD_CONFIG, and ${VAR}s from the environment', async () => {
    const file = configFile('env.yaml', 'clusters:\n  - { name: a, endpoints: ["${EP}"] }\n');
    const r = await cli(['serve', '--check-config'], { DEFRAGD_CONFIG: file });
    expect(r.stderr).toBe('defragd: clusters[0].endpoints[0]: environment variable EP is not set\n');
    expect(r.code).toBe(2);
  });

  it.each([
    [['serve', '--check-config'], 'defragd: serve needs --config FILE (or DEFRAGD_CONFIG)'],
    [['serve', '--config', '/nonexistent/defragd.yaml', '--check-config'], 'defragd: /nonexistent/defragd.yaml: no such file'],
    [
      ['serve', '--config', 'x.yaml', '--log-level', 'loud'],
      'defragd: --log-level: unknown value "loud" (use trace, debug, info, warn, error, fatal, silent)',
    ],
    [['serve', '--config', 'x.yaml', '--log-format', 'xml'], 'defragd: --log-format: unknown value "xml" (use json, pretty)'],
    [['serve', '--config', 'x.yaml', '-w', 'yaml'], 'defragd: --write-out: unknown format "yaml" (use table or json)'],
  ])('%j: one line, exit 2', async (argv, line) => {
    const r = await cli(argv);
    expect([r.code, r.stdout, r.stderr]).toEqual([2, '', `${line}\n`]);
  });

  it('without --check-config, a store that cannot be used stops serve before anything starts: one line naming the file, exit 2', async () => {
    const file = configFile('dir-store.yaml', `store: ${JSON.stringify(dir)}\nclusters:\n  - { name: a, endpoints: ["127.0.0.1:1"] }\n`);
    const r = await cli(['serve', '--config', file, '--log-format', 'pretty', '--log-level', 'debug']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^defragd: store ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  });
});

describe('serve --check-config: warnings', () => {
  it('an API listening beyond loopback: a warning on stderr saying what is exposed, exit 0', async () => {
    const file = configFile('open.yaml', 'listen: 0.0.0.0:9479\nclusters:\n  - { name: a, endpoints: ["127.0.0.1:1"], dialTimeout: 1s }\n');
    const r = await cli(['serve', '--config', file, '--check-config']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      'defragd: warning: listen: 0.0.0.0:9479 is beyond loopback: whoever reaches it reads without a token the clusters (members, endpoints, sizes), run history, events, /metrics and the dashboard; starting a run is off (no apiTokenFile); any Host name is served (allowedHosts limits them)\n',
    );
  });

  it('an API token file readable by others: a warning on stderr, exit 0; world-writable: refused in one line, exit 2', async () => {
    const token = join(dir, 'mode-token');
    writeFileSync(token, 'tok-Zq81-secret-0123\n');
    const file = configFile(
      'mode.yaml',
      `apiTokenFile: mode-token\nclusters:\n  - { name: a, endpoints: ["127.0.0.1:1"], dialTimeout: 1s }\n`,
    );
    chmodSync(token, 0o644);
    const r = await cli(['serve', '--config', file, '--check-config']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `defragd: warning: apiTokenFile: ${token}: mode 0644 is group- and world-readable: other users can read the token that starts runs; chmod go-r ${token} keeps it to defragd's user\n`,
    );
    expect(r.stdout).toMatch(/unreachable/);
    chmodSync(token, 0o666);
    const refused = await cli(['serve', '--config', file, '--check-config']);
    expect([refused.code, refused.stdout, refused.stderr]).toEqual([
      2,
      '',
      `defragd: apiTokenFile: ${token}: mode 0666 is world-writable: any user could replace the token; fix: chmod o-w ${token}\n`,
    ]);
  });
});

describe('serve --check-config against etcd', () => {
  let c: EtcdCluster;
  beforeAll(async () => {
    c = await startCluster({ members: 3 });
  }, 60_000);
  afterAll(async () => {
    await c?.close();
  });

  it('shows the members each cluster reaches, an unreachable one included, and the next five starts', async () => {
    const port = await closedPort();
    const token = 'tok-Zq81-secret-0123';
    writeFileSync(join(dir, 'api-token'), `${token}\n`);
    const file = configFile(
      'check.yaml',
      [
        'apiTokenFile: api-token',
        'clusters:',
        `  - name: live`,
        `    endpoints: ["${c.endpoints[0]}"]`,
        '    rule: "dbSizeFree > 100*MiB"',
        '    schedule: "0 3 * * 0"',
        '    timezone: Europe/Berlin',
        `  - name: down`,
        `    endpoints: ["127.0.0.1:${port}"]`,
        '    dialTimeout: 1s',
        '    auto: { interval: 10s }',
        '',
      ].join('\n'),
    );

    const r = await cli(['serve', '--config', file, '--check-config', '-w', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(token);
    const out = json<{ config: { apiToken: string }; clusters: ClusterCheck[] }>(r);
    expect(out.config.apiToken).toBe('<redacted>');
    const [live, down] = out.clusters;
    expect([live?.name, live?.membersReachable, live?.membersTotal, live?.error]).toEqual(['live', 3, 3, null]);
    expect(live?.reachable.sort()).toEqual(['m1', 'm2', 'm3']);
    expect(live?.rule).toBe('dbSizeFree > 100*MiB');
    expect(live?.nextStarts).toHaveLength(5);
    for (const s of live?.nextStarts ?? []) expect(s.at).toMatch(/^\d{4}-\d\d-\d\dT03:00:00\+0[12]:00$/);
    const times = (live?.nextStarts ?? []).map((s) => Date.parse(s.at));
    expect(times[0]).toBeGreaterThan(Date.now());
    expect(
      times
        .slice(1)
        .map((t, i) => t - (times[i] as number))
        .every((d) => d >= 167 * 3_600_000 && d <= 169 * 3_600_000),
    ).toBe(true);
    expect([down?.name, down?.membersReachable, down?.nextStarts, down?.schedule]).toEqual(['down', 0, [], null]);
    expect(down?.error).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*connection refused`));

    const table = await cli(['serve', '--config', file, '--check-config']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/live .*3\/3: m\d, m\d, m\d/);
    expect(table.stdout).toMatch(/down .*unreachable: .*connection refused/);
    expect(table.stdout).toContain('no schedule');
    expect(table.stdout.match(/T03:00:00\+0[12]:00/g)).toHaveLength(5);
  });
});
