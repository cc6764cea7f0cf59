/**
 * The client load whose stalls `make bench-schedule` counts, the same on
 * both clusters: through every member, one client in a closed loop of
 * linearizable reads and small writes, and one lease kept alive through that
 * member every 100 ms. Every request's latency and outcome is kept.
 */
import type { MemberClient } from '../../src/internals.js';
import { ClientLoops, errorKey, now, sleep } from '../util.js';

export type ProbeKind = 'get' | 'put' | 'keepalive';

export interface ProbeRecord {
  member: string;
  kind: ProbeKind;
  start: number;
  end: number;
  ok: boolean;
  error: string | null;
}

export interface ProbeOptions {
  /** Pause between a client's requests (ms). */
  pauseMs: number;
  /** Pause between keep-alives (ms). */
  keepAliveEveryMs: number;
  /** The leases' TTL (s). */
  leaseTtlSec: number;
  deadlineMs: number;
}

export class Probe extends ClientLoops {
  readonly records: ProbeRecord[] = [];
  /** Keep-alives answered with TTL 0: the lease had expired (then a new one is granted). */
  leasesLost = 0;

  constructor(
    private readonly targets: readonly { name: string; url: string }[],
    private readonly o: ProbeOptions,
  ) {
    super();
  }

  async start(): Promise<void> {
    const ready: { name: string; kv: MemberClient; lease: MemberClient; leaseId: string }[] = [];
    for (const t of this.targets) {
      // Separate clients (channels) for the key-value loop and the keep-alives, as separate programs would have.
      const kv = this.pinned(t.url, this.o.deadlineMs);
      const lease = this.pinned(t.url, this.o.deadlineMs);
      await kv.put(this.key(t.name), 'v', { timeoutMs: 10_000 });
      const { id } = await lease.leaseGrant(this.o.leaseTtlSec, { timeoutMs: 10_000 });
      await kv.put(`${this.key(t.name)}/session`, 'held', { lease: id, timeoutMs: 10_000 });
      ready.push({ name: t.name, kv, lease, leaseId: id });
    }
    for (const r of ready) {
      this.loop(this.kvLoop(r.name, r.kv));
      this.loop(this.keepAliveLoop(r.name, r.lease, r.leaseId));
    }
  }

  private key(member: string): string {
    return `/bench/probe/${member}`;
  }

  private async timed(member: string, kind: ProbeKind, fn: () => Promise<unknown>): Promise<unknown> {
    const start = now();
    let error: string | null = null;
    let value: unknown;
    try {
      value = await fn();
    } catch (err) {
      error = errorKey(err);
    }
    this.records.push({ member, kind, start, end: now(), ok: error === null, error });
    return value;
  }

  private async kvLoop(member: string, mc: MemberClient): Promise<void> {
    const signal = this.stopper.signal;
    const value = Buffer.alloc(128, 'p');
    let n = 0;
    while (!signal.aborted) {
      // Reads and writes alternate; no abort signal, so a request in flight at the end reports its real latency.
      if (n++ % 2 === 0) await this.timed(member, 'get', () => mc.range(this.key(member), { timeoutMs: this.o.deadlineMs }));
      else await this.timed(member, 'put', () => mc.put(this.key(member), value, { timeoutMs: this.o.deadlineMs }));
      await sleep(this.o.pauseMs, signal);
    }
  }

  private async keepAliveLoop(member: string, mc: MemberClient, leaseId: string): Promise<void> {
    const signal = this.stopper.signal;
    let id = leaseId;
    while (!signal.aborted) {
      const ttl = await this.timed(member, 'keepalive', () => mc.leaseKeepAliveOnce(id, { timeoutMs: this.o.deadlineMs }));
      if (ttl === 0) {
        this.leasesLost++;
        try {
          id = (await mc.leaseGrant(this.o.leaseTtlSec, { timeoutMs: this.o.deadlineMs })).id;
        } catch {
          /* the next keep-alive fails too and is counted */
        }
      }
      await sleep(this.o.keepAliveEveryMs, signal);
    }
  }
}
