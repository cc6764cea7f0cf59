/**
 * What `make bench-daemon` reads about the daemon from outside, never from
 * its own say-so where the kernel or the file system can tell: memory and CPU
 * from /proc/<pid>, the store's size from the file system and its contents
 * (rows and the bytes of each table and index, SQLite's dbstat) from the file
 * itself once the daemon has closed it. The event-loop delay is the one
 * figure only the process knows: it comes from the daemon's /metrics.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (getconf CLK_TCK; 100 on Linux). */
export const CLOCK_TICKS: number = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  /** Epoch ms of the reading. */
  at: number;
  /** Resident set size now (VmRSS), bytes. */
  rssBytes: number;
  /** Peak resident set size since the process started (VmHWM), bytes. */
  hwmBytes: number;
  /** Of the RSS: file-backed pages (RssFile: the node executable's code and shared libraries, clean and shared) and the process's own (RssAnon + RssShmem), bytes. */
  rssFileBytes: number;
  rssOwnBytes: number;
  /** User + system CPU time since the process started (utime + stime), seconds. */
  cpuSeconds: number;
}

/** Reads VmRSS (and its file-backed and own parts), VmHWM and utime+stime of a live process; null when it is gone. */
export function readProc(pid: number): ProcSample | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const kib = (field: string): number => {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
      if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
      return Number(m[1]) * 1024;
    };
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(rest[11]) + Number(rest[12]);
    return {
      at: Date.now(),
      rssBytes: kib('VmRSS'),
      hwmBytes: kib('VmHWM'),
      rssFileBytes: kib('RssFile'),
      rssOwnBytes: kib('RssAnon') + kib('RssShmem'),
      cpuSeconds: ticks / CLOCK_TICKS,
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return null;
    throw err;
  }
}

/** CPU seconds (utime + stime) of a process, or null when it is gone. */
export function cpuSecondsOf(pid: number): number | null {
  return readProc(pid)?.cpuSeconds ?? null;
}

export interface StoreFiles {
  file: number;
  wal: number;
  shm: number;
  total: number;
}

/** Sizes of the store, its -wal and its -shm (0 for a file that does not exist). */
export function storeFiles(path: string): StoreFiles {
  const size = (p: string): number => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  const file = size(path);
  const wal = size(`${path}-wal`);
  const shm = size(`${path}-shm`);
  return { file, wal, shm, total: file + wal + shm };
}

export interface TableBytes {
  /** Rows of the table. */
  rows: number;
  /** Bytes of the pages of the table and its indexes (dbstat's pgsize: page slack included, as on disk). */
  bytes: number;
  /** Of which payload (the rows' own bytes, dbstat's payload). */
  payload: number;
}

export interface StoreContents {
  pageSize: number;
  pageCount: number;
  freePages: number;
  tables: Record<'samples' | 'runs' | 'member_results' | 'events', TableBytes>;
  /** Sample rows per cluster and member, their first and last time (ms). */
  sampleSpan: { clusters: number; members: number; firstAt: number | null; lastAt: number | null };
  runs: {
    cluster: string;
    trigger: string;
    outcome: string;
    startedAt: number;
    finishedAt: number | null;
    reclaimedBytes: number;
    members: number;
    defragmented: number;
  }[];
}

/** Which B-trees (tables and their indexes) belong to each table, by the schema's own names. */
const TREES: Record<keyof StoreContents['tables'], string[]> = {
  samples: ['samples', 'sample_members', 'sqlite_autoindex_sample_members_1', 'store_state'],
  runs: ['runs', 'runs_by_cluster_newest', 'runs_newest', 'runs_running', 'sqlite_sequence'],
  member_results: ['member_results', 'sqlite_autoindex_member_results_1'],
  events: ['events', 'sqlite_autoindex_events_1'],
};

/** Opens a closed store read-only and measures it. */
export function storeContents(path: string): StoreContents {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const pgsize = new Map(
      (
        db.prepare('SELECT name, SUM(pgsize) AS bytes, SUM(payload) AS payload FROM dbstat GROUP BY name').all() as {
          name: string;
          bytes: number;
          payload: number;
        }[]
      ).map((r) => [r.name, r]),
    );
    const known = new Set(Object.values(TREES).flat());
    const unknown = [...pgsize.keys()].filter((n) => !known.has(n) && n !== 'sqlite_schema' && n !== 'sqlite_master');
    if (unknown.length > 0)
      throw new Error(
        `the store has B-trees the benchmark does not attribute: ${unknown.join(', ')} (update TREES in bench/daemon-measure.ts)`,
      );
    const table = (name: keyof StoreContents['tables']): TableBytes => ({
      rows: (db.prepare(`SELECT COUNT(*) AS n FROM ${name}`).get() as { n: number }).n,
      bytes: TREES[name].reduce((s, t) => s + (pgsize.get(t)?.bytes ?? 0), 0),
      payload: TREES[name].reduce((s, t) => s + (pgsize.get(t)?.payload ?? 0), 0),
    });
    const span = db
      .prepare(
        'SELECT COUNT(DISTINCT m.cluster) AS clusters, COUNT(DISTINCT m.cluster || m.member_id) AS members, MIN(s.at) AS firstAt, MAX(s.at) AS lastAt FROM samples s JOIN sample_members m ON m.key = s.member',
      )
      .get() as StoreContents['sampleSpan'];
    const runs = db
      .prepare(
        `SELECT r.cluster, r.trigger, r.outcome, r.started_at AS startedAt, r.finished_at AS finishedAt, r.reclaimed_bytes AS reclaimedBytes,
                (SELECT COUNT(*) FROM member_results m WHERE m.run_id = r.id) AS members,
                (SELECT COUNT(*) FROM member_results m WHERE m.run_id = r.id AND m.action = 'defragmented') AS defragmented
         FROM runs r ORDER BY r.started_at`,
      )
      .all() as StoreContents['runs'];
    return {
      pageSize: db.pragma('page_size', { simple: true }) as number,
      pageCount: db.pragma('page_count', { simple: true }) as number,
      freePages: db.pragma('freelist_count', { simple: true }) as number,
      tables: { samples: table('samples'), runs: table('runs'), member_results: table('member_results'), events: table('events') },
      sampleSpan: span,
      runs,
    };
  } finally {
    db.close();
  }
}

/** The value of a sample in a Prometheus exposition (`name` or `name{label="v"}` as printed), or null. */
export function metricValue(text: string, series: string): number | null {
  const m = new RegExp(`^${series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  if (!m) return null;
  const v = Number(m[1]);
  return Number.isFinite(v) ? v : null;
}
