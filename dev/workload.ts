/**
 * Fragmenting workloads for tests, the demo and the benchmarks: write values,
 * overwrite them, then compact physically, so bbolt keeps the pages (dbSize)
 * while the live data (dbSizeInUse) shrinks, as kube-apiserver's own
 * 5-minute compactions leave a real cluster.
 */
import { EtcdClient } from '../src/etcd/client.js';
import type { ConnectionOptions } from '../src/etcd/options.js';

export interface FragmentOptions {
  /** Bytes written per pass (default 8 MiB). */
  bytes?: number;
  /** Value size (default 64 KiB; etcd's request limit is 1.5 MiB). */
  valueSize?: number;
  /** Write passes over the same keys (default 2): every pass after the first leaves the previous one as garbage. */
  passes?: number;
  /** Compact physically to the newest revision at the end (default true). */
  compact?: boolean;
  prefix?: string;
  /** Concurrent puts (default 8). */
  concurrency?: number;
}

/** Writes the workload through the first endpoint; resolves with the newest revision. */
export async function fragment(connection: ConnectionOptions, opts: FragmentOptions = {}): Promise<number> {
  const bytes = opts.bytes ?? 8 * 1024 * 1024;
  const valueSize = opts.valueSize ?? 64 * 1024;
  const passes = opts.passes ?? 2;
  const prefix = opts.prefix ?? '/fragment/';
  const concurrency = opts.concurrency ?? 8;
  const keys = Math.max(1, Math.ceil(bytes / valueSize));
  const client = new EtcdClient({ commandTimeoutMs: 30_000, ...connection });
  try {
    const mc = client.member(connection.endpoints[0] as string);
    let revision = 0;
    for (let pass = 0; pass < passes; pass++) {
      const value = Buffer.alloc(valueSize, String.fromCharCode(97 + (pass % 26)));
      let next = 0;
      const worker = async () => {
        for (;;) {
          const i = next++;
          if (i >= keys) return;
          const h = await mc.put(`${prefix}${String(i).padStart(6, '0')}`, value);
          revision = Math.max(revision, h.revision);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    }
    if (opts.compact ?? true) {
      await mc.compact(revision, { physical: true, timeoutMs: 60_000 });
      // bbolt counts pages freed by the last compaction batch as free only after a later write
      // transaction commits (etcd's backend commits every 100 ms): write a marker twice, apart.
      for (let i = 0; i < 2; i++) {
        await new Promise((r) => setTimeout(r, 150));
        revision = (await mc.put(`${prefix}.settled`, String(i))).revision;
      }
    }
    return revision;
  } finally {
    client.close();
  }
}

export interface ChurnOptions {
  /** Bytes written per second, spread over the endpoints in turn (default 1 MiB). */
  bytesPerSecond?: number;
  /** Value size (default 64 KiB). */
  valueSize?: number;
  /** Keys overwritten in turn (default 128: 8 MiB of live data at 64 KiB). */
  keys?: number;
  /** One put in this many is a delete of a random key instead (default 8): objects come and go. */
  deleteEvery?: number;
  /**
   * Compact every this often to the revision noted at the previous compaction (default 30 s),
   * as kube-apiserver does every 5 minutes: about one interval of history is kept.
   */
  compactEveryMs?: number;
  /** Prefixes deleted once at the start (a namespace removed), then compacted away at once. */
  deletePrefixes?: string[];
  prefix?: string;
  /** Told after each compaction, with the revision compacted to. */
  onCompact?: (revision: number) => void;
  /** Told about a failed request (the workload goes on): leader changes, a member stalled by its defrag. */
  onError?: (err: Error) => void;
}

export interface Churn {
  /** Puts, deletes and compactions that succeeded, and requests that failed. */
  readonly stats: { puts: number; deletes: number; compactions: number; errors: number };
  /** Stops writing and waits for the request in flight (bounded by the command timeout). Idempotent. */
  stop(): Promise<void>;
}

/**
 * A background workload that never ends by itself: it keeps overwriting and
 * deleting keys and compacts periodically, so fragmentation grows between
 * compactions (freed pages stay in the file) and dbSize grows until a
 * defragmentation gives the space back. Requests that fail are counted and
 * skipped, never retried: a member being defragmented or a leader move
 * stalls or fails a few, as it would for kube-apiserver.
 *
 * @example
 *   const churn = startChurn({ endpoints }, { onCompact: (rev) => console.log('compacted', rev) });
 *   ...
 *   await churn.stop();
 */
export function startChurn(connection: ConnectionOptions, opts: ChurnOptions = {}): Churn {
  const valueSize = opts.valueSize ?? 64 * 1024;
  const putsPerSecond = (opts.bytesPerSecond ?? 1024 * 1024) / valueSize;
  const keys = opts.keys ?? 128;
  const deleteEvery = opts.deleteEvery ?? 8;
  const compactEveryMs = opts.compactEveryMs ?? 30_000;
  const prefix = opts.prefix ?? '/churn/';
  const stats = { puts: 0, deletes: 0, compactions: 0, errors: 0 };
  const stopping = new AbortController();
  const client = new EtcdClient({ commandTimeoutMs: 5_000, ...connection });
  const members = connection.endpoints.map((ep) => client.member(ep));
  const failed = (err: unknown) => {
    if (stopping.signal.aborted) return;
    stats.errors++;
    opts.onError?.(err instanceof Error ? err : new Error(String(err)));
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        stopping.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      stopping.signal.addEventListener('abort', done, { once: true });
    });

  let compactedTo = 0;
  /** A physical compaction through the first member, counted and reported. */
  const compactTo = async (revision: number) => {
    await members[0]!.compact(revision, { physical: true, timeoutMs: 30_000, signal: stopping.signal });
    compactedTo = revision;
    stats.compactions++;
    opts.onCompact?.(revision);
  };

  /** The deleted prefixes are compacted away at once, so their pages are free from the start. */
  const removePrefixes = async () => {
    const prefixes = opts.deletePrefixes ?? [];
    if (prefixes.length === 0) return;
    try {
      let revision = 0;
      for (const p of prefixes)
        revision = (await members[0]!.deleteRange(p, { rangeEnd: prefixEnd(p), signal: stopping.signal })).header.revision;
      await compactTo(revision);
    } catch (err) {
      failed(err);
    }
  };

  const writer = async () => {
    const value = Buffer.alloc(valueSize, 'x');
    const started = Date.now();
    for (let n = 0; !stopping.signal.aborted; n++) {
      // Paced by the clock, not by the previous request: a stall is not made up in a burst.
      const due = started + (n * 1000) / putsPerSecond;
      if (due > Date.now()) await sleep(due - Date.now());
      if (stopping.signal.aborted) break;
      const mc = members[n % members.length]!;
      const call = { signal: stopping.signal };
      try {
        if (n % deleteEvery === deleteEvery - 1) {
          await mc.deleteRange(key(Math.floor(Math.random() * keys)), call);
          stats.deletes++;
        } else {
          await mc.put(key(n % keys), value, call);
          stats.puts++;
        }
      } catch (err) {
        failed(err);
      }
    }
  };
  const key = (i: number) => `${prefix}${String(i).padStart(6, '0')}`;

  const compactor = async () => {
    let noted: number | null = null;
    while (!stopping.signal.aborted) {
      try {
        const { revision } = (await members[0]!.status({ signal: stopping.signal })).header;
        const target = noted;
        // Noted before compacting: a failed compaction is not retried to the same revision.
        noted = revision;
        if (target !== null && target > compactedTo && target < revision) {
          await compactTo(target);
        }
      } catch (err) {
        failed(err);
      }
      await sleep(compactEveryMs);
    }
  };

  const done = removePrefixes()
    .then(() => Promise.all([writer(), compactor()]))
    .finally(() => client.close());
  let stopped: Promise<void> | null = null;
  return {
    stats,
    stop: () => {
      stopped ??= (stopping.abort(), done.then(() => undefined));
      return stopped;
    },
  };
}

/** The range end that covers every key with this prefix (etcd's "prefix + 1"). */
function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}
