/**
 * The record of each member's last defragmentation, kept in the cluster
 * itself (`<prefix>/members/<memberIdHex>/last-defrag`), so that whoever
 * looks next (another host, `defragd last`, a scheduler after a restart) can
 * tell when a member was last defragmented and by whom.
 *
 * A run writes it as a listener on its own event stream: after each
 * `member-finished` with action `defragmented`, before the next member's turn
 * begins (so the write never queues behind the next member's Defragment). A
 * record that cannot be written never fails the run: it becomes a warning.
 * Under NOSPACE no key can be written, exactly when a run is most useful, so
 * those records are kept and tried once more after the run, when it may have
 * disarmed the alarm.
 */
import { hostname } from 'node:os';
import { DEFAULT_RECORD_PREFIX } from '../domain/defaults.js';
import { etcdReason, UsageError, messageOf } from '../domain/errors.js';
import type { DefragRecord } from '../domain/record.js';
import { DEFRAG_TRIGGERS, type DefragTrigger } from '../domain/trigger.js';
import type { MemberResult, RunReport, Sizes, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { EtcdClient } from '../etcd/client.js';
import { leaderOrHealthyVoter, voters } from '../planner/index.js';
import { memberName } from '../domain/member-name.js';

/** The library's `RunOptions.record`: where, and what to say about who started the run. */
export interface RecordOptions {
  /** Key prefix (default DEFAULT_RECORD_PREFIX, `/defragd`); trailing slashes are dropped. */
  prefix?: string | undefined;
  /** What started the run (default `api`; the CLI says `manual`). */
  trigger?: DefragTrigger | undefined;
  /** Who ran it (default "<hostname>:<pid>"). */
  by?: string | undefined;
}

export interface RecordSettings {
  prefix: string;
  trigger: DefragTrigger;
  by: string;
}

/**
 * Resolves and checks the record options once, before anything is written:
 * UsageError for an empty prefix or an unknown trigger.
 *
 * @example recordSettings({ trigger: 'manual' }) // { prefix: '/defragd', trigger: 'manual', by: 'host:1234' }
 */
export function recordSettings(o: RecordOptions = {}, source = 'record prefix'): RecordSettings {
  const trigger = o.trigger ?? 'api';
  if (!DEFRAG_TRIGGERS.includes(trigger))
    throw new UsageError(`record trigger: unknown trigger "${String(trigger)}" (use ${DEFRAG_TRIGGERS.join(', ')})`);
  return { prefix: recordPrefix(o.prefix ?? DEFAULT_RECORD_PREFIX, source), trigger, by: o.by ?? `${hostname()}:${process.pid}` };
}

/** A prefix without trailing slashes; UsageError naming `source` when empty (an empty prefix would scatter keys at the root). */
export function recordPrefix(prefix: string, source = 'record prefix'): string {
  if (prefix.trim() === '') throw new UsageError(`${source}: the record prefix must not be empty`);
  return prefix.replace(/\/+$/, '');
}

/** @example recordKey('/defragd', '8e9e05c52164694d') // "/defragd/members/8e9e05c52164694d/last-defrag" */
export function recordKey(prefix: string, memberId: string): string {
  return `${prefix}/members/${memberId}/last-defrag`;
}

/** The key range holding every member's record: `<prefix>/members/` up to the next prefix. */
export function recordRange(prefix: string): { key: Buffer; rangeEnd: Buffer } {
  const key = Buffer.from(`${prefix}/members/`);
  const rangeEnd = Buffer.from(key);
  // '/' (0x2f) is the last byte, so incrementing it never carries.
  rangeEnd[rangeEnd.length - 1]! += 1;
  return { key, rangeEnd };
}

/**
 * The record for one member's result; null unless it was defragmented.
 * Pure: the time and who ran it are given.
 */
export function recordValue(result: MemberResult, at: string, s: Pick<RecordSettings, 'trigger' | 'by'>): DefragRecord | null {
  if (result.action !== 'defragmented') return null;
  return {
    at,
    revision: result.revision,
    durationMs: result.durationMs,
    before: result.before,
    after: result.after,
    trigger: s.trigger,
    by: s.by,
  };
}

/**
 * A stored value read back: the record, or why it is not one. Values written
 * by hand or by another version must never crash a reader.
 */
export function parseRecord(text: string): { record: DefragRecord } | { warning: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { warning: `not valid JSON: ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { warning: 'not a JSON object' };
  const o = v as Record<string, unknown>;
  if (typeof o['at'] !== 'string' || Number.isNaN(Date.parse(o['at']))) return { warning: '"at" is not a time' };
  if (typeof o['trigger'] !== 'string' || typeof o['by'] !== 'string') return { warning: '"trigger" or "by" missing' };
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const sizes = (x: unknown): Sizes | null => {
    const s = x as Record<string, unknown> | null;
    return typeof s === 'object' && s !== null && num(s['dbSize']) !== null && num(s['dbSizeInUse']) !== null
      ? { dbSize: s['dbSize'] as number, dbSizeInUse: s['dbSizeInUse'] as number }
      : null;
  };
  return {
    record: {
      at: o['at'],
      revision: num(o['revision']),
      durationMs: num(o['durationMs']),
      before: sizes(o['before']),
      after: sizes(o['after']),
      // A trigger from a newer version is shown as written rather than refused.
      trigger: o['trigger'] as DefragTrigger,
      by: o['by'],
    },
  };
}

/** What a record says was reclaimed: before.dbSize - after.dbSize; null when either is unknown. */
export function reclaimedBy(r: DefragRecord): number | null {
  return r.before && r.after ? r.before.dbSize - r.after.dbSize : null;
}

/**
 * Endpoints to write and read records through, best first: the leader (or a
 * healthy voter) from the snapshot, then every other reachable voter.
 * Learners are left out: they refuse writes and linearizable reads.
 */
export function recordEndpoints(snapshot: ClusterSnapshot): string[] {
  const first = leaderOrHealthyVoter(snapshot);
  const rest = voters(snapshot).filter((m) => m.reachable && m.endpoint);
  return [...new Set([first?.endpoint, ...rest.map((m) => m.endpoint)].filter((e): e is string => !!e))];
}

/** Refusals that every member would give alike: trying the next one is pointless. */
const CLUSTER_WIDE = new Set(['nospace', 'permission-denied', 'auth-failed', 'auth-required', 'invalid-token', 'corrupt']);

/**
 * Calls `fn` on the endpoints in order until one answers. An etcd refusal
 * that every member would give (NOSPACE, permissions) is thrown at once.
 */
export async function onFirstAnswering<T>(endpoints: readonly string[], fn: (endpoint: string) => Promise<T>): Promise<T> {
  let last: unknown = new Error('no member to ask');
  for (const ep of endpoints) {
    try {
      return await fn(ep);
    } catch (err) {
      last = err;
      if (CLUSTER_WIDE.has(etcdReason(err) ?? '')) throw err;
    }
  }
  throw last;
}

export interface RecordWriter {
  /** Writes the record of a result if it was defragmented; resolves with warnings (never rejects). */
  record(result: MemberResult): Promise<string[]>;
  /** Tries the records NOSPACE refused once more; resolves with warnings for those still unwritten. */
  retry(): Promise<string[]>;
}

/**
 * Writes records through the client, to the members of `snapshot`. Each put
 * has the client's usual deadline and no abort signal: a member that was
 * defragmented before an interrupt still gets its record.
 */
export function recordWriter(
  client: EtcdClient,
  snapshot: ClusterSnapshot,
  s: RecordSettings,
  now: () => Date = () => new Date(),
): RecordWriter {
  const endpoints = recordEndpoints(snapshot);
  const pending: { name: string; key: string; value: string }[] = [];
  const put = (key: string, value: string) => onFirstAnswering(endpoints, (ep) => client.member(ep).put(key, value));
  const warning = (name: string, key: string, err: unknown) => `${name}: could not record its defragmentation at ${key}: ${messageOf(err)}`;
  return {
    async record(result) {
      const value = recordValue(result, now().toISOString(), s);
      if (value === null) return [];
      const key = recordKey(s.prefix, result.memberId);
      const name = memberName({ name: result.name, memberId: result.memberId });
      try {
        await put(key, JSON.stringify(value));
        return [];
      } catch (err) {
        if (etcdReason(err) === 'nospace') {
          pending.push({ name, key, value: JSON.stringify(value) });
          return [];
        }
        return [warning(name, key, err)];
      }
    },
    async retry() {
      const warnings: string[] = [];
      for (const p of pending.splice(0)) {
        await put(p.key, p.value).catch((err: unknown) => warnings.push(warning(p.name, p.key, err)));
      }
      return warnings;
    },
  };
}

/**
 * The run's event stream with the records written: each defragmented
 * member's record right after its `member-finished` (a failed write follows
 * it as a `warning` event), and the records NOSPACE refused tried again
 * once execution (disarm included) has finished, before `run-finished`.
 * Warnings also go into the final report.
 */
export async function* recording(events: AsyncGenerator<StepEvent, RunReport>, writer: RecordWriter): AsyncGenerator<StepEvent, RunReport> {
  const warnings: string[] = [];
  for (;;) {
    const next = await events.next();
    if (next.done) return warnings.length > 0 ? { ...next.value, warnings: [...next.value.warnings, ...warnings] } : next.value;
    const e = next.value;
    if (e.type === 'run-finished') {
      const late = await writer.retry();
      for (const message of late) yield { type: 'warning', message };
      warnings.push(...late);
      yield warnings.length > 0 ? { type: 'run-finished', report: { ...e.report, warnings: [...e.report.warnings, ...warnings] } } : e;
      continue;
    }
    yield e;
    if (e.type === 'member-finished') {
      const failed = await writer.record(e.result);
      for (const message of failed) yield { type: 'warning', message };
      warnings.push(...failed);
    }
  }
}
