/**
 * `make demo` as a newcomer runs it (`node --import tsx scripts/demo.mts` after the build):
 * it prints the dashboard URL and the API token, the daemon's runs show up
 * as they happen and in `defragd history`, the printed token starts a run
 * through the API, and whatever ends it (DEMO_SECONDS, Ctrl-C) leaves no
 * etcd member, no daemon and no temp dir behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Demo {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Resolves with the first match of re in the output; rejects after ms or when the demo exits first. */
  waitFor(re: RegExp, ms: number): Promise<RegExpMatchArray>;
}

function startDemo(env: Record<string, string>): Demo {
  // As `make demo` runs it (signals go straight to the demo, no tsx CLI in between).
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.mts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = (re: RegExp, ms: number) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(re);
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => (done(), reject(new Error(`no ${re} within ${ms} ms:\n${out}`))), ms);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      void exited.then(() => setTimeout(() => (done(), reject(new Error(`the demo exited before ${re}:\n${out}`))), 100));
      waiters.add(check);
      check();
    });
  return { child, output: () => out, exited, waitFor };
}

/** Processes whose command line mentions dir (etcd's data dirs and the daemon's config are in it). */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(dir)) found.push(`${pid} ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Nothing of the demo's is left: no process (its watchdog included, which lingers a second) and no dir. */
async function expectCleanedUp(dir: string, output: string): Promise<void> {
  let left = processesUsing(dir);
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesUsing(dir);
  }
  expect(left, output).toEqual([]);
  expect(existsSync(dir), output).toBe(false);
}

const DIR = /in (\/\S*defragd-demo-\w+) \.\.\./;

describe.concurrent('make demo', () => {
  it('DEMO_SECONDS: the walkthrough, then the daemon: URL and token printed, an auto run as it happens and in the history; exit 0, nothing left behind', async () => {
    const demo = startDemo({ DEMO_SECONDS: '20' });
    try {
      const dir = (await demo.waitFor(DIR, 120_000))[1]!;
      expect(await demo.exited, demo.output()).toBe(0);
      const out = demo.output();
      // The CLI walkthrough ran as before.
      expect(out).toMatch(/\$ defragd defrag --rule .*\n[\s\S]*defragmented 3 member\(s\)/);
      expect(out).toMatch(/Dashboard: {2}http:\/\/127\.0\.0\.1:\d+\//);
      expect(out).toMatch(/API token: {2}[0-9a-f]{32}\n/);
      expect(out).toContain('history --store ');
      // The auto rule fires on the fragmentation the workload leaves, and the run is reported as it finishes ...
      expect(out).toMatch(/▶ auto run starting/);
      expect(out).toMatch(/✔ run \d+ \(auto\) success: m\d .* → .* MiB.*; reclaimed [\d.]+ MiB/);
      // ... and in `defragd history`, printed from the store before it is removed.
      expect(out).toMatch(/│ TRIGGER[\s\S]*│ auto +│ success/);
      await expectCleanedUp(dir, out);
    } finally {
      demo.child.kill('SIGKILL');
    }
  }, 300_000);

  it('Ctrl-C: the printed token starts a run through the API; SIGINT stops the workload, the daemon and etcd, exit 130, nothing left behind', async () => {
    const demo = startDemo({ DEMO_WALKTHROUGH: '0' });
    try {
      const dir = (await demo.waitFor(DIR, 120_000))[1]!;
      const url = (await demo.waitFor(/Dashboard: {2}(http:\/\/\S+)\//, 180_000))[1]!;
      const token = (await demo.waitFor(/API token: {2}([0-9a-f]+)/, 1_000))[1]!;
      const denied = await fetch(`${url}/api/v1/clusters/demo/runs`, { method: 'POST', headers: { authorization: 'Bearer wrong' } });
      expect(denied.status).toBe(401);
      const started = await fetch(`${url}/api/v1/clusters/demo/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: '{}',
      });
      expect(started.status, await started.clone().text()).toBe(202);
      const { runId } = (await started.json()) as { runId: number };
      await demo.waitFor(new RegExp(`run ${runId} \\(api\\)`), 120_000);

      demo.child.kill('SIGINT');
      expect(await demo.exited, demo.output()).toBe(130);
      const out = demo.output();
      expect(out).toContain('Ctrl-C: stopping');
      expect(out).toMatch(/│ api +│/);
      await expectCleanedUp(dir, out);
    } finally {
      demo.child.kill('SIGKILL');
    }
  }, 300_000);
});
