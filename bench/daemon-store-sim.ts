/**
 * How big one cluster's store gets over months, measured rather than guessed:
 * the daemon's own Store (src/store) is fed the samples one cluster produces
 * at the benchmark's interval for `days` simulated days, on a simulated clock,
 * and thinned every hour as `defragd serve` does (store.downsample: 24 h at
 * full resolution, then the last sample per member per 5 minutes). At the end
 * of each day the store is closed (SQLite folds the WAL into the file) and the
 * file's size taken. Deleted rows leave pages SQLite reuses but never returns,
 * so the file's daily increment once the first full-resolution day has been
 * thinned is the steady growth; a year is extrapolated from it.
 *
 * The samples are one real snapshot of a benchmark cluster with production
 * magnitudes (GB sizes, revisions in the hundreds of millions) and realistic
 * name lengths, so each row costs what it costs in production.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClusterSnapshot } from '../src/index.js';
import { openStore } from '../src/store/index.js';

export interface StoreSimOptions {
  /** The observation interval, ms. */
  intervalMs: number;
  /** Simulated days. */
  days: number;
  /** The cluster's name as stored in every row. */
  cluster: string;
}

export interface StoreSim {
  intervalMs: number;
  days: number;
  cluster: string;
  members: number;
  /** File size (WAL folded in) at the end of each simulated day, bytes. */
  sizeAtDayEnd: number[];
  /** Sample rows at the end of each simulated day. */
  rowsAtDayEnd: number[];
  /** Bytes per day once the first day's samples were thinned (mean over the days after the second). */
  steadyBytesPerDay: number;
  /** How long the hourly thinning (store.downsample) took at the end, with all the simulated days in the store, ms. */
  lastDownsampleMs: number;
  /** Wall time of the simulation, ms. */
  tookMs: number;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Runs the simulation in a temp dir of its own (removed at the end). */
export function simulateStore(real: ClusterSnapshot, o: StoreSimOptions): StoreSim {
  if (o.days < 4) throw new Error('the store simulation needs at least 4 days (a day to fill, a day to thin, two to measure)');
  const t0 = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'defragd-bench-store-'));
  const file = path.join(dir, 'sim.sqlite');
  const start = Date.UTC(2026, 0, 1);
  let now = start;
  let lastDownsampleMs = 0;
  const clock = () => now;
  const members = real.members.map((m, i) => ({ ...m, name: `etcd-${o.cluster}-${i}` }));
  const sizeAtDayEnd: number[] = [];
  const rowsAtDayEnd: number[] = [];
  try {
    let store = openStore(file, { now: clock });
    let nextThin = start + HOUR_MS;
    let i = 0;
    for (let day = 1; day <= o.days; day++) {
      const end = start + day * DAY_MS;
      for (; now < end; now += o.intervalMs, i++) {
        const snapshot: ClusterSnapshot = {
          ...real,
          observedAt: new Date(now).toISOString(),
          members: members.map((m, k) =>
            m.status === null
              ? m
              : {
                  ...m,
                  status: {
                    ...m.status,
                    // Production magnitudes that change with every observation, as a busy cluster's do.
                    dbSize: 4_000_000_000 + ((i * 4096 + k * 65_536) % 1_000_000_000),
                    dbSizeInUse: 2_000_000_000 + ((i * 1024 + k * 8192) % 1_000_000_000),
                    revision: 500_000_000 + i * 40,
                    quota: 8 * 1024 ** 3,
                  },
                },
          ),
        };
        store.recordSamples(o.cluster, snapshot);
        if (now >= nextThin) {
          const t = performance.now();
          store.downsample(now);
          lastDownsampleMs = performance.now() - t;
          nextThin += HOUR_MS;
        }
      }
      rowsAtDayEnd.push(store.samples({ cluster: o.cluster }).length);
      store.close();
      sizeAtDayEnd.push(statSync(file).size);
      store = openStore(file, { now: clock });
    }
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Days 1-2 fill the full-resolution day and thin the first; from day 3 on each day adds one thinned day.
  const steady = sizeAtDayEnd.slice(2);
  const steadyBytesPerDay = ((steady[steady.length - 1] as number) - (steady[0] as number)) / (steady.length - 1);
  return {
    intervalMs: o.intervalMs,
    days: o.days,
    cluster: o.cluster,
    members: members.length,
    sizeAtDayEnd,
    rowsAtDayEnd,
    steadyBytesPerDay,
    lastDownsampleMs,
    tookMs: Date.now() - t0,
  };
}

/** The store of one cluster after `days` of history (no retention cut before then), from the simulation's steady growth. */
export function extrapolate(sim: StoreSim, days: number): number {
  const last = sim.sizeAtDayEnd[sim.sizeAtDayEnd.length - 1] as number;
  return days <= sim.days ? (sim.sizeAtDayEnd[days - 1] as number) : last + (days - sim.days) * sim.steadyBytesPerDay;
}
