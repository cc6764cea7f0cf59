/** TLS and auth, as an operator meets them: the right CA or password works, a wrong one gets one clear line. */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { cli, json } from '../support/cli.js';
import type { StatusJson } from '../../src/cli/printers/status.js';
import { connect } from '../../src/index.js';
import { etcdAtLeast, STOP_GRPC_DEFAULT } from '../support/etcd-version.js';

describe('TLS', () => {
  const cluster = useCluster({ members: 1, tls: true, clientCertAuth: true });

  it('works with the right CA and client certificate, including /metrics (the quota before 3.6, the feature gates from 3.6)', async () => {
    const c = cluster();
    const tls = c.tls!;
    const r = await cli([
      'status',
      '--endpoints',
      c.endpoints[0] as string,
      '--cluster',
      '--cacert',
      tls.caFile,
      '--cert',
      tls.clientCertFile,
      '--key',
      tls.clientKeyFile,
      '-w',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const rows = json<StatusJson[]>(r);
    expect(rows[0]?.endpoint).toMatch(/^https:\/\//);
    expect(rows[0]?.healthy).toBe(true);
    // No --quota-backend-bytes: 3.6.6+ tell the 2 GiB default in Status; before, it is read from /metrics over TLS.
    expect(rows[0]?.quotaSource).toBe(etcdAtLeast('3.6.6') ? 'status' : 'metrics');
    // 3.6+ export their feature gates on /metrics, read over TLS here too.
    expect(rows[0]?.stopGrpcServiceOnDefrag).toBe(STOP_GRPC_DEFAULT);
  });

  it('a bare host:port uses TLS when TLS flags are given, as etcdctl does', async () => {
    const c = cluster();
    const tls = c.tls!;
    const hostPort = (c.endpoints[0] as string).replace(/^https:\/\//, '');
    const r = await cli([
      'status',
      '--endpoints',
      hostPort,
      '--cacert',
      tls.caFile,
      '--cert',
      tls.clientCertFile,
      '--key',
      tls.clientKeyFile,
      '-w',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(json<StatusJson[]>(r)[0]?.endpoint).toBe(c.endpoints[0]);
  });

  it('rejects a server signed by another CA with one line that names the problem', async () => {
    const c = cluster();
    const tls = c.tls!;
    const r = await cli([
      'status',
      '--endpoints',
      c.endpoints[0] as string,
      '--cacert',
      tls.otherCaFile,
      '--cert',
      tls.clientCertFile,
      '--key',
      tls.clientKeyFile,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/certificate/i);
  });

  it('--insecure-skip-tls-verify accepts the server whatever its CA', async () => {
    const c = cluster();
    const tls = c.tls!;
    const r = await cli([
      'status',
      '--endpoints',
      c.endpoints[0] as string,
      '--insecure-skip-tls-verify',
      '--cert',
      tls.clientCertFile,
      '--key',
      tls.clientKeyFile,
      '-w',
      'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('a missing certificate file is a usage error that changes nothing', async () => {
    const c = cluster();
    const r = await cli(['status', '--endpoints', c.endpoints[0] as string, '--cacert', '/nonexistent/ca.pem']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('defragd: --cacert /nonexistent/ca.pem: no such file\n');
  });

  it('plain http against the https port fails with a hint, not a hang', async () => {
    const c = cluster();
    const r = await cli(['status', '--endpoints', (c.endpoints[0] as string).replace('https://', 'http://'), '--command-timeout', '3s']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('auth', () => {
  const PASSWORD = 'pa:ss word';
  const cluster = useCluster({ members: 3, auth: { rootPassword: PASSWORD } });

  it('--user root:password and --user/--password both work', async () => {
    const ep = cluster().endpoints[0] as string;
    const a = await cli(['status', '--endpoints', ep, '--cluster', '--user', `root:${PASSWORD}`, '-w', 'json']);
    expect(a.code, a.stderr).toBe(0);
    expect(json<StatusJson[]>(a).every((x) => x.healthy)).toBe(true);
    const b = await cli(['status', '--endpoints', ep, '--cluster', '--user', 'root', '--password', PASSWORD, '-w', 'json']);
    expect(b.code, b.stderr).toBe(0);
  });

  it('credentials come from ETCDCTL_USER / ETCDCTL_PASSWORD too', async () => {
    const r = await cli(['status', '--endpoints', cluster().endpoints[0] as string, '-w', 'json'], {
      ETCDCTL_USER: 'root',
      ETCDCTL_PASSWORD: PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
  });

  it('a wrong password is one line naming the failure, exit 1', async () => {
    const r = await cli(['status', '--endpoints', cluster().endpoints[0] as string, '--cluster', '--user', 'root:wrong']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/authentication failed/);
  });

  it('no --user on a cluster with auth: the error says to give one', async () => {
    const r = await cli(['defrag', '--endpoints', cluster().endpoints[0] as string, '--dry-run']);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/auth is enabled on this cluster: give --user/);
  });

  it('a user without the root role is refused before anything is touched (no lock, no Defragment), naming the role', async () => {
    for (const a of [
      ['user', 'add', 'alice:alicepw'],
      ['role', 'add', 'rw'],
      ['role', 'grant-permission', 'rw', '--prefix=true', 'readwrite', ''],
      ['user', 'grant-role', 'alice', 'rw'],
    ]) {
      expect((await cluster().etcdctl(a)).code).toBe(0);
    }
    const defrags = async () =>
      Promise.all(
        cluster().members.map(async (m) => (await cluster().memberMetrics(m.name)).get('etcd_disk_backend_defrag_duration_seconds_count')),
      );
    const revision = async () =>
      JSON.parse(
        (await cluster().etcdctl(['endpoint', 'status', '-w', 'json'], { endpoints: [cluster().endpoints[0] as string] })).stdout,
      )[0].Status.header.revision as number;
    const [defragsBefore, revisionBefore] = [await defrags(), await revision()];

    const r = await cli(['defrag', '--endpoints', cluster().endpoints[0] as string, '--user', 'alice:alicepw', '-w', 'json']);
    expect(r.code, r.stderr).toBe(3);
    const report = json<{ outcome: string; message: string; members: { action: string; reason: string }[] }>(r);
    expect(report.outcome).toBe('refused');
    expect(report.message).toMatch(
      /user alice does not have the root role, which etcd requires for Defragment and MoveLeader \(its roles: rw\)/,
    );
    expect(report.members.every((m) => m.action === 'skipped')).toBe(true);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    // Nothing was written (not even the lock) and no Defragment reached etcd.
    expect(await revision()).toBe(revisionBefore);
    expect(await defrags()).toEqual(defragsBefore);
  });

  it('the token is renewed once when etcd says it is invalid', async () => {
    const client = connect({ endpoints: [cluster().endpoints[0] as string], auth: { user: 'root', password: PASSWORD } });
    try {
      const m = client.member(cluster().endpoints[0] as string);
      await m.put('k', 'v');
      // Simulate an expired token: etcd answers "invalid auth token" for an unknown one.
      (m as unknown as { token: string }).token = 'bogus.token';
      await expect(m.put('k', 'v2')).resolves.toBeDefined();
      expect((await m.range('k')).kvs[0]?.value.toString()).toBe('v2');
    } finally {
      client.close();
    }
  });
});
