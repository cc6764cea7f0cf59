/**
 * The npm package as a platform engineer installs it: `npm pack`, then
 * `npm install -g` of the tarball into a temporary prefix (the dependencies
 * from the npm cache or the registry, better-sqlite3 downloaded prebuilt or
 * compiled as on any machine), and the installed `defragd` run against a
 * 3-member cluster: --version, status, defrag with a store, and serve with
 * its dashboard until SIGTERM. What the tarball holds is checked in
 * test/package-files.test.ts; this is whether it works once installed.
 * Nothing here depends on the etcd release, so it runs once, in make test's
 * run on the default one (a run on each would repeat a minutes-long install).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ETCD_LINE, etcdUnderTest, useCluster } from '../../dev/harness/etcd.js';
import { freePort, until } from './serve-support.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  exports: Record<string, { types: string; import: string }>;
};
/** Building better-sqlite3 from source (no prebuilt binary reachable) took 2 minutes here on a busy machine. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const underTest = etcdUnderTest().version;
const onDefault = underTest.startsWith(`${DEFAULT_ETCD_LINE}.`);
const skipNote = onDefault ? '' : ` [skipped on ${underTest}: runs once, in the run on ${DEFAULT_ETCD_LINE}]`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` to its end (or `timeoutMs`, then SIGKILL); npm_* variables of an `npm test` around this are not passed on. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs: number }): Promise<Ran> {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))), ...opts.env };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const show = (r: Ran) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe.skipIf(!onDefault)(`the npm package, installed with npm install -g${skipNote}`, () => {
  const cluster = useCluster({ members: 3 });
  let dir: string;
  let prefix: string;
  let bin: string;
  const defragd = (args: string[]) => run(bin, args, { cwd: dir, timeoutMs: 60_000 });

  beforeAll(
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'defragd-npm-package-'));
      prefix = join(dir, 'prefix');
      bin = join(prefix, 'bin', 'defragd');
      // npm's and node-gyp's own temporary files go here too, so the afterAll removes them.
      const tmp = join(dir, 'tmp');
      mkdirSync(tmp);
      if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
        const build = await run('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 120_000 });
        if (build.code !== 0) throw new Error(`npm run build failed: ${show(build)}`);
      }
      // --ignore-scripts: no prepack build, which would rewrite dist/ under the other test files running now.
      const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
        cwd: ROOT,
        env: { TMPDIR: tmp },
        timeoutMs: 120_000,
      });
      if (pack.code !== 0) throw new Error(`npm pack failed: ${show(pack)}`);
      const [packed] = JSON.parse(pack.stdout) as { filename: string }[];
      const tarball = join(dir, packed?.filename ?? '');
      if (!packed || !existsSync(tarball)) throw new Error(`npm pack made no tarball: ${show(pack)}`);
      // --prefer-offline: the dependencies come from the npm cache when it has them (no network needed then).
      // --allow-scripts: npm 11's install-script policy warns about (and with strict-allow-scripts refuses)
      // better-sqlite3's build of its native module; the README's install command names the same two.
      const install = await run(
        'npm',
        [
          'install',
          '--global',
          '--prefix',
          prefix,
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          '--allow-scripts=better-sqlite3,protobufjs',
          tarball,
        ],
        { cwd: dir, env: { TMPDIR: tmp }, timeoutMs: INSTALL_TIMEOUT_MS },
      );
      if (install.code !== 0 || !existsSync(bin)) throw new Error(`npm install -g failed: ${show(install)}`);
    },
    INSTALL_TIMEOUT_MS + 5 * 60_000,
  );
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('puts defragd on the prefix bin/, answering --version with package.json version', async () => {
    expect(realpathSync(bin)).toBe(realpathSync(join(prefix, 'lib/node_modules', PKG.name, 'dist/cli/main.js')));
    const r = await defragd(['--version']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe(PKG.version);
  });

  it('serves every exports entry to an import, with its types beside it', async () => {
    const installed = join(prefix, 'lib/node_modules', PKG.name);
    for (const e of Object.values(PKG.exports)) expect(existsSync(join(installed, e.types)), e.types).toBe(true);
    // A module in <prefix>/lib resolves `defragd` from <prefix>/lib/node_modules, through package.json exports.
    const probe = join(prefix, 'lib', 'probe.mjs');
    writeFileSync(
      probe,
      Object.keys(PKG.exports)
        .map((sub, i) => `import * as m${i} from '${PKG.name}${sub.slice(1)}';\nconsole.log('${sub}', Object.keys(m${i}).length);`)
        .join('\n'),
    );
    const r = await run(process.execPath, [probe], { cwd: dir, timeoutMs: 60_000 });
    expect(r.code, show(r)).toBe(0);
    for (const sub of Object.keys(PKG.exports)) expect(r.stdout).toMatch(new RegExp(`^${sub.replace('.', '\\.')} [1-9]\\d*$`, 'm'));
  });

  it('status -w json: one row per member, read through the packaged .proto', async () => {
    const r = await defragd(['status', '--endpoints', cluster().endpoints.join(','), '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const rows = JSON.parse(r.stdout) as { name: string; dbSize: number; error: string | null }[];
    expect(rows.map((row) => row.name).sort()).toEqual(['m1', 'm2', 'm3']);
    for (const row of rows) {
      expect(row.error).toBeNull();
      expect(row.dbSize).toBeGreaterThan(0);
    }
  });

  it('defrag -w json with --store: every member defragmented and the run in the history (better-sqlite3 loads)', async () => {
    const store = join(dir, 'defrag.sqlite');
    const r = await defragd(['defrag', '--endpoints', cluster().endpoints.join(','), '--store', store, '-w', 'json']);
    expect(r.code, show(r)).toBe(0);
    const report = JSON.parse(r.stdout) as { outcome: string; members: { action: string }[] };
    expect(report.outcome).toBe('success');
    expect(report.members.map((m) => m.action)).toEqual(['defragmented', 'defragmented', 'defragmented']);
    const h = await defragd(['history', '--store', store, '-w', 'json']);
    expect(h.code, show(h)).toBe(0);
    expect((JSON.parse(h.stdout) as { outcome: string }[]).map((run) => run.outcome)).toEqual(['success']);
  });

  it('serve --config: /healthz, the cluster observed (/readyz), the dashboard at / as HTML; SIGTERM exits 0', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const config = join(dir, 'serve.yaml');
    writeFileSync(
      config,
      `listen: 127.0.0.1:${port}\nstore: ${join(dir, 'serve.sqlite')}\nclusters:\n  - name: main\n    endpoints: [${cluster().endpoints.join(', ')}]\n`,
    );
    const child = spawn(bin, ['serve', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const get = (path: string) => fetch(`${url}${path}`).catch(() => null);
    try {
      await until(
        '/healthz to answer 200',
        async () => (await get('/healthz'))?.ok,
        30_000,
        () => out,
      );
      await until(
        '/readyz to answer 200 (every cluster observed)',
        async () => (await get('/readyz'))?.ok,
        30_000,
        () => out,
      );
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      expect(html).toMatch(/<html/i);
      const script = /<script[^>]*src="\.?\/?([^"]+\.js)"/.exec(html)?.[1];
      expect(script, html).toBeDefined();
      const asset = await fetch(`${url}/${script}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(/javascript/);
      child.kill('SIGTERM');
      expect(await exited, out).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
