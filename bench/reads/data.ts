/**
 * The logical data of `make bench-reads` and the churn that fragments its file.
 *
 * Keys are `/bench-reads/k/000000` … (zero-padded, so a run of 100 or 10 000
 * consecutive indexes starting at a multiple of 100 or 10 000 is exactly a
 * prefix). Each key ends with one 1–8 KiB value. Before that, every churn
 * round overwrites about half of the keys (new sizes), deletes and re-creates
 * about a sixth, and writes and deletes temporary keys beside half of them,
 * in a shuffled order, so that after a physical compaction the live revisions
 * sit scattered among freed pages, as on a cluster that kube-apiserver compacts.
 */
import { createHash } from 'node:crypto';
import type { MemberClient } from '../../src/etcd/client.js';
import { mulberry32 } from '../../dev/prng.js';

export const PREFIX = '/bench-reads/';
export const KEY_PREFIX = `${PREFIX}k/`;
const TMP_PREFIX = `${PREFIX}tmp/`;
const KEY_DIGITS = 6;

export const keyOf = (i: number): string => `${KEY_PREFIX}${String(i).padStart(KEY_DIGITS, '0')}`;

/** The end of the prefix range: the prefix with its last byte incremented, as etcdctl's --prefix. */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix);
  b[b.length - 1] = (b[b.length - 1] as number) + 1;
  return b.toString();
}

/** A value of 1–8 KiB that names its key and write, so no two writes are equal. */
export function valueFor(i: number, write: number, rand: () => number): Buffer {
  const size = 1024 + Math.floor(rand() * 7 * 1024 + 1);
  const v = Buffer.alloc(size, 97 + (write % 26));
  v.write(`${i}:${write}:`, 0, 'latin1');
  return v;
}

/** Runs `fn` over 0..n-1 with `concurrency` workers in flight. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < n; i = next++) await fn(i);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function shuffled(n: number, rand: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j] as number, a[i] as number];
  }
  return a;
}

export interface ChurnResult {
  puts: number;
  deletes: number;
  bytesWritten: number;
  /** Transactions sent (each holds up to BATCH puts and deletes of distinct keys). */
  txns: number;
  /** The revision compacted to. */
  compactRevision: number;
}

/** Puts and deletes per transaction: one raft entry and one revision for many keys, so the churn takes minutes, not an hour, on 2 shared cores. */
const BATCH = 16;

type Op = { kind: 'put'; key: string; value: Buffer } | { kind: 'del'; key: string };

/**
 * Writes `keys` keys, churns them `rounds` times, compacts physically to the newest revision
 * and commits two more writes, after which bbolt counts the freed pages as free.
 */
export async function writeFragmented(
  mc: MemberClient,
  keys: number,
  rounds: number,
  progress: (msg: string) => void,
  concurrency = 8,
): Promise<ChurnResult> {
  const rand = mulberry32(0x5eed_0011);
  const r: ChurnResult = { puts: 0, deletes: 0, bytesWritten: 0, txns: 0, compactRevision: 0 };
  let revision = 0;
  // Every key appears at most once per phase, so the batches of one phase may run concurrently.
  const phase = async (ops: Op[]): Promise<void> => {
    const batches = Math.ceil(ops.length / BATCH);
    await pool(batches, concurrency, async (b) => {
      const batch = ops.slice(b * BATCH, (b + 1) * BATCH);
      const success = batch.map((op) =>
        op.kind === 'put'
          ? { request_put: { key: Buffer.from(op.key), value: op.value } }
          : { request_delete_range: { key: Buffer.from(op.key) } },
      );
      const t = await mc.txn({ compare: [], success, failure: [] }, { timeoutMs: 60_000 });
      revision = Math.max(revision, t.header.revision);
      r.txns++;
      for (const op of batch) {
        if (op.kind === 'put') {
          r.puts++;
          r.bytesWritten += op.value.length;
        } else r.deletes++;
      }
    });
  };
  await phase(Array.from({ length: keys }, (_, i) => ({ kind: 'put', key: keyOf(i), value: valueFor(i, 0, rand) })));
  progress(`wrote ${keys} keys`);
  for (let round = 1; round <= rounds; round++) {
    // Phase 1, shuffled: overwrite half of the keys, delete a sixth, write a temporary key beside every other one.
    // Phase 2, shuffled: re-create the deleted keys, delete the temporaries.
    const tmpKey = (i: number): string => `${TMP_PREFIX}${round}/${String(i).padStart(KEY_DIGITS, '0')}`;
    const first: Op[] = [];
    const second: Op[] = [];
    for (const i of shuffled(keys, rand)) {
      const x = rand();
      if (x < 0.5) first.push({ kind: 'put', key: keyOf(i), value: valueFor(i, round, rand) });
      else if (x < 0.5 + 1 / 6) {
        first.push({ kind: 'del', key: keyOf(i) });
        second.push({ kind: 'put', key: keyOf(i), value: valueFor(i, round, rand) });
      }
      if (rand() < 0.5) {
        first.push({ kind: 'put', key: tmpKey(i), value: valueFor(i, round, rand) });
        second.push({ kind: 'del', key: tmpKey(i) });
      }
    }
    await phase(first);
    await phase(shuffled(second.length, rand).map((j) => second[j] as Op));
    progress(`churn round ${round}/${rounds}: ${r.puts} puts, ${r.deletes} deletes so far`);
  }
  await mc.compact(revision, { physical: true, timeoutMs: 300_000 });
  r.compactRevision = revision;
  // Pages freed by the compaction's last batch count as free only after a later write commits.
  for (let i = 0; i < 2; i++) {
    await new Promise((res) => setTimeout(res, 150));
    await mc.put(`${PREFIX}.settled`, String(i));
  }
  return r;
}

export interface LogicalDigest {
  /** Keys under the prefix. */
  count: number;
  /** sha256 over every key, value, create/mod revision and version, in key order. */
  sha256: string;
  /** The revision read at. */
  revision: number;
}

/** Reads every key under PREFIX in pages of 2000 at one revision and hashes them. */
export async function logicalDigest(mc: MemberClient, revision: number): Promise<LogicalDigest> {
  const h = createHash('sha256');
  const end = prefixEnd(PREFIX);
  let from: Buffer = Buffer.from(PREFIX);
  let count = 0;
  for (;;) {
    const r = await mc.range(from, { rangeEnd: end, limit: 2000, revision, serializable: true, timeoutMs: 60_000 });
    for (const kv of r.kvs) {
      h.update(kv.key).update('\0').update(kv.value).update(`\0${kv.createRevision}:${kv.modRevision}:${kv.version}\n`);
      count++;
    }
    const last = r.kvs.at(-1);
    if (!r.more || last === undefined) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return { count, sha256: h.digest('hex'), revision };
}
