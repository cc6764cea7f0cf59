/**
 * The client load that runs for the whole measurement: separate clients
 * pinned to each member, each in a closed loop of linearizable Range or small
 * Put with a per-request deadline and a short pause in between. Every
 * request's latency and outcome is recorded.
 */
import { EtcdClient, type MemberClient } from '../src/index.js';
import { errorKey, now, sleep } from './util.js';
import { mulberry32 } from '../dev/prng.js';

export interface LoadTarget {
  name: string;
  url: string;
}

export interface RequestRecord {
  /** Name of the member the client is pinned to. */
  member: string;
  client: number;
  op: 'get' | 'put';
  start: number;
  end: number;
  ok: boolean;
  error: string | null;
}

export interface LoadOptions {
  clientsPerMember: number;
  deadlineMs: number;
  readPct: number;
  sleepMs: number;
  /** Keys written and read per client (cycled). */
  keysPerClient?: number;
  valueBytes?: number;
}


export class Load {
  readonly records: RequestRecord[] = [];
  private readonly clients: EtcdClient[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly stopper = new AbortController();

  constructor(
    private readonly targets: readonly LoadTarget[],
    private readonly o: LoadOptions,
  ) {}

  /** Connects every client (and writes each client's keys once), then starts the loops. */
  async start(): Promise<void> {
    const keys = this.o.keysPerClient ?? 32;
    const value = Buffer.alloc(this.o.valueBytes ?? 128, 'v');
    const ready: { mc: MemberClient; member: string; client: number; seed: number }[] = [];
    let seed = 1;
    for (const t of this.targets) {
      for (let c = 0; c < this.o.clientsPerMember; c++) {
        // One EtcdClient per load client: its own channel object, pinned to one member.
        const client = new EtcdClient({ endpoints: [t.url], commandTimeoutMs: this.o.deadlineMs });
        this.clients.push(client);
        const mc = client.member(t.url);
        await mc.connect({ timeoutMs: 5_000 });
        for (let k = 0; k < keys; k++) await mc.put(this.key(t.name, c, k), value, { timeoutMs: 10_000 });
        ready.push({ mc, member: t.name, client: c, seed: seed++ });
      }
    }
    for (const r of ready) this.loops.push(this.loop(r.mc, r.member, r.client, r.seed, keys, value));
  }

  private key(member: string, client: number, k: number): string {
    return `/bench/load/${member}/${client}/${String(k).padStart(3, '0')}`;
  }

  private async loop(mc: MemberClient, member: string, client: number, seed: number, keys: number, value: Buffer): Promise<void> {
    const rnd = mulberry32(seed);
    const signal = this.stopper.signal;
    let n = 0;
    while (!signal.aborted) {
      const key = this.key(member, client, n++ % keys);
      const op: 'get' | 'put' = rnd() * 100 < this.o.readPct ? 'get' : 'put';
      const start = now();
      let error: string | null = null;
      try {
        // No abort signal: a request in flight when the load stops is allowed to finish, so its latency is real.
        if (op === 'get') await mc.range(key, { timeoutMs: this.o.deadlineMs });
        else await mc.put(key, value, { timeoutMs: this.o.deadlineMs });
      } catch (err) {
        error = errorKey(err);
      }
      this.records.push({ member, client, op, start, end: now(), ok: error === null, error });
      if (this.o.sleepMs > 0) await sleep(this.o.sleepMs, signal);
    }
  }

  /** Stops the loops, waits for requests in flight, closes the clients. Idempotent. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.allSettled(this.loops);
    this.close();
  }

  close(): void {
    for (const c of this.clients.splice(0)) c.close();
  }
}
