/** `make bench-schedule`'s settings, from the environment, with their defaults and checks. */
import { compileRule } from '../../src/index.js';
import { ConfigError, envDuration, envNumber } from '../settings.js';

export interface ScheduleConfig {
  /** Minutes of maintenance (both clusters at once). */
  minutes: number;
  /** Load-only seconds before maintenance starts (the noise floor). */
  warmupSec: number;
  quotaMiB: number;
  cronEveryMin: number;
  /** The defragd rule, as an operator would write it for this quota. */
  rule: string;
  autoInterval: string;
  autoCooldown: string;
  opsPerSec: number;
  slots: number;
  compactEverySec: number;
  seed: number;
  stallThresholdMs: number;
  outDir: string;
}

export { ConfigError };

export const USAGE = `make bench-schedule (npx tsx bench/schedule/run.mts): cron etcdctl defrag vs defragd serve auto, side by side.
--rerender: only write schedule-latest.md again from schedule-latest.json (the latest run's figures).
Settings (environment):
  BENCH_MINUTES                    minutes of maintenance (default 12; 2 for a quick look)
  BENCH_SCHEDULE_WARMUP_SEC        load-only seconds first (default 60)
  BENCH_SCHEDULE_QUOTA_MIB         --quota-backend-bytes of both clusters (default 256)
  BENCH_SCHEDULE_CRON_MINUTES      cron interval of etcdctl defrag --cluster (default 3)
  BENCH_SCHEDULE_RULE              defragd's rule (default "(fragmentation > 0.3 && dbSizeFree > 16*MiB) || dbQuotaUsage > 0.6")
  BENCH_SCHEDULE_AUTO_INTERVAL     defragd's auto.interval (default 10s)
  BENCH_SCHEDULE_AUTO_COOLDOWN     defragd's auto.cooldown (default 2m)
  BENCH_SCHEDULE_OPS               workload writes per second per cluster (default 40)
  BENCH_SCHEDULE_SLOTS             workload keys (default 3000)
  BENCH_SCHEDULE_COMPACT_SEC       compaction interval (default 60)
  BENCH_SCHEDULE_SEED              workload seed (default 11)
  BENCH_SCHEDULE_OUT               results directory (default bench/results)`;

export function loadConfig(env: NodeJS.ProcessEnv): ScheduleConfig {
  const rule = env.BENCH_SCHEDULE_RULE ?? '(fragmentation > 0.3 && dbSizeFree > 16*MiB) || dbQuotaUsage > 0.6';
  try {
    // Checked before two clusters are started for it: defragd serve would refuse it only then.
    compileRule(rule);
  } catch (err) {
    throw new ConfigError(`BENCH_SCHEDULE_RULE: ${(err as Error).message}`);
  }
  return {
    minutes: envNumber(env, 'BENCH_MINUTES', 12, 0.5, 600),
    warmupSec: envNumber(env, 'BENCH_SCHEDULE_WARMUP_SEC', 60, 0, 3600),
    quotaMiB: envNumber(env, 'BENCH_SCHEDULE_QUOTA_MIB', 256, 16, 8192),
    cronEveryMin: envNumber(env, 'BENCH_SCHEDULE_CRON_MINUTES', 3, 0.25, 600),
    rule,
    autoInterval: envDuration(env, 'BENCH_SCHEDULE_AUTO_INTERVAL', '10s'),
    autoCooldown: envDuration(env, 'BENCH_SCHEDULE_AUTO_COOLDOWN', '2m'),
    opsPerSec: envNumber(env, 'BENCH_SCHEDULE_OPS', 40, 1, 1000),
    slots: envNumber(env, 'BENCH_SCHEDULE_SLOTS', 3000, 10, 1_000_000),
    compactEverySec: envNumber(env, 'BENCH_SCHEDULE_COMPACT_SEC', 60, 5, 3600),
    seed: envNumber(env, 'BENCH_SCHEDULE_SEED', 11, 0, 2 ** 31),
    stallThresholdMs: 100,
    outDir: env.BENCH_SCHEDULE_OUT ?? 'bench/results',
  };
}
