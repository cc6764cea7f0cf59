/** Pieces both pages show: a cluster's members with their bars, its run in progress, its last and next run. */
import type { ClusterJson, StoredRun } from './api.js';
import { h } from './dom.js';
import { formatBytes, formatDuration, formatPercent, formatRelative, formatTime } from './format.js';
import type { RunProgress } from './progress.js';

type Member = NonNullable<ClusterJson['observation']>['members'][number];

export const OUTCOME_LABEL: Record<string, string> = {
  success: 'success',
  'nothing-to-do': 'nothing to do',
  failed: 'failed',
  refused: 'refused',
  interrupted: 'interrupted',
  'dry-run': 'dry run',
  running: 'running',
};

/** Members by name (then id), as every list of the dashboard shows them. */
export function byName(a: { name: string; memberId?: string }, b: { name: string; memberId?: string }): number {
  return a.name < b.name
    ? -1
    : a.name > b.name
      ? 1
      : (a.memberId ?? '') < (b.memberId ?? '')
        ? -1
        : (a.memberId ?? '') > (b.memberId ?? '')
          ? 1
          : 0;
}

export function stateBadge(state: string): HTMLElement {
  return h('span', { class: `badge state state-${state}`, title: `state: ${state}` }, state);
}

export function outcomeBadge(outcome: string): HTMLElement {
  return h('span', { class: `badge outcome outcome-${outcome}` }, OUTCOME_LABEL[outcome] ?? outcome);
}

/** One member: name and marks, its dbSize bar (in use, free) against its quota, and the figures as `defragd status` prints them. */
export function memberItem(m: Member): HTMLElement {
  const marks = [
    m.isLeader ? h('span', { class: 'badge leader', title: 'this member leads the cluster' }, 'leader') : null,
    m.isLearner ? h('span', { class: 'badge learner', title: 'a learner: not defragmented' }, 'learner') : null,
    ...m.alarms.map((a) => h('span', { class: 'badge alarm', title: `alarm ${a} raised by this member` }, a)),
    m.error !== null && m.dbSize === null ? h('span', { class: 'badge down' }, 'no answer') : null,
  ];
  const li = h(
    'li',
    { class: 'member', 'data-member': m.name, 'data-member-id': m.memberId },
    h('div', { class: 'member-head' }, h('span', { class: 'member-name' }, m.name || m.memberId), ...marks),
  );
  if (m.dbSize !== null && m.dbSizeInUse !== null && m.quota !== null) {
    const pct = (n: number) => `${Math.min(100, Math.max(0, (n / (m.quota as number)) * 100))}%`;
    const used = h('span', { class: 'bar-used' });
    const free = h('span', { class: 'bar-free' });
    // Widths through the CSSOM: allowed by the page's CSP (no inline style attributes).
    used.style.width = pct(m.dbSizeInUse);
    free.style.width = pct(m.dbSize - m.dbSizeInUse);
    const label = `dbSize ${formatBytes(m.dbSize)} of its ${formatBytes(m.quota)} quota: ${formatBytes(m.dbSizeInUse)} in use, ${formatBytes(m.dbSizeFree)} free`;
    li.append(
      h(
        'div',
        { class: `bar${(m.quotaUsage ?? 0) >= 0.8 ? ' bar-high' : ''}`, role: 'img', 'aria-label': label, title: label },
        used,
        free,
      ),
      h(
        'div',
        { class: 'figures' },
        fig('size', 'db-size', formatBytes(m.dbSize)),
        fig('in use', 'in-use', formatBytes(m.dbSizeInUse)),
        fig('free', 'free', formatBytes(m.dbSizeFree), `frag ${formatPercent(m.fragmentation)}`, 'frag'),
        fig('quota', 'quota', formatBytes(m.quota), formatPercent(m.quotaUsage), 'quota-use'),
      ),
    );
  }
  if (m.error !== null) li.append(h('p', { class: 'member-error' }, m.error));
  return li;
}

function fig(label: string, cls: string, value: string, extra?: string, extraCls?: string): HTMLElement {
  return h(
    'span',
    { class: 'fig' },
    h('span', { class: 'fig-label' }, label),
    ' ',
    h('span', { class: `fig-value ${cls}` }, value),
    extra ? h('span', { class: `fig-extra ${extraCls ?? ''}` }, ` (${extra})`) : null,
  );
}

export function memberList(c: ClusterJson): HTMLElement {
  const members = [...(c.observation?.members ?? [])].sort(byName);
  if (members.length === 0) return h('p', { class: 'empty' }, c.observeError ? 'No member answered.' : 'Not observed yet.');
  const list = h('ul', { class: 'members', 'aria-label': `members of ${c.name}` }, ...members.map(memberItem));
  const key = h(
    'p',
    { class: 'bar-key', 'aria-hidden': 'true' },
    h('span', {}, h('span', { class: 'key key-used' }), 'in use'),
    h('span', {}, h('span', { class: 'key key-free' }), 'free (a defrag reclaims it)'),
    h('span', {}, 'full bar: the quota'),
  );
  const box = h('div', {}, list, key);
  return box;
}

export function alarmsLine(c: ClusterJson): HTMLElement | null {
  const alarms = c.observation?.alarms ?? [];
  if (alarms.length === 0) return null;
  const names = (id: string) => c.observation?.members.find((m) => m.memberId === id)?.name ?? id;
  return h('p', { class: 'alarm-line', role: 'alert' }, `Alarm: ${alarms.map((a) => `${a.alarm} on ${names(a.memberId)}`).join(', ')}`);
}

export function unreachableLine(c: ClusterJson): HTMLElement | null {
  return c.observeError ? h('p', { class: 'error-line' }, `Unreachable: ${c.observeError}`) : null;
}

/** The run in progress: the member being defragmented with its live elapsed time (data-since), and the order of the rest. */
export function progressView(c: ClusterJson, p: RunProgress | null): HTMLElement | null {
  if (c.state !== 'running' && p === null) return null;
  const current = p?.current ?? (c.currentMember ? { ...c.currentMember, startedAtMs: Date.parse(c.currentMember.startedAt) } : null);
  const head = current
    ? h(
        'p',
        { class: 'now' },
        'Defragmenting ',
        h('strong', { class: 'current-member' }, current.name),
        ' for ',
        h('span', { class: 'elapsed', 'data-since': current.startedAtMs }, formatDuration(Date.now() - current.startedAtMs)),
      )
    : h('p', { class: 'now' }, p?.note ?? 'Run starting…');
  const order = p?.order ?? [];
  const marks: Record<string, string> = { pending: '○', running: '▶', defragmented: '✓', skipped: '–', failed: '✗' };
  return h(
    'div',
    { class: 'progress', role: 'status', 'aria-live': 'polite', 'data-run-id': p?.runId ?? c.runningRunId ?? '' },
    h('h3', {}, `Run ${p?.runId ?? c.runningRunId ?? ''} in progress`),
    head,
    current && p?.note ? h('p', { class: 'note' }, p.note) : null,
    order.length > 0
      ? h(
          'ol',
          { class: 'order', 'aria-label': 'order of the run' },
          ...order.map((m) =>
            h(
              'li',
              { class: `step step-${m.state}`, 'data-member': m.name },
              h('span', { class: 'mark', 'aria-hidden': 'true' }, marks[m.state] ?? ''),
              ` ${m.name}${m.isLeader ? ' (leader)' : ''} `,
              h('span', { class: 'step-state' }, m.state),
            ),
          ),
        )
      : null,
  );
}

export function runSummary(r: StoredRun | null): HTMLElement {
  if (r === null) return h('span', { class: 'muted' }, 'none yet');
  return h(
    'span',
    { class: 'last-run', 'data-run-id': r.id },
    outcomeBadge(r.outcome),
    ` ${r.trigger}, `,
    r.outcome === 'running' ? null : h('span', { class: 'reclaimed' }, `reclaimed ${formatBytes(r.reclaimedBytes)}`),
    r.outcome === 'running' ? 'started ' : ', ',
    h('time', { datetime: r.startedAt, title: formatTime(r.startedAt) }, formatRelative(r.startedAt)),
  );
}

export function scheduleLines(c: ClusterJson): HTMLElement[] {
  const next = c.nextRun
    ? h(
        'span',
        {},
        h('time', { datetime: c.nextRun.at, title: c.nextRun.at }, formatTime(c.nextRun.at)),
        ` (${formatRelative(c.nextRun.at)})`,
      )
    : h('span', { class: 'muted' }, c.schedule ? 'none drawn yet' : 'no schedule');
  const rows = [
    h('div', {}, h('dt', {}, 'Last run'), h('dd', {}, runSummary(c.lastRun))),
    h('div', {}, h('dt', {}, 'Next run'), h('dd', { class: 'next-run' }, next)),
  ];
  if (c.schedule) rows.push(h('div', {}, h('dt', {}, 'Schedule'), h('dd', {}, h('code', {}, c.schedule), ` ${c.timezone}`)));
  rows.push(h('div', {}, h('dt', {}, 'Window'), h('dd', {}, c.windows.length > 0 ? c.windows.join(', ') : 'any time')));
  return rows;
}
