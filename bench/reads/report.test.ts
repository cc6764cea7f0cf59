import { describe, expect, it } from 'vitest';
import { ConfigError, loadReadsConfig } from './config.js';
import type { PassResult } from './measure.js';
import { rowCells, summarise, type PassRecord, type Variant } from './report.js';
import { median } from '../util.js';

const facts = { dbSize: 0, dbSizeInUse: 0, revision: 1, compactRevision: 0, hashKV: 0 };

function pass(run: number, variant: Variant, getMs: number[], snapshotMs: number): PassRecord {
  const result: PassResult = {
    latencies: { get: getMs, range100: [], range10k: [], scanKeysOnly: [], countOnly: [] },
    snapshotMs,
    snapshotBytes: variant === 'fragmented' ? 300 : 100,
    etcdctlScanMs: null,
    etcdctlSnapshotMs: null,
  };
  return {
    run,
    order: 0,
    variant,
    cache: 'warm',
    startMs: null,
    backendOpenMs: null,
    residentBeforeStart: null,
    residentAfterStart: null,
    facts,
    result,
  };
}

describe('bench-reads summary', () => {
  it('takes the ratio fragmented / defragmented within each run, then its median and min–max over runs', () => {
    const passes = [
      pass(1, 'fragmented', [2, 2, 2], 30),
      pass(1, 'defragmented', [1, 1, 1], 10),
      pass(2, 'defragmented', [2, 2, 2], 10),
      pass(2, 'fragmented', [3, 3, 3], 20),
      pass(3, 'fragmented', [1, 1, 1], 40),
      pass(3, 'defragmented', [1, 1, 1], 10),
    ];
    const rows = summarise(passes, 'warm');
    const get = rows.find((r) => r.label === 'Single-key get, p50');
    // Per run: 2/1, 3/2, 1/1. A ratio of medians (2/1) would hide the spread.
    expect(get?.ratios).toEqual([2, 1.5, 1]);
    expect([get?.ratioMedian, get?.ratioMin, get?.ratioMax]).toEqual([1.5, 1, 2]);
    expect([get?.fragmented, get?.defragmented]).toEqual([2, 1]);
    const snap = rows.find((r) => r.label === 'Snapshot: time to stream it');
    expect(snap?.ratios).toEqual([3, 2, 4]);
    expect(rowCells(snap!)).toEqual(['Snapshot: time to stream it', '30.0 ms', '10.0 ms', '3.00 (2.00–4.00)']);
    // Figures not taken stay empty instead of becoming zeros.
    const range = rows.find((r) => r.label.startsWith('Prefix range, 100 keys') && r.label.endsWith('p50'));
    expect(range?.ratios).toEqual([]);
    expect(rowCells(range!).slice(1)).toEqual(['–', '–', '–']);
  });

  it('median of an even count is the mean of the middle two', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});

describe('bench-reads settings', () => {
  it('flags win over the environment, which wins over the defaults', () => {
    const cfg = loadReadsConfig(['--keys', '5000'], { DEFRAGD_BENCH_READS_KEYS: '7000', DEFRAGD_BENCH_READS_RUNS: '3' });
    expect([cfg?.keys, cfg?.runs, cfg?.churnRounds, cfg?.serializable, cfg?.cold]).toEqual([5000, 3, 3, true, true]);
    expect(loadReadsConfig([], { DEFRAGD_BENCH_READS_QUICK: '1' })?.keys).toBe(12_000);
    expect(loadReadsConfig(['--help'], {})).toBeNull();
  });

  it('rejects bad numbers with the setting named', () => {
    expect(() => loadReadsConfig(['--keys', 'lots'], {})).toThrow(
      new ConfigError('--keys: expected an integer in [200, 999999], got "lots"'),
    );
    expect(() => loadReadsConfig([], { DEFRAGD_BENCH_READS_RUNS: '0' })).toThrow(/--runs: expected an integer in \[1, 100\]/);
  });
});
