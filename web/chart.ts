/**
 * The cluster page's chart (uPlot): dbSize and dbSizeInUse per member, the
 * quota as a line, every run of the range as a band on the time axis
 * coloured by outcome; hovering a band shows its trigger, reclaimed bytes
 * and duration. The uPlot instance is on the chart element (`.uplot`), so a
 * test can read the data it draws.
 */
import uPlot from 'uplot';
import type { SamplesAnswer, StoredRun } from './api.js';
import { h } from './dom.js';
import { formatBytes, formatDuration, formatTime } from './format.js';
import { OUTCOME_LABEL } from './parts.js';

const PALETTE = ['#3b82f6', '#e8590c', '#12b886', '#be4bdb', '#fab005', '#15aabf', '#f03e3e'];
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
  for (const m of a.members) {
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
 * The time axis: the range asked for, or less when the store holds less
 * (a new daemon's minutes would otherwise be a sliver at the right edge of
 * an hour). Seconds.
 */
export function visibleRange(a: SamplesAnswer): { from: number; to: number } {
  const from = Date.parse(a.from) / 1000;
  const to = Date.parse(a.to) / 1000;
  const firsts = [...a.members.map((m) => m.atMs[0]), ...a.runs.map((r) => Date.parse(r.startedAt))].filter((t): t is number => t !== undefined && Number.isFinite(t));
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
  const el: ChartElement = h('div', { class: 'chart', role: 'img', 'aria-label': 'dbSize and in-use size per member over time, with the quota and the runs' });
  const tip = h('div', { class: 'chart-tip', role: 'tooltip', hidden: true });
  const wrap = h('div', { class: 'chart-wrap' }, el, tip);
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

  const hover = (plot: uPlot) => {
    const left = plot.cursor.left ?? -1;
    const hit = left < 0 ? undefined : runs.find((r) => {
      const [x0, x1] = runSpan(r, plot, false);
      return left >= x0 - 4 && left <= Math.max(x1, x0 + 6) + 4;
    });
    if (!hit) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren(
      h('strong', {}, `Run ${hit.id}: ${OUTCOME_LABEL[hit.outcome] ?? hit.outcome}`),
      h('br'),
      `trigger ${hit.trigger}`,
      h('br'),
      `reclaimed ${formatBytes(hit.reclaimedBytes)}`,
      h('br'),
      `duration ${formatDuration(hit.durationMs)}`,
      h('br'),
      formatTime(hit.startedAt),
    );
    tip.hidden = false;
    const over = plot.over;
    const x = over.offsetLeft + left + 12;
    tip.style.left = `${Math.min(x, wrap.clientWidth - tip.offsetWidth - 4)}px`;
    tip.style.top = `${over.offsetTop + 8}px`;
  };

  const build = (data: uPlot.AlignedData, labels: string[]) => {
    u?.destroy();
    const fg = cssVar('--fg-muted', '#555');
    const grid = cssVar('--grid', 'rgba(128,128,128,0.2)');
    const memberCount = (labels.length - 1) / 2;
    const series: uPlot.Series[] = [{ label: 'time', value: (_u, v) => (v === null ? '-' : formatTime(new Date(v * 1000).toISOString())) }];
    for (let i = 0; i < memberCount; i++) {
      const color = PALETTE[i % PALETTE.length] as string;
      series.push({ label: labels[2 * i], stroke: color, width: 2, spanGaps: true, value: (_u, v) => formatBytes(v) });
      series.push({ label: labels[2 * i + 1], stroke: color, width: 1.5, dash: [6, 4], spanGaps: true, value: (_u, v) => formatBytes(v) });
    }
    // A quota far above the sizes would flatten them against the axis: then it starts hidden (its legend entry shows it).
    series.push({ label: 'quota', show: quotaShown(data), stroke: cssVar('--danger', '#e03131'), width: 1.5, dash: [2, 4], spanGaps: true, value: (_u, v) => formatBytes(v) });
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    u = new uPlot(
      {
        width: width(),
        height: height(),
        series,
        scales: { x: { time: true, range: () => [range.from, range.to] }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.08] } },
        axes: [axis, { ...axis, size: width() < 600 ? 76 : 84, values: (_u, ticks) => ticks.map((t) => formatBytes(t)) }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
        hooks: { drawClear: [drawRuns], setCursor: [hover] },
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
