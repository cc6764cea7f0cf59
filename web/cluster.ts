/** The cluster page (#/clusters/NAME): actions, members, the chart with its range picker, the run history, the defragmentation status. */
import { createActions } from './actions.js';
import { ApiError, api, type DaemonEvent, type SampleRange, type StoredRun, type StoredRunDetail } from './api.js';
import { chartColumns, createChart, quotaShown, visibleRange } from './chart.js';
import { fill, h } from './dom.js';
import { formatBytes, formatDuration, formatPercent, formatRelative, formatTime } from './format.js';
import { alarmsLine, byName, memberList, outcomeBadge, progressView, scheduleLines, stateBadge, unreachableLine } from './parts.js';
import type { AppContext, AppState, View } from './view.js';

const RANGES: SampleRange[] = ['1h', '24h', '7d', '30d'];
const RANGE_LABEL: Record<SampleRange, string> = { '1h': '1 h', '24h': '24 h', '7d': '7 d', '30d': '30 d' };

export function clusterPage(root: HTMLElement, name: string, ctx: AppContext): View {
  ctx.crumbs({ text: name, href: `#/clusters/${encodeURIComponent(name)}` });
  document.title = `${name} · defragd`;
  let range: SampleRange = RANGES.includes(sessionRange() as SampleRange) ? (sessionRange() as SampleRange) : '1h';
  let destroyed = false;
  let lastObservedAt: string | null = null;
  let lastRunKey = '';
  const open = new Set<number>();
  const details = new Map<number, StoredRunDetail>();

  let badge: HTMLElement = h('span');
  const title = h('h1', {}, name, ' ', badge);
  const live = h('div', { class: 'cluster-live' });
  const members = h('div');
  const facts = h('dl', { class: 'facts' });
  const actions = createActions(name, () => void ctx.refresh());
  const chart = createChart();
  const chartStatus = h('p', { class: 'chart-status muted', role: 'status' });
  const rangeButtons = RANGES.map((r) =>
    h(
      'button',
      { type: 'button', class: 'btn btn-toggle', 'data-range': r, 'aria-pressed': String(r === range), onclick: () => setRange(r) },
      RANGE_LABEL[r],
    ),
  );
  const legend = h(
    'ul',
    { class: 'run-legend', 'aria-label': 'run markers' },
    ...['success', 'nothing-to-do', 'failed', 'interrupted', 'running'].map((o) =>
      h('li', {}, h('span', { class: `swatch outcome-bg-${o}`, 'aria-hidden': 'true' }), o.replace(/-/g, ' ')),
    ),
  );
  const historyBody = h('tbody');
  const historyStatus = h('p', { class: 'muted', role: 'status' });
  const statusBody = h('div');

  const notFound = h('p', { class: 'error-line', hidden: true });
  fill(
    root,
    title,
    notFound,
    live,
    h(
      'div',
      { class: 'cluster-grid' },
      h('section', { class: 'panel', 'aria-labelledby': 'members-title' }, h('h2', { id: 'members-title' }, 'Members'), members, facts),
      actions.el,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'chart-title' },
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'chart-title' }, 'Size over time'),
        h('div', { class: 'range-picker', role: 'group', 'aria-label': 'time range' }, ...rangeButtons),
      ),
      chart.el,
      legend,
      chartStatus,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'history-title' },
      h('h2', { id: 'history-title' }, 'Runs'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'history' },
          h('caption', { class: 'visually-hidden' }, `Run history of ${name}, newest first; a run's button opens its members and events`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['started', 'trigger', 'outcome', 'members', 'reclaimed', 'duration'].map((t, i) =>
                h('th', { scope: 'col', class: i >= 3 ? 'num' : null }, t),
              ),
            ),
          ),
          historyBody,
        ),
      ),
      historyStatus,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'status-title' },
      h('h2', { id: 'status-title' }, 'Defragmentation status'),
      h('p', { class: 'muted' }, 'From the records each run leaves in the cluster (as defragd last).'),
      statusBody,
    ),
  );

  function setRange(r: SampleRange): void {
    range = r;
    try {
      sessionStorage.setItem('defragd.range', r);
    } catch {
      // not kept
    }
    for (const b of rangeButtons) b.setAttribute('aria-pressed', String(b.dataset['range'] === r));
    void loadSamples();
  }

  async function loadSamples(): Promise<void> {
    const asked = range;
    try {
      const a = await api.samples(name, asked);
      if (destroyed || asked !== range) return;
      chart.set(a);
      const points = a.members.reduce((n, m) => n + m.atMs.length, 0);
      const quota = Math.max(0, ...a.members.flatMap((m) => m.quota));
      const hidden =
        points > 0 && !quotaShown(chartColumns(a).data)
          ? ` The quota (${formatBytes(quota)}) is far above the sizes: select "quota" in the legend to draw it.`
          : '';
      chartStatus.textContent =
        points === 0
          ? `No samples in the last ${RANGE_LABEL[asked]} yet: the daemon records one per member at each observation.`
          : `${a.members.length} members, ${a.runs.length} ${a.runs.length === 1 ? 'run' : 'runs'} in the last ${RANGE_LABEL[asked]}.${since(a)}${hidden}`;
    } catch (err) {
      if (!destroyed) chartStatus.textContent = `Samples could not be loaded: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  async function loadHistory(): Promise<void> {
    try {
      const { runs } = await api.history(name, 50);
      if (destroyed) return;
      historyStatus.textContent = runs.length === 0 ? 'No runs yet.' : '';
      // Redrawn rows: the run button that had the focus gets it back.
      const focused = (document.activeElement as HTMLElement | null)?.closest?.('tr.run-row')?.getAttribute('data-run-id');
      fill(historyBody, ...runs.flatMap(historyRows));
      if (focused) historyBody.querySelector<HTMLButtonElement>(`tr[data-run-id="${focused}"] .run-toggle`)?.focus();
    } catch (err) {
      if (!destroyed) historyStatus.textContent = `History could not be loaded: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  function historyRows(r: StoredRun): HTMLElement[] {
    const expanded = open.has(r.id);
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'btn-link run-toggle',
        'aria-expanded': String(expanded),
        'aria-controls': `run-${r.id}`,
        title: `run ${r.id}: members and events`,
        onclick: () => toggleRun(r.id),
      },
      h('time', { datetime: r.startedAt }, formatTime(r.startedAt)),
    );
    const row = h(
      'tr',
      { class: 'run-row', 'data-run-id': r.id },
      h('td', {}, toggle),
      h('td', { class: 'trigger' }, r.trigger),
      h('td', { class: 'outcome' }, outcomeBadge(r.outcome)),
      h(
        'td',
        { class: 'num' },
        r.outcome === 'running'
          ? '–'
          : `${r.membersDefragmented}/${r.membersTotal}${r.membersFailed > 0 ? `, ${r.membersFailed} failed` : ''}`,
      ),
      h('td', { class: 'num reclaimed' }, r.outcome === 'running' ? '–' : formatBytes(r.reclaimedBytes)),
      h('td', { class: 'num' }, r.durationMs === null ? 'running' : formatDuration(r.durationMs)),
    );
    if (!expanded) return [row];
    const cell = h('td', { colspan: 6 });
    const d = details.get(r.id);
    fill(cell, d ? runDetail(d) : h('p', { class: 'muted' }, 'Loading…'));
    return [row, h('tr', { class: 'run-detail', id: `run-${r.id}` }, cell)];
  }

  async function toggleRun(id: number): Promise<void> {
    if (open.has(id)) open.delete(id);
    else open.add(id);
    await loadHistory();
    historyBody.querySelector<HTMLButtonElement>(`tr[data-run-id="${id}"] .run-toggle`)?.focus();
    if (open.has(id)) {
      try {
        details.set(id, await api.run(id));
      } catch (err) {
        if (err instanceof ApiError) open.delete(id);
      }
      await loadHistory();
      historyBody.querySelector<HTMLButtonElement>(`tr[data-run-id="${id}"] .run-toggle`)?.focus();
    }
  }

  async function loadStatus(): Promise<void> {
    fill(statusBody, h('p', { class: 'muted' }, 'Reading the records…'));
    try {
      const { members: list } = await api.status(name);
      if (destroyed) return;
      fill(
        statusBody,
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'status' },
            h('caption', { class: 'visually-hidden' }, 'Defragmentation status per member'),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...['member', 'last defrag', 'revision', 'reclaimed then', 'free now', 'frag now', 'by'].map((t, i) =>
                  h('th', { scope: 'col', class: i >= 2 && i <= 5 ? 'num' : null }, t),
                ),
              ),
            ),
            h(
              'tbody',
              {},
              ...[...list]
                .sort(byName)
                .map((m) =>
                  h(
                    'tr',
                    { 'data-member': m.name },
                    h('td', {}, m.name),
                    h(
                      'td',
                      {},
                      m.lastDefrag
                        ? h('time', { datetime: m.lastDefrag.at, title: formatTime(m.lastDefrag.at) }, formatRelative(m.lastDefrag.at))
                        : m.record === 'none'
                          ? 'never (no record)'
                          : m.record,
                    ),
                    h('td', { class: 'num' }, m.lastDefrag?.revision ?? '-'),
                    h('td', { class: 'num' }, formatBytes(m.reclaimedBytes)),
                    h('td', { class: 'num' }, formatBytes(m.dbSizeFree)),
                    h('td', { class: 'num' }, formatPercent(m.fragmentation)),
                    h('td', {}, m.lastDefrag ? `${m.lastDefrag.trigger} by ${m.lastDefrag.by}` : (m.error ?? m.warning ?? '-')),
                  ),
                ),
            ),
          ),
        ),
      );
    } catch (err) {
      if (!destroyed)
        fill(
          statusBody,
          h('p', { class: 'error-line' }, `The status could not be read: ${err instanceof Error ? err.message : String(err)}`),
        );
    }
  }

  const update = (state: AppState) => {
    if (destroyed) return;
    const c = state.clusters?.clusters.find((x) => x.name === name);
    if (state.clusters !== null && !c) {
      destroyed = true;
      chart.destroy();
      notFound.hidden = false;
      notFound.textContent = `No cluster named "${name}" is configured.`;
      fill(root, h('h1', {}, name), notFound, h('p', {}, h('a', { href: '#/' }, 'All clusters')));
      return;
    }
    if (!c) return;
    notFound.hidden = true;
    const next = stateBadge(c.state);
    badge.replaceWith(next);
    badge = next;
    fill(live, alarmsLine(c), unreachableLine(c), progressView(c, state.progress.get(name) ?? null));
    fill(members, memberList(c));
    fill(facts, ...scheduleLines(c));
    actions.update(c, state.clusters?.actions ?? null);
    if (c.observation?.observedAt !== lastObservedAt) {
      lastObservedAt = c.observation?.observedAt ?? null;
      void loadSamples();
    }
    const runKey = c.lastRun ? `${c.lastRun.id}:${c.lastRun.outcome}` : '';
    if (runKey !== lastRunKey) {
      lastRunKey = runKey;
      void loadHistory();
      void loadSamples();
    }
  };

  void loadStatus();
  void loadHistory();
  update(ctx.state);

  return {
    update,
    onEvent(e: DaemonEvent) {
      if (e.cluster !== name) return;
      if (e.event.type === 'run-started' || e.event.type === 'member-finished') void loadHistory();
      if (e.event.type === 'run-finished') {
        void loadHistory();
        void loadSamples();
        void loadStatus();
      }
    },
    destroy() {
      destroyed = true;
      chart.destroy();
    },
  };
}

/** Says so when the chart shows less than the range because the store holds less. */
function since(a: Parameters<typeof visibleRange>[0]): string {
  const shown = visibleRange(a).from * 1000;
  return shown > Date.parse(a.from) + 1000
    ? ` Samples since ${formatTime(new Date(shown).toISOString()).slice(11, 16)} only: the chart starts there.`
    : '';
}

function sessionRange(): string | null {
  try {
    return sessionStorage.getItem('defragd.range');
  } catch {
    return null;
  }
}

/** A run's members and events (GET /runs/:id). */
function runDetail(d: StoredRunDetail): HTMLElement {
  const members = d.report?.members ?? [];
  const box = h('div', { class: 'run-detail-box' });
  if (d.run.message) box.append(h('p', {}, d.run.message));
  box.append(
    h(
      'p',
      { class: 'muted' },
      `Run ${d.run.id} by ${d.run.by}${d.run.compactedRevision !== null ? `, compacted to revision ${d.run.compactedRevision}` : ''}${d.run.disarmed ? ', NOSPACE disarmed' : ''}.`,
    ),
  );
  if (members.length > 0) {
    box.append(
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'run-members' },
          h('caption', {}, 'Members'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['member', 'action', 'before', 'after', 'duration', 'note'].map((t, i) =>
                h('th', { scope: 'col', class: i >= 2 && i <= 4 ? 'num' : null }, t),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            ...members.map((m) =>
              h(
                'tr',
                { 'data-member': m.name },
                h('td', {}, m.name, m.wasLeader ? h('span', { class: 'badge leader' }, 'leader') : null),
                h('td', {}, m.action),
                h('td', { class: 'num' }, m.before ? `${formatBytes(m.before.dbSize)} (${formatBytes(m.before.dbSizeInUse)} in use)` : '-'),
                h('td', { class: 'num' }, m.after ? `${formatBytes(m.after.dbSize)} (${formatBytes(m.after.dbSizeInUse)} in use)` : '-'),
                h('td', { class: 'num' }, formatDuration(m.durationMs)),
                h('td', { class: 'reason' }, m.reason),
              ),
            ),
          ),
        ),
      ),
    );
  }
  if (d.events.length > 0) {
    box.append(
      h('h4', {}, 'Events'),
      h(
        'ol',
        { class: 'events' },
        ...d.events.map((e) => h('li', {}, h('time', { datetime: e.at }, formatTime(e.at).slice(11)), ' ', eventText(e.event))),
      ),
    );
  }
  return box;
}

export function eventText(ev: StoredRunDetail['events'][number]['event']): string {
  switch (ev.type) {
    case 'run-started':
      return `run started: ${
        ev.plan.decisions
          .filter((d) => d.action === 'defragment')
          .map((d) => d.name)
          .join(', ') || 'nothing to defragment'
      }`;
    case 'compaction-started':
      return `compacting to revision ${ev.revision}`;
    case 'compaction-finished':
      return `compacted to revision ${ev.revision} in ${formatDuration(ev.durationMs)}${ev.note ? ` (${ev.note})` : ''}`;
    case 'member-skipped':
      return `${ev.decision.name} skipped: ${ev.reason}`;
    case 'leader-move-started':
      return `moving leadership from ${ev.fromName} to ${ev.toName}`;
    case 'leader-move-finished':
      return `leadership moved in ${formatDuration(ev.durationMs)}`;
    case 'member-started':
      return `${ev.decision.name}: defragmenting (${ev.index} of ${ev.total}, ${formatBytes(ev.before.dbSize)})`;
    case 'member-no-answer':
      return `${ev.name}: no answer (${ev.why}): ${ev.detail}`;
    case 'member-waiting':
      return `${ev.name}: waiting for ${ev.what}`;
    case 'member-finished':
      return `${ev.result.name}: ${ev.result.action}${ev.result.durationMs !== null ? ` in ${formatDuration(ev.result.durationMs)}` : ''}${ev.result.before && ev.result.after ? `, ${formatBytes(ev.result.before.dbSize)} → ${formatBytes(ev.result.after.dbSize)}` : ''}${ev.result.action !== 'defragmented' ? `: ${ev.result.reason}` : ''}`;
    case 'pause':
      return `pause ${formatDuration(ev.ms)}`;
    case 'alarm-disarmed':
      return `alarms disarmed: ${ev.alarms.map((a) => a.alarm).join(', ')}`;
    case 'disarm-skipped':
      return `not disarmed: ${ev.reason}`;
    case 'warning':
      return `warning: ${ev.message}`;
    case 'run-finished':
      return `run finished: ${ev.report.outcome}, reclaimed ${formatBytes(ev.report.reclaimedBytes)}`;
    default:
      return (ev as { type: string }).type;
  }
}
