/**
 * `defragd serve --check-config`: what a valid config means in practice, per
 * cluster: which members it reaches now, and when its next scheduled runs
 * would start. The results are data; the CLI's printer shows them.
 */
import { EtcdClient } from '../etcd/client.js';
import { observeCluster } from '../observe/observe.js';
import type { ScheduleConfig, ServeClusterConfig, ServeConfig } from './config.js';
import { startsThroughWindows, WINDOW_SEARCH_MS } from './schedule.js';
import { messageOf } from '../domain/errors.js';
import { memberName } from '../domain/member-name.js';
import type { UrlAnswer } from '../executor/port.js';

/** How many scheduled starts --check-config shows. */
export const CHECK_NEXT_STARTS = 5;

/** Times are ISO 8601 in the cluster's time zone, with its offset: "2026-11-29T03:00:00+01:00". Jitter not included. */
export type ScheduledStart =
  /** Inside a window (or no windows set): a run starts then. */
  | { at: string; inWindow: true }
  /** Cron times outside every window, each skipped (not queued): from `at` to `last` (the same for one). */
  | { at: string; inWindow: false; last: string };

export interface ClusterCheck {
  name: string;
  endpoints: string[];
  /** Members the cluster lists (MemberList), or the endpoints when none answered. */
  membersTotal: number;
  membersReachable: number;
  /** Names (or endpoints, for members without a name yet) of the members that answered Status. */
  reachable: string[];
  /** Members that did not answer, with why. */
  unreachable: { member: string; error: string }[];
  /** Why the cluster could not be observed at all; null when it could. */
  error: string | null;
  rule: string | null;
  schedule: string | null;
  timezone: string;
  windows: string[];
  /** The next CHECK_NEXT_STARTS starts that run, with the skipped ones between them; empty without a schedule. */
  nextStarts: ScheduledStart[];
  /** Why fewer starts that run are listed (none falls inside the windows within 4 years after); null otherwise. */
  nextStartsEnd: string | null;
  auto: { intervalMs: number; cooldownMs: number } | null;
  /** Each waitForUrl URL's answer now (a run would wait until each is 200); empty without waitForUrl. */
  waitsFor: UrlAnswer[];
}

/**
 * An instant as ISO 8601 with the offset it has in the time zone:
 * isoInZone(new Date('2026-11-29T02:00:00Z'), 'Europe/Berlin') === '2026-11-29T03:00:00+01:00'.
 */
export function isoInZone(at: Date, timezone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '00';
  const wall = `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}`;
  // The wall-clock time read as if it were UTC, minus the instant, is the zone's offset then.
  const offsetMin = Math.round((Date.parse(`${wall}Z`) - Math.floor(at.getTime() / 1_000) * 1_000) / 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  return `${wall}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * The next `count` scheduled starts after `from` that run (inside the windows), and the rows of skipped
 * ones between them (croner, in the cluster's time zone), without jitter; `end` says why fewer are listed.
 *
 * @example nextStarts(cluster.schedule, cluster, 5, new Date())
 */
export function nextStarts(
  schedule: ScheduleConfig,
  zone: Pick<ServeClusterConfig, 'timezone' | 'windows'>,
  count: number,
  from: Date,
): { starts: ScheduledStart[]; end: string | null } {
  const iso = (ms: number) => isoInZone(new Date(ms), zone.timezone);
  const found = startsThroughWindows(schedule.cron, zone.timezone, zone.windows, from.getTime(), count);
  const starts = found.starts.map(
    (s): ScheduledStart => (s.inWindow ? { at: iso(s.atMs), inWindow: true } : { at: iso(s.atMs), inWindow: false, last: iso(s.lastMs) }),
  );
  if (found.runs >= count) return { starts, end: null };
  const years = Math.round(WINDOW_SEARCH_MS / (365.25 * 86_400_000));
  const what = zone.windows.length > 0 ? 'falls inside the windows' : 'comes';
  return { starts, end: `no ${found.runs > 0 ? 'further ' : ''}start ${what} within ${years} years` };
}

/** Observes one cluster once (every member, from MemberList); an unreachable cluster is a result, not an error. */
export async function checkCluster(c: ServeClusterConfig, opts: { now: Date; signal?: AbortSignal | undefined }): Promise<ClusterCheck> {
  const outlook = c.schedule ? nextStarts(c.schedule, c, CHECK_NEXT_STARTS, opts.now) : { starts: [], end: null };
  const base = {
    name: c.name,
    endpoints: [...c.connection.endpoints],
    rule: c.policy.rule ?? null,
    schedule: c.schedule?.cron ?? null,
    timezone: c.timezone,
    windows: c.windows.map((w) => w.text),
    nextStarts: outlook.starts,
    nextStartsEnd: outlook.end,
    auto: c.auto ? { ...c.auto } : null,
  };
  const readiness = c.execute.readiness ?? null;
  const asked = readiness ? readiness.check(opts.signal).then((a) => [...a]) : Promise.resolve([]);
  const client = new EtcdClient(c.connection);
  try {
    const snapshot = await observeCluster(client, {
      cluster: true,
      quotaBytes: c.observe.quotaBytes,
      alarms: false,
      timeoutMs: c.connection.commandTimeoutMs,
      signal: opts.signal,
    });
    return {
      ...base,
      membersTotal: snapshot.members.length,
      membersReachable: snapshot.members.filter((m) => m.reachable).length,
      reachable: snapshot.members.filter((m) => m.reachable).map(memberName),
      unreachable: snapshot.members.filter((m) => !m.reachable).map((m) => ({ member: memberName(m), error: m.error ?? 'did not answer' })),
      error: null,
      waitsFor: await asked,
    };
  } catch (err) {
    return { ...base, membersTotal: 0, membersReachable: 0, reachable: [], unreachable: [], error: messageOf(err), waitsFor: await asked };
  } finally {
    client.close();
  }
}

/** Every cluster at once: a slow or unreachable one does not hold up the others beyond its own deadlines. */
export function checkConfig(config: ServeConfig, opts: { now: Date; signal?: AbortSignal | undefined }): Promise<ClusterCheck[]> {
  return Promise.all(config.clusters.map((c) => checkCluster(c, opts)));
}
