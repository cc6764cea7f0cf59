/**
 * The churning workload of `make bench-schedule`: what a Kubernetes
 * apiserver does to its etcd, compressed in time. Objects of mixed sizes are
 * created, overwritten and deleted at a steady rate, and the history is
 * compacted every minute to the revision of a minute before (apiserver
 * compacts every 5 minutes and keeps about one interval of history).
 *
 * The operations come from a seeded PRNG, so two clusters given the same
 * seed receive the same sequence. They are issued on a fixed timetable
 * (catching up after a stall), so a cluster that stalls longer does not get
 * less work: it gets it later.
 */
import type { EtcdClient, MemberClient } from '../../src/internals.js';
import { mulberry32 } from '../../dev/prng.js';
import { errorKey, now, sleep } from '../util.js';

export const CHURN_PREFIX = '/registry/churn/';

export interface ChurnOptions {
  /** PRNG seed: equal seeds, equal operation sequences. */
  seed: number;
  /** Operations per second (puts and deletes). */
  opsPerSec: number;
  /** Object slots: the live set hovers around 80 % of them. */
  slots: number;
  /** How often the history is compacted (ms), to the revision seen one interval earlier. */
  compactEveryMs: number;
  /** Whether prefill() ran first (every slot live). */
  prefilled: boolean;
  /** Requests in flight at most. */
  concurrency: number;
  /** Deadline of each write. */
  deadlineMs: number;
}

export type ChurnOp = { kind: 'put'; key: string; size: number } | { kind: 'delete'; key: string };

/**
 * The operation sequence: a slot picked at random is created when empty,
 * else overwritten (75 %) or deleted (25 %), so about 80 % of the slots are
 * live. Sizes as Kubernetes objects: 60 % 0.5–4 KiB, 30 % 4–32 KiB, 10 %
 * 32–128 KiB (mean about 15 KiB).
 */
export function churnOps(seed: number, slots: number, prefilled: boolean): () => ChurnOp {
  const rnd = mulberry32(seed);
  const live = new Uint8Array(slots).fill(prefilled ? 1 : 0);
  const size = objectSize(rnd);
  return () => {
    const i = Math.floor(rnd() * slots);
    const key = slotKey(i);
    if (live[i] === 1 && rnd() < 0.25) {
      live[i] = 0;
      return { kind: 'delete', key };
    }
    live[i] = 1;
    return { kind: 'put', key, size: size() };
  };
}

const slotKey = (i: number): string => `${CHURN_PREFIX}${String(i).padStart(6, '0')}`;

function objectSize(rnd: () => number): () => number {
  return () => {
    const r = rnd();
    const [lo, hi] = r < 0.6 ? [512, 4096] : r < 0.9 ? [4096, 32768] : [32768, 131072];
    return Math.round(lo + rnd() * (hi - lo));
  };
}

/**
 * Writes every slot once (sizes from the seed), so the churn starts from a
 * populated cluster, then compacts; resolves with the bytes written.
 */
export async function prefill(
  client: EtcdClient,
  urls: readonly string[],
  seed: number,
  slots: number,
  signal: AbortSignal,
): Promise<number> {
  const size = objectSize(mulberry32(seed ^ 0x5eed));
  const sizes = Array.from({ length: slots }, size);
  const mc = client.member(urls[0] as string);
  let next = 0;
  let revision = 0;
  const worker = async (): Promise<void> => {
    while (!signal.aborted) {
      const i = next++;
      if (i >= slots) return;
      revision = Math.max(revision, (await mc.put(slotKey(i), Buffer.alloc(sizes[i] as number, 'x'), { timeoutMs: 30_000 })).revision);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await mc.compact(revision, { physical: true, timeoutMs: 60_000 });
  return sizes.reduce((a, b) => a + b, 0);
}

export interface ChurnStats {
  puts: number;
  deletes: number;
  bytesWritten: number;
  failed: number;
  /** Error message → count. */
  errors: Record<string, number>;
  /** Writes refused with NOSPACE ("database space exceeded"). */
  nospaceRefusals: number;
  compactions: number;
  compactionsFailed: number;
  /** Longest a due operation waited for its turn (ms): how far the workload fell behind. */
  maxLagMs: number;
}

/** Runs the workload against a cluster until stop(); writes go round-robin through every member. */
export class Churn {
  readonly stats: ChurnStats = {
    puts: 0,
    deletes: 0,
    bytesWritten: 0,
    failed: 0,
    errors: {},
    nospaceRefusals: 0,
    compactions: 0,
    compactionsFailed: 0,
    maxLagMs: 0,
  };
  private readonly stopper = new AbortController();
  private running: Promise<void>[] = [];
  private lastRevision = 0;

  constructor(
    private readonly client: EtcdClient,
    private readonly urls: readonly string[],
    private readonly o: ChurnOptions,
  ) {}

  start(): void {
    this.running = [this.writeLoop(), this.compactLoop()];
  }

  private async writeLoop(): Promise<void> {
    const next = churnOps(this.o.seed, this.o.slots, this.o.prefilled);
    const members: MemberClient[] = this.urls.map((u) => this.client.member(u));
    const signal = this.stopper.signal;
    const t0 = now();
    let issued = 0;
    const inFlight = new Set<Promise<void>>();
    while (!signal.aborted) {
      const due = Math.floor(((now() - t0) / 1000) * this.o.opsPerSec);
      if (issued >= due || inFlight.size >= this.o.concurrency) {
        if (inFlight.size >= this.o.concurrency) await Promise.race(inFlight);
        else await sleep(Math.max(1, ((issued + 1) / this.o.opsPerSec) * 1000 - (now() - t0)), signal);
        continue;
      }
      const dueAt = t0 + (issued / this.o.opsPerSec) * 1000;
      this.stats.maxLagMs = Math.max(this.stats.maxLagMs, now() - dueAt);
      const op = next();
      const mc = members[issued % members.length] as MemberClient;
      issued++;
      const p = this.apply(mc, op).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.allSettled(inFlight);
  }

  private async apply(mc: MemberClient, op: ChurnOp): Promise<void> {
    try {
      if (op.kind === 'put') {
        const h = await mc.put(op.key, Buffer.alloc(op.size, 'x'), { timeoutMs: this.o.deadlineMs });
        this.lastRevision = Math.max(this.lastRevision, h.revision);
        this.stats.puts++;
        this.stats.bytesWritten += op.size;
      } else {
        const r = await mc.deleteRange(op.key, { timeoutMs: this.o.deadlineMs });
        this.lastRevision = Math.max(this.lastRevision, r.header.revision);
        this.stats.deletes++;
      }
    } catch (err) {
      const key = errorKey(err);
      this.stats.failed++;
      this.stats.errors[key] = (this.stats.errors[key] ?? 0) + 1;
      if (/database space exceeded/i.test(key)) this.stats.nospaceRefusals++;
    }
  }

  /** Every interval: compact to the revision noted one interval ago (never physical, as apiserver). */
  private async compactLoop(): Promise<void> {
    const signal = this.stopper.signal;
    let noted = 0;
    let turn = 0;
    while (!signal.aborted) {
      await sleep(this.o.compactEveryMs, signal);
      if (signal.aborted) break;
      if (noted > 0) {
        const mc = this.client.member(this.urls[turn++ % this.urls.length] as string);
        try {
          await mc.compact(noted, { physical: false, timeoutMs: this.o.deadlineMs });
          this.stats.compactions++;
        } catch (err) {
          // An already-compacted revision is not a failure of the workload.
          if (!/compacted/i.test(errorKey(err))) this.stats.compactionsFailed++;
        }
      }
      noted = this.lastRevision;
    }
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.allSettled(this.running);
  }
}
