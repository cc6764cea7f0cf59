/**
 * One measuring pass of `make bench-reads` against a running member: the
 * reads a user of etcd makes, each timed from call to decoded answer in this
 * process, one request at a time (no concurrency: the question is what one
 * read costs, not the member's throughput).
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { MemberClient } from '../../src/etcd/client.js';
import { mulberry32 } from '../../dev/prng.js';
import { KEY_PREFIX, keyOf, prefixEnd } from './data.js';
import type { ReadsConfig } from './config.js';

export const OPS = ['get', 'range100', 'range10k', 'scanKeysOnly', 'countOnly'] as const;
export type OpName = (typeof OPS)[number];

export interface PassResult {
  /** Latencies in ms, per operation, in the order taken. */
  latencies: Record<OpName, number[]>;
  /** Time to stream a snapshot (Maintenance.Snapshot) to its end, ms, and its size; null when not taken. */
  snapshotMs: number | null;
  snapshotBytes: number | null;
  /** The same keys-only scan through `etcdctl get --prefix --keys-only` (Go client; process start included), ms; null when not taken. */
  etcdctlScanMs: number | null;
  /** `etcdctl snapshot save` (Go client; written to disk and fsynced, process included), ms; null when not taken. */
  etcdctlSnapshotMs: number | null;
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return ms(t0);
}

/**
 * Runs every read of one pass. `seed` picks the keys and ranges, so both files see the same
 * requests in one run. `expectKeys` guards against a pass that reads the wrong data.
 */
export async function measurePass(
  mc: MemberClient,
  cfg: ReadsConfig,
  seed: number,
  opts: { snapshot: boolean; etcdctl?: { bin: string; endpoint: string; snapshotFile: string } },
): Promise<PassResult> {
  const rand = mulberry32(seed);
  const n = cfg.keys;
  const serializable = cfg.serializable;
  const timeoutMs = 120_000;
  const latencies: Record<OpName, number[]> = { get: [], range100: [], range10k: [], scanKeysOnly: [], countOnly: [] };
  const check = (what: string, got: number, want: number): void => {
    if (got !== want) throw new Error(`${what}: expected ${want} keys, got ${got}: the member does not hold the benchmark's data`);
  };

  for (let k = 0; k < cfg.gets; k++) {
    const key = keyOf(Math.floor(rand() * n));
    let got = 0;
    latencies.get.push(await timed(async () => (got = (await mc.range(key, { serializable, timeoutMs })).kvs.length)));
    check(`get ${key}`, got, 1);
  }
  const ranges = async (size: number, reps: number, into: number[]): Promise<void> => {
    const blocks = Math.floor(n / size);
    for (let k = 0; k < reps && blocks > 0; k++) {
      // An aligned block of `size` zero-padded indexes is a prefix when size is a power of 10.
      const start = keyOf(Math.floor(rand() * blocks) * size);
      const prefix = start.slice(0, start.length - Math.log10(size));
      let got = 0;
      into.push(
        await timed(async () => (got = (await mc.range(prefix, { rangeEnd: prefixEnd(prefix), serializable, timeoutMs })).kvs.length)),
      );
      check(`range ${prefix}`, got, size);
    }
  };
  await ranges(100, cfg.range100, latencies.range100);
  await ranges(10_000, cfg.range10k, latencies.range10k);
  const end = prefixEnd(KEY_PREFIX);
  for (let k = 0; k < cfg.scans; k++) {
    let got = 0;
    latencies.scanKeysOnly.push(
      await timed(async () => (got = (await mc.range(KEY_PREFIX, { rangeEnd: end, keysOnly: true, serializable, timeoutMs })).kvs.length)),
    );
    check('keys-only scan', got, n);
  }
  for (let k = 0; k < cfg.counts; k++) {
    let got = 0;
    latencies.countOnly.push(
      await timed(async () => (got = (await mc.range(KEY_PREFIX, { rangeEnd: end, countOnly: true, serializable, timeoutMs })).count)),
    );
    check('count_only', got, n);
  }

  let etcdctlScanMs: number | null = null;
  let etcdctlSnapshotMs: number | null = null;
  if (opts.etcdctl) {
    const { bin, endpoint, snapshotFile } = opts.etcdctl;
    const etcdctl = (args: string[]): { ms: number; stdout: string } => {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(bin, ['--endpoints', endpoint, '--command-timeout=600s', ...args], {
        env: { PATH: process.env.PATH ?? '', ETCDCTL_API: '3' },
        maxBuffer: 256 * 1024 * 1024,
        encoding: 'utf8',
        timeout: 600_000,
      });
      const took = ms(t0);
      if (r.status !== 0) throw new Error(`etcdctl ${args.slice(0, 2).join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
      return { ms: took, stdout: r.stdout };
    };
    const scan = etcdctl(['get', '--prefix', '--keys-only', `--consistency=${serializable ? 's' : 'l'}`, KEY_PREFIX]);
    etcdctlScanMs = scan.ms;
    // etcdctl prints each key followed by an empty line.
    check('etcdctl keys-only scan', scan.stdout.split('\n').filter((l) => l.startsWith(KEY_PREFIX)).length, n);
    try {
      etcdctlSnapshotMs = etcdctl(['snapshot', 'save', snapshotFile]).ms;
    } finally {
      rmSync(snapshotFile, { force: true });
      rmSync(`${snapshotFile}.part`, { force: true });
    }
  }

  let snapshotMs: number | null = null;
  let snapshotBytes: number | null = null;
  if (opts.snapshot) {
    const t0 = process.hrtime.bigint();
    let bytes = 0;
    // Streamed and counted, not written: what is measured is the member's side (bbolt's copy of every page).
    for await (const chunk of mc.snapshot({ timeoutMs: 600_000 })) bytes += chunk.length;
    snapshotMs = ms(t0);
    snapshotBytes = bytes;
  }
  return { latencies, snapshotMs, snapshotBytes, etcdctlScanMs, etcdctlSnapshotMs };
}
