/**
 * Each member's defragmentation status: when defragd last defragmented it
 * (the record a run leaves in the cluster, see record.ts), what that
 * reclaimed, and how much free space has accumulated since. An observation:
 * nothing is written. `defragd last` prints it; the library returns it.
 */
import { DEFAULT_RECORD_PREFIX } from '../domain/defaults.js';
import type { DefragRecord, MemberDefragStatus } from '../domain/record.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { EtcdClient, type KeyValue } from '../etcd/client.js';
import type { ConnectionOptions } from '../etcd/options.js';
import { observeCluster } from '../observe/observe.js';
import { onFirstAnswering, parseRecord, reclaimedBy, recordEndpoints, recordKey, recordPrefix, recordRange } from './record.js';
import { messageOf } from '../domain/errors.js';

export interface DefragmentationStatusOptions {
  /** Every member from MemberList (etcdctl --cluster); otherwise only the endpoints given. */
  cluster?: boolean | undefined;
  /** Where runs recorded (default /defragd). */
  recordPrefix?: string | undefined;
  /** Deadline of each call; the client's command timeout when absent. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Clock for the ages, for tests. */
  now?: (() => Date) | undefined;
}

/**
 * Per member: its last recorded defragmentation (null when none is known),
 * how long ago, what it reclaimed, and the free space and fragmentation now.
 * Given connection options it opens and closes its own client; given a
 * client, the caller owns it. A stored value that is not a record comes back
 * as `record: 'invalid'` with a `warning`, never as an exception.
 *
 * @example
 * import { defragmentationStatus } from 'defragd';
 * for (const m of await defragmentationStatus({ endpoints: ['127.0.0.1:2379'], cluster: true })) {
 *   console.log(m.name, m.lastDefrag?.at ?? 'never', m.dbSizeFree);
 * }
 */
export async function defragmentationStatus(
  target: (ConnectionOptions & { cluster?: boolean | undefined; recordPrefix?: string | undefined }) | EtcdClient,
  opts: DefragmentationStatusOptions = {},
): Promise<MemberDefragStatus[]> {
  const fromOptions: { cluster?: boolean | undefined; recordPrefix?: string | undefined } = target instanceof EtcdClient ? {} : target;
  const prefix = recordPrefix(opts.recordPrefix ?? fromOptions.recordPrefix ?? DEFAULT_RECORD_PREFIX);
  const client = target instanceof EtcdClient ? target : new EtcdClient(target);
  try {
    const call = { timeoutMs: opts.timeoutMs, signal: opts.signal };
    // Neither alarms nor the quota matter here: one Status and health read per member.
    const snapshot = await observeCluster(client, {
      cluster: opts.cluster ?? fromOptions.cluster ?? false,
      alarms: false,
      metrics: false,
      ...call,
    });
    const records = await readRecords(client, snapshot, prefix, call);
    return memberStatuses(snapshot, prefix, records, (opts.now ?? (() => new Date()))());
  } finally {
    if (!(target instanceof EtcdClient)) client.close();
  }
}

/**
 * Every stored value under `<prefix>/members/` (by key), read through the
 * snapshot's leader or another voter; `{ error }` when none could be read.
 * Never throws: memberStatuses() turns either into per-member statuses.
 */
export async function readRecords(
  client: EtcdClient,
  snapshot: ClusterSnapshot,
  prefix: string,
  call: { timeoutMs?: number | undefined; signal?: AbortSignal | undefined } = {},
): Promise<Map<string, Buffer> | { error: string }> {
  try {
    const { key, rangeEnd } = recordRange(prefix);
    const r = await onFirstAnswering(recordEndpoints(snapshot), (ep) => client.member(ep).range(key, { rangeEnd, ...call }));
    return new Map(r.kvs.map((k: KeyValue) => [k.key.toString(), k.value]));
  } catch (err) {
    return { error: `could not read the records under ${prefix}/members/: ${messageOf(err)}` };
  }
}

/** Pure: the snapshot and the stored values (by key) as per-member statuses at `now`. */
export function memberStatuses(
  snapshot: ClusterSnapshot,
  prefix: string,
  records: ReadonlyMap<string, Buffer> | { error: string },
  now: Date,
): MemberDefragStatus[] {
  return snapshot.members.map((m) => {
    const s = m.status;
    const key = recordKey(prefix, m.memberId);
    const value = 'error' in records ? undefined : records.get(key);
    const parsed = value === undefined ? null : parseRecord(value.toString());
    const r: DefragRecord | null = parsed && 'record' in parsed ? parsed.record : null;
    return {
      endpoint: m.endpoint,
      memberId: m.memberId,
      name: m.name,
      lastDefrag: r,
      record: 'error' in records ? 'unreadable' : parsed === null ? 'none' : r === null ? 'invalid' : 'found',
      ageSeconds: r ? Math.max(0, Math.floor((now.getTime() - Date.parse(r.at)) / 1_000)) : null,
      reclaimedBytes: r ? reclaimedBy(r) : null,
      version: s?.version ?? null,
      dbSize: s?.dbSize ?? null,
      dbSizeInUse: s?.dbSizeInUse ?? null,
      dbSizeFree: s?.dbSizeFree ?? null,
      fragmentation: s ? Math.round(s.fragmentation * 10_000) / 10_000 : null,
      warning: parsed && 'warning' in parsed ? `${key}: ${parsed.warning}` : null,
      error: m.error ?? ('error' in records ? records.error : null),
    };
  });
}
