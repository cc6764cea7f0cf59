/**
 * Benchmark settings: flags win over environment variables, which win over
 * the defaults. `make bench` passes no flags, so every setting has an
 * environment variable too (e.g. `DEFRAGD_BENCH_MB=100 make bench`).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from './settings.js';

export const TOOLS = ['etcdctl', 'defragd', 'etcd-defrag', 'etcd-defrag-move-leader'] as const;
export type ToolName = (typeof TOOLS)[number];

export interface BenchConfig {
  /** MiB written in total: two passes over mb/2 MiB of keys, then a physical compaction (about half of dbSize is then free). */
  mb: number;
  /** Value size of the fragmenting writes, KiB. */
  valueKiB: number;
  /** Load clients pinned to each member. */
  clientsPerMember: number;
  /** Deadline of every load request, ms. */
  deadlineMs: number;
  /** Share of linearizable reads in the load, percent (the rest are small puts). */
  readPct: number;
  /** Pause between two requests of one client, ms (a steady rate that leaves CPU for etcd). */
  sleepMs: number;
  /** Load-only window before the first tool (the baseline latency), s; also the load-only time after re-fragmenting, before the next tool. */
  baselineSec: number;
  /** Load-only pause after each tool, before its sizes are read, s. */
  settleSec: number;
  /** Tools, in the order they run. */
  tools: ToolName[];
  /** Where results go (git-ignored). */
  outDir: string;
  quick: boolean;
  /** The --big preset: a leader defrag longer than etcd's election timeout and the lease TTL. */
  big: boolean;
  /** TTL of the keep-alive clients' leases and of the etcdctl sessions, s. */
  leaseTtlSec: number;
  /** Pause between two keep-alives of one lease, ms. */
  keepAliveEveryMs: number;
  /** Run the Go clients (go/clients' etcd-clients on clientv3: sessions, elections, keep-alives, watch, Txn, lists). */
  goClients: boolean;
  /** Start etcd with StopGRPCServiceOnDefrag on (3.5.14+ flag, 3.6+ feature gate). */
  stopGrpcOnDefrag: boolean;
}

/** etcd's --snapshot-count in --big runs (3.4's default of 100 000 keeps 3+ GB of raft entries per member there). */
export const BIG_SNAPSHOT_COUNT = 10_000;

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

export const USAGE = `Usage: npx tsx bench/run.mts [options]     (or: make bench, configured by the environment)

  --quick                 fast sanity run: 40 MiB, 3 s baseline, 1 s settle    DEFRAGD_BENCH_QUICK=1
  --big                   a leader defrag longer than etcd's election timeout
                          (1 s) and the 5 s lease TTL: 1400 MiB               DEFRAGD_BENCH_BIG=1
  --mb N                  MiB written in total (two passes over N/2 MiB of keys,
                          then compaction: about half of dbSize is free)          DEFRAGD_BENCH_MB (300)
  --clients N             load clients per member                                 DEFRAGD_BENCH_CLIENTS (2)
  --deadline-ms N         per-request deadline of the load                        DEFRAGD_BENCH_DEADLINE_MS (5000)
  --read-pct N            linearizable reads in percent, the rest small puts      DEFRAGD_BENCH_READ_PCT (80)
  --sleep-ms N            pause between two requests of one client                DEFRAGD_BENCH_SLEEP_MS (8)
  --baseline-s N          load-only window before the first tool (the baseline),
                          and as long after re-fragmenting, before the next tool  DEFRAGD_BENCH_BASELINE_S (10)
  --settle-s N            load-only pause after each tool                         DEFRAGD_BENCH_SETTLE_S (3)
  --tools a,b             tools and their order; a tool may come back, e.g.
                          etcdctl,defragd,defragd,etcdctl; also etcd-defrag and
                          etcd-defrag-move-leader (ahrtr/etcd-defrag, ETCD_DEFRAG) DEFRAGD_BENCH_TOOLS (etcdctl,defragd)
  --out DIR               results directory                                       DEFRAGD_BENCH_OUT (bench/results)
  --value-kib N           value size of the fragmenting writes                    DEFRAGD_BENCH_VALUE_KIB (64)
  --lease-ttl-s N         TTL of the keep-alive leases and etcdctl sessions       DEFRAGD_BENCH_LEASE_TTL_S (5)
  --keepalive-ms N        pause between two keep-alives of one lease              DEFRAGD_BENCH_KEEPALIVE_MS (75)
  --no-go-clients         no Go clients (go/clients: clientv3 sessions, elections,
                          keep-alives, watch, Txn, lists; built by scripts/go-bin) DEFRAGD_BENCH_GO_CLIENTS=0
  --stop-grpc-on-defrag   etcd with StopGRPCServiceOnDefrag on: a member's health
                          service says NOT_SERVING while it defragments (3.5.14+) DEFRAGD_BENCH_STOP_GRPC_ON_DEFRAG=1
  -h, --help
`;

export { ConfigError };

function num(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new ConfigError(`${name}: expected a number in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  return n;
}

/** Parses argv (without node and script) and env; throws ConfigError on bad input. Returns null for --help. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): BenchConfig | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      big: { type: 'boolean' },
      'lease-ttl-s': { type: 'string' },
      'keepalive-ms': { type: 'string' },
      'no-go-clients': { type: 'boolean' },
      'stop-grpc-on-defrag': { type: 'boolean' },
      mb: { type: 'string' },
      clients: { type: 'string' },
      'deadline-ms': { type: 'string' },
      'read-pct': { type: 'string' },
      'sleep-ms': { type: 'string' },
      'baseline-s': { type: 'string' },
      'settle-s': { type: 'string' },
      tools: { type: 'string' },
      out: { type: 'string' },
      'value-kib': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const quick = values.quick ?? /^(1|true|yes)$/i.test(env.DEFRAGD_BENCH_QUICK ?? '');
  const big = values.big ?? /^(1|true|yes)$/i.test(env.DEFRAGD_BENCH_BIG ?? '');
  if (quick && big) throw new ConfigError('--quick and --big: choose one');
  const toolsRaw = values.tools ?? env.DEFRAGD_BENCH_TOOLS ?? TOOLS.join(',');
  const tools = toolsRaw
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of tools)
    if (!(TOOLS as readonly string[]).includes(t))
      throw new ConfigError(`--tools: unknown tool ${JSON.stringify(t)} (known: ${TOOLS.join(', ')})`);
  if (tools.length === 0) throw new ConfigError('--tools: name at least one tool');
  return {
    quick,
    big,
    mb: num('--mb', values.mb ?? env.DEFRAGD_BENCH_MB, quick ? 40 : big ? 1400 : 300, 2, 8192),
    valueKiB: num('--value-kib', values['value-kib'] ?? env.DEFRAGD_BENCH_VALUE_KIB, 64, 1, 1024),
    clientsPerMember: Math.round(num('--clients', values.clients ?? env.DEFRAGD_BENCH_CLIENTS, 2, 1, 64)),
    deadlineMs: num('--deadline-ms', values['deadline-ms'] ?? env.DEFRAGD_BENCH_DEADLINE_MS, 5_000, 10, 600_000),
    readPct: num('--read-pct', values['read-pct'] ?? env.DEFRAGD_BENCH_READ_PCT, 80, 0, 100),
    sleepMs: num('--sleep-ms', values['sleep-ms'] ?? env.DEFRAGD_BENCH_SLEEP_MS, 8, 0, 10_000),
    baselineSec: num('--baseline-s', values['baseline-s'] ?? env.DEFRAGD_BENCH_BASELINE_S, quick ? 3 : 10, 0, 3_600),
    settleSec: num('--settle-s', values['settle-s'] ?? env.DEFRAGD_BENCH_SETTLE_S, quick ? 1 : 3, 0, 3_600),
    tools: tools as ToolName[],
    leaseTtlSec: Math.round(num('--lease-ttl-s', values['lease-ttl-s'] ?? env.DEFRAGD_BENCH_LEASE_TTL_S, 5, 2, 3_600)),
    keepAliveEveryMs: num('--keepalive-ms', values['keepalive-ms'] ?? env.DEFRAGD_BENCH_KEEPALIVE_MS, 75, 10, 60_000),
    goClients: !(values['no-go-clients'] ?? /^(0|false|no)$/i.test(env.DEFRAGD_BENCH_GO_CLIENTS ?? '')),
    stopGrpcOnDefrag: values['stop-grpc-on-defrag'] ?? /^(1|true|yes)$/i.test(env.DEFRAGD_BENCH_STOP_GRPC_ON_DEFRAG ?? ''),
    outDir: path.resolve(values.out ?? env.DEFRAGD_BENCH_OUT ?? path.join(BENCH_DIR, 'results')),
  };
}
