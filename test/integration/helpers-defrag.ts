/**
 * Helpers for the `defragd defrag` / `alarm` integration tests against real
 * etcd: the CLI in-process with captured output, member sizes as an operator
 * reads them, a fragmenting workload that waits until every member shows the
 * free pages, and a member's Prometheus counters.
 */
import http from 'node:http';
import { expect } from 'vitest';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdClient } from '../../src/etcd/client.js';
import type { ConnectionOptions } from '../../src/etcd/options.js';
import { observeCluster } from '../../src/observe/observe.js';
import type { ClusterSnapshot } from '../../src/domain/snapshot.js';
import type { RunReport } from '../../src/domain/run.js';
import { fragment, type FragmentOptions } from '../../dev/workload.js';

export const MiB = 1024 * 1024;

export { cli, json as parseJson, type CliResult as CliRun } from '../support/cli.js';
import type { CliResult as CliRun } from '../support/cli.js';

/** The JSON report of `defragd defrag -w json` (printers/defrag.ts reportJson has RunReport's fields). */
export type ReportJson = RunReport;

/** Describes a CLI run for assertion messages. */
export function show(r: CliRun): string {
  return `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/** One observation of the whole cluster through the library. */
export async function observe(conn: ConnectionOptions): Promise<ClusterSnapshot> {
  const client = new EtcdClient({ commandTimeoutMs: 5_000, ...conn });
  try {
    return await observeCluster(client, { cluster: true, timeoutMs: 5_000 });
  } finally {
    client.close();
  }
}

export interface MemberSizes {
  dbSize: number;
  dbSizeInUse: number;
  isLeader: boolean;
  memberId: string;
  endpoint: string;
}

/** Sizes by member name of every member that answers Status. */
export async function sizes(conn: ConnectionOptions): Promise<Record<string, MemberSizes>> {
  const snap = await observe(conn);
  const out: Record<string, MemberSizes> = {};
  for (const m of snap.members) {
    if (m.status)
      out[m.name] = {
        dbSize: m.status.dbSize,
        dbSizeInUse: m.status.dbSizeInUse,
        isLeader: m.memberId === snap.leaderId,
        memberId: m.memberId,
        endpoint: m.endpoint,
      };
  }
  return out;
}

/** Just dbSize by member name, for "nothing changed" comparisons. */
export async function dbSizes(conn: ConnectionOptions): Promise<Record<string, number>> {
  const s = await sizes(conn);
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.dbSize]));
}

/**
 * Writes a fragmenting workload (overwrite + physical compaction) and waits
 * until every answering member, learners included, shows at least `minFree`
 * bytes a defrag would reclaim (members compact on their own schedule).
 * Resolves with the compacted revision.
 */
export async function fragmentAndWait(
  conn: ConnectionOptions,
  opts: FragmentOptions & { minFree: number; members: number },
): Promise<number> {
  const { minFree, members, ...workload } = opts;
  const revision = await fragment(conn, { valueSize: 256 * 1024, ...workload });
  // A follower applies the compaction on its own time: a minute, for a machine busy with other test files.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const snap = await observe(conn);
    const ready = snap.members.filter((m) => m.status !== null && m.status.dbSizeFree >= minFree);
    if (ready.length >= members) return revision;
    if (Date.now() > deadline) {
      throw new Error(
        `members did not show ${minFree} free bytes within 60 s: ${JSON.stringify(snap.members.map((m) => [m.name, m.status?.dbSize, m.status?.dbSizeInUse]))}`,
      );
    }
    await sleep(200);
  }
}

/** GETs a member's /metrics and returns the value of one unlabelled sample; null when absent. */
export async function metric(endpoint: string, name: string, tls?: { caFile: string }): Promise<number | null> {
  const url = new URL('/metrics', endpoint);
  const body = await new Promise<string>((resolve, reject) => {
    const options = url.protocol === 'https:' && tls ? { ca: readFileSync(tls.caFile) } : {};
    const req = (url.protocol === 'https:' ? https : http).get(url, { ...options, timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? null : Number(line.slice(name.length + 1));
}

/** How many Defragment calls the member has finished since it started (etcd's own histogram count). */
export const defragCount = (endpoint: string, tls?: { caFile: string }) =>
  metric(endpoint, 'etcd_disk_backend_defrag_duration_seconds_count', tls);

/** A put through one member; resolves with the error message, or null when it succeeded. */
export async function tryPut(conn: ConnectionOptions, endpoint: string, key: string, value: string | Buffer): Promise<string | null> {
  const client = new EtcdClient({ commandTimeoutMs: 5_000, ...conn });
  try {
    await client.member(endpoint).put(key, value);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    client.close();
  }
}

/** Fragments only when some member has less than `minFree` to reclaim (tests that change nothing leave it as it was). */
export async function ensureFragmented(
  conn: ConnectionOptions,
  opts: FragmentOptions & { minFree: number; members: number },
): Promise<void> {
  const snap = await observe(conn);
  const ready = snap.members.filter((m) => m.status !== null && m.status.dbSizeFree >= opts.minFree);
  if (ready.length >= opts.members) return;
  await fragmentAndWait(conn, opts);
}

const NOSPACE = /database space exceeded/;

/**
 * Overwrites keys without compacting until a put fails with NOSPACE, then
 * writes once through every member: a member raises NOSPACE for itself when
 * a put it serves would take its own dbSize over the quota (dbSize + the
 * put's size), which is how clients spread over all members see it. The
 * probe is 1 MiB so that every member of a 16 MiB-quota cluster, each a
 * little under or over it, raises its own alarm.
 */
export async function fillUntilNospace(conn: ConnectionOptions, prefix: string): Promise<void> {
  await expect(
    fragment({ endpoints: [conn.endpoints[0] as string] }, { bytes: 6 * MiB, passes: 12, valueSize: 256 * 1024, compact: false, prefix }),
  ).rejects.toThrow(NOSPACE);
  const probe = Buffer.alloc(MiB, 'p');
  // A follower still applying the last writes is a little smaller: probe each member until it has raised its own.
  for (let i = 0; i < 50; i++) {
    const snap = await observe(conn);
    const raised = new Set(snap.alarms.filter((a) => a.alarm === 'NOSPACE').map((a) => a.memberId));
    const missing = snap.members.filter((m) => !raised.has(m.memberId));
    if (missing.length === 0) return;
    // A member a little further under the quota takes the probe (seen on 3.4): the next probe, another key, grows it more.
    for (const m of missing) {
      const err = await tryPut(conn, m.endpoint, `${prefix}probe-${i}`, probe);
      if (err !== null) expect(err).toMatch(NOSPACE);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('fillUntilNospace: some member never raised NOSPACE after 50 probes');
}
