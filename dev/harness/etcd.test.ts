import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { fragment } from '../workload.js';
import { canLimitDiskSpace, etcdUnderTest, startCluster, useCluster, type EtcdCluster } from './etcd.js';

const MiB = 1024 * 1024;

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

/** The kernel's state letter for a process (`T` = stopped), or null once it is gone. */
function procState(pid: number): string | null {
  try {
    // Format: "pid (comm) S ..."; comm may contain spaces, so split after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Poll until `check` holds (signals are delivered asynchronously), at most `withinMs`. */
async function eventually(check: () => boolean, withinMs = 2000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function mountedAt(dir: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1] === dir);
}

/** Run etcdctl directly: no credentials, no TLS flags added by the harness. */
function rawEtcdctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(etcdUnderTest().etcdctl, args, { env: { ...process.env, ETCDCTL_API: '3' } });
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

  it('reads /metrics over https with the client cert, and hashKV works over TLS', async () => {
    const c = cluster();
    const metrics = await c.memberMetrics('m1');
    expect(metrics.get('etcd_server_has_leader')).toBe(1);
    expect(metrics.get('etcd_disk_defrag_inflight')).toBe(0);
    const hashes = await c.hashKV();
    expect(hashes.map((h) => h.name)).toEqual(['m1']);
    expect(hashes[0]!.revision).toBeGreaterThanOrEqual(1);
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

  it('hashKV runs as root (HashKV needs the root role)', async () => {
    const c = cluster();
    const [m1] = await c.hashKV();
    expect(m1?.name).toBe('m1');
    expect(m1?.hash).toBeTypeOf('number');
    // Without credentials the same call is refused, so the hash above came through root.
    const anon = await rawEtcdctl([`--endpoints=${c.endpoints[0]}`, '--command-timeout=3s', 'endpoint', 'hashkv']);
    expect(anon.code).not.toBe(0);
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

describe('faults on a 3-member cluster', () => {
  const cluster = useCluster({ members: 3 });

  async function aFollower(c: EtcdCluster): Promise<string> {
    const leader = await c.leaderName();
    return c.members.find((m) => m.name !== leader && m.running())!.name;
  }

  it('pauseMember: the member keeps its port but answers nothing until resumeMember', async () => {
    const c = cluster();
    const name = await aFollower(c);
    const m = c.members.find((x) => x.name === name)!;
    const pid = c.memberPid(name)!;
    expect(pid).toBeGreaterThan(0);

    c.pauseMember(name);
    try {
      expect(await eventually(() => procState(pid) === 'T')).toBe(true);
      expect(m.paused()).toBe(true);
      expect(m.running()).toBe(true);
      expect(await tcpConnects(Number(new URL(m.clientUrl).port))).toBe(true);
      await expect(c.memberMetrics(name, { timeoutMs: 500 })).rejects.toThrow(/did not answer/);
      const get = await c.etcdctl(['get', 'k', '--consistency=s', '--command-timeout=1s'], { endpoints: [m.clientUrl] });
      expect(get.code).not.toBe(0);
    } finally {
      c.resumeMember(name);
    }
    expect(await eventually(() => procState(pid) !== 'T')).toBe(true);
    expect(m.paused()).toBe(false);
    expect((await c.memberMetrics(name)).get('etcd_server_has_leader')).toBe(1);
  });

  it('killMember ends even a paused member at once; startMember restarts it with its data', async () => {
    const c = cluster();
    const name = await aFollower(c);
    const m = c.members.find((x) => x.name === name)!;
    const pid = c.memberPid(name)!;
    c.pauseMember(name);
    const killedAt = Date.now();
    await c.killMember(name);
    // stopMember's SIGTERM would stay pending on a stopped process for its 5 s grace.
    expect(Date.now() - killedAt).toBeLessThan(2000);
    expect(procState(pid)).toBeNull();
    expect(m.running()).toBe(false);
    expect(m.paused()).toBe(false);
    expect(c.memberPid(name)).toBeNull();

    const others = c.members.filter((x) => x.running()).map((x) => x.clientUrl);
    const put = await c.etcdctl(['put', 'after-kill', 'yes'], { endpoints: others });
    expect(put.code, put.stderr).toBe(0);

    await c.startMember(name);
    expect(m.running()).toBe(true);
    expect(c.memberPid(name)).not.toBe(pid);
    const get = await c.etcdctl(['get', 'after-kill', '--print-value-only'], { endpoints: [m.clientUrl] });
    expect(get.stdout.trim()).toBe('yes');
  });

  it('slowMember stops the member for about stoppedMs of every cycle; stop() leaves it running', async () => {
    const c = cluster();
    const name = await aFollower(c);
    const pid = c.memberPid(name)!;
    const slow = c.slowMember(name, { stoppedMs: 200, runningMs: 100 });
    const states: string[] = [];
    try {
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        states.push(procState(pid) ?? 'gone');
        await sleep(10);
      }
    } finally {
      slow.stop();
    }
    const stoppedShare = states.filter((s) => s === 'T').length / states.length;
    // 2/3 nominal; timers on a busy 2-core machine drift, hence the wide band.
    expect(stoppedShare).toBeGreaterThan(0.4);
    expect(stoppedShare).toBeLessThan(0.9);
    expect(states).not.toContain('gone');
    expect(await eventually(() => procState(pid) !== 'T')).toBe(true);
    await sleep(300); // longer than a cycle: a leftover timer would stop it again
    expect(procState(pid)).not.toBe('T');
    expect((await c.memberMetrics(name)).get('etcd_server_has_leader')).toBe(1);
    slow.stop(); // idempotent
  });

  it('memberMetrics and etcdctlDefrag: one defrag is counted on that member only, and is seen in flight', async () => {
    const c = cluster();
    const target = 'm1';
    // Enough garbage that the defrag lasts long enough to be seen in flight.
    await fragment({ endpoints: [c.endpoints[0]!] }, { bytes: 16 * MiB, passes: 2 });
    const before = await Promise.all(c.members.map((m) => c.memberMetrics(m.name)));
    for (const metrics of before) {
      for (const series of [
        'etcd_disk_defrag_inflight',
        'etcd_disk_backend_defrag_duration_seconds_count',
        'etcd_server_leader_changes_seen_total',
        'etcd_mvcc_db_total_size_in_bytes',
      ]) {
        expect(metrics.get(series), series).toBeTypeOf('number');
      }
      expect(metrics.get('etcd_disk_defrag_inflight')).toBe(0);
    }
    expect(before[0]!.get('etcd_mvcc_db_total_size_in_bytes')).toBeGreaterThan(16 * MiB);

    const { done } = c.etcdctlDefrag(target, { commandTimeoutMs: 60_000 });
    let seenInflight = false;
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) {
      const m = await c.memberMetrics(target, { timeoutMs: 5000 }).catch(() => null);
      if (m?.get('etcd_disk_defrag_inflight') === 1) seenInflight = true;
    }
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Finished defragmenting etcd member[${c.endpoints[0]}]`);
    expect(seenInflight).toBe(true);

    const after = await Promise.all(c.members.map((m) => c.memberMetrics(m.name)));
    const count = (m: Map<string, number>): number | undefined => m.get('etcd_disk_backend_defrag_duration_seconds_count');
    expect(after.map(count)).toEqual(before.map((m, i) => count(m)! + (i === 0 ? 1 : 0)));
    expect(after[0]!.get('etcd_disk_defrag_inflight')).toBe(0);
    expect(after[0]!.get('etcd_mvcc_db_total_size_in_bytes')).toBeLessThan(before[0]!.get('etcd_mvcc_db_total_size_in_bytes')!);
  });

  it('etcdctlDefrag gives up after commandTimeoutMs against a paused member', async () => {
    const c = cluster();
    const name = await aFollower(c);
    c.pauseMember(name);
    try {
      const startedAt = Date.now();
      const r = await c.etcdctlDefrag(name, { commandTimeoutMs: 700 }).done;
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/deadline exceeded/);
      expect(Date.now() - startedAt).toBeLessThan(5000);
    } finally {
      c.resumeMember(name);
    }
  });

  it('hashKV: the running members agree at one revision; a paused member is left out', async () => {
    const c = cluster();
    const first = await c.hashKV();
    expect(first.map((h) => h.name).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(new Set(first.map((h) => h.revision)).size).toBe(1);
    expect(new Set(first.map((h) => h.hash)).size).toBe(1);

    const put = await c.etcdctl(['put', 'hash-me', String(Date.now()), '-w', 'json']);
    expect(put.code, put.stderr).toBe(0);
    const putRevision = Number(/"revision":(\d+)/.exec(put.stdout)![1]);

    const name = await aFollower(c);
    c.pauseMember(name);
    try {
      const second = await c.hashKV();
      expect(second.map((h) => h.name).sort()).toEqual(['m1', 'm2', 'm3'].filter((n) => n !== name));
      expect(second[0]!.revision).toBeGreaterThanOrEqual(putRevision);
      expect(new Set(second.map((h) => h.hash)).size).toBe(1);
      expect(second[0]!.hash).not.toBe(first[0]!.hash);
    } finally {
      c.resumeMember(name);
    }
  });
});

describe('close() with faults in progress', () => {
  it('kills a paused member, ends a slowdown and kills a background etcdctl', async () => {
    const c = await startCluster({ members: 3 });
    let done: Promise<{ code: number }> | undefined;
    const startedAt = Date.now();
    try {
      c.slowMember('m1', { stoppedMs: 100, runningMs: 50 });
      c.pauseMember('m2');
      // etcdctl's default 5 s timeout against a paused member: still running at close().
      done = c.etcdctlDefrag('m2').done;
      await sleep(200);
    } finally {
      await c.close();
    }
    expect(processesMentioning(c.dir)).toEqual([]);
    expect(existsSync(c.dir)).toBe(false);
    expect((await done)?.code).not.toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(4000);
  });
});

const disk = await canLimitDiskSpace();

describe('small data dirs (dataDirSizeBytes)', () => {
  it.skipIf(!disk.ok)(`puts each data dir on its own small filesystem, unmounted by close() (${disk.why})`, async () => {
    const c = await startCluster({ members: 1, dataDirSizeBytes: 64 * MiB });
    const m = c.members[0]!;
    try {
      expect(mountedAt(m.dataDir)).toBe(true);
      // etcd preallocates 64 MB WAL segments: they must live outside the small filesystem.
      expect(m.walDir).not.toBeNull();
      expect(existsSync(path.join(m.walDir!, '0000000000000000-0000000000000000.wal'))).toBe(true);
      expect(existsSync(path.join(m.dataDir, 'member', 'wal'))).toBe(false);

      const empty = await statfs(m.dataDir);
      expect(empty.blocks * empty.bsize).toBe(64 * MiB);
      expect(empty.bavail * empty.bsize).toBeGreaterThan(60 * MiB);

      await fragment({ endpoints: [m.clientUrl] }, { bytes: 8 * MiB, passes: 2, compact: false });
      const used = await statfs(m.dataDir);
      expect(empty.bavail * empty.bsize - used.bavail * used.bsize).toBeGreaterThan(8 * MiB);
    } finally {
      await c.close();
    }
    expect(mountedAt(m.dataDir)).toBe(false);
    expect(existsSync(c.dir)).toBe(false);
  });
});

describe('cleanup when the test process ends', () => {
  const harness = path.join(path.dirname(fileURLToPath(import.meta.url)), 'etcd.ts');

  /**
   * Start a 1-member cluster in a child node process (tsx loads the harness), pause its
   * member, then either `process.exit(0)` or wait to be SIGKILLed. Resolves with what the
   * child reported and the child itself.
   */
  async function clusterInChild(ending: 'exit' | 'sigkill') {
    const opts = disk.ok ? { members: 1, dataDirSizeBytes: 16 * MiB } : { members: 1 };
    const script = `
      const { startCluster } = await import(${JSON.stringify(harness)});
      const c = await startCluster(${JSON.stringify(opts)});
      c.pauseMember('m1');
      console.log(JSON.stringify({ dir: c.dir, pid: c.memberPid('m1'), dataDir: c.members[0].dataDir }));
      if (${JSON.stringify(ending)} === 'exit') process.exit(0);
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const report = await new Promise<{ dir: string; pid: number; dataDir: string }>((resolve, reject) => {
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const line = stdout.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line));
      });
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before reporting:\n${stderr}`)));
    });
    return { report, child };
  }

  it('the exit handler kills a paused member, unmounts and removes the dir', async () => {
    const { report, child } = await clusterInChild('exit');
    if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    // Checked at once: the watchdog would do the same within about a second, hiding a broken handler.
    expect(mountedAt(report.dataDir)).toBe(false);
    expect(existsSync(report.dir)).toBe(false);
    // SIGKILL is immediate, but the orphan is reaped by init: a zombie for a moment.
    expect(await eventually(() => [null, 'Z'].includes(procState(report.pid)), 300)).toBe(true);
  });

  it('the watchdog does the same when the test process is SIGKILLed', async () => {
    const { report, child } = await clusterInChild('sigkill');
    // SIGSTOP is delivered asynchronously: the member may still be running for a moment (seen on a busy machine).
    const stopped = await eventually(() => procState(report.pid) === 'T');
    // Killed whatever the check found: a failed check must not leave the child, and its member, running.
    child.kill('SIGKILL');
    expect(stopped).toBe(true);
    // The watchdog polls the test process once a second.
    expect(await eventually(() => procState(report.pid) === null && !existsSync(report.dir), 5000)).toBe(true);
    expect(mountedAt(report.dataDir)).toBe(false);
  });
});
