// Pastes a benchmark's latest table into README.md between its markers, so the
// tables there are always a run's output, never typed:
//   node scripts/paste-bench.mjs          bench/results/latest.md        → <!-- bench:start --> ... <!-- bench:end -->
//   node scripts/paste-bench.mjs big      bench/results/big-latest.md    → <!-- bench-big:start --> ... <!-- bench-big:end -->
//   node scripts/paste-bench.mjs daemon   bench/results/daemon-latest.md → <!-- bench-daemon:start --> ... <!-- bench-daemon:end -->
//   node scripts/paste-bench.mjs reads    bench/results/reads-latest.md  → <!-- bench-reads:start --> ... <!-- bench-reads:end -->
//   node scripts/paste-bench.mjs kube     bench/results/kube-latest.md   → <!-- bench-kube:start --> ... <!-- bench-kube:end -->
//   node scripts/paste-bench.mjs versions .vitest-results/versions.md    → <!-- etcd-versions:start --> ... <!-- etcd-versions:end -->
//   node scripts/paste-bench.mjs bench-3.7 bench/results/latest-3.7.md  → <!-- bench-3.7:start --> ... <!-- bench-3.7:end -->
//   node scripts/paste-bench.mjs bench-3.7-gate bench/results/latest-3.7-gate.md (StopGRPCServiceOnDefrag on)
//   node scripts/paste-bench.mjs etcd-defrag-3.7 bench/results/etcd-defrag-3.7.md (a run with etcd-defrag among the tools)
import { readFileSync, writeFileSync } from 'node:fs';

const TABLES = {
  bench: { file: 'bench/results/latest.md', marker: 'bench', what: 'Performance table', make: 'make bench' },
  big: {
    file: 'bench/results/big-latest.md',
    marker: 'bench-big',
    what: 'Performance table of the --big run',
    make: 'npx tsx bench/run.mts --big',
  },
  daemon: { file: 'bench/results/daemon-latest.md', marker: 'bench-daemon', what: 'Daemon performance table', make: 'make bench-daemon' },
  reads: { file: 'bench/results/reads-latest.md', marker: 'bench-reads', what: 'Reads performance table', make: 'make bench-reads' },
  kube: { file: 'bench/results/kube-latest.md', marker: 'bench-kube', what: 'Kubernetes table', make: 'make bench-kube' },
  versions: { file: '.vitest-results/versions.md', marker: 'etcd-versions', what: 'Supported etcd versions table', make: 'make test' },
};
const which = process.argv[2] ?? 'bench';
// One table per etcd version: bench-3.7 pastes bench/results/latest-3.7.md between <!-- bench-3.7:start/end -->;
// etcd-defrag-3.7 pastes bench/results/etcd-defrag-3.7.md (a copy of latest-3.7.md from a run with etcd-defrag).
const perVersion = /^(bench|etcd-defrag)-(\d+\.\d+(?:-gate)?)$/.exec(which);
const t = perVersion
  ? {
      file: `bench/results/${perVersion[1] === 'bench' ? 'latest' : 'etcd-defrag'}-${perVersion[2]}.md`,
      marker: which,
      what: `Performance table on etcd ${perVersion[2]}${perVersion[1] === 'bench' ? '' : ' with etcd-defrag'}`,
      make: `ETCD_VERSION=${perVersion[2].replace(/-gate$/, '')}${perVersion[2].endsWith('-gate') ? ' DEFRAGD_BENCH_STOP_GRPC_ON_DEFRAG=1' : ''}${perVersion[1] === 'bench' ? '' : ' DEFRAGD_BENCH_TOOLS=etcdctl,etcd-defrag,etcd-defrag-move-leader,defragd'} make bench (then copy latest-<version>.md to etcd-defrag-<version>.md)`,
    }
  : TABLES[which];
if (!t) {
  console.error(`paste-bench: unknown table "${which}" (known: ${Object.keys(TABLES).join(', ')})`);
  process.exit(2);
}
const START = `<!-- ${t.marker}:start -->`;
const END = `<!-- ${t.marker}:end -->`;
let latest;
try {
  latest = readFileSync(t.file, 'utf8')
    .replace(/^# .*\n+/, '')
    .trim();
} catch {
  console.error(`paste-bench: ${t.file} is missing: run ${t.make} first`);
  process.exit(1);
}
const readme = readFileSync('README.md', 'utf8');
const a = readme.indexOf(START);
const b = readme.indexOf(END);
if (a < 0 || b < a) {
  console.error(`README.md has no ${t.marker} markers`);
  process.exit(1);
}
writeFileSync('README.md', `${readme.slice(0, a + START.length)}\n${latest}\n${readme.slice(b)}`);
console.log(`README.md: ${t.what} updated from ${t.file}`);
