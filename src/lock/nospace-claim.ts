/**
 * Who recovers a cluster from NOSPACE when the cluster lock cannot be taken:
 * under the alarm etcd refuses every put and lease grant, so the lease-bound
 * lock cannot be written exactly when recovery is needed, and two replicas
 * (or a replica and a cron `defragd defrag`) would both recover, each member
 * defragmented twice. A DeleteRange needs no quota, on every etcd version
 * (it is neither a Put nor a Txn with one; etcd's quota check passes it), and
 * etcd applies one at a time: of two runs deleting the same key, exactly one
 * is told it deleted it. So:
 *
 * - while the cluster takes writes, `<lock key>/nospace-claim` and
 *   `<lock key>/nospace-prepared` are put (once, when missing) by the daemon
 *   at its first observation without NOSPACE (a CLI run writes nothing of its
 *   own beyond the lock and its records);
 * - under NOSPACE, a run deletes the claim: `claimed` (it deleted it: it
 *   recovers), `taken` (gone, and the prepared key says it was there: another
 *   run claimed it, so this one stays away), or `not-prepared` (never put:
 *   nothing better than going ahead with a warning, as before);
 * - after the recovery, the claim is put back.
 */
import type { EtcdClient } from '../etcd/client.js';
import { onAny } from './lock.js';

export const claimKeyOf = (lockKey: string): string => `${lockKey}/nospace-claim`;
export const preparedKeyOf = (lockKey: string): string => `${lockKey}/nospace-prepared`;

export type NospaceClaim = 'claimed' | 'taken' | 'not-prepared';

interface ClaimCall {
  /** The cluster lock's key (the claim's keys are under it). */
  lockKey: string;
  endpoints?: string[] | undefined;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * While the cluster takes writes: puts the claim (and the key that says it was prepared) when it is not
 * there; one transaction, nothing written when it is. Throws what etcd answers (NOSPACE included).
 *
 * @example await prepareNospaceClaim(client, { lockKey: '/defragd/lock' });
 */
export async function prepareNospaceClaim(client: EtcdClient, o: ClaimCall): Promise<void> {
  const claim = Buffer.from(claimKeyOf(o.lockKey));
  const prepared = Buffer.from(preparedKeyOf(o.lockKey));
  const value = Buffer.from(JSON.stringify({ preparedAt: new Date().toISOString() }));
  await onAny(client, o.endpoints ?? client.seeds, (m) =>
    m.txn(
      {
        compare: [{ result: 'EQUAL', target: 'VERSION', key: claim, version: '0' }],
        success: [{ request_put: { key: claim, value } }, { request_put: { key: prepared, value } }],
        failure: [],
      },
      { timeoutMs: o.timeoutMs, signal: o.signal },
    ),
  );
}

/**
 * Under NOSPACE: takes the recovery of the cluster by deleting the claim (see the module header).
 *
 * @example if ((await claimNospaceRecovery(client, { lockKey })) === 'taken') return refused('another defragd recovers it');
 */
export async function claimNospaceRecovery(client: EtcdClient, o: ClaimCall): Promise<NospaceClaim> {
  const call = { timeoutMs: o.timeoutMs, signal: o.signal };
  const endpoints = o.endpoints ?? client.seeds;
  const { result } = await onAny(client, endpoints, (m) => m.deleteRange(claimKeyOf(o.lockKey), call));
  if (result.deleted > 0) return 'claimed';
  const { result: seen } = await onAny(client, endpoints, (m) => m.range(preparedKeyOf(o.lockKey), call));
  return seen.kvs.length > 0 ? 'taken' : 'not-prepared';
}
