/**
 * The cluster page's chart (uPlot): dbSize and dbSizeInUse per member, the
 * quota as a line, every run of the range as a band on the time axis
 * coloured by outcome; hovering a band, or focusing its marker button under
 * the plot (keyboard), shows its trigger, reclaimed bytes and duration. The
 * uPlot instance is on the chart element (`.uplot`), so a test can read the
 * data it draws.
 *
 * Readability choices: one hue per member from the Okabe–Ito palette
 * (colour-blind safe), dbSize solid and in use dashed in the same hue; lines
 * only (points when there are few); 24-hour times; y ticks at round binary
 * sizes (0, 64, 128 MiB…); no horizontal cursor line.
 */
import uPlot from 'uplot';
import type { SamplesAnswer, StoredRun } from './api.js';
import { h } from './dom.js';
import { formatBytes, formatDuration, formatTime } from './format.js';
import { byName, OUTCOME_LABEL } from './parts.js';

/** Okabe–Ito, in an order that keeps the first members far apart (and away from the green of a successful run); dark mode trades the dark blue for the sky blue. */
const PALETTE_LIGHT = ['#0072B2', '#E69F00', '#CC79A7', '#56B4E9', '#D55E00', '#009E73', '#000000'];
const PALETTE_DARK = ['#56B4E9', '#E69F00', '#CC79A7', '#F0E442', '#D55E00', '#009E73', '#FFFFFF'];
const KiB = 1024;
const DAY_S = 86_400;
/** Views longer than this label days with their year (and space their ticks for it). */
const LONG_SPAN_S = 10 * DAY_S;
/** Points are drawn only when a series has at most this many in view; above, the line alone reads better. */
const MAX_POINTS_DRAWN = 40;
export const OUTCOME_COLOR: Record<string, string> = {
  success: '#2f9e44',
  'nothing-to-do': '#868e96',
  failed: '#e03131',
  refused: '#d9480f',
  interrupted: '#f08c00',
  running: '#1c7ed6',
  'dry-run': '#868e96',
};

export interface ChartElement extends HTMLElement {
  uplot?: uPlot;
}

export interface ChartHandle {
  el: HTMLElement;
  set(answer: SamplesAnswer): void;
  destroy(): void;
}

/** The columns uPlot draws: x in seconds, then per member dbSize and dbSizeInUse, then the quota (the largest member's). */
export function chartColumns(a: SamplesAnswer): { data: uPlot.AlignedData; labels: string[] } {
  const xsMs = [...new Set(a.members.flatMap((m) => m.atMs))].sort((x, y) => x - y);
  const index = new Map(xsMs.map((x, i) => [x, i]));
  const empty = () => xsMs.map((): number | null => null);
  const columns: (number | null)[][] = [];
  const labels: string[] = [];
  const quota = empty();
  for (const m of [...a.members].sort(byName)) {
    const size = empty();
    const inUse = empty();
    m.atMs.forEach((t, i) => {
      const j = index.get(t) as number;
      size[j] = m.dbSize[i] ?? null;
      inUse[j] = m.dbSizeInUse[i] ?? null;
      quota[j] = Math.max(quota[j] ?? 0, m.quota[i] ?? 0);
    });
    columns.push(size, inUse);
    labels.push(`${m.name} dbSize`, `${m.name} in use`);
  }
  labels.push('quota');
  return { data: [xsMs.map((x) => x / 1000), ...columns, quota] as uPlot.AlignedData, labels };
}

/**
 * The y axis: a step that is a power of two of a binary unit (…, 32, 64, 128
 * MiB, …, 1 GiB, …) giving at most `maxIntervals` intervals from 0 to a top
 * at least 2% above `max`, so the ticks read 0, 64, 128, 192, 256 MiB.
 */
export function binaryTicks(max: number, maxIntervals: number): { step: number; top: number } {
  const want = Math.max(1, max) * 1.02;
  let step = 1;
  while (Math.ceil(want / step) > maxIntervals) step *= 2;
  return { step, top: Math.ceil(want / step) * step };
}

/** A y tick: in the largest binary unit not above the axis top, without needless decimals ("0", "64 MiB", "1.5 GiB"). */
export function tickBytes(v: number, top: number): string {
  if (v === 0) return '0';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (i < units.length - 1 && top >= KiB ** (i + 1)) i++;
  return `${Number((v / KiB ** i).toFixed(3))} ${units[i]}`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * A time tick, 24-hour like the rest of the page: "HH:MM:SS" for ticks
 * seconds apart (a new daemon's first minute), "HH:MM" when ticks are
 * less than a day apart (a midnight tick gives its date "MM-DD" instead);
 * daily ticks "MM-DD", or "YYYY-MM-DD" when the view spans more than
 * `LONG_SPAN_S` (the 30 d range).
 */
export function tickTime(sec: number, incrSec: number, spanSec: number): string {
  const d = new Date(sec * 1000);
  const date = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  const hhmm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (incrSec < 60) return `${hhmm}:${pad(d.getSeconds())}`;
  if (incrSec < DAY_S) return d.getHours() === 0 && d.getMinutes() === 0 ? date : hhmm;
  return spanSec > LONG_SPAN_S ? `${d.getFullYear()}-${date}` : date;
}

/**
 * The time axis: the range asked for, or less when the store holds less
 * (a new daemon's minutes would otherwise be a sliver at the right edge of
 * an hour). Seconds.
 */
export function visibleRange(a: SamplesAnswer): { from: number; to: number } {
  const from = Date.parse(a.from) / 1000;
  const to = Date.parse(a.to) / 1000;
  const firsts = [...a.members.map((m) => m.atMs[0]), ...a.runs.map((r) => Date.parse(r.startedAt))].filter(
    (t): t is number => t !== undefined && Number.isFinite(t),
  );
  if (firsts.length === 0) return { from, to };
  const first = Math.min(...firsts) / 1000;
  // A little room before the first point; never less than a minute shown.
  const start = Math.max(from, Math.min(first - (to - first) * 0.05, to - 60));
  return { from: start, to };
}

/** Whether the quota line fits the sizes: the largest dbSize is at least a fifth of the quota. */
export function quotaShown(data: uPlot.AlignedData): boolean {
  const quota = Math.max(0, ...((data[data.length - 1] ?? []) as (number | null)[]).map((v) => v ?? 0));
  const sizes = data.slice(1, -1).flatMap((col) => (col as (number | null)[]).map((v) => v ?? 0));
  return quota > 0 && Math.max(0, ...sizes) >= quota / 5;
}

const cssVar = (name: string, fallback: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

export function createChart(): ChartHandle {
  const el: ChartElement = h('div', {
    class: 'chart',
    role: 'img',
    'aria-label': 'dbSize and in-use size per member over time, with the quota and the runs',
  });
  const tip = h('div', { class: 'chart-tip', role: 'tooltip', hidden: true });
  const marks = h('div', { class: 'run-marks', role: 'group', 'aria-label': 'runs on the chart' });
  const wrap = h('div', { class: 'chart-wrap' }, el, marks, tip);
  let u: uPlot | null = null;
  let runs: StoredRun[] = [];
  let range: { from: number; to: number } = { from: 0, to: 1 };
  let signature = '';

  const width = () => Math.max(280, Math.floor(wrap.clientWidth || el.clientWidth || 800));
  const height = () => (width() < 600 ? 220 : 320);

  const runSpan = (r: StoredRun, plot: uPlot, canvas: boolean) => {
    const start = Date.parse(r.startedAt) / 1000;
    const end = r.finishedAt ? Date.parse(r.finishedAt) / 1000 : Date.now() / 1000;
    return [plot.valToPos(start, 'x', canvas), plot.valToPos(end, 'x', canvas)] as const;
  };

  const drawRuns = (plot: uPlot) => {
    const { ctx, bbox } = plot;
    const dpr = window.devicePixelRatio || 1;
    ctx.save();
    for (const r of runs) {
      const [x0, x1] = runSpan(r, plot, true);
      if (x1 < bbox.left || x0 > bbox.left + bbox.width) continue;
      const color = OUTCOME_COLOR[r.outcome] ?? '#868e96';
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = color;
      ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 6 * dpr), bbox.height);
      ctx.globalAlpha = 1;
      ctx.fillRect(x0, bbox.top, 2 * dpr, bbox.height);
    }
    ctx.restore();
  };

  const showTip = (r: StoredRun, left: number) => {
    tip.replaceChildren(
      h('strong', {}, `Run ${r.id}: ${OUTCOME_LABEL[r.outcome] ?? r.outcome}`),
      h('br'),
      `trigger ${r.trigger}`,
      h('br'),
      `reclaimed ${formatBytes(r.reclaimedBytes)}`,
      h('br'),
      `duration ${formatDuration(r.durationMs)}`,
      h('br'),
      formatTime(r.startedAt),
    );
    tip.hidden = false;
    const over = u?.over;
    const x = (over?.offsetLeft ?? 0) + left + 12;
    tip.style.left = `${Math.max(0, Math.min(x, wrap.clientWidth - tip.offsetWidth - 4))}px`;
    tip.style.top = `${(over?.offsetTop ?? 0) + 8}px`;
  };

  const hover = (plot: uPlot) => {
    if (marks.contains(document.activeElement)) return;
    const left = plot.cursor.left ?? -1;
    const hit =
      left < 0
        ? undefined
        : runs.find((r) => {
            const [x0, x1] = runSpan(r, plot, false);
            return left >= x0 - 4 && left <= Math.max(x1, x0 + 6) + 4;
          });
    if (hit) showTip(hit, left);
    else tip.hidden = true;
  };

  /**
   * One button per run marker, over its band: invisible to the mouse (the
   * cursor handles hovering), reachable with Tab; focusing one outlines the
   * band and shows the same tooltip.
   */
  const placeMarks = (plot: uPlot) => {
    const { left, top, width: w, height: ht } = plot.over.getBoundingClientRect();
    const base = wrap.getBoundingClientRect();
    const focused = (document.activeElement as HTMLElement | null)?.dataset?.['runId'];
    const buttons: HTMLElement[] = [];
    for (const r of runs) {
      const [x0, x1] = runSpan(r, plot, false);
      if (x1 < 0 || x0 > w) continue;
      const b = h('button', {
        type: 'button',
        class: 'run-mark',
        'data-run-id': r.id,
        'aria-label': `Run ${r.id}: ${OUTCOME_LABEL[r.outcome] ?? r.outcome}, trigger ${r.trigger}, reclaimed ${formatBytes(r.reclaimedBytes)}, duration ${formatDuration(r.durationMs)}, started ${formatTime(r.startedAt)}`,
      });
      b.style.left = `${left - base.left + Math.max(0, x0) - 3}px`;
      b.style.top = `${top - base.top}px`;
      b.style.width = `${Math.max(8, Math.min(w, x1) - Math.max(0, x0)) + 6}px`;
      b.style.height = `${ht}px`;
      b.addEventListener('focus', () => showTip(r, Math.max(0, x0)));
      b.addEventListener('blur', () => (tip.hidden = true));
      buttons.push(b);
    }
    marks.replaceChildren(...buttons);
    if (focused) marks.querySelector<HTMLElement>(`[data-run-id="${focused}"]`)?.focus();
  };

  const build = (data: uPlot.AlignedData, labels: string[]) => {
    u?.destroy();
    const fg = cssVar('--fg-muted', '#555');
    const grid = cssVar('--grid', 'rgba(128,128,128,0.2)');
    const palette = window.matchMedia('(prefers-color-scheme: dark)').matches ? PALETTE_DARK : PALETTE_LIGHT;
    const memberCount = (labels.length - 1) / 2;
    const points: uPlot.Series.Points = { show: (_u, _s, i0, i1) => i1 - i0 < MAX_POINTS_DRAWN, size: 5 };
    const series: uPlot.Series[] = [{ label: 'time', value: (_u, v) => (v === null ? '-' : formatTime(new Date(v * 1000).toISOString())) }];
    for (let i = 0; i < memberCount; i++) {
      const color = palette[i % palette.length] as string;
      series.push({ label: labels[2 * i], stroke: color, width: 2, points, spanGaps: true, value: (_u, v) => formatBytes(v) });
      series.push({
        label: labels[2 * i + 1],
        stroke: color,
        width: 1.5,
        dash: [5, 4],
        alpha: 0.85,
        points,
        spanGaps: true,
        value: (_u, v) => formatBytes(v),
      });
    }
    // A quota far above the sizes would flatten them against the axis: then it starts hidden (its legend entry shows it).
    series.push({
      label: 'quota',
      show: quotaShown(data),
      stroke: cssVar('--danger', '#e03131'),
      width: 1.5,
      dash: [2, 4],
      points: { show: false },
      spanGaps: true,
      value: (_u, v) => formatBytes(v),
    });
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const maxIntervals = () => (height() < 300 ? 4 : 6);
    const yTicks = (max: number) => binaryTicks(max, maxIntervals());
    const span = () => range.to - range.from;
    u = new uPlot(
      {
        width: width(),
        height: height(),
        series,
        scales: { x: { time: true, range: () => [range.from, range.to] }, y: { range: (_u, _min, max) => [0, yTicks(max).top] } },
        axes: [
          // Room for the widest label ("YYYY-MM-DD" on long views), so neighbours never touch.
          {
            ...axis,
            space: () => (span() > LONG_SPAN_S ? 100 : 64),
            values: (_u, ticks, _a, _space, incr) => ticks.map((t) => tickTime(t, incr, span())),
          },
          {
            ...axis,
            size: width() < 600 ? 64 : 72,
            splits: (plot) => {
              const top = plot.scales['y']?.max ?? 1;
              const { step } = yTicks(top / 1.02);
              return Array.from({ length: Math.round(top / step) + 1 }, (_, k) => k * step);
            },
            values: (plot, ticks) => ticks.map((t) => tickBytes(t, plot.scales['y']?.max ?? t)),
          },
        ],
        // The legend's markers drawn as their lines are: solid dbSize, dashed in use, dotted quota.
        legend: {
          live: true,
          markers: {
            dash: (plot, i) => (i === plot.series.length - 1 ? 'dotted' : (plot.series[i]?.dash?.length ?? 0) > 0 ? 'dashed' : 'solid'),
          },
        },
        // A vertical line follows the pointer; a horizontal one would read as a threshold.
        cursor: { y: false, drag: { x: false, y: false } },
        hooks: { drawClear: [drawRuns], draw: [placeMarks], setCursor: [hover] },
      },
      data,
      el,
    );
    el.uplot = u;
  };

  const resize = new ResizeObserver(() => u?.setSize({ width: width(), height: height() }));
  resize.observe(wrap);
  const scheme = window.matchMedia('(prefers-color-scheme: dark)');
  let last: { data: uPlot.AlignedData; labels: string[] } | null = null;
  const rebuild = () => last && build(last.data, last.labels);
  scheme.addEventListener('change', rebuild);

  return {
    el: wrap,
    set(a: SamplesAnswer) {
      runs = a.runs;
      range = visibleRange(a);
      last = chartColumns(a);
      const sig = last.labels.join('\n');
      // The same members: new data only (keeps the cursor and legend); other members: a new chart.
      if (u && sig === signature && quotaShown(last.data) === u.series[u.series.length - 1]?.show) u.setData(last.data);
      else build(last.data, last.labels);
      signature = sig;
      el.dataset['points'] = String(last.data[0].length);
      el.dataset['runIds'] = runs.map((r) => r.id).join(' ');
    },
    destroy() {
      resize.disconnect();
      scheme.removeEventListener('change', rebuild);
      u?.destroy();
      u = null;
    },
  };
}
