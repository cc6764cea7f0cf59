/**
 * `defrag --store` and `defragd history` against a real 3-member etcd 3.4:
 * what the history says is what the runs reported, newest first, and a run
 * whose process is killed mid-defrag shows as interrupted, not as running
 * forever, in a store that still opens.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import { openStore, type StoredRun } from '../../src/store/index.js';
import { cli, fragmentAndWait, MiB, parseJson, show, type ReportJson } from './helpers-defrag.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = `${ROOT}dist/cli/main.js`;

describe('defrag --store and history', () => {
  const cluster = useCluster({ members: 3 });
  const eps = () => cluster().endpoints.join(',');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'defragd-store-it-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('two recorded runs: history -w json lists both newest first with the outcomes and reclaimed bytes of their reports', async () => {
    const file = join(dir, 'history.db');
    await fragmentAndWait({ endpoints: cluster().endpoints }, { bytes: 8 * MiB, passes: 2, minFree: 4 * MiB, members: 3 });

    const first = await cli(['defrag', '--endpoints', eps(), '--store', file, '-w', 'json']);
    expect(first.code, show(first)).toBe(0);
    const r1 = parseJson<ReportJson>(first);
    expect(r1.outcome).toBe('success');
    expect(r1.reclaimedBytes).toBeGreaterThan(4 * MiB);
    // Nothing left to reclaim: the rule is false everywhere.
    const second = await cli(['defrag', '--endpoints', eps(), '--store', file, '--rule', 'dbSizeFree > 100*MiB', '-w', 'json']);
    expect(second.code, show(second)).toBe(0);
    const r2 = parseJson<ReportJson>(second);
    expect(r2.outcome).toBe('nothing-to-do');

    const h = await cli(['history', '--store', file, '-w', 'json']);
    expect(h.code, show(h)).toBe(0);
    const runs = parseJson<StoredRun[]>(h);
    expect(runs.map((r) => [r.outcome, r.reclaimedBytes, r.membersDefragmented, r.membersTotal, r.trigger, r.cluster])).toEqual([
      ['nothing-to-do', r2.reclaimedBytes, 0, 3, 'manual', 'default'],
      ['success', r1.reclaimedBytes, 3, 3, 'manual', 'default'],
    ]);
    expect(runs.map((r) => r.startedAt)).toEqual([r2.startedAt, r1.startedAt]);
    expect(runs[1]?.finishedAt).toBe(r1.finishedAt);

    // The recorded run is the report: member results and the executor's events, in order.
    const store = openStore(file, { mustExist: true });
    try {
      const detail = store.run(runs[1]?.id as number);
      expect(detail?.report?.members).toEqual(r1.members);
      const types = detail?.events.map((e) => e.event.type) ?? [];
      expect(types[0]).toBe('run-started');
      expect(types.filter((t) => t === 'member-finished')).toHaveLength(3);
    } finally {
      store.close();
    }

    const table = await cli(['history', '--store', file, '--limit', '1']);
    expect(table.code, show(table)).toBe(0);
    expect(table.stdout).toMatch(/nothing-to-do/);
    expect(table.stdout).not.toMatch(/success/);
    const other = await cli(['history', '--store', file, '--cluster-name', 'elsewhere', '-w', 'json']);
    expect(parseJson(other)).toEqual([]);
  });

  it('a defrag killed (SIGKILL) mid-run leaves a store that opens and shows that run interrupted, with the process named', async () => {
    if (!existsSync(BIN)) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT });
    const file = join(dir, 'killed.db');
    await fragmentAndWait({ endpoints: cluster().endpoints }, { bytes: 24 * MiB, passes: 2, minFree: 16 * MiB, members: 3 });

    const child = spawn(process.execPath, [BIN, 'defrag', '--endpoints', eps(), '--store', file, '--store-cluster', 'prod', '-w', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let killed = false;
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!killed && /defragmenting \(1\/3/.test(stderr)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
    expect(killed, stderr).toBe(true);
    expect(signal).toBe('SIGKILL');

    const h = await cli(['history', '--store', file, '-w', 'json']);
    expect(h.code, show(h)).toBe(0);
    const runs = parseJson<StoredRun[]>(h);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ cluster: 'prod', outcome: 'interrupted', trigger: 'manual' });
    expect(runs[0]?.message).toMatch(new RegExp(`pid ${child.pid} on .*\\) died before the run finished`));
    expect(runs[0]?.finishedAt).not.toBeNull();
  });
});
