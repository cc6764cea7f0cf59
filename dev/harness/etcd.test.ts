import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ETCDCTL_BIN, startCluster, useCluster, type EtcdCluster } from './etcd.js';

/** Pids of processes whose command line mentions `dir` (i.e. this cluster's etcd members). */
function processesMentioning(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(dir) && cmdline.includes('etcd')) pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** Run etcdctl directly: no credentials, no TLS flags added by the harness. */
function rawEtcdctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL_BIN, args, { env: { ...process.env, ETCDCTL_API: '3' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

describe('3-member cluster', () => {
  it('starts healthy, elects a leader, restarts a member and closes without leftovers', async () => {
    const c: EtcdCluster = await startCluster({ members: 3 });
    try {
      expect(c.members.map((m) => m.name)).toEqual(['m1', 'm2', 'm3']);
      expect(c.endpoints).toHaveLength(3);
      expect(c.tls).toBeNull();
      expect(c.members.every((m) => m.running() && !m.isLearner)).toBe(true);
      expect(c.endpoints.every((e) => /^http:\/\/127\.0\.0\.1:\d+$/.test(e))).toBe(true);

      // etcdctl 3.4 prints the plain `endpoint health` table to stderr; -w json goes to stdout.
      const health = await c.etcdctl(['endpoint', 'health', '-w', 'json']);
      expect(health.code, health.stderr).toBe(0);
      const rows = JSON.parse(health.stdout) as Array<{ endpoint: string; health: boolean }>;
      expect(rows.map((r) => r.endpoint).sort()).toEqual([...c.endpoints].sort());
      expect(rows.every((r) => r.health)).toBe(true);

      const leader = await c.leaderName();
      expect(['m1', 'm2', 'm3']).toContain(leader);

      // Stop a follower, write through the rest, restart it.
      const follower = c.members.find((m) => m.name !== leader)!;
      await c.stopMember(follower.name);
      expect(follower.running()).toBe(false);
      const put = await c.etcdctl(['put', 'k', 'v'], { endpoints: c.members.filter((m) => m.running()).map((m) => m.clientUrl) });
      expect(put.code, put.stderr).toBe(0);
      await c.startMember(follower.name);
      expect(follower.running()).toBe(true);
      const get = await c.etcdctl(['get', 'k', '--print-value-only'], { endpoints: [follower.clientUrl] });
      expect(get.stdout.trim()).toBe('v');

      // Stopping the leader leads to a new leader among the others.
      await c.stopMember(leader);
      const newLeader = await c.leaderName();
      expect(newLeader).not.toBe(leader);
      await c.startMember(leader);
      const health2 = await c.etcdctl(['endpoint', 'health']);
      expect(health2.code, health2.stderr).toBe(0);

      expect(processesMentioning(c.dir)).toHaveLength(3);
    } finally {
      await c.close();
    }
    expect(processesMentioning(c.dir)).toEqual([]);
    expect(existsSync(c.dir)).toBe(false);
    expect(c.members.every((m) => !m.running())).toBe(true);
    await c.close(); // idempotent
  });
});

describe('TLS cluster (1 member, client cert auth)', () => {
  const cluster = useCluster({ members: 1, tls: true, clientCertAuth: true });

  it('answers endpoint health over https with the CA and client cert', async () => {
    const c = cluster();
    expect(c.tls).not.toBeNull();
    expect(c.endpoints[0]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await c.etcdctl(['endpoint', 'health']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('is healthy');
  });

  it('rejects a client that trusts another CA', async () => {
    const c = cluster();
    const tls = c.tls!;
    const r = await rawEtcdctl([
      `--endpoints=${c.endpoints.join(',')}`,
      `--cacert=${tls.otherCaFile}`,
      `--cert=${tls.clientCertFile}`,
      `--key=${tls.clientKeyFile}`,
      '--dial-timeout=1s',
      '--command-timeout=2s',
      'endpoint',
      'health',
    ]);
    expect(r.code).not.toBe(0);
  });
});

describe('auth cluster', () => {
  const cluster = useCluster({ members: 1, auth: { rootPassword: 's3cret:with-colon' } });

  it('rejects etcdctl without credentials and accepts root', async () => {
    const c = cluster();
    const anon = await rawEtcdctl([`--endpoints=${c.endpoints.join(',')}`, '--command-timeout=3s', 'put', 'a', 'b']);
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/user name is empty|permission denied|authentication/i);

    const root = await c.etcdctl(['put', 'a', 'b']);
    expect(root.code, root.stderr).toBe(0);
    const wrong = await c.etcdctl(['--user=root:nope', 'get', 'a']);
    expect(wrong.code).not.toBe(0);
  });
});

describe('learner cluster', () => {
  const cluster = useCluster({ members: 1, learner: true });

  it('has a started learner as the last member', async () => {
    const c = cluster();
    expect(c.members.map((m) => [m.name, m.isLearner])).toEqual([
      ['m1', false],
      ['m2', true],
    ]);
    expect(c.members[1]!.running()).toBe(true);
    const r = await c.etcdctl(['member', 'list', '-w', 'json']);
    expect(r.code, r.stderr).toBe(0);
    // IDs exceed 2^53: look at names and flags only.
    const parsed = JSON.parse(r.stdout) as { members: Array<{ name?: string; isLearner?: boolean }> };
    const byName = new Map(parsed.members.map((m) => [m.name, m.isLearner === true]));
    expect(byName.get('m1')).toBe(false);
    expect(byName.get('m2')).toBe(true);
    // The learner answers Status (serializable) on its own endpoint.
    const st = await c.etcdctl(['endpoint', 'status', '-w', 'json'], { endpoints: [c.members[1]!.clientUrl] });
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/"isLearner":true/);
  });
});
