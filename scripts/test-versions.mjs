// `make test`'s runner: the whole suite on the default etcd (the newest pinned 3.6), then every
// test file that starts etcd on each other pinned version, each run told its etcd through
// DEFRAGD_ETCD_DIR and DEFRAGD_ETCD_VERSION (dev/harness/etcd.ts). ETCD_VERSIONS (a list: "3.6",
// "3.4 3.7", "3.5,3.6.17") narrows it. Prints, per version, how many tests ran, passed, failed and
// were skipped (with the skipped tests' names, which carry their reason), and ends with the plain
// closing line "N passed, N failed[, N skipped]" over all runs.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HARNESS = path.join(ROOT, 'dev/harness/etcd.ts');
const DEFAULT_LINE = '3.6';
const RESULTS = path.join(ROOT, '.vitest-results');
const TEST_DIRS = ['src', 'test', 'dev', 'bench'];

if (process.argv.includes('--list-etcd-files')) {
  console.log(testFilesStartingEtcd().join('\n'));
  process.exit(0);
}
const filters = (process.env.ETCD_VERSIONS ?? '').split(/[\s,]+/).filter(Boolean);
const listed = spawnSync(path.join(ROOT, 'scripts/etcd-versions'), filters, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
if (listed.status !== 0) {
  console.log('0 passed, 1 failed (the etcd versions to test with could not be made ready: see the line above)');
  process.exit(1);
}
const versions = listed.stdout
  .trim()
  .split('\n')
  .map((line) => {
    const [version, dir] = line.split(' ');
    return { version, dir };
  });
const full = versions.find((v) => v.version.startsWith(DEFAULT_LINE + '.')) ?? versions[versions.length - 1];
// The releases some tests of the whole suite start besides the one under test (go/etcd-fixtures/, e.g. 3.5.5
// with a known defrag defect), built now rather than inside a test's time limit.
const fixtures = spawnSync(path.join(ROOT, 'scripts/etcd-versions'), ['--fixture'], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
});
if (fixtures.status !== 0) {
  console.log('0 passed, 1 failed (the etcd test fixtures could not be built: see the line above)');
  process.exit(1);
}
const etcdFiles = testFilesStartingEtcd();

rmSync(RESULTS, { recursive: true, force: true });
mkdirSync(RESULTS, { recursive: true });
const runs = [];
for (const v of [full, ...versions.filter((x) => x !== full)]) {
  const files = v === full ? [] : etcdFiles;
  const scope = v === full ? 'the whole suite' : `the ${etcdFiles.length} test files that start etcd`;
  console.log(`\n=== etcd ${v.version} (${v.dir}): ${scope} ===\n`);
  const out = path.join(RESULTS, `${v.version}.json`);
  const started = Date.now();
  const code = await vitest(files, out, { DEFRAGD_ETCD_DIR: v.dir, DEFRAGD_ETCD_VERSION: v.version });
  runs.push({ ...v, scope, code, seconds: Math.round((Date.now() - started) / 1000), ...summarise(out) });
}

console.log('\n=== etcd versions ===');
let passed = 0;
let failed = 0;
let skipped = 0;
for (const r of runs) {
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped.length;
  console.log(
    `etcd ${r.version}: ${r.ran} tests ran, ${r.passed} passed, ${r.failed} failed, ${r.skipped.length} skipped` +
      ` (${r.scope}, ${r.seconds} s)${r.note ? ` - ${r.note}` : ''}`,
  );
  for (const name of r.skipped) console.log(`  skipped: ${name}`);
  for (const f of r.failures) console.log(`  FAILED: ${f}`);
}
await writeVersionsTable(runs);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || runs.some((r) => r.code !== 0) ? 1 : 0);

/**
 * README's "Supported etcd versions" table from this run (node scripts/paste-bench.mjs versions pastes
 * it): per version where it came from, what make test ran on it, and its known defrag defects from
 * defragd's own table (the build's dist/domain/known-defects.js).
 */
async function writeVersionsTable(runs) {
  let defectsOf = () => [];
  try {
    ({ defectsOf } = await import(path.join(ROOT, 'dist/domain/known-defects.js')));
  } catch {
    /* not built: the column says so */
  }
  const rows = [...runs]
    .sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true }))
    .map((r) => {
      const source = r.dir === '/usr/bin' ? "Debian's etcd-server" : `built from go/etcd/v${r.version.split('.').slice(0, 2).join('.')}`;
      const defects = defectsOf(r.version);
      const what =
        defects.length === 0
          ? 'none known'
          : defects
              .map((f) => `${f.defect.issue} (fixed in ${f.fixedIn}${f.defect.severity === 'refuse' ? ', refused' : ', warned'})`)
              .join(', ');
      const verdict = `${r.ran} ran, ${r.passed} passed, ${r.failed} failed, ${r.skipped.length} skipped`;
      return `| ${r.version} | ${source} | ${verdict} (${r.scope}) | ${what} |`;
    });
  const date = new Date().toISOString().slice(0, 10);
  const text = [
    `# etcd versions (make test, ${date})`,
    '',
    '| etcd | from | `make test` on it | known defrag defects (what defragd does) |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  writeFileSync(path.join(RESULTS, 'versions.md'), text);
}

function vitest(files, outputFile, env) {
  const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${outputFile}`, ...files];
  return new Promise((resolve) => {
    const child = spawn('npx', args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Counts from one vitest JSON report; a file that failed to load counts as one failure. */
function summarise(file) {
  let r;
  try {
    r = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return { ran: 0, passed: 0, failed: 1, skipped: [], failures: [], note: `no test report at ${file}: ${err.message}` };
  }
  const skippedNames = [];
  const brokenFiles = [];
  const failures = [];
  for (const t of r.testResults ?? []) {
    const results = t.assertionResults ?? [];
    for (const a of results)
      if (a.status === 'skipped' || a.status === 'pending' || a.status === 'todo') skippedNames.push(a.fullName ?? a.title);
    // The tail is what CI shows: each failure with its file and the first line of why.
    for (const a of results) {
      if (a.status !== 'failed') continue;
      const why =
        String(a.failureMessages?.[0] ?? '')
          .split('\n')
          .find((l) => l.trim() !== '') ?? '';
      failures.push(`${path.relative(ROOT, t.name)} > ${a.fullName ?? a.title}: ${why.trim().slice(0, 300)}`);
    }
    if (t.status === 'failed' && results.every((a) => a.status !== 'failed')) brokenFiles.push(path.relative(ROOT, t.name));
  }
  const failedCount = r.numFailedTests + brokenFiles.length;
  return {
    ran: r.numPassedTests + r.numFailedTests,
    passed: r.numPassedTests,
    failed: failedCount,
    skipped: skippedNames,
    failures,
    note: brokenFiles.length ? `files that failed outside a test: ${brokenFiles.join(', ')}` : '',
  };
}

/**
 * Test files that start etcd: those that import dev/harness/etcd.ts, directly or through other
 * modules, or name a script that does (`scripts/demo.mts`, which a test runs as a process).
 */
function testFilesStartingEtcd() {
  const sources = TEST_DIRS.flatMap((d) => walk(path.join(ROOT, d))).concat(walk(path.join(ROOT, 'scripts')));
  const imports = new Map();
  for (const file of sources) {
    const text = readFileSync(file, 'utf8');
    const deps = new Set();
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) deps.add(resolveTs(path.dirname(file), m[1]));
    for (const m of text.matchAll(/['"]((?:scripts|dev|bench)\/[\w./-]+\.m?ts)['"]/g)) deps.add(path.join(ROOT, m[1]));
    imports.set(file, [...deps].filter(Boolean));
  }
  const memo = new Map();
  const reaches = (file, seen = new Set()) => {
    if (file === HARNESS) return true;
    if (memo.has(file)) return memo.get(file);
    if (seen.has(file)) return false;
    seen.add(file);
    const result = (imports.get(file) ?? []).some((dep) => reaches(dep, seen));
    memo.set(file, result);
    return result;
  };
  return sources
    .filter((f) => /\.test\.m?ts$/.test(f) && reaches(f))
    .map((f) => path.relative(ROOT, f))
    .sort();
}

function resolveTs(dir, spec) {
  const base = path.resolve(dir, spec);
  for (const candidate of [base.replace(/\.(m?)js$/, '.$1ts'), base, `${base}.ts`, path.join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return null;
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : walk(p);
    return /\.m?ts$/.test(e.name) ? [p] : [];
  });
}
