/**
 * The pure half of `make demo` (scripts/demo.mts does the processes): the
 * daemon's demo config, and the short lines the demo prints while the daemon
 * runs, made from its JSON log lines and its API's answers. Kept apart so the
 * wording is unit-tested and the script stays about processes and cleanup.
 */
import type { ClusterJson } from '../src/serve/cluster-json.js';
import type { StoredRunDetail } from '../src/store/types.js';

const MiB = 1024 * 1024;

/** What the demo's daemon config is made of. */
export interface DemoConfig {
  /** host:port; port 0 lets the daemon pick a free one. */
  listen: string;
  endpoints: string[];
  /** File names, relative to the config file's directory. */
  store: string;
  apiTokenFile: string;
  rule: string;
  schedule: string;
  autoInterval: string;
  cooldown: string;
}

/** The demo's defaults: auto mode that fires within about a minute under the churn workload. */
export const DEMO_CONFIG_DEFAULTS = {
  store: 'defragd.sqlite',
  apiTokenFile: 'api-token',
  rule: 'dbSizeFree > 16*MiB',
  schedule: '*/2 * * * *',
  autoInterval: '5s',
  cooldown: '1m',
} as const;

/** The config file `defragd serve` reads in the demo, with comments for whoever opens it. */
export function demoConfigYaml(c: DemoConfig): string {
  return [
    '# Written by make demo; see examples/defragd.yaml for every key.',
    `listen: ${c.listen}`,
    `store: ./${c.store}                # the run history (SQLite)`,
    `apiTokenFile: ./${c.apiTokenFile}  # bearer token for POST /api/v1/clusters/demo/runs`,
    'clusters:',
    '  - name: demo',
    `    endpoints: [${c.endpoints.join(', ')}]`,
    `    rule: "${c.rule}"     # which members a run defragments`,
    `    auto: { interval: ${c.autoInterval}, cooldown: ${c.cooldown} }  # observe every ${c.autoInterval}; run when the rule holds, at most once per ${c.cooldown}`,
    `    schedule: "${c.schedule}"         # and a cron schedule (UTC)`,
    '',
  ].join('\n');
}

const mib = (bytes: number | null | undefined): string => (bytes == null ? '?' : `${(bytes / MiB).toFixed(1)} MiB`);
const pct = (f: number | null | undefined): string => (f == null ? '?' : `${Math.round(f * 100)}%`);
const secs = (ms: number | null | undefined): string => (ms == null ? '?' : `${(ms / 1000).toFixed(1)} s`);

/** One line of the daemon's JSON log (pino), as far as the demo reads it. */
export interface DaemonLogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** Parses a log line; null for anything that is not a pino JSON object. */
export function parseLogLine(line: string): DaemonLogLine | null {
  if (!line.startsWith('{')) return null;
  try {
    const o = JSON.parse(line) as Partial<DaemonLogLine>;
    return typeof o.level === 'number' && typeof o.msg === 'string' ? (o as DaemonLogLine) : null;
  } catch {
    return null;
  }
}

const PINO_WARN = 40;

/**
 * What the demo prints for a daemon log line: `say` is a line to print, null
 * is nothing (routine lines stay in the log file). A finished run also gives
 * its `runId`: the caller prints {@link runLine} of the run instead when the
 * API can still answer (the members are not in the log).
 */
export function narrateLog(l: DaemonLogLine): { say: string; runId?: number } | null {
  const s = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  switch (l.msg) {
    case 'starting a run':
      return { say: `▶ ${s(l['trigger'])} run starting: ${s(l['reason'])}` };
    case 'run finished': {
      const outcome = s(l['outcome']);
      const mark = outcome === 'success' || outcome === 'nothing-to-do' ? '✔' : '✘';
      const reclaimed = typeof l['reclaimedBytes'] === 'number' && l['reclaimedBytes'] > 0 ? `; reclaimed ${mib(l['reclaimedBytes'])}` : '';
      const say = `${mark} run ${s(l['runId'])} (${s(l['trigger'])}) ${outcome}${l['message'] ? `: ${s(l['message'])}` : ''}${reclaimed}`;
      return typeof l['runId'] === 'number' ? { say, runId: l['runId'] } : { say };
    }
    case 'run not started':
      return { say: `${s(l['trigger'])} run not started: ${s(l['reason'] ?? l['outcome'])}` };
    case 'scheduled start skipped':
      return { say: `scheduled start skipped: ${s(l['reason'])}` };
    case 'a defragmentation by someone else noticed':
      return { say: `noticed a defragmentation of ${s(l['member'])} by ${s(l['by'])}` };
    case 'stopping: no new runs; a run in progress finishes its current member':
      return { say: 'daemon stopping (a run in progress finishes its current member)' };
    case 'stopped':
      return { say: 'daemon stopped' };
    default:
      if (l.level >= PINO_WARN) {
        const why = l['err'] ?? l['message'] ?? l['reason'];
        return {
          say: `daemon ${l.level >= 50 ? 'error' : 'warning'}: ${l.msg}${why === undefined ? '' : ` (${typeof why === 'string' ? why : JSON.stringify(why)})`}`,
        };
      }
      return null;
  }
}

/**
 * One line for a finished run, e.g.
 * `✔ run 2 (auto) success: m2 41.2 → 12.3 MiB in 0.8 s, m1 (leader: moved to m2 first) ... ; reclaimed 86.1 MiB in 3.1 s`.
 */
export function runLine(d: StoredRunDetail): string {
  const r = d.run;
  const mark = r.outcome === 'success' || r.outcome === 'nothing-to-do' ? '✔' : '✘';
  const head = `${mark} run ${r.id} (${r.trigger}) ${r.outcome}`;
  const done = (d.report?.members ?? []).filter((m) => m.action === 'defragmented');
  if (done.length === 0) {
    const members = d.report?.members ?? [];
    const ruleFalse = members.length > 0 && members.every((m) => m.reason.startsWith('rule is false'));
    const why = r.message ?? (ruleFalse ? 'the rule is false for every member' : members.map((m) => `${m.name}: ${m.reason}`).join('; '));
    return `${head}${why ? `: ${why}` : ''}`;
  }
  const members = done.map(
    (m) =>
      `${m.name}${m.wasLeader ? ' (was leader: moved first)' : ''} ${mib(m.before?.dbSize).replace(' MiB', '')} → ${mib(m.after?.dbSize)}`,
  );
  return `${head}: ${members.join(', ')}; reclaimed ${mib(r.reclaimedBytes)} in ${secs(r.durationMs)}`;
}

/**
 * The cluster's figures as the daemon last observed them, one line:
 * `m1* 52.1 MiB, free 20.3 MiB (39%) · m2 ... · state idle`.
 */
export function sizesLine(c: ClusterJson): string {
  if (c.observation === null) return `cluster ${c.name}: not observed yet${c.observeError ? ` (${c.observeError})` : ''}`;
  const members = [...c.observation.members]
    .sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''))
    .map((m) =>
      m.error
        ? `${m.name ?? m.endpoint} unreachable`
        : `${m.name}${m.isLeader ? '*' : ''} ${mib(m.dbSize)}, free ${mib(m.dbSizeFree)} (${pct(m.fragmentation)})`,
    );
  return `${members.join(' · ')} · ${c.state}`;
}
