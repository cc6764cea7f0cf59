/** Small shared helpers of the benchmark: one clock, percentiles, formatting, child processes. */
import type { ChildProcess } from 'node:child_process';
import { EtcdClient, type MemberClient } from '../src/internals.js';

/** Epoch milliseconds with sub-millisecond resolution, monotonic within the process. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Nearest-rank percentile (p in 0..100) of unsorted values; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function max(values: readonly number[]): number | null {
  let m: number | null = null;
  for (const v of values) if (m === null || v > m) m = v;
  return m;
}

/** "842 ms", "12.3 s"; "–" for null. */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (Math.abs(ms) >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (Math.abs(ms) >= 1_000) return `${(ms / 1000).toFixed(2)} s`;
  if (Math.abs(ms) >= 10) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export const MiB = 1024 * 1024;

export function fmtMiB(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '–';
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** Strips endpoint URLs out of an error message so equal errors group together. */
export function errorKey(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'grpcCode' in err ? `(${String((err as { grpcCode: unknown }).grpcCode)})` : '';
  const name = (err instanceof Error ? err.constructor.name : 'Error') + code;
  const message = err instanceof Error ? err.message : String(err);
  return `${name}: ${message.replace(/https?:\/\/[^\s:]+:\d+:?\s*/g, '').trim()}`;
}

/**
 * The child processes a benchmark module started and has not seen exit, so
 * that its exit handler (Ctrl-C, an error) can kill what is left.
 */
export class ChildProcesses {
  readonly #children = new Set<ChildProcess>();

  /** Remembers `child` until it exits. */
  add(child: ChildProcess): ChildProcess {
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  delete(child: ChildProcess): void {
    this.#children.delete(child);
  }

  /** SIGKILLs every child still remembered. */
  killAll(): void {
    for (const c of this.#children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.#children.clear();
  }
}

/** The median of the values, or null when there are none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Request loops over clients pinned to members, as the benchmarks' load and
 * probes run them: stop() ends the loops, lets the requests in flight finish
 * (so their latency is real) and closes the clients.
 */
export class ClientLoops {
  /** Aborted by stop(): loops check it between requests and pass it to their pauses. */
  protected readonly stopper = new AbortController();
  private readonly clients: EtcdClient[] = [];
  private readonly loops: Promise<void>[] = [];

  /** A client of its own (its own channel, as a separate program would have), pinned to one member. */
  protected pinned(url: string, commandTimeoutMs: number): MemberClient {
    const client = new EtcdClient({ endpoints: [url], commandTimeoutMs });
    this.clients.push(client);
    return client.member(url);
  }

  protected loop(running: Promise<void>): void {
    this.loops.push(running);
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

/**
 * How a benchmark was started, for its table: the settings it read from the environment (`settings`
 * says which), then `make <target>` when make ran it, else its `npx tsx` line.
 */
export function benchCommand(settings: (name: string) => boolean, makeTarget: string, script: string): string {
  return [
    ...Object.entries(process.env)
      .filter(([k]) => settings(k))
      .map(([k, v]) => `${k}=${v}`),
    process.env.MAKELEVEL ? `make ${makeTarget}` : `npx tsx ${script}`,
  ].join(' ');
}
