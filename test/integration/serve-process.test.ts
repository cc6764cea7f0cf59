/**
 * `defragd serve` as a process (the built binary), as systemd runs it:
 * SIGTERM during a run lets the member being defragmented finish, starts no
 * other, records the run as interrupted, releases the cluster lock and exits
 * 0; a second serve on the same store is refused naming the first one's pid.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { EtcdClient } from '../../src/etcd/client.js';
import { openStore } from '../../src/store/index.js';
import { cli, fragmentAndWait, MiB } from './helpers-defrag.js';
import { freePort } from './serve-support.js';

const BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

describe('serve as a process', () => {
  const cluster = useCluster({ members: 3 });
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'defragd-serve-proc-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('SIGTERM mid-run: the current member finishes, no other starts, the run is recorded as interrupted, the lock is released, exit 0; a second serve on the store is refused', async () => {
    const c = cluster();
    await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 96 * MiB, passes: 2, minFree: 40 * MiB, members: 3 });
    const port = await freePort();
    const store = join(dir, 'h.sqlite');
    const config = join(dir, 'serve.yaml');
    writeFileSync(
      config,
      `listen: 127.0.0.1:${port}\nstore: ${store}\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n    rule: "dbSizeFree > 8*MiB"\n    auto: { interval: 1s, cooldown: 1h }\n`,
    );

    const child = spawn(process.execPath, [BIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // Listening: a second daemon on the same store is refused while the first runs.
      for (let i = 0; i < 400; i++) {
        if (
          await fetch(`http://127.0.0.1:${port}/healthz`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const second = await cli(['serve', '--config', config]);
      expect(second.code, second.stderr).toBe(2);
      expect(second.stderr).toContain(`is in use by another defragd serve (pid ${child.pid})`);

      // Then wait until a member is being defragmented, and stop the daemon right then.
      const deadline = Date.now() + 40_000;
      let current: { name: string } | null = null;
      while (current === null) {
        if (Date.now() > deadline) throw new Error(`no run started:\n${out}`);
        try {
          const view = (await (await fetch(`http://127.0.0.1:${port}/api/v1/clusters/main`)).json()) as {
            currentMember: { name: string } | null;
          };
          current = view.currentMember;
        } catch {
          // not listening yet
        }
        if (current === null) await new Promise((r) => setTimeout(r, 50));
      }

      child.kill('SIGTERM');
      expect(await exited, out).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }

    const s = openStore(store, { mustExist: true });
    try {
      const [run] = s.runs({ cluster: 'main' });
      expect(run).toMatchObject({ trigger: 'auto', outcome: 'interrupted' });
      // The member in progress finished; the ones after it were not started.
      const members = s.run(run!.id)?.report?.members ?? [];
      const notAttempted = members.filter((m) => m.action === 'skipped' && /not attempted: interrupted/.test(m.reason)).length;
      expect(run!.membersDefragmented).toBeGreaterThanOrEqual(1);
      expect(notAttempted).toBeGreaterThanOrEqual(1);
      expect(run!.membersDefragmented + notAttempted).toBe(3);
    } finally {
      s.close();
    }
    const client = new EtcdClient({ endpoints: c.endpoints });
    try {
      expect((await client.member(c.endpoints[0] as string).range('/defragd/lock')).kvs).toEqual([]);
    } finally {
      client.close();
    }
    expect(out).toMatch(/"msg":"stopped"/);
  });
});
