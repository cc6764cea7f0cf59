/**
 * The client load that runs for the whole measurement: separate clients
 * pinned to each member, each in a closed loop of linearizable Range or small
 * Put with a per-request deadline and a short pause in between, and one lease
 * per member kept alive through that member. Every request's latency and
 * outcome is recorded.
 *
 * Every second client per member retries as etcd's Go client (clientv3's
 * retry interceptor, 3.4–3.6) does by itself: Range is "repeatable" and is
 * retried on UNAVAILABLE (e.g. `leader changed`) after 25 ms ± 10 % until its
 * deadline; Put is "non-repeatable" and is retried only when it never left the
 * client (no connection), which a pinned client that is connected does not
 * see; other codes and deadlines are never retried. Its records show failures
 * as that client sees them; the other clients show every failure.
 */
import type { MemberClient } from '../src/internals.js';
import { ClientLoops, errorKey, now, sleep } from './util.js';
import { mulberry32 } from '../dev/prng.js';

export interface LoadTarget {
  name: string;
  url: string;
}

export type ClientMode = 'plain' | 'go-retry';

export interface RequestRecord {
  /** Name of the member the client is pinned to. */
  member: string;
  client: number;
  op: 'get' | 'put' | 'keepalive';
  /** plain: every failure is recorded; go-retry: retried as etcd's Go client would, the last failure recorded. */
  mode: ClientMode;
  start: number;
  end: number;
  ok: boolean;
  error: string | null;
  /** gRPC status name of the failure (UNAVAILABLE, DEADLINE_EXCEEDED, ...), or the error class when etcd did not answer. */
  code: string | null;
  /** Retries made (go-retry mode). */
  retries: number;
}

/** clientv3's defaultBackoffWaitBetween and defaultBackoffJitterFraction. */
const GO_RETRY_WAIT_MS = 25;
const GO_RETRY_JITTER = 0.1;

/** Whether etcd's Go client would retry this failure by itself (see the module header). */
export function goClientRetries(op: RequestRecord['op'], code: string | null): boolean {
  return (op === 'get' || op === 'keepalive') && code === 'UNAVAILABLE';
}

function codeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'grpcCode' in err) return String((err as { grpcCode: unknown }).grpcCode);
  return err instanceof Error ? err.constructor.name : 'Error';
}

export interface LoadOptions {
  clientsPerMember: number;
  deadlineMs: number;
  readPct: number;
  sleepMs: number;
  /** Keys written and read per client (cycled). */
  keysPerClient?: number;
  valueBytes?: number;
  /** TTL of the lease kept alive through each member, s. */
  leaseTtlSec: number;
  /** Pause between two keep-alives of one lease, ms. */
  keepAliveEveryMs: number;
}

export class Load extends ClientLoops {
  readonly records: RequestRecord[] = [];

  constructor(
    private readonly targets: readonly LoadTarget[],
    private readonly o: LoadOptions,
  ) {
    super();
  }

  /** Connects every client (and writes each client's keys once), then starts the loops. */
  async start(): Promise<void> {
    const keys = this.o.keysPerClient ?? 32;
    const value = Buffer.alloc(this.o.valueBytes ?? 128, 'v');
    const ready: { mc: MemberClient; member: string; client: number; seed: number }[] = [];
    let seed = 1;
    for (const t of this.targets) {
      for (let c = 0; c < this.o.clientsPerMember; c++) {
        const mc = this.pinned(t.url, this.o.deadlineMs);
        await mc.connect({ timeoutMs: 5_000 });
        for (let k = 0; k < keys; k++) await mc.put(this.key(t.name, c, k), value, { timeoutMs: 10_000 });
        ready.push({ mc, member: t.name, client: c, seed: seed++ });
      }
    }
    const leases: { mc: MemberClient; member: string; id: string }[] = [];
    for (const t of this.targets) {
      const mc = this.pinned(t.url, this.o.deadlineMs);
      leases.push({ mc, member: t.name, id: (await mc.leaseGrant(this.o.leaseTtlSec, { timeoutMs: 10_000 })).id });
    }
    for (const r of ready) this.loop(this.requestLoop(r.mc, r.member, r.client, r.seed, keys, value));
    for (const l of leases) this.loop(this.keepAliveLoop(l.mc, l.member, l.id));
  }

  /** One lease kept alive through one member: a keep-alive every keepAliveEveryMs; a lease found expired is granted anew. */
  private async keepAliveLoop(mc: MemberClient, member: string, leaseId: string): Promise<void> {
    const signal = this.stopper.signal;
    let id = leaseId;
    while (!signal.aborted) {
      const start = now();
      let error: string | null = null;
      let code: string | null = null;
      try {
        const ttl = await mc.leaseKeepAliveOnce(id, { timeoutMs: this.o.deadlineMs });
        if (ttl <= 0) {
          error = 'lease expired (keep-alive answered TTL 0)';
          code = 'EXPIRED';
        }
      } catch (err) {
        error = errorKey(err);
        code = codeOf(err);
      }
      this.records.push({
        member,
        client: -1,
        op: 'keepalive',
        mode: 'plain',
        start,
        end: now(),
        ok: error === null,
        error,
        code,
        retries: 0,
      });
      if (code === 'EXPIRED') id = (await mc.leaseGrant(this.o.leaseTtlSec, { timeoutMs: 10_000 }).catch(() => ({ id })))?.id ?? id;
      await sleep(this.o.keepAliveEveryMs, signal);
    }
  }

  private key(member: string, client: number, k: number): string {
    return `/bench/load/${member}/${client}/${String(k).padStart(3, '0')}`;
  }

  private async requestLoop(mc: MemberClient, member: string, client: number, seed: number, keys: number, value: Buffer): Promise<void> {
    const rnd = mulberry32(seed);
    const signal = this.stopper.signal;
    let n = 0;
    while (!signal.aborted) {
      const key = this.key(member, client, n++ % keys);
      const op: 'get' | 'put' = rnd() * 100 < this.o.readPct ? 'get' : 'put';
      const mode: ClientMode = client % 2 === 1 ? 'go-retry' : 'plain';
      const start = now();
      const deadline = start + this.o.deadlineMs;
      let error: string | null = null;
      let code: string | null = null;
      let retries = 0;
      for (;;) {
        error = null;
        code = null;
        try {
          // No abort signal: a request in flight when the load stops is allowed to finish, so its latency is real.
          const timeoutMs = Math.max(1, deadline - now());
          if (op === 'get') await mc.range(key, { timeoutMs });
          else await mc.put(key, value, { timeoutMs });
        } catch (err) {
          error = errorKey(err);
          code = codeOf(err);
        }
        if (error === null || mode === 'plain' || !goClientRetries(op, code)) break;
        const wait = GO_RETRY_WAIT_MS * (1 + GO_RETRY_JITTER * (2 * rnd() - 1));
        if (now() + wait >= deadline) break;
        await sleep(wait);
        retries++;
      }
      this.records.push({ member, client, op, mode, start, end: now(), ok: error === null, error, code, retries });
      if (this.o.sleepMs > 0) await sleep(this.o.sleepMs, signal);
    }
  }
}
