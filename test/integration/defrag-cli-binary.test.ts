/**
 * The built executable (`node dist/cli/main.js`), as an operator runs it: a
 * usage error prints one line and exits 2, never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const LOADED_PACKAGES = fileURLToPath(new URL('../support/loaded-packages.mjs', import.meta.url));

function defragd(args: string[]): { code: number | null; stdout: string; stderr: string } {
  // No etcd is needed: every case here fails before anything is dialled. 127.0.0.1:1 would refuse if it were.
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The packages from node_modules that `defragd ARGS` loads (test/support/loaded-packages.mjs). */
function packagesLoadedBy(args: string[]): Set<string> {
  const r = spawnSync(process.execPath, ['--import', LOADED_PACKAGES, MAIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env['PATH'] ?? '' },
  });
  return new Set([...r.stderr.matchAll(/^#package (\S+)$/gm)].map((m) => m[1] as string));
}

describe('the built defragd executable', () => {
  beforeAll(() => {
    if (existsSync(MAIN)) return;
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (build.status !== 0 || !existsSync(MAIN))
      throw new Error(`npm run build failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
  }, 150_000);

  it('an invalid rule: exit 2, one line naming the column, no stack trace', () => {
    const r = defragd(['defrag', '--endpoints', '127.0.0.1:1', '--rule', 'dbSize >']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^defragd: .*column \d+/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toMatch(/Error:|\.js:\d+|\.ts:\d+/);
  });

  it('an unknown flag and a bad duration: exit 2 with one line each, no stack trace', () => {
    for (const args of [
      ['defrag', '--endpoints', '127.0.0.1:1', '--no-such-flag'],
      ['defrag', '--endpoints', '127.0.0.1:1', '--defrag-timeout', 'soon'],
    ]) {
      const r = defragd(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^defragd: /);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
  });

  it('loads what a command needs when it runs: --version and --help no gRPC, CEL or SQLite; defrag CEL only with --rule', () => {
    const heavy = ['@grpc/grpc-js', '@marcbachmann/cel-js', 'better-sqlite3', 'cli-table3'];
    for (const args of [['--version'], ['--help'], ['defrag', '--help'], ['serve', '--help']]) {
      const loaded = packagesLoadedBy(args);
      expect(loaded.has('commander'), `${args.join(' ')}: the probe saw nothing (${[...loaded].join(', ')})`).toBe(true);
      expect(
        heavy.filter((p) => loaded.has(p)),
        args.join(' '),
      ).toEqual([]);
    }
    // 127.0.0.1:1 refuses at once: the run gets as far as dialling, with every module it needs for that.
    const run = ['defrag', '--dry-run', '--endpoints', '127.0.0.1:1', '--dial-timeout', '200ms'];
    const withoutRule = packagesLoadedBy(run);
    expect(withoutRule.has('@grpc/grpc-js')).toBe(true);
    expect(withoutRule.has('@marcbachmann/cel-js')).toBe(false);
    expect(packagesLoadedBy([...run, '--rule', 'dbSize > 1']).has('@marcbachmann/cel-js')).toBe(true);
  });
});
