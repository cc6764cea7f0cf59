// Pastes bench/results/latest.md (written by `make bench`) into README.md between
// the bench markers, so the Performance table is always a run's output, never typed.
import { readFileSync, writeFileSync } from 'node:fs';

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
const latest = readFileSync('bench/results/latest.md', 'utf8').replace(/^# .*\n+/, '').trim();
const readme = readFileSync('README.md', 'utf8');
const a = readme.indexOf(START);
const b = readme.indexOf(END);
if (a < 0 || b < a) {
  console.error('README.md has no bench markers');
  process.exit(1);
}
writeFileSync('README.md', `${readme.slice(0, a + START.length)}\n${latest}\n${readme.slice(b)}`);
console.log('README.md: Performance table updated from bench/results/latest.md');
