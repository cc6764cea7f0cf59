/**
 * The dashboard of `defragd serve`: reads only the daemon's JSON API and its
 * event stream. Routes are in the hash (#/, #/clusters/NAME), so the daemon
 * serves one page. Live: the clusters are polled every few seconds (new
 * observations), runs come as they happen from /api/v1/events (EventSource
 * reconnects by itself).
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { api, type DaemonEvent } from './api.js';
import { clusterPage } from './cluster.js';
import { fill, h } from './dom.js';
import { formatDuration } from './format.js';
import { overview } from './overview.js';
import { applyEvent } from './progress.js';
import type { AppContext, AppState, View } from './view.js';

const POLL_MS = 5_000;
/** A run's progress with no event for this long, while the daemon says no run is going on, is over. */
const STALE_PROGRESS_MS = 10_000;

const state: AppState = { clusters: null, error: null, progress: new Map() };
const main = document.getElementById('main') as HTMLElement;
const crumbsEl = document.getElementById('crumbs') as HTMLElement;
const liveEl = document.getElementById('live') as HTMLElement;
let view: View | null = null;
/** Runs whose stored events were asked for (page opened mid-run). */
const replayed = new Set<number>();

const ctx: AppContext = {
  state,
  refresh: () => poll(),
  crumbs: (...items) => {
    fill(
      crumbsEl,
      ...items.flatMap((it) => [
        h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'),
        typeof it === 'string' ? h('span', {}, it) : h('a', { href: it.href, 'aria-current': 'page' }, it.text),
      ]),
    );
  },
};

function route(): void {
  view?.destroy();
  const m = /^#\/clusters\/([^/]+)\/?$/.exec(location.hash);
  view = m ? clusterPage(main, decodeURIComponent(m[1] as string), ctx) : overview(main, ctx);
  // A new page: its heading is where a screen reader and the keyboard start.
  if (document.activeElement && document.activeElement !== document.body) main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

async function poll(): Promise<void> {
  try {
    state.clusters = await api.clusters();
    state.error = null;
    for (const c of state.clusters.clusters) {
      // A poll answered before the run started must not drop what the events built; a stream that missed the end must not keep it forever.
      const p = state.progress.get(c.name);
      if (c.state !== 'running' && p && Date.now() - p.updatedAtMs > STALE_PROGRESS_MS) state.progress.delete(c.name);
      else if (c.runningRunId !== null && !state.progress.has(c.name) && !replayed.has(c.runningRunId)) void replay(c.name, c.runningRunId);
    }
  } catch (err) {
    state.error = err instanceof Error ? err.message : String(err);
  }
  view?.update(state);
}

/** The page opened during a run: its events so far, from the store. */
async function replay(cluster: string, runId: number): Promise<void> {
  replayed.add(runId);
  try {
    const d = await api.run(runId);
    let p = state.progress.get(cluster) ?? null;
    if (p !== null) return; // live events got there first
    for (const e of d.events) p = applyEvent(p, { cluster, runId, at: e.at, event: e.event });
    if (p) state.progress.set(cluster, p);
    view?.update(state);
  } catch {
    // the run view falls back to the cluster's currentMember
  }
}

function listen(): void {
  const es = new EventSource(api.eventsUrl());
  es.addEventListener('open', () => {
    liveEl.textContent = 'live';
    liveEl.className = 'live live-on';
  });
  es.addEventListener('error', () => {
    liveEl.textContent = 'reconnecting…';
    liveEl.className = 'live live-off';
  });
  es.addEventListener('step', (msg) => {
    let e: DaemonEvent;
    try {
      e = JSON.parse((msg as MessageEvent<string>).data) as DaemonEvent;
    } catch {
      return;
    }
    const p = applyEvent(state.progress.get(e.cluster) ?? null, e);
    if (p) state.progress.set(e.cluster, p);
    else state.progress.delete(e.cluster);
    const c = state.clusters?.clusters.find((x) => x.name === e.cluster);
    if (c && e.event.type === 'run-started') c.state = 'running';
    view?.update(state);
    view?.onEvent?.(e, state);
    if (e.event.type === 'run-started' || e.event.type === 'run-finished') void poll();
  });
}

/** Live elapsed times: every element with data-since (epoch ms). */
function tick(): void {
  const now = Date.now();
  for (const el of document.querySelectorAll<HTMLElement>('[data-since]'))
    el.textContent = formatDuration(Math.max(0, now - Number(el.dataset['since'])));
}

window.addEventListener('hashchange', route);
route();
void poll();
listen();
setInterval(() => void poll(), POLL_MS);
setInterval(tick, 500);
