/**
 * The systemd units in deploy/systemd/ as systemd reads them: `systemd-analyze
 * verify` (Debian's systemd package; make test installs it) must have nothing
 * to say about them, and the settings their comments explain (how long a stop
 * may take, why the syscall filter names @pkey, why W^X memory is not
 * enforced) hold. No systemd needs to be running.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GiB } from '../src/domain/snapshot.js';
import { defragTimeoutMs } from '../src/planner/index.js';

const DIR = fileURLToPath(new URL('../deploy/systemd/', import.meta.url));
const UNITS = ['defragd.service', 'defragd-defrag.service', 'defragd-defrag.timer'] as const;
const SERVICES = UNITS.filter((u) => u.endsWith('.service'));
/** Where the units expect `npm install -g` to have put the executable. */
const EXEC_PATH = '/usr/local/bin/defragd';

/** The values of `key` in a unit file, comments left out. */
function settings(unit: string, key: string): string[] {
  return readFileSync(join(DIR, unit), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/** A systemd time span such as 16min, 90s or 1h 30min, in milliseconds. */
function timeSpanMs(text: string): number {
  const unit: Record<string, number> = { s: 1_000, sec: 1_000, min: 60_000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  for (const [, n, u] of text.matchAll(/(\d+)\s*([a-z]+)/g)) {
    const factor = unit[u as string];
    if (factor === undefined) throw new Error(`unknown time unit in ${text}`);
    ms += Number(n) * factor;
  }
  return ms;
}

describe('the systemd units (deploy/systemd)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'defragd-systemd-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * `systemd-analyze verify` on copies of `units` in a temporary directory: its output lines and exit code.
   * verify reports an ExecStart= whose executable is missing, and defragd is not installed system-wide
   * here (nor should a test install it), so each copy's ExecStart names a stand-in executable script
   * in the same directory instead of /usr/local/bin/defragd; nothing else in the copies differs.
   * Copies of the three sit side by side, as in /etc/systemd/system, so the timer finds its service.
   */
  function verify(units: Record<string, string>): { code: number | null; lines: string[] } {
    const found = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (found.error || found.status !== 0)
      throw new Error(
        "systemd-analyze is missing: install Debian's systemd package (apt-get install -y systemd); make test does it (scripts/ensure-systemd-analyze.sh)",
      );
    const standIn = join(dir, 'defragd');
    writeFileSync(standIn, '#!/bin/sh\nexit 0\n');
    chmodSync(standIn, 0o755);
    const files = Object.entries(units).map(([name, text]) => {
      const file = join(dir, name);
      writeFileSync(file, text.replaceAll(EXEC_PATH, standIn));
      return file;
    });
    // --man=no: no Documentation= man page lookups. Problems go to stderr, one line each, naming the file.
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
    return { code: r.status, lines };
  }

  const shipped = () => Object.fromEntries(UNITS.map((u) => [u, readFileSync(join(DIR, u), 'utf8')]));

  it('systemd-analyze verify says nothing about defragd.service, defragd-defrag.service and defragd-defrag.timer', () => {
    for (const u of SERVICES) expect(settings(u, 'ExecStart')[0], u).toMatch(new RegExp(`^${EXEC_PATH} `));
    const r = verify(shipped());
    expect(r.lines).toEqual([]);
    expect(r.code).toBe(0);
  });

  it('and would say something: a misspelt key in a copy is reported, naming the file', () => {
    const units = shipped();
    units['defragd.service'] = (units['defragd.service'] as string).replace('\nRestart=', '\nRestrat=');
    const r = verify(units);
    expect(r.lines).toEqual([expect.stringMatching(/defragd\.service:\d+: Unknown key 'Restrat' in section \[Service\]/)]);
  });

  it('a stop waits for the default deadline of a Defragment of 8 GiB in use, plus a minute for the records and the lock', () => {
    const needed = defragTimeoutMs(8 * GiB, null) + 60_000;
    for (const u of SERVICES) {
      const [stop] = settings(u, 'TimeoutStopSec');
      expect(stop, u).toBeDefined();
      expect(timeSpanMs(stop as string), `${u}: TimeoutStopSec=${stop}`).toBeGreaterThanOrEqual(needed);
    }
  });

  it('the syscall filter lets V8 ask for a memory protection key, refuses with EPERM, and W^X memory is not enforced', () => {
    for (const u of SERVICES) {
      expect(settings(u, 'SystemCallFilter'), u).toEqual(['@system-service @pkey']);
      expect(settings(u, 'SystemCallErrorNumber'), u).toEqual(['EPERM']);
      expect(settings(u, 'MemoryDenyWriteExecute'), u).toEqual([]);
      expect(settings(u, 'DynamicUser'), u).toEqual(['yes']);
      expect(settings(u, 'StateDirectory'), u).toEqual(['defragd']);
    }
  });
});
