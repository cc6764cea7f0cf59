// Pastes bench/results/schedule-latest.md (written by `make bench-schedule`) into README.md
// between the bench-schedule markers, so its table is always a run's output, never typed.
import { readFileSync, writeFileSync } from 'node:fs';

const START = '<!-- bench-schedule:start -->';
const END = '<!-- bench-schedule:end -->';
let latest;
try {
  latest = readFileSync('bench/results/schedule-latest.md', 'utf8')
    .replace(/^# .*\n+/, '')
    .trim();
} catch {
  console.error('bench/results/schedule-latest.md is missing: run make bench-schedule first');
  process.exit(1);
}
const readme = readFileSync('README.md', 'utf8');
const a = readme.indexOf(START);
const b = readme.indexOf(END);
if (a < 0 || b < a) {
  console.error('README.md has no bench-schedule markers');
  process.exit(1);
}
writeFileSync('README.md', `${readme.slice(0, a + START.length)}\n${latest}\n${readme.slice(b)}`);
console.log('README.md: bench-schedule table updated from bench/results/schedule-latest.md');
