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
