/**
 * How long a member's defrag will take, from its own history: a defrag copies
 * what is in use (dbSizeInUse) into a new file, so its duration is that size
 * over the member's throughput, and each member's disk is its own. Pure: the
 * caller reads the history (the store) and passes it in.
 */
import type { ForecastBasis, PastDefrag } from '../domain/plan.js';
import { formatBytes, formatDuration } from '../domain/format.js';

/** How many of a member's recent defrags the forecast uses. */
export const DEFAULT_FORECAST_SAMPLES = 5;

/** A forecast with what it is based on. */
export interface DurationForecast {
  forecastMs: number | null;
  forecastBasis: ForecastBasis;
}

/** The usable past defrags' throughputs (bytes per ms), of the last `samples`. */
function throughputs(history: readonly PastDefrag[], samples: number): number[] {
  return history
    .filter((h) => h.dbSizeInUse > 0 && h.durationMs > 0)
    .slice(-samples)
    .map((h) => h.dbSizeInUse / h.durationMs);
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/**
 * How long defragmenting a member will take, in ms: its `dbSizeInUse` (what a
 * defrag copies) at the median throughput of its own last `samples` defrags
 * (`history` oldest first). Null without usable history. The median, because
 * one defrag slowed by a busy disk should not move the forecast.
 *
 * @example forecastDefragMs([{ dbSizeInUse: 100 * MiB, durationMs: 1000 }], 300 * MiB) // 3000
 */
export function forecastDefragMs(
  history: readonly PastDefrag[],
  dbSizeInUse: number,
  { samples = DEFAULT_FORECAST_SAMPLES }: { samples?: number } = {},
): number | null {
  const bytesPerMs = throughputs(history, samples);
  if (bytesPerMs.length === 0) return null;
  return Math.round(dbSizeInUse / median(bytesPerMs));
}

/**
 * A member's forecast and its basis, as every MemberDecision carries them.
 * `history` undefined: the caller has none at all (`history-not-given`);
 * `dbSizeInUse` null: the member sent no status.
 *
 * @example memberForecast([{ dbSizeInUse: 100 * MiB, durationMs: 1000 }], 300 * MiB) // { forecastMs: 3000, forecastBasis: { source: 'history', defrags: 1, bytesPerSecond: 104857600 } }
 */
export function memberForecast(
  history: readonly PastDefrag[] | undefined,
  dbSizeInUse: number | null,
  { samples = DEFAULT_FORECAST_SAMPLES }: { samples?: number } = {},
): DurationForecast {
  if (history === undefined) return { forecastMs: null, forecastBasis: { source: 'none', why: 'history-not-given' } };
  if (dbSizeInUse === null) return { forecastMs: null, forecastBasis: { source: 'none', why: 'no-status' } };
  const bytesPerMs = throughputs(history, samples);
  if (bytesPerMs.length === 0) return { forecastMs: null, forecastBasis: { source: 'none', why: 'no-history' } };
  const perMs = median(bytesPerMs);
  return {
    forecastMs: Math.round(dbSizeInUse / perMs),
    forecastBasis: { source: 'history', defrags: bytesPerMs.length, bytesPerSecond: Math.round(perMs * 1_000) },
  };
}

/**
 * Whether a forecast is over the allowed duration. An unknown forecast or
 * no maximum never is: the first defrag of a member has no history.
 *
 * @example exceedsMaxDuration(forecastDefragMs(history, inUse), 30_000)
 */
export function exceedsMaxDuration(forecastMs: number | null, maxMs: number | null | undefined): boolean {
  return forecastMs !== null && maxMs !== null && maxMs !== undefined && forecastMs > maxMs;
}

/**
 * A forecast for people: "~12s", "unknown: no history".
 *
 * @example describeForecast(12_300, { source: 'history', defrags: 3, bytesPerSecond: 8 * MiB }) // "~12.3s"
 */
export function describeForecast(forecastMs: number | null, basis: ForecastBasis): string {
  if (forecastMs !== null) return `~${formatDuration(forecastMs)}`;
  if (basis.source === 'history') return 'unknown';
  return `unknown: ${{ 'no-history': 'no history', 'no-status': 'no status', 'history-not-given': 'no history given' }[basis.why]}`;
}

/**
 * Where a forecast came from, for reasons: "812.0 MiB in use at 8.5 MiB/s, the median of its last 3 defrags".
 */
export function forecastOrigin(dbSizeInUse: number, basis: Extract<ForecastBasis, { source: 'history' }>): string {
  const of = basis.defrags === 1 ? 'its last defrag' : `the median of its last ${basis.defrags} defrags`;
  return `${formatBytes(dbSizeInUse)} in use at ${formatBytes(basis.bytesPerSecond)}/s, ${of}`;
}
