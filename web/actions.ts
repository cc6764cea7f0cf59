/**
 * The cluster page's actions: "Dry run" (the plan the daemon would execute
 * now) and "Defragment now" (after a confirmation), both with the bearer
 * token entered once and kept in this tab's sessionStorage. Without a token
 * configured in the daemon both are disabled, with the daemon's reason.
 */
import { ApiError, api, type ActionsJson, type ClusterJson, type RunReport } from './api.js';
import { fill, h } from './dom.js';
import { formatBytes, formatDuration } from './format.js';

const TOKEN_KEY = 'defragd.apiToken';

const storedToken = (): string | null => {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
};
const setToken = (t: string | null) => {
  try {
    if (t === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, t);
  } catch {
    // storage refused (private mode): the token lasts until the page is left
  }
};

export interface ActionsHandle {
  el: HTMLElement;
  update(c: ClusterJson, actions: ActionsJson | null): void;
}

export function createActions(name: string, onStarted: () => void): ActionsHandle {
  let token = storedToken();
  let actions: ActionsJson | null = null;
  let cluster: ClusterJson | null = null;
  let busy = false;

  const reason = h('p', { class: 'actions-reason', id: 'actions-reason' });
  const dry = h('button', { type: 'button', class: 'btn', 'aria-describedby': 'actions-reason' }, 'Dry run');
  const now = h('button', { type: 'button', class: 'btn btn-danger', 'aria-describedby': 'actions-reason' }, 'Defragment now');
  const result = h('div', { class: 'action-result', role: 'status', 'aria-live': 'polite' });
  const tokenInput = h('input', {
    type: 'password',
    id: 'api-token',
    name: 'api-token',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'bearer token',
  });
  const tokenForm = h(
    'form',
    { class: 'token-form' },
    h('label', { for: 'api-token' }, 'API token'),
    tokenInput,
    h('button', { type: 'submit', class: 'btn' }, 'Use token'),
  );
  const tokenSet = h(
    'p',
    { class: 'token-set' },
    'API token set for this tab. ',
    h('button', { type: 'button', class: 'btn-link', onclick: () => forget() }, 'Forget it'),
  );
  const tokenRow = h('div', { class: 'token-row' });
  const confirmText = h('p', {});
  const dialog = h(
    'dialog',
    { class: 'confirm', 'aria-labelledby': 'confirm-title' },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: 'confirm-title' }, `Defragment ${name} now?`),
      confirmText,
      h(
        'div',
        { class: 'dialog-buttons' },
        h('button', { value: 'cancel', class: 'btn', autofocus: true }, 'Cancel'),
        h('button', { value: 'go', class: 'btn btn-danger' }, 'Defragment'),
      ),
    ),
  );
  const el = h(
    'section',
    { class: 'panel actions', 'aria-labelledby': 'actions-title' },
    h('h2', { id: 'actions-title' }, 'Actions'),
    tokenRow,
    h('div', { class: 'buttons' }, dry, now),
    reason,
    result,
    dialog,
  );

  tokenForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = tokenInput.value.trim();
    if (t === '') return;
    token = t;
    setToken(t);
    tokenInput.value = '';
    render();
    dry.focus();
  });

  const forget = () => {
    token = null;
    setToken(null);
    render();
    tokenInput.focus();
  };

  const failed = (err: unknown) => {
    if (err instanceof ApiError && err.status === 401) {
      fill(result, h('p', { class: 'error-line', role: 'alert' }, `The token was refused (401): ${err.message}. Enter it again.`));
      forget();
    } else {
      fill(
        result,
        h(
          'p',
          { class: 'error-line', role: 'alert' },
          err instanceof ApiError && err.status !== 0 ? `${err.status}: ${err.message}` : String(err instanceof Error ? err.message : err),
        ),
      );
    }
  };

  dry.addEventListener('click', async () => {
    if (!token) return;
    busy = true;
    render();
    fill(result, h('p', {}, 'Planning…'));
    try {
      const answer = await api.startRun(name, true, token);
      fill(result, answer.dryRun ? planView(answer.report) : h('p', {}, `Run ${answer.runId} started.`));
    } catch (err) {
      failed(err);
    } finally {
      busy = false;
      render();
    }
  });

  now.addEventListener('click', () => {
    if (!token) return;
    const members = cluster?.observation?.members.length ?? 0;
    confirmText.textContent = `Each member of ${name} (${members} members) is defragmented in turn when the rule holds for it, followers first, the leader last after handing over its leadership. A member's clients stall while it is defragmented.`;
    dialog.returnValue = '';
    dialog.showModal();
  });

  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'go' || !token) {
      now.focus();
      return;
    }
    busy = true;
    render();
    try {
      const answer = await api.startRun(name, false, token);
      fill(
        result,
        h(
          'p',
          { class: 'ok-line' },
          answer.runId === null ? 'Run started (the store could not record it: see /readyz).' : `Run ${answer.runId} started.`,
        ),
      );
      onStarted();
    } catch (err) {
      failed(err);
    } finally {
      busy = false;
      render();
      now.focus();
    }
  });

  function render(): void {
    const off = actions === null ? 'loading…' : actions.enabled ? null : (actions.reason ?? 'actions are disabled');
    if (off) {
      tokenRow.replaceChildren();
      dry.disabled = true;
      now.disabled = true;
      reason.textContent = `Disabled: ${off}.`;
      return;
    }
    tokenRow.replaceChildren(token ? tokenSet : tokenForm);
    const running = cluster?.state === 'running';
    dry.disabled = !token || busy;
    now.disabled = !token || busy || running;
    reason.textContent = !token
      ? "Enter the API token (the daemon's apiTokenFile) to plan or start a run."
      : running
        ? 'A run is in progress.'
        : '';
  }

  return {
    el,
    update(c, a) {
      cluster = c;
      actions = a;
      render();
    },
  };
}

/** The plan of a dry run: per member in order, what would happen and why. */
export function planView(report: RunReport | null): HTMLElement {
  if (report === null) return h('p', {}, 'The daemon answered without a plan.');
  const plan = report.plan;
  const box = h('div', { class: 'plan' }, h('h3', {}, 'Dry run: the plan now'));
  if (plan === null) {
    box.append(h('p', { class: 'error-line' }, report.message ?? `No plan (${report.outcome}).`));
    return box;
  }
  if (plan.refusal) box.append(h('p', { class: 'error-line' }, `Refused: ${plan.refusal.reason}`));
  const names = new Map(plan.decisions.map((d) => [d.memberId, d.name]));
  let n = 0;
  const rows = plan.decisions.map((d) =>
    h(
      'tr',
      { 'data-member': d.name, class: `decision decision-${d.action}` },
      h('td', { class: 'num' }, d.action === 'defragment' ? String(++n) : '–'),
      h(
        'td',
        {},
        d.name,
        d.isLeader ? h('span', { class: 'badge leader' }, 'leader') : null,
        d.isLearner ? h('span', { class: 'badge learner' }, 'learner') : null,
      ),
      h('td', { class: 'action' }, d.action),
      h('td', {}, d.moveLeaderTo ? `leadership to ${names.get(d.moveLeaderTo) ?? d.moveLeaderTo} first` : '–'),
      h('td', {}, d.ruleResult === null ? '–' : String(d.ruleResult)),
      h('td', { class: 'num' }, formatBytes(d.dbSizeFree)),
      h('td', { class: 'num' }, formatDuration(d.timeoutMs)),
      h('td', { class: 'reason' }, d.reason),
    ),
  );
  box.append(
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'plan-table' },
        h('caption', { class: 'visually-hidden' }, 'Plan per member, in execution order'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['#', 'member', 'action', 'leader hand-over', 'rule', 'free', 'deadline', 'reason'].map((t, i) =>
              h('th', { scope: 'col', class: i === 0 || i === 5 || i === 6 ? 'num' : null }, t),
            ),
          ),
        ),
        h('tbody', {}, ...rows),
      ),
    ),
    h(
      'p',
      { class: 'muted' },
      `Would reclaim about ${formatBytes(plan.expectedReclaimBytes)}${plan.compaction ? `, after compacting to revision ${plan.compaction.revision}` : ''}${plan.disarmNospace ? '; NOSPACE disarmed afterwards if safe' : ''}.`,
    ),
    ...[...plan.warnings, ...report.warnings].map((w) => h('p', { class: 'warning-line' }, `Warning: ${w}`)),
  );
  return box;
}
