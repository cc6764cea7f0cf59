/**
 * From the passes of `make bench-reads` to its table: per run the ratio
 * fragmented / defragmented of each figure, then over the runs the median
 * ratio and its spread (min–max). Pure: no I/O.
 */
import { median, percentile } from '../util.js';
import { OPS, type OpName, type PassResult } from './measure.js';

export const VARIANTS = ['fragmented', 'defragmented'] as const;
export type Variant = (typeof VARIANTS)[number];
export type CacheState = 'warm' | 'cold';

export interface FileFacts {
  dbSize: number;
  dbSizeInUse: number;
  revision: number;
  compactRevision: number;
  hashKV: number;
}

export interface PassRecord {
  run: number;
  /** Position of this variant within its run (0 or 1). */
  order: number;
  variant: Variant;
  cache: CacheState;
  /** Cold passes: spawn of etcd to the first answered read, ms. */
  startMs: number | null;
  /** Cold passes: etcd's own "opened backend db … took" of that start, ms. */
  backendOpenMs: number | null;
  /** Cold passes: bytes of the db file in the page cache right before etcd started, and right after it answered. */
  residentBeforeStart: number | null;
  residentAfterStart: number | null;
  facts: FileFacts;
  result: PassResult;
}

/** One figure of a pass (lower is better), or null when the pass did not take it. */
export type Metric = { label: string; unit: 'ms' | 'bytes'; cache: CacheState; get: (p: PassRecord) => number | null };

const OP_LABEL: Record<OpName, string> = {
  get: 'Single-key get',
  range100: 'Prefix range, 100 keys (with values)',
  range10k: 'Prefix range, 10 000 keys (with values)',
  scanKeysOnly: 'Full scan, `--keys-only`',
  countOnly: '`count_only` over all keys',
};

const pct =
  (op: OpName, p: number) =>
  (r: PassRecord): number | null =>
    percentile(r.result.latencies[op], p);

export function metrics(cache: CacheState): Metric[] {
  const m: Metric[] = [];
  if (cache === 'cold') {
    m.push({ label: 'Start: etcd spawned → serving clients', unit: 'ms', cache, get: (r) => r.startMs });
    m.push({ label: "Start: of which bbolt open (etcd's log)", unit: 'ms', cache, get: (r) => r.backendOpenMs });
  }
  for (const op of OPS) {
    m.push({ label: `${OP_LABEL[op]}, p50`, unit: 'ms', cache, get: pct(op, 50) });
    m.push({ label: `${OP_LABEL[op]}, p99`, unit: 'ms', cache, get: pct(op, 99) });
  }
  if (cache === 'warm')
    m.push({
      label: 'Full scan, `--keys-only`, by `etcdctl get` (process included; first run)',
      unit: 'ms',
      cache,
      get: (r) => r.result.etcdctlScanMs,
    });
  if (cache === 'warm') {
    m.push({ label: 'Snapshot: time to stream it', unit: 'ms', cache, get: (r) => r.result.snapshotMs });
    m.push({
      label: 'Snapshot: `etcdctl snapshot save` (written, fsynced; process included; first run)',
      unit: 'ms',
      cache,
      get: (r) => r.result.etcdctlSnapshotMs,
    });
    m.push({ label: 'Snapshot: size', unit: 'bytes', cache, get: (r) => r.result.snapshotBytes });
  }
  return m;
}

export interface Row {
  label: string;
  unit: 'ms' | 'bytes';
  cache: CacheState;
  /** Median over runs of each variant's figure. */
  fragmented: number | null;
  defragmented: number | null;
  /** Ratio fragmented / defragmented per run, then its median, min and max. */
  ratios: number[];
  ratioMedian: number | null;
  ratioMin: number | null;
  ratioMax: number | null;
}

/** One row per metric: medians per variant and the per-run ratio's median and range. */
export function summarise(passes: readonly PassRecord[], cache: CacheState): Row[] {
  const runs = [...new Set(passes.map((p) => p.run))].sort((a, b) => a - b);
  return metrics(cache).map((metric) => {
    const of = (v: Variant, run?: number): number[] =>
      passes
        .filter((p) => p.cache === cache && p.variant === v && (run === undefined || p.run === run))
        .map(metric.get)
        .filter((x): x is number => x !== null);
    const ratios: number[] = [];
    for (const run of runs) {
      const f = of('fragmented', run)[0];
      const d = of('defragmented', run)[0];
      if (f !== undefined && d !== undefined && d > 0) ratios.push(f / d);
    }
    return {
      label: metric.label,
      unit: metric.unit,
      cache,
      fragmented: median(of('fragmented')),
      defragmented: median(of('defragmented')),
      ratios,
      ratioMedian: median(ratios),
      ratioMin: ratios.length ? Math.min(...ratios) : null,
      ratioMax: ratios.length ? Math.max(...ratios) : null,
    };
  });
}

function fmtValue(v: number | null, unit: 'ms' | 'bytes'): string {
  if (v === null) return '–';
  if (unit === 'bytes') return `${(v / 1024 / 1024).toFixed(1)} MiB`;
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 1_000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 100) return `${Math.round(v)} ms`;
  if (v >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

const fmtRatio = (r: number | null): string => (r === null ? '–' : r.toFixed(2));

/** A markdown table row: label, both medians, ratio median (min–max). */
export function rowCells(row: Row): string[] {
  const spread = row.ratioMin === null ? '' : ` (${fmtRatio(row.ratioMin)}–${fmtRatio(row.ratioMax)})`;
  return [row.label, fmtValue(row.fragmented, row.unit), fmtValue(row.defragmented, row.unit), `${fmtRatio(row.ratioMedian)}${spread}`];
}

export function table(rows: readonly Row[], runs: number): string {
  const head = `| | fragmented | defragmented | fragmented / defragmented, median (min–max) over ${runs} runs |\n|---|---|---|---|`;
  return [head, ...rows.map((r) => `| ${rowCells(r).join(' | ')} |`)].join('\n');
}
