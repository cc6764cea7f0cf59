/**
 * Ctrl-C during a run: the member in progress is finished and recorded (its
 * Defragment is never re-sent), the rest are not started, exit 130.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { defragCount, fragmentAndWait, MiB } from './helpers-defrag.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = `${ROOT}dist/cli/main.js`;

describe('interrupting defragd defrag', () => {
  const cluster = useCluster({ members: 3 });

  it('SIGINT during the first member: it is finished and recorded, the others are not started, exit 130', async () => {
    if (!existsSync(BIN)) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT });
    const eps = cluster().endpoints;
    await fragmentAndWait({ endpoints: eps }, { bytes: 24 * MiB, passes: 2, minFree: 16 * MiB, members: 3 });
    const before = await Promise.all(eps.map((e) => defragCount(e)));

    const child = spawn(process.execPath, [BIN, 'defrag', '--endpoints', eps[0] as string, '-w', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /defragmenting \(1\/3/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(sent, stderr).toBe(true);
    expect(code, `${stdout}\n${stderr}`).toBe(130);
    expect(stderr).toMatch(/SIGINT: stopping after the current step/);

    const report = JSON.parse(stdout) as { outcome: string; message: string; members: { name: string; action: string; reason: string }[] };
    expect(report.outcome).toBe('interrupted');
    expect(report.message).toMatch(/interrupted/);
    const first = report.members[0]!;
    expect(first.action, JSON.stringify(first)).toBe('defragmented');
    const rest = report.members.slice(1);
    expect(rest.map((m) => m.action)).toEqual(['skipped', 'skipped']);
    for (const m of rest) expect(m.reason).toMatch(/not attempted: interrupted/);

    // etcd's own counter: exactly one Defragment in all, on the first member; nothing re-sent, nothing else started.
    const after = await Promise.all(eps.map((e) => defragCount(e)));
    const deltas = after.map((a, i) => (a as number) - (before[i] as number));
    expect(deltas.reduce((x, y) => x + y, 0)).toBe(1);
  });
});
