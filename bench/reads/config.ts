/**
 * `make bench-reads` settings: flags win over environment variables, which win
 * over the defaults (`make bench-reads` passes no flags, so each setting has
 * an environment variable, e.g. `DEFRAGD_BENCH_READS_KEYS=20000 make bench-reads`).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../settings.js';

export interface ReadsConfig {
  /** Live keys (the logical data), each with a 1–8 KiB value. */
  keys: number;
  /** Churn rounds before the compaction: each overwrites about half of the keys, deletes and re-creates some, and writes and deletes as many temporary keys. */
  churnRounds: number;
  /** Measured runs; each measures both files, in alternating order. */
  runs: number;
  /** Single-key gets per pass. */
  gets: number;
  /** Ranges of 100 keys per pass. */
  range100: number;
  /** Ranges of 10 000 keys per pass (skipped when there are fewer keys). */
  range10k: number;
  /** Full keys-only scans per pass. */
  scans: number;
  /** count_only ranges per pass. */
  counts: number;
  /** Serializable reads (the member's own backend, no ReadIndex round); false: linearizable. */
  serializable: boolean;
  /** Also measure right after a restart with dropped page cache, where /proc/sys/vm/drop_caches is writable. */
  cold: boolean;
  outDir: string;
  quick: boolean;
}

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export const USAGE = `Usage: npx tsx bench/reads/run.mts [options]   (or: make bench-reads, configured by the environment)

Does a defragmented etcd member serve reads faster than a fragmented one with the same data?

  --quick             small sanity run: 12000 keys, 2 churn rounds, 2 runs   DEFRAGD_BENCH_READS_QUICK=1
  --keys N            live keys of 1-8 KiB                                   DEFRAGD_BENCH_READS_KEYS (100000)
  --churn-rounds N    overwrite/delete rounds before the compaction          DEFRAGD_BENCH_READS_CHURN (3)
  --runs N            measured runs (each: both files, alternating order)    DEFRAGD_BENCH_READS_RUNS (5)
  --gets N            single-key gets per pass                               DEFRAGD_BENCH_READS_GETS (1000)
  --range100 N        ranges of 100 keys per pass                            DEFRAGD_BENCH_READS_RANGE100 (100)
  --range10k N        ranges of 10 000 keys per pass                         DEFRAGD_BENCH_READS_RANGE10K (5)
  --scans N           full keys-only scans per pass                          DEFRAGD_BENCH_READS_SCANS (3)
  --counts N          count_only ranges per pass                             DEFRAGD_BENCH_READS_COUNTS (30)
  --linearizable      linearizable reads (default: serializable)             DEFRAGD_BENCH_READS_LINEARIZABLE=1
  --no-cold           skip the cold-cache passes                             DEFRAGD_BENCH_READS_COLD=0
  --out DIR           results directory                                      DEFRAGD_BENCH_OUT (bench/results)
  -h, --help
`;

export { ConfigError };

function num(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  return n;
}

const yes = (raw: string | undefined): boolean => /^(1|true|yes)$/i.test(raw ?? '');
const no = (raw: string | undefined): boolean => /^(0|false|no)$/i.test(raw ?? '');

/** Parses argv (without node and script) and env; throws ConfigError on bad input. Returns null for --help. */
export function loadReadsConfig(argv: string[], env: NodeJS.ProcessEnv): ReadsConfig | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      keys: { type: 'string' },
      'churn-rounds': { type: 'string' },
      runs: { type: 'string' },
      gets: { type: 'string' },
      range100: { type: 'string' },
      range10k: { type: 'string' },
      scans: { type: 'string' },
      counts: { type: 'string' },
      linearizable: { type: 'boolean' },
      'no-cold': { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const quick = values.quick ?? yes(env.DEFRAGD_BENCH_READS_QUICK);
  return {
    quick,
    keys: num('--keys', values.keys ?? env.DEFRAGD_BENCH_READS_KEYS, quick ? 12_000 : 100_000, 200, 999_999),
    churnRounds: num('--churn-rounds', values['churn-rounds'] ?? env.DEFRAGD_BENCH_READS_CHURN, quick ? 2 : 3, 1, 20),
    runs: num('--runs', values.runs ?? env.DEFRAGD_BENCH_READS_RUNS, quick ? 2 : 5, 1, 100),
    gets: num('--gets', values.gets ?? env.DEFRAGD_BENCH_READS_GETS, quick ? 300 : 1000, 10, 1_000_000),
    range100: num('--range100', values.range100 ?? env.DEFRAGD_BENCH_READS_RANGE100, quick ? 30 : 100, 1, 100_000),
    range10k: num('--range10k', values.range10k ?? env.DEFRAGD_BENCH_READS_RANGE10K, quick ? 2 : 5, 1, 10_000),
    scans: num('--scans', values.scans ?? env.DEFRAGD_BENCH_READS_SCANS, quick ? 2 : 3, 1, 1_000),
    counts: num('--counts', values.counts ?? env.DEFRAGD_BENCH_READS_COUNTS, quick ? 10 : 30, 1, 100_000),
    serializable: !(values.linearizable ?? yes(env.DEFRAGD_BENCH_READS_LINEARIZABLE)),
    cold: !(values['no-cold'] ?? no(env.DEFRAGD_BENCH_READS_COLD)),
    outDir: path.resolve(values.out ?? env.DEFRAGD_BENCH_OUT ?? path.join(BENCH_DIR, 'results')),
  };
}
