// Pastes a benchmark's markdown (default bench/results/latest.md, written by `make bench`)
// into README.md between its markers (default <!-- bench:start --> … <!-- bench:end -->),
// so the Performance tables are always a run's output, never typed.
//   node scripts/paste-bench.mjs                                            make bench's table
//   node scripts/paste-bench.mjs bench/results/reads-latest.md bench-reads  make bench-reads' table
import { readFileSync, writeFileSync } from 'node:fs';

const [file = 'bench/results/latest.md', marker = 'bench'] = process.argv.slice(2);
const START = `<!-- ${marker}:start -->`;
const END = `<!-- ${marker}:end -->`;
let latest;
try {
  latest = readFileSync(file, 'utf8').replace(/^# .*\n+/, '').trim();
} catch (err) {
  console.error(`${file}: ${err.code === 'ENOENT' ? 'no such file (run the benchmark first)' : err.message}`);
  process.exit(1);
}
const readme = readFileSync('README.md', 'utf8');
const a = readme.indexOf(START);
const b = readme.indexOf(END);
if (a < 0 || b < a) {
  console.error(`README.md has no ${START} … ${END} markers`);
  process.exit(1);
}
writeFileSync('README.md', `${readme.slice(0, a + START.length)}\n${latest}\n${readme.slice(b)}`);
console.log(`README.md: table between ${START} and ${END} updated from ${file}`);
