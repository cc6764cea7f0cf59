/**
 * The cluster lock: a key bound to a lease in the cluster being maintained,
 * so that overlapping runs (cron jobs, several operators) never defragment two members
 * of one cluster at the same time. The key holds who took it; the lease
 * makes it vanish on its own if the holder dies. Keep-alives go to whichever
 * voter answers (the member being defragmented does not).
 */
import { hostname } from 'node:os';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { AbortedError, DefragdError, etcdReason, RefusedError } from '../domain/errors.js';
import type { EtcdClient } from '../etcd/client.js';

export { DEFAULT_LOCK_KEY } from '../domain/defaults.js';
import { DEFAULT_LOCK_KEY, DEFAULT_LOCK_TTL_SECONDS } from '../domain/defaults.js';

export interface LockOptions {
  /** Key to hold (default /defragd/lock). */
  key?: string;
  /** Lease TTL in seconds (default 30): how long a dead holder blocks others. */
  ttlSeconds?: number;
  /** How long to wait for a busy lock before giving up (default 0: fail at once). */
  waitMs?: number;
  /** Who is holding it, stored as the value (default host:pid). */
  holder?: string;
  /** Called once when the lock is found held and the wait begins: who holds it, and how long this waits at most. */
  onBusy?: (current: { holder: string; since: string } | null, waitMs: number) => void;
  /** Endpoints to talk to; the client's seeds by default. */
  endpoints?: string[];
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ClusterLock {
  key: string;
  holder: string;
  /** Hex lease ID. */
  leaseId: string;
  /** Aborted when the lease could not be kept alive: stop before the next member. */
  lost: AbortSignal;
  /** When another run held the lock first: how long this one waited, and the last holder it saw. */
  waited: { ms: number; holder: string | null; since: string | null } | null;
  /** Where keep-alives go from now on (e.g. every voter once the cluster is known). */
  useEndpoints(endpoints: string[]): void;
  release(): Promise<void>;
}

interface Holder {
  holder: string;
  since: string;
}

/** Thrown when another run holds the lock (after waitMs). */
export class LockBusyError extends RefusedError {
  readonly current: Holder | null;
  constructor(key: string, current: Holder | null) {
    super(`another defragd run holds the cluster lock ${key}${current ? ` (${current.holder}, since ${current.since})` : ''}`);
    this.current = current;
  }
}

/** True when etcd refuses writes because of NOSPACE: then no lock can be written at all. */
export function isNoSpace(err: unknown): boolean {
  return etcdReason(err) === 'nospace';
}

/**
 * Takes the lock or throws LockBusyError.
 *
 * @example
 * const lock = await acquireLock(client, { waitMs: 60_000 });
 * try { ...defragment, stopping when lock.lost is aborted... } finally { await lock.release(); }
 */
export async function acquireLock(client: EtcdClient, opts: LockOptions = {}): Promise<ClusterLock> {
  const key = opts.key ?? DEFAULT_LOCK_KEY;
  const ttl = opts.ttlSeconds ?? DEFAULT_LOCK_TTL_SECONDS;
  const holder = opts.holder ?? `${hostname()}:${process.pid}`;
  const endpoints = opts.endpoints ?? client.seeds;
  const call = { timeoutMs: opts.timeoutMs, signal: opts.signal };
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const value = JSON.stringify({ holder, since: new Date().toISOString() } satisfies Holder);
  const t0 = Date.now();
  let seen: Holder | null | undefined;

  for (;;) {
    const { result: lease, via } = await onAny(client, endpoints, (m) => m.leaseGrant(ttl, call));
    const mc = client.member(via);
    const k = Buffer.from(key);
    const txn = await mc
      .txn(
        {
          compare: [{ result: 'EQUAL', target: 'CREATE', key: k, create_revision: '0' }],
          success: [{ request_put: { key: k, value: Buffer.from(value), lease: lease.id } }],
          failure: [{ request_range: { key: k } }],
        },
        call,
      )
      .catch(async (err: unknown) => {
        await mc.leaseRevoke(lease.id, call).catch(() => undefined);
        throw err;
      });
    if (txn.succeeded) {
      const waited = seen === undefined ? null : { ms: Date.now() - t0, holder: seen?.holder ?? null, since: seen?.since ?? null };
      return keep(client, endpoints, key, holder, lease.id, ttl, waited);
    }

    await mc.leaseRevoke(lease.id, call).catch(() => undefined);
    const current = parseHolder(txn.responses);
    const first = seen === undefined;
    seen = current;
    if (Date.now() >= deadline) throw new LockBusyError(key, current);
    if (first) opts.onBusy?.(current, deadline - Date.now());
    await sleepFor(Math.min(1_000, Math.max(50, deadline - Date.now())), undefined, { signal: opts.signal }).catch(() => {
      throw new AbortedError('interrupted while waiting for the cluster lock');
    });
  }
}

function keep(
  client: EtcdClient,
  seeds: string[],
  key: string,
  holder: string,
  leaseId: string,
  ttl: number,
  waited: ClusterLock['waited'],
): ClusterLock {
  const lost = new AbortController();
  const stop = new AbortController();
  let endpoints = seeds;
  const every = Math.max(500, (ttl * 1_000) / 3);
  const loop = (async () => {
    let lastOk = Date.now();
    while (!stop.signal.aborted) {
      await sleepFor(every, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) return;
      let left: number;
      try {
        left = (await onAny(client, endpoints, (m) => m.leaseKeepAliveOnce(leaseId, { timeoutMs: 2_000 }))).result;
      } catch (err) {
        // Give up only once the lease must have run out; until then another voter may answer.
        if (Date.now() - lastOk >= ttl * 1_000) {
          lost.abort(new DefragdError('failed', `lost the cluster lock ${key}: ${(err as Error).message}`));
          return;
        }
        continue;
      }
      if (left <= 0) {
        lost.abort(new DefragdError('failed', `lost the cluster lock ${key}: its lease expired`));
        return;
      }
      lastOk = Date.now();
    }
  })();
  return {
    key,
    holder,
    leaseId: BigInt(leaseId).toString(16),
    lost: lost.signal,
    waited,
    useEndpoints(list: string[]) {
      if (list.length > 0) endpoints = list;
    },
    async release() {
      stop.abort();
      await loop.catch(() => undefined);
      // Revoking the lease deletes the key; if no member answers, the lease expires by itself.
      await onAny(client, endpoints, (m) => m.leaseRevoke(leaseId, { timeoutMs: 2_000 })).catch(() => undefined);
    },
  };
}

/** Tries the endpoints in order; the first that answers wins. */
export async function onAny<T>(
  client: EtcdClient,
  endpoints: string[],
  fn: (m: ReturnType<EtcdClient['member']>) => Promise<T>,
): Promise<{ result: T; via: string }> {
  let last: unknown;
  for (const ep of endpoints) {
    try {
      return { result: await fn(client.member(ep)), via: ep };
    } catch (err) {
      last = err;
      // Etcd-level refusals (auth, NOSPACE) are the same on every member.
      const reason = etcdReason(err);
      if (reason !== null && reason !== 'learner' && reason !== 'leader-changed' && reason !== 'no-leader') throw err;
    }
  }
  throw last;
}

function parseHolder(responses: unknown[]): Holder | null {
  const r = responses[0] as { response_range?: { kvs?: { value: Buffer }[] } } | undefined;
  const v = r?.response_range?.kvs?.[0]?.value;
  if (!v) return null;
  try {
    return JSON.parse(v.toString()) as Holder;
  } catch {
    return { holder: v.toString(), since: '?' };
  }
}
