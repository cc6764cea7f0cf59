/** `make bench-kube`'s settings, from the environment, with their defaults and checks. */
import { compileRule } from '../../src/index.js';
import { ConfigError, envDuration, envNumber } from '../settings.js';

/** A data size: live MiB written twice (the first pass becomes garbage), then compacted. */
export interface Preset {
  name: 'small' | 'stall';
  liveMiB: number;
  /** What the size stands for, for the table. */
  about: string;
}

export const PRESETS: Record<Preset['name'], Preset> = {
  small: { name: 'small', liveMiB: 100, about: 'a small production control plane: about 200 MiB files, 100 MiB of them in use' },
  stall: {
    name: 'stall',
    liveMiB: 800,
    about: "each member's defrag longer than kube-controller-manager's 10 s renew deadline: about 1.6 GiB files, 800 MiB in use",
  },
};

export type KubeTool = 'etcdctl' | 'etcd-defrag' | 'etcd-defrag-move-leader' | 'defragd';
const TOOLS: readonly KubeTool[] = ['etcdctl', 'etcd-defrag', 'etcd-defrag-move-leader', 'defragd'];

export interface KubeBenchConfig {
  presets: Preset[];
  tools: KubeTool[];
  /** Seconds of load before each tool (its noise floor). */
  baselineSec: number;
  /** Seconds after a tool ends before the window closes: kcm's lease duration (15 s) and one more. */
  settleSec: number;
  /** Minutes of `defragd serve` against a cron, side by side; 0 leaves that part out. */
  minutes: number;
  cronEveryMin: number;
  rule: string;
  autoInterval: string;
  autoCooldown: string;
  /** kube-apiserver's --etcd-compaction-interval in the side-by-side part (its fragmentation comes from it). */
  compactionInterval: string;
  outDir: string;
}

export { ConfigError };

export const USAGE = `make bench-kube (npx tsx bench/kube/run.mts): what a defrag tool costs a Kubernetes control plane.
Each tool runs on a fresh 3-member cluster (ETCD_VERSION, default the newest 3.6) with two kube-apiservers
and client-go controllers (kube-load); then defragd serve and an etcdctl cron run side by side.
Settings (environment):
  BENCH_KUBE_PRESETS         data sizes, in order (default "small,stall"):
                               small: ${PRESETS.small.about}
                               stall: ${PRESETS.stall.about}
  BENCH_KUBE_TOOLS           tools, in order (default "etcdctl,etcd-defrag,defragd"; also etcd-defrag-move-leader)
  BENCH_KUBE_BASELINE_SEC    load-only seconds before each tool (default 20)
  BENCH_KUBE_SETTLE_SEC      seconds after each tool before its window closes (default 16)
  BENCH_KUBE_MINUTES         minutes of defragd serve against the cron, side by side (default 10; 0 leaves it out)
  BENCH_KUBE_CRON_MINUTES    the cron's interval (default 3)
  BENCH_KUBE_RULE            defragd serve's rule (default "fragmentation > 0.3 && dbSizeFree > 32*MiB")
  BENCH_KUBE_AUTO_INTERVAL   defragd serve's auto.interval (default 10s)
  BENCH_KUBE_AUTO_COOLDOWN   defragd serve's auto.cooldown (default 2m)
  BENCH_KUBE_COMPACTION      kube-apiserver's --etcd-compaction-interval side by side (default 1m)
  BENCH_KUBE_OUT             results directory (default bench/results)`;

function list<T extends string>(env: NodeJS.ProcessEnv, name: string, dflt: string, known: readonly T[]): T[] {
  const items = (env[name] || dflt)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = items.filter((i) => !known.includes(i as T));
  if (unknown.length > 0 || items.length === 0)
    throw new ConfigError(`${name}=${env[name]}: expected a comma-separated list of ${known.join(', ')}`);
  return items as T[];
}

export function loadConfig(env: NodeJS.ProcessEnv): KubeBenchConfig {
  const rule = env.BENCH_KUBE_RULE || 'fragmentation > 0.3 && dbSizeFree > 32*MiB';
  try {
    compileRule(rule);
  } catch (err) {
    throw new ConfigError(`BENCH_KUBE_RULE: ${(err as Error).message}`);
  }
  const presetNames = list(env, 'BENCH_KUBE_PRESETS', 'small,stall', Object.keys(PRESETS) as Preset['name'][]);
  return {
    presets: presetNames.map((n) => PRESETS[n]),
    tools: list(env, 'BENCH_KUBE_TOOLS', 'etcdctl,etcd-defrag,defragd', TOOLS),
    baselineSec: envNumber(env, 'BENCH_KUBE_BASELINE_SEC', 20, 0, 600),
    settleSec: envNumber(env, 'BENCH_KUBE_SETTLE_SEC', 16, 0, 600),
    minutes: envNumber(env, 'BENCH_KUBE_MINUTES', 10, 0, 600),
    cronEveryMin: envNumber(env, 'BENCH_KUBE_CRON_MINUTES', 3, 0.25, 600),
    rule,
    autoInterval: envDuration(env, 'BENCH_KUBE_AUTO_INTERVAL', '10s'),
    autoCooldown: envDuration(env, 'BENCH_KUBE_AUTO_COOLDOWN', '2m'),
    compactionInterval: envDuration(env, 'BENCH_KUBE_COMPACTION', '1m'),
    outDir: env.BENCH_KUBE_OUT || 'bench/results',
  };
}
