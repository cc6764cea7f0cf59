/** The overview (#/): one card per cluster. */
import { h, fill } from './dom.js';
import { alarmsLine, memberList, progressView, scheduleLines, stateBadge, unreachableLine } from './parts.js';
import type { AppContext, AppState, View } from './view.js';

export function overview(root: HTMLElement, ctx: AppContext): View {
  ctx.crumbs();
  document.title = 'defragd';
  const heading = h('h1', { class: 'visually-hidden' }, 'Clusters');
  const status = h('p', { class: 'page-status', role: 'status' });
  const grid = h('div', { class: 'cards' });
  fill(root, heading, status, grid);
  // One card element per cluster, kept across updates: its heading link keeps focus; its body is redrawn.
  const cards = new Map<string, { card: HTMLElement; badge: HTMLElement; body: HTMLElement }>();

  const update = (state: AppState) => {
    status.textContent = state.error ? `The daemon did not answer: ${state.error}` : state.clusters === null ? 'Loading…' : '';
    const list = state.clusters?.clusters ?? [];
    if (state.clusters !== null && list.length === 0) status.textContent = 'No clusters are configured.';
    for (const name of [...cards.keys()]) {
      if (!list.some((c) => c.name === name)) {
        cards.get(name)?.card.remove();
        cards.delete(name);
      }
    }
    list.forEach((c, i) => {
      let entry = cards.get(c.name);
      if (!entry) {
        const badge = h('span');
        const body = h('div', { class: 'card-body' });
        const id = `card-${c.name}`;
        const card = h(
          'section',
          { class: 'card', 'data-cluster': c.name, 'aria-labelledby': id },
          h('header', { class: 'card-head' }, h('h2', { id }, h('a', { href: `#/clusters/${encodeURIComponent(c.name)}` }, c.name)), badge),
          body,
        );
        entry = { card, badge, body };
        cards.set(c.name, entry);
      }
      if (grid.children[i] !== entry.card) grid.insertBefore(entry.card, grid.children[i] ?? null);
      entry.badge.replaceWith((entry.badge = stateBadge(c.state)));
      fill(
        entry.body,
        alarmsLine(c),
        unreachableLine(c),
        progressView(c, state.progress.get(c.name) ?? null),
        memberList(c),
        h('dl', { class: 'facts' }, ...scheduleLines(c)),
      );
    });
  };
  update(ctx.state);
  return { update, destroy: () => undefined };
}
