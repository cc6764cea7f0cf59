/**
 * `defragd defrag` against real etcd 3.4 clusters with auth on and with TLS
 * client URLs: the right credentials / CA work; wrong ones fail with one line
 * and change nothing.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import type { ConnectionOptions } from '../../src/etcd/options.js';
import { cli, dbSizes, fragmentAndWait, MiB, parseJson, show, sizes, type ReportJson } from './helpers-defrag.js';

const FRAGMENT = { bytes: 8 * MiB, passes: 2, minFree: 4 * MiB, members: 3 } as const;

function expectDefragmented(report: ReportJson, before: Record<string, number>, after: Awaited<ReturnType<typeof sizes>>): void {
  expect(report.outcome).toBe('success');
  expect(report.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
  for (const [name, s] of Object.entries(after)) {
    expect(s.dbSize, name).toBeLessThan(before[name] as number);
    expect(s.dbSize).toBeLessThanOrEqual(s.dbSizeInUse * 1.1 + MiB);
  }
}

describe('defrag with auth enabled', () => {
  const PASSWORD = 'r00t-Secret';
  const cluster = useCluster({ members: 3, auth: { rootPassword: PASSWORD } });
  const conn = (): ConnectionOptions => ({ endpoints: cluster().endpoints, auth: { user: 'root', password: PASSWORD } });
  const eps = () => cluster().endpoints.join(',');

  it('a wrong password is refused (exit 3, nothing changed) with one line, and -w json still prints the report', async () => {
    await fragmentAndWait(conn(), FRAGMENT);
    const before = await dbSizes(conn());
    const r = await cli(['defrag', '--endpoints', eps(), '--user', 'root:wrong-password', '-w', 'json']);
    expect(r.code, show(r)).toBe(3);
    expect(parseJson<ReportJson>(r)).toMatchObject({
      outcome: 'refused',
      message: expect.stringMatching(/authentication failed/),
      members: [],
    });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^defragd: refused: .*authentication failed/);
    expect(await dbSizes(conn())).toEqual(before);
  });

  it('--user root:<password> defragments every member', async () => {
    await fragmentAndWait(conn(), FRAGMENT);
    const before = await dbSizes(conn());
    const r = await cli(['defrag', '--endpoints', eps(), '--user', `root:${PASSWORD}`, '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    expectDefragmented(parseJson<ReportJson>(r), before, await sizes(conn()));
  });
});

describe('defrag over TLS', () => {
  const cluster = useCluster({ members: 3, tls: true });
  const tls = () => cluster().tls as NonNullable<ReturnType<typeof cluster>['tls']>;
  // etcd 3.4 given --trusted-ca-file verifies client certificates even without --client-cert-auth,
  // so the client certificate goes along; --cacert is what decides whether the server is trusted.
  const conn = (): ConnectionOptions => ({
    endpoints: cluster().endpoints,
    tls: { caFile: tls().caFile, certFile: tls().clientCertFile, keyFile: tls().clientKeyFile },
  });
  const eps = () => cluster().endpoints.join(',');
  const clientCert = () => ['--cert', tls().clientCertFile, '--key', tls().clientKeyFile];

  it('a CA that did not sign the server certificate is refused (exit 3) with one line and changes nothing', async () => {
    expect(cluster().endpoints.every((e) => e.startsWith('https://'))).toBe(true);
    await fragmentAndWait(conn(), FRAGMENT);
    const before = await dbSizes(conn());
    const r = await cli(['defrag', '--endpoints', eps(), '--cacert', tls().otherCaFile, ...clientCert(), '-w', 'json']);
    expect(r.code, show(r)).toBe(3);
    expect(parseJson<ReportJson>(r)).toMatchObject({ outcome: 'refused', message: expect.stringMatching(/certificate/) });
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^defragd: refused: .*certificate/);
    expect(await dbSizes(conn())).toEqual(before);
  });

  it('--cacert defragments every member', async () => {
    await fragmentAndWait(conn(), FRAGMENT);
    const before = await dbSizes(conn());
    const r = await cli(['defrag', '--endpoints', eps(), '--cacert', tls().caFile, ...clientCert(), '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    expectDefragmented(parseJson<ReportJson>(r), before, await sizes(conn()));
  });
});
