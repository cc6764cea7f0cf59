/**
 * What `npm pack` puts in the tarball, read from `npm pack --dry-run --json`
 * (no etcd, a second or two): everything the installed package runs from
 * (the bin, every `exports` target with its types, the dashboard, the .proto
 * the client loads at run time), nothing of the tests, benchmarks, dev/,
 * scripts/ or docs/, and a size a stated bound holds. Whether the tarball
 * installs and runs is test/integration/npm-package.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist/cli/main.js');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  main: string;
  types: string;
  exports: Record<string, { types: string; import: string }>;
  files: string[];
};
/** The bounds README's "Install" states; measured at 424 kB packed and 1.6 MB unpacked (README included). */
const MAX_TARBALL_BYTES = 512 * 1024;
const MAX_UNPACKED_BYTES = 2 * 1024 * 1024;
/** Top-level files and folders of the repository that are not the package. */
const NOT_SHIPPED = /^(src|test|bench|dev|scripts|docs|web|go|examples|deploy|\.ci|node_modules)\//;
/** Compiler output of tests, and of the whole tree (`tsc -p tsconfig.json` emits dist/src, dist/test, ...). */
const NOT_SHIPPED_FROM_DIST = /^dist\/(.*\.test\.|(src|test|dev|bench|scripts)\/|vitest\.config\.)/;

interface Packed {
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

/** `npm pack --dry-run --json` in `dir`, without the prepack build (the tests run against dist as it is). */
function packDryRun(dir: string): Packed {
  // npm_* variables of an `npm test` around this would reach the inner npm as its config.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8', env, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`npm pack --dry-run failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const [packed] = JSON.parse(r.stdout) as Packed[];
  if (!packed) throw new Error(`npm pack --dry-run --json printed no package:\n${r.stdout}`);
  return packed;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('the npm package (npm pack --dry-run)', () => {
  let packed: Packed;
  let paths: Set<string>;
  beforeAll(() => {
    if (!existsSync(MAIN)) {
      const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      if (build.status !== 0 || !existsSync(MAIN))
        throw new Error(`npm run build failed (${build.status}):\n${build.stdout}\n${build.stderr}`);
    }
    packed = packDryRun(ROOT);
    paths = new Set(packed.files.map((f) => f.path));
  }, 150_000);

  it('holds the bin, every exports target and its types, the dashboard and the .proto files', () => {
    const targets = [
      ...Object.values(PKG.bin),
      PKG.main,
      PKG.types,
      ...Object.values(PKG.exports).flatMap((e) => [e.import, e.types]),
      'dist/web/index.html',
      'dist/web/app.js',
      'dist/web/app.css',
      'dist/web/favicon.svg',
      // src/etcd/proto.ts reads ../../proto/etcd.proto from dist/etcd/proto.js: the package root's proto/.
      ...readdirSync(join(ROOT, 'proto')).map((f) => `proto/${f}`),
    ].map((p) => p.replace(/^\.\//, ''));
    expect(targets).toEqual(expect.arrayContaining(['dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', 'dist/store/index.js']));
    expect(targets.filter((p) => !paths.has(p))).toEqual([]);
  });

  it('holds every file the build writes to dist/', () => {
    const built = walk(join(ROOT, 'dist'))
      .map((f) => relative(ROOT, f))
      .filter((p) => !NOT_SHIPPED_FROM_DIST.test(p));
    expect(built.length).toBeGreaterThan(100);
    expect(built.filter((p) => !paths.has(p))).toEqual([]);
  });

  it('holds nothing of the tests, benchmarks, dev/, scripts/, docs/ or sources', () => {
    expect([...paths].filter((p) => NOT_SHIPPED.test(p) || NOT_SHIPPED_FROM_DIST.test(p) || /\.test\./.test(p))).toEqual([]);
    expect([...paths].filter((p) => !p.startsWith('dist/') && !p.startsWith('proto/')).sort()).toEqual(['README.md', 'package.json']);
  });

  it(`stays under ${MAX_TARBALL_BYTES / 1024} KiB packed and ${MAX_UNPACKED_BYTES / 1024 / 1024} MiB unpacked`, () => {
    expect(packed.size).toBeLessThan(MAX_TARBALL_BYTES);
    expect(packed.unpackedSize).toBeLessThan(MAX_UNPACKED_BYTES);
  });

  describe('on a dist/ that also holds stray compiler output', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'defragd-pack-files-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('package.json `files` leaves out tests and a whole-tree build (dist/src, dist/test, ...)', () => {
      // The real `files` field on a made-up tree: what `npx tsc -p tsconfig.json` without --noEmit would leave in dist/.
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'probe', version: '0.0.0', files: PKG.files }));
      const shipped = ['dist/cli/main.js', 'dist/cli/main.js.map', 'dist/index.d.ts', 'dist/web/app.js', 'proto/etcd.proto'];
      const stray = [
        'dist/planner/plan.test.js',
        'dist/planner/plan.test.js.map',
        'dist/planner/plan.test.d.ts',
        'dist/src/index.js',
        'dist/test/builders.js',
        'dist/dev/harness/etcd.js',
        'dist/bench/run.mjs',
        'dist/scripts/demo.mjs',
        'dist/vitest.config.js',
      ];
      for (const f of [...shipped, ...stray]) {
        mkdirSync(dirname(join(dir, f)), { recursive: true });
        writeFileSync(join(dir, f), '//\n');
      }
      const files = packDryRun(dir).files.map((f) => f.path);
      expect(files.sort()).toEqual([...shipped, 'package.json'].sort());
    });
  });
});
