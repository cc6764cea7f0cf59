/**
 * The run history: runs with their member results and events, and member
 * samples over time, in one SQLite file (better-sqlite3, synchronous: a
 * write is a few microseconds and never spans an await, so a run's rows
 * cannot interleave with another caller's half-written ones).
 *
 * Crash safety: a run is inserted as `running` when it starts and finished in
 * one transaction (outcome and every member result together), so a kill at
 * any moment leaves either a running run or a finished one, never half of
 * one. A run left `running` by a process that no longer exists is marked
 * `interrupted` the next time the store is opened, with the member results
 * its events had recorded so far.
 */
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { memberName } from '../domain/member-name.js';
import type { PastDefrag, Plan } from '../domain/plan.js';
import { skippedResult } from '../domain/results.js';
import type { MemberResult, RunReport, StepEvent } from '../domain/run.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import { StoreError } from './errors.js';
import { OWN_START, processAlive, processStart, stillRunning } from './process.js';
import { APPLICATION_ID, migrate, MIGRATIONS } from './schema.js';
import type {
  DownsampleOptions,
  DownsampleResult,
  ExternalRun,
  RunToReconcile,
  RunTrigger,
  Sample,
  SampleQuery,
  StartRun,
  StoredEvent,
  StoredOutcome,
  StoredRun,
  StoredRunDetail,
} from './types.js';
import { DEFAULT_RUNS_LIMIT, RUN_TRIGGERS } from './types.js';
import { messageOf } from '../domain/errors.js';

/** How long a write waits for another process's transaction before failing (SQLITE_BUSY). */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
export const DEFAULT_FULL_RESOLUTION_MS = 24 * 3_600_000;
export const DEFAULT_BUCKET_MS = 5 * 60_000;
export const DEFAULT_RETENTION_MS = 90 * 24 * 3_600_000;
export { DEFAULT_RUNS_LIMIT } from './types.js';
/** `defragHistory()` without a limit: past defrags per member (the planner's forecast uses 5). */
export const DEFAULT_DEFRAG_HISTORY_LIMIT = 5;

export interface StoreOptions {
  /** Refuse a file that does not exist instead of creating it (`defragd history` reads; it must not create). */
  mustExist?: boolean | undefined;
  busyTimeoutMs?: number | undefined;
  /** The clock, for the times the store stamps itself (events, crash recovery). */
  now?: (() => number) | undefined;
  /** This process, as recorded with each run it starts (default: this host, pid and start, store/process.ts). */
  owner?: { host: string; pid: number; start?: string | null | undefined } | undefined;
  /** Whether a process on this host still exists (default: signal 0); injected by tests. */
  processAlive?: ((pid: number) => boolean) | undefined;
  /** A live process's start (default: from /proc); injected by tests. */
  processStart?: ((pid: number) => string | null) | undefined;
  /** The schema to migrate to (default MIGRATIONS); only tests pass another. */
  migrations?: readonly string[] | undefined;
  /** Check every page and index at open (PRAGMA quick_check) and refuse a corrupt file: the daemon's start. */
  check?: boolean | undefined;
  /**
   * Read the file as it was last checkpointed, without writing anything (no migration, no crash
   * recovery, no WAL): for reading a store where this user or file system cannot write.
   */
  readOnly?: boolean | undefined;
}

/**
 * Opens (creating and migrating when needed) a run history store.
 * Throws StoreError naming the file when it is not a usable store.
 *
 * @example
 * const store = openStore('/var/lib/defragd/history.db');
 * const id = store.startRun({ cluster: 'prod', trigger: 'manual', by: 'ops@host' });
 * store.finishRun(id, report);
 * console.log(store.runs({ cluster: 'prod', limit: 5 }));
 * store.close();
 */
export function openStore(path: string, opts: StoreOptions = {}): Store {
  return new Store(path, opts);
}

type Row = Record<string, unknown>;

export class Store {
  readonly path: string;
  /** The schema version the store had when it was opened (0: created now). */
  readonly openedAtVersion: number;
  readonly #db: Database.Database;
  /** Prepared statements by their SQL: a daemon runs the same few every few seconds. */
  readonly #statements = new Map<string, Database.Statement>();
  readonly #now: () => number;
  readonly #owner: { host: string; pid: number; start: string | null };
  /** runs.proc_start exists (schema 4+; a test may open a store at an older schema). */
  #hasProcStart = true;
  /** runs.reconcile and defrag_counts exist (schema 5+). */
  #hasReconcile = true;
  /** The file opened (device and inode): another file at the path, or none, means it was replaced or deleted. */
  #identity: string | null = null;
  /** sample_members keys already known: rows there are never changed or deleted. */
  readonly #memberKeys = new Map<string, number>();

  /** Use openStore(). */
  constructor(path: string, opts: StoreOptions = {}) {
    this.path = path;
    this.#now = opts.now ?? Date.now;
    this.#owner = opts.owner
      ? { host: opts.owner.host, pid: opts.owner.pid, start: opts.owner.start ?? null }
      : { host: hostname(), pid: process.pid, start: OWN_START };
    const migrations = opts.migrations ?? MIGRATIONS;
    if (path !== ':memory:') checkPath(path, opts.mustExist === true || opts.readOnly === true);
    let db: Database.Database | null = null;
    try {
      if (opts.readOnly) {
        db = readOnlyCopy(path);
        const version = db.pragma('user_version', { simple: true }) as number;
        if (db.pragma('application_id', { simple: true }) !== APPLICATION_ID)
          throw new StoreError(path, 'is not a defragd store (application_id)', { kind: 'usage' });
        if (version !== migrations.length)
          throw new StoreError(
            path,
            `is at schema ${version} and this defragd reads ${migrations.length}: open it once where it can be written (serve or defrag --store) to bring it to this version`,
            { kind: 'usage' },
          );
        this.openedAtVersion = version;
        this.#db = db;
        this.#readColumns(db);
        this.#identity = null;
        return;
      }
      if (path !== ':memory:') createPrivate(path);
      db = new Database(path, { fileMustExist: opts.mustExist === true });
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
      // Reading the header first: a file that is not SQLite fails here with NOTADB, before anything is written.
      const appId = db.pragma('application_id', { simple: true }) as number;
      const version = db.pragma('user_version', { simple: true }) as number;
      if (appId !== 0 && appId !== APPLICATION_ID)
        throw new StoreError(path, 'is a SQLite database of another program (application_id), not a defragd store', { kind: 'usage' });
      if (appId === 0 && version === 0 && hasTables(db))
        throw new StoreError(path, 'is a SQLite database with tables of its own, not a defragd store', { kind: 'usage' });
      if (version > migrations.length) throw newerError(path, version, migrations.length);
      // WAL: readers (history, the dashboard) never block the run being written, nor it them.
      db.pragma('journal_mode = WAL');
      // In WAL mode NORMAL loses no committed transaction when the process dies (only on power loss).
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      const { from, to } = migrate(db, migrations);
      // Another process may have upgraded the file between the check above and the transaction.
      if (to > migrations.length) throw newerError(path, to, migrations.length);
      if (opts.check) {
        // One row may hold several lines under a "*** in database main ***" heading: one line is said, the first problem.
        const problems = (db.pragma('quick_check(5)') as { quick_check: string }[])
          .flatMap((r) => r.quick_check.split('\n'))
          .map((l) => l.trim())
          .filter((l) => l !== 'ok' && l !== '' && !/^\*\*\*.*\*\*\*$/.test(l));
        if (problems.length > 0)
          throw new StoreError(
            path,
            `is corrupt (quick_check: ${problems[0]}${problems.length > 1 ? `, and more` : ''}): move it aside to start a new history, or restore a copy`,
            { kind: 'usage' },
          );
      }
      this.openedAtVersion = from;
      this.#db = db;
      this.#readColumns(db);
      this.#identity = path === ':memory:' ? null : fileIdentity(path);
      this.#recoverDeadRuns(opts.processAlive ?? processAlive, opts.processStart ?? processStart);
    } catch (err) {
      db?.close();
      throw wrap(path, err, 'cannot be opened');
    }
  }

  #readColumns(db: Database.Database): void {
    const runColumns = (db.pragma('table_info(runs)') as { name: string }[]).map((c) => c.name);
    this.#hasProcStart = runColumns.includes('proc_start');
    this.#hasReconcile = runColumns.includes('reconcile');
  }

  /**
   * Whether the file this store writes is still the one at its path: null when it is; else why not
   * (deleted, or replaced by another file). What is written after that is lost when the process ends.
   */
  fileProblem(): string | null {
    if (this.#identity === null) return null;
    let now: string | null;
    try {
      now = fileIdentity(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return null;
      now = null;
    }
    if (now === this.#identity) return null;
    return `${this.path} was ${now === null ? 'deleted' : 'replaced by another file'} while in use: what is recorded now is lost when this process stops; restart it to record into a file again`;
  }

  /** Inserts a run as `running`; returns its id. */
  startRun(run: StartRun): number {
    if (!RUN_TRIGGERS.includes(run.trigger))
      throw new StoreError(this.path, `unknown trigger "${String(run.trigger)}" (one of ${RUN_TRIGGERS.join(', ')})`, { kind: 'usage' });
    const startedAt = run.startedAt !== undefined ? isoToMs(run.startedAt) : this.#now();
    return this.#write('cannot record the run', () =>
      Number(
        this.#stmt(
          this.#hasProcStart
            ? `INSERT INTO runs (cluster, trigger, started_at, outcome, by, dry_run, host, pid, proc_start) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)`
            : `INSERT INTO runs (cluster, trigger, started_at, outcome, by, dry_run, host, pid) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)`,
        ).run(
          run.cluster,
          run.trigger,
          startedAt,
          run.by,
          run.dryRun ? 1 : 0,
          this.#owner.host,
          this.#owner.pid,
          ...(this.#hasProcStart ? [this.#owner.start] : []),
        ).lastInsertRowid,
      ),
    );
  }

  /** Appends one event to a running run (numbered from 1 in arrival order). */
  appendEvent(runId: number, event: StepEvent): void {
    this.#write('cannot record an event', () =>
      this.#db.transaction(() => {
        this.#mustBeRunning(runId);
        this.#stmt(
          `INSERT INTO events (run_id, seq, type, at, data) SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM events WHERE run_id = ?`,
        ).run(runId, event.type, this.#now(), JSON.stringify(event), runId);
      })(),
    );
  }

  /**
   * Writes a running run's outcome, times and member results from its report,
   * in one transaction: `run(id).report` then equals `report`.
   */
  finishRun(runId: number, report: RunReport): void {
    this.#write('cannot record the end of the run', () =>
      this.#db.transaction(() => {
        this.#mustBeRunning(runId);
        this.#stmt(
          `UPDATE runs SET started_at = ?, finished_at = ?, outcome = ?, message = ?, compacted_revision = ?, disarmed = ?, disarm_note = ?,
               reclaimed_bytes = ?, dry_run = ?, warnings = ?, plan = ? WHERE id = ?`,
        ).run(
          // The report is the run's record: its times replace the provisional start (when recording began).
          isoToMs(report.startedAt),
          isoToMs(report.finishedAt),
          report.outcome,
          report.message,
          report.compactedRevision,
          report.disarmed ? 1 : 0,
          report.disarmNote,
          report.reclaimedBytes,
          report.dryRun ? 1 : 0,
          JSON.stringify(report.warnings),
          report.plan === null ? null : JSON.stringify(report.plan),
          runId,
        );
        this.#insertMembers(runId, report.members);
      })(),
    );
  }

  /**
   * Records a defragmentation someone else did as a finished run (trigger
   * `external`, outcome `success`, the one member result), in one
   * transaction: it never shows as running. Returns its id.
   */
  recordExternal(e: ExternalRun): number {
    const m = e.member;
    const reclaimed = m.before && m.after ? Math.max(0, m.before.dbSize - m.after.dbSize) : 0;
    const report: RunReport = {
      outcome: 'success',
      dryRun: false,
      message: e.message,
      startedAt: e.startedAt,
      finishedAt: e.finishedAt,
      compactedRevision: null,
      disarmed: false,
      disarmNote: null,
      reclaimedBytes: reclaimed,
      members: [m],
      warnings: [],
      plan: null,
    };
    return this.#write('cannot record an external run', () =>
      this.#db.transaction(() => {
        const id = this.startRun({ cluster: e.cluster, trigger: 'external', by: e.by, startedAt: e.startedAt });
        this.finishRun(id, report);
        return id;
      })(),
    );
  }

  /** The etcd cluster ID `name` was first seen with and when (ISO); null for a name never seen (or an older store). */
  clusterId(name: string): { clusterId: string; firstSeen: string } | null {
    if (!this.#hasReconcile) return null;
    const row = this.#read(() => this.#stmt(`SELECT cluster_id, first_seen FROM cluster_ids WHERE name = ?`).get(name) as Row | undefined);
    return row ? { clusterId: row['cluster_id'] as string, firstSeen: msToIso(row['first_seen'] as number) } : null;
  }

  /** Remembers the cluster ID behind `name` the first time it is seen (a name keeps its first). */
  rememberClusterId(name: string, clusterId: string): void {
    if (!this.#hasReconcile) return;
    this.#write('cannot record the cluster ID', () =>
      this.#stmt(`INSERT OR IGNORE INTO cluster_ids (name, cluster_id, first_seen) VALUES (?, ?, ?)`).run(name, clusterId, this.#now()),
    );
  }

  /** etcd's defrag count of a member when its Defragment was sent: what a restart compares with if the process dies. */
  noteDefragCount(runId: number, memberId: string, count: number): void {
    if (!this.#hasReconcile) return;
    this.#write('cannot record a defrag count', () =>
      this.#stmt(`INSERT OR REPLACE INTO defrag_counts (run_id, member_id, count) VALUES (?, ?, ?)`).run(runId, memberId, count),
    );
  }

  /**
   * Runs of `cluster` whose process died with work to check against the
   * cluster: members in flight (failed with IN_FLIGHT_REASON) and members
   * defragmented (their in-cluster record may not have been written), oldest first.
   */
  runsToReconcile(cluster: string): RunToReconcile[] {
    if (!this.#hasReconcile) return [];
    return this.#read(() => {
      const runs = this.#stmt(`SELECT id, trigger, by FROM runs WHERE reconcile = 1 AND cluster = ? ORDER BY id`).all(cluster) as Row[];
      return runs.map((r) => {
        const id = r['id'] as number;
        const at = new Map<string, number>();
        for (const e of this.#stmt(
          `SELECT type, at, data FROM events WHERE run_id = ? AND type IN ('member-started', 'member-finished') ORDER BY seq`,
        ).all(id) as Row[]) {
          const event = JSON.parse(e['data'] as string) as StepEvent;
          if (event.type === 'member-started' && !at.has(event.decision.memberId)) at.set(event.decision.memberId, e['at'] as number);
          if (event.type === 'member-finished') at.set(event.result.memberId, e['at'] as number);
        }
        const counts = new Map(
          (this.#stmt(`SELECT member_id, count FROM defrag_counts WHERE run_id = ?`).all(id) as Row[]).map((c) => [
            c['member_id'] as string,
            c['count'] as number,
          ]),
        );
        const members = (this.#stmt(`SELECT * FROM member_results WHERE run_id = ? ORDER BY seq`).all(id) as Row[])
          .map(toMember)
          .filter((m) => m.action === 'defragmented' || m.reason === IN_FLIGHT_REASON)
          .map((result) => ({
            result,
            inFlight: result.reason === IN_FLIGHT_REASON,
            at: msToIso(at.get(result.memberId) ?? 0),
            countAtStart: counts.get(result.memberId) ?? null,
          }));
        return { runId: id, cluster, trigger: r['trigger'] as RunTrigger, by: r['by'] as string, members };
      });
    });
  }

  /**
   * What the check against the cluster found for a run of runsToReconcile: the
   * members' new results replace theirs (matched by member ID), the reclaimed
   * bytes follow, `note` is added to the run's message, and the run is no
   * longer to reconcile. One transaction.
   */
  reconciled(runId: number, results: readonly MemberResult[], note: string | null): void {
    this.#write('cannot record what a restart found', () =>
      this.#db.transaction(() => {
        const update = this.#stmt(
          `UPDATE member_results SET action = ?, reason = ?, after_db_size = ?, after_db_size_in_use = ? WHERE run_id = ? AND member_id = ?`,
        );
        for (const m of results) update.run(m.action, m.reason, m.after?.dbSize ?? null, m.after?.dbSizeInUse ?? null, runId, m.memberId);
        this.#stmt(
          `UPDATE runs SET reconcile = 0,
             message = CASE WHEN ? IS NULL THEN message ELSE COALESCE(message || '; ', '') || ? END,
             reclaimed_bytes = (SELECT COALESCE(SUM(before_db_size - after_db_size), 0) FROM member_results
               WHERE run_id = ? AND action = 'defragmented' AND before_db_size IS NOT NULL AND after_db_size IS NOT NULL)
           WHERE id = ?`,
        ).run(note, note, runId, runId);
      })(),
    );
  }

  /** One sample per member that answered Status; returns how many were written. */
  recordSamples(cluster: string, snapshot: ClusterSnapshot): number {
    const at = isoToMs(snapshot.observedAt);
    return this.#write('cannot record samples', () =>
      this.#db.transaction(() => {
        // A member observed twice at the same millisecond is one observation: the later figures win.
        const insert = this.#stmt(
          `INSERT OR REPLACE INTO samples (member, at, db_size, db_size_in_use, quota, revision, is_leader) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        );
        let n = 0;
        for (const m of snapshot.members) {
          if (m.status === null) continue;
          insert.run(
            this.#sampleMember(cluster, m.memberId, m.name),
            at,
            m.status.dbSize,
            m.status.dbSizeInUse,
            m.status.quota,
            m.status.revision,
            m.status.isLeader ? 1 : 0,
          );
          n++;
        }
        return n;
      })(),
    );
  }

  /** The key of a (cluster, member ID, name) in sample_members, inserted the first time; cached, as it never changes. */
  #sampleMember(cluster: string, memberId: string, name: string): number {
    const id = `${cluster}\u0000${memberId}\u0000${name}`;
    const cached = this.#memberKeys.get(id);
    if (cached !== undefined) return cached;
    this.#stmt(`INSERT OR IGNORE INTO sample_members (cluster, member_id, member_name) VALUES (?, ?, ?)`).run(cluster, memberId, name);
    const key = (
      this.#stmt(`SELECT key FROM sample_members WHERE cluster = ? AND member_id = ? AND member_name = ?`).get(
        cluster,
        memberId,
        name,
      ) as Row
    )['key'] as number;
    this.#memberKeys.set(id, key);
    return key;
  }

  /**
   * Runs newest first, of one cluster or all; with `since` (ISO time), only
   * those still running or finished at or after it (a chart's time range).
   */
  runs(q: { cluster?: string | undefined; limit?: number | undefined; since?: string | undefined } = {}): StoredRun[] {
    const limit = q.limit ?? DEFAULT_RUNS_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new StoreError(this.path, `limit must be a whole number >= 1, got ${limit}`, { kind: 'usage' });
    const conds: string[] = [];
    const args: unknown[] = [];
    if (q.cluster !== undefined) {
      conds.push('r.cluster = ?');
      args.push(q.cluster);
    }
    if (q.since !== undefined) conds.push('(r.finished_at IS NULL OR r.finished_at >= ?)'), args.push(isoToMs(q.since));
    const where = conds.length > 0 ? `WHERE ${conds.join(' AND ')}` : '';
    return this.#read(() =>
      (this.#stmt(`${RUN_SELECT} ${where} ORDER BY r.started_at DESC, r.id DESC LIMIT ?`).all(...args, limit) as Row[]).map(toRun),
    );
  }

  /** A run with its report (null while running) and events; null when there is no such run. */
  run(id: number): StoredRunDetail | null {
    return this.#read(() => {
      const row = this.#stmt(`${RUN_SELECT} WHERE r.id = ?`).get(id) as Row | undefined;
      if (!row) return null;
      const run = toRun(row);
      const events = (this.#stmt(`SELECT seq, at, data FROM events WHERE run_id = ? ORDER BY seq`).all(id) as Row[]).map(
        (e): StoredEvent => ({
          seq: e['seq'] as number,
          at: msToIso(e['at'] as number),
          event: JSON.parse(e['data'] as string) as StepEvent,
        }),
      );
      const members = (this.#stmt(`SELECT * FROM member_results WHERE run_id = ? ORDER BY seq`).all(id) as Row[]).map(toMember);
      const report: RunReport | null =
        run.outcome === 'running' || run.finishedAt === null
          ? null
          : {
              outcome: run.outcome,
              dryRun: run.dryRun,
              message: run.message,
              startedAt: run.startedAt,
              finishedAt: run.finishedAt,
              compactedRevision: run.compactedRevision,
              disarmed: run.disarmed,
              disarmNote: (row['disarm_note'] as string | null) ?? null,
              reclaimedBytes: run.reclaimedBytes,
              members,
              warnings: JSON.parse(row['warnings'] as string) as string[],
              plan: row['plan'] === null ? null : (JSON.parse(row['plan'] as string) as RunReport['plan']),
            };
      return { run, report, events };
    });
  }

  /**
   * Each member's own recent successful defrags, for the duration forecast:
   * its dbSizeInUse before (what the defrag copied) and how long it took, the
   * newest `limit` per member, each member's oldest first, by hex member ID.
   * Runs of every trigger count (external ones with a known duration too), a
   * member whose connection was lost mid-defrag does not (its duration says
   * nothing about its disk), nor do dry runs.
   *
   * @example store.defragHistory({ cluster: 'prod' }) // { '8e9e05c52164694d': [{ dbSizeInUse: 104857600, durationMs: 1200 }] }
   */
  defragHistory(q: { cluster: string; memberId?: string | undefined; limit?: number | undefined }): Record<string, PastDefrag[]> {
    const limit = q.limit ?? DEFAULT_DEFRAG_HISTORY_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new StoreError(this.path, `limit must be a whole number >= 1, got ${limit}`, { kind: 'usage' });
    const member = q.memberId !== undefined ? 'AND m.member_id = :memberId' : '';
    return this.#read(() => {
      const rows = this.#stmt(
        `SELECT member_id, in_use, duration_ms FROM (
             SELECT m.member_id, m.before_db_size_in_use AS in_use, m.duration_ms, r.started_at, r.id, m.seq,
               ROW_NUMBER() OVER (PARTITION BY m.member_id ORDER BY r.started_at DESC, r.id DESC, m.seq DESC) AS rn
             FROM member_results m JOIN runs r ON r.id = m.run_id
             WHERE r.cluster = :cluster AND r.dry_run = 0 AND m.action = 'defragmented' AND m.connection_lost = 0
               AND m.duration_ms > 0 AND m.before_db_size_in_use > 0 ${member}
           ) WHERE rn <= :limit ORDER BY member_id, started_at, id, seq`,
      ).all({ cluster: q.cluster, limit, ...(q.memberId !== undefined ? { memberId: q.memberId } : {}) }) as Row[];
      const out: Record<string, PastDefrag[]> = {};
      for (const r of rows)
        (out[r['member_id'] as string] ??= []).push({ dbSizeInUse: r['in_use'] as number, durationMs: r['duration_ms'] as number });
      return out;
    });
  }

  /** Samples oldest first, of a cluster (and one member), in an inclusive time range. */
  samples(q: SampleQuery): Sample[] {
    const conds = ['m.cluster = ?'];
    const args: unknown[] = [q.cluster];
    if (q.memberId !== undefined) {
      conds.push('m.member_id = ?');
      args.push(q.memberId);
    }
    if (q.from !== undefined) conds.push('s.at >= ?'), args.push(isoToMs(q.from));
    if (q.to !== undefined) conds.push('s.at <= ?'), args.push(isoToMs(q.to));
    return this.#read(() =>
      (
        this.#stmt(
          `SELECT m.cluster, m.member_id, m.member_name, s.* FROM sample_members m JOIN samples s ON s.member = m.key WHERE ${conds.join(' AND ')} ORDER BY s.at, m.member_id, m.key`,
        ).all(...args) as Row[]
      ).map(
        (r): Sample => ({
          cluster: r['cluster'] as string,
          memberId: r['member_id'] as string,
          memberName: r['member_name'] as string,
          at: msToIso(r['at'] as number),
          dbSize: r['db_size'] as number,
          dbSizeInUse: r['db_size_in_use'] as number,
          quota: r['quota'] as number,
          revision: r['revision'] as number,
          isLeader: r['is_leader'] === 1,
        }),
      ),
    );
  }

  /**
   * Keeps every sample younger than fullResolutionMs; older ones are thinned
   * to the last sample of each member in each bucketMs-wide bucket (buckets
   * aligned to the epoch, so thinning again changes nothing). Samples older
   * than retentionMs are deleted, and so are runs that finished before it,
   * with their member results and events (a run still running stays). One
   * transaction.
   *
   * Incremental: the store remembers where the last pass stopped (the start
   * of the bucket its cutoff fell in) and thins only from there, so a pass
   * reads what became old since the last one, not the whole history.
   *
   * @example store.downsample(Date.now()) // hourly, from the daemon
   */
  downsample(now: number, o: DownsampleOptions = {}): DownsampleResult {
    const full = o.fullResolutionMs ?? DEFAULT_FULL_RESOLUTION_MS;
    const bucket = o.bucketMs ?? DEFAULT_BUCKET_MS;
    const retention = o.retentionMs ?? DEFAULT_RETENTION_MS;
    for (const [name, v] of [
      ['fullResolutionMs', full],
      ['bucketMs', bucket],
      ['retentionMs', retention],
    ] as const) {
      if (!Number.isSafeInteger(v) || v <= 0)
        throw new StoreError(this.path, `downsample: ${name} must be a whole number of ms > 0, got ${v}`, { kind: 'usage' });
    }
    return this.#write('cannot downsample samples', () =>
      this.#db.transaction((): DownsampleResult => {
        const horizon = now - retention;
        // Per member (the primary key's order): a range of each member's rows, never the whole table.
        const expired = this.#stmt(`DELETE FROM samples WHERE member IN (SELECT key FROM sample_members) AND at < ?`).run(horizon).changes;
        // ON DELETE CASCADE takes the run's member results and events with it.
        const expiredRuns = this.#stmt(`DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?`).run(horizon).changes;
        const cutoff = now - full;
        const key = `thinned-from:${bucket}`;
        const stored = this.#stmt(`SELECT value FROM store_state WHERE key = ?`).get(key) as Row | undefined;
        // A bucket the last cutoff cut through may hold samples that were then younger: it is read again.
        // (A sample recorded later with a time before that, after the clock was set back, is left unthinned: one row.)
        const from = Math.min((stored?.['value'] as number | undefined) ?? Number.MIN_SAFE_INTEGER, cutoff);
        // The last sample of each bucket stays: a real observation, its figures consistent with each other.
        const thinned = this.#stmt(
          `DELETE FROM samples WHERE (member, at) IN (
               SELECT member, at FROM (
                 SELECT s.member, s.at, ROW_NUMBER() OVER (PARTITION BY m.cluster, m.member_id, s.at / :bucket ORDER BY s.at DESC, s.member DESC) AS rn
                 FROM sample_members m JOIN samples s ON s.member = m.key WHERE s.at >= :from AND s.at < :cutoff
               ) WHERE rn > 1)`,
        ).run({ bucket: BigInt(bucket), from, cutoff }).changes;
        const next = Math.floor(cutoff / bucket) * bucket;
        this.#stmt(
          `INSERT INTO store_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)`,
        ).run(key, next);
        return { thinned, expired, expiredRuns };
      })(),
    );
  }

  close(): void {
    this.#statements.clear();
    if (this.#db.open) this.#db.close();
  }

  #stmt(sql: string): Database.Statement {
    let st = this.#statements.get(sql);
    if (st === undefined) {
      st = this.#db.prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  #insertMembers(runId: number, members: readonly MemberResult[]): void {
    const insert = this.#stmt(
      `INSERT INTO member_results (run_id, seq, endpoint, member_id, name, action, reason, was_leader, moved_leader_to,
         before_db_size, before_db_size_in_use, after_db_size, after_db_size_in_use, duration_ms, revision, deadline_passed, connection_lost)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const [i, m] of members.entries()) {
      insert.run(
        runId,
        i + 1,
        m.endpoint,
        m.memberId,
        m.name,
        m.action,
        m.reason,
        m.wasLeader ? 1 : 0,
        m.movedLeaderTo,
        m.before?.dbSize ?? null,
        m.before?.dbSizeInUse ?? null,
        m.after?.dbSize ?? null,
        m.after?.dbSizeInUse ?? null,
        m.durationMs,
        m.revision,
        m.deadlinePassed ? 1 : 0,
        m.connectionLost ? 1 : 0,
      );
    }
  }

  #mustBeRunning(runId: number): void {
    const row = this.#stmt(`SELECT outcome FROM runs WHERE id = ?`).get(runId) as Row | undefined;
    if (!row) throw new StoreError(this.path, `there is no run ${runId}`, { kind: 'usage' });
    if (row['outcome'] !== 'running')
      throw new StoreError(this.path, `run ${runId} has already finished (${String(row['outcome'])})`, { kind: 'usage' });
  }

  /**
   * Runs left `running` by a process of this host that no longer exists died
   * with it: mark them interrupted, with the member results their
   * member-finished events recorded. Runs of live processes (a defrag going on
   * while `history` reads) and of other hosts are left alone. A process is its
   * pid and its start (store/process.ts): a later process given the same pid
   * (pid 1 in a restarted container, this one included) did not run it.
   */
  #recoverDeadRuns(alive: (pid: number) => boolean, startOf: (pid: number) => string | null): void {
    const columns = `id, host, pid, ${this.#hasProcStart ? 'proc_start' : 'NULL AS proc_start'}, by, started_at`;
    const running = this.#stmt(`SELECT ${columns} FROM runs WHERE outcome = 'running'`).all() as Row[];
    const own = (r: Row) => r['pid'] === this.#owner.pid && (r['proc_start'] === null || r['proc_start'] === this.#owner.start);
    const dead = running.filter(
      (r) =>
        r['host'] === this.#owner.host && !own(r) && !stillRunning(r['pid'] as number, r['proc_start'] as string | null, alive, startOf),
    );
    if (dead.length === 0) return;
    this.#db
      .transaction(() => {
        for (const r of dead) {
          const id = r['id'] as number;
          const left = resultsLeftBy(this.#stmt(`SELECT type, data FROM events WHERE run_id = ? ORDER BY seq`).all(id) as Row[]);
          const reclaimed = left.members.reduce(
            (sum, m) => sum + (m.action === 'defragmented' && m.before && m.after ? m.before.dbSize - m.after.dbSize : 0),
            0,
          );
          const last = this.#stmt(`SELECT MAX(at) AS at FROM events WHERE run_id = ?`).get(id) as Row;
          const inFlight = left.members.filter((m) => m.reason === IN_FLIGHT_REASON).map((m) => memberName(m));
          const message =
            `the process running it (${String(r['by'])}, pid ${String(r['pid'])} on ${String(r['host'])}) died before the run finished; ` +
            (inFlight.length > 0
              ? `${inFlight.join(', ')} had a Defragment in flight, not known to have completed (defragd serve on this store checks it against the cluster when it next observes it; defragd last and etcd's defrag count tell meanwhile)`
              : 'results are those recorded until then');
          // When it died is unknown: its last sign of life (last event, or its start) says more than the time it was found.
          const lastSeen = (last['at'] as number | null) ?? (r['started_at'] as number);
          // A member in flight, or one defragmented whose in-cluster record may not have been written, is checked later.
          const reconcile = left.members.some((m) => m.action === 'defragmented' || m.reason === IN_FLIGHT_REASON) ? 1 : 0;
          // Guarded by outcome: another process opening the store at the same moment recovers it only once.
          const changed = this.#stmt(
            `UPDATE runs SET outcome = 'interrupted', finished_at = ?, message = ?, reclaimed_bytes = ?, plan = COALESCE(plan, ?)${
              this.#hasReconcile ? ', reconcile = ?' : ''
            } WHERE id = ? AND outcome = 'running'`,
          ).run(lastSeen, message, reclaimed, left.plan, ...(this.#hasReconcile ? [reconcile] : []), id).changes;
          if (changed === 1) this.#insertMembers(id, left.members);
        }
      })
      .immediate();
  }

  #write<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw wrap(this.path, err, what);
    }
  }

  #read<T>(fn: () => T): T {
    return this.#write('cannot be read', fn);
  }
}

/** The reason recorded for a member whose Defragment was in flight when its run's process died, until it is checked. */
export const IN_FLIGHT_REASON =
  'its Defragment was in flight when the process running it died; whether it completed is checked against the cluster';

/**
 * What a run's events say it did, for a run whose process died: each member
 * that finished as its event says; a member whose Defragment was sent and
 * never answered as failed with IN_FLIGHT_REASON (never silently lost); the
 * rest of the plan as not attempted, or skipped for the plan's own reason.
 */
function resultsLeftBy(events: readonly Row[]): { members: MemberResult[]; plan: string | null } {
  const finished = new Map<string, MemberResult>();
  const started = new Map<string, Extract<StepEvent, { type: 'member-started' }>>();
  let plan: Plan | null = null;
  for (const row of events) {
    const e = JSON.parse(row['data'] as string) as StepEvent;
    if (e.type === 'run-started') plan = e.plan;
    else if (e.type === 'member-started') started.set(e.decision.memberId, e);
    else if (e.type === 'member-finished') finished.set(e.result.memberId, e.result);
  }
  const members = [...finished.values()];
  for (const [memberId, e] of started) {
    if (finished.has(memberId)) continue;
    const d = e.decision;
    members.push({ ...skippedResult(d, IN_FLIGHT_REASON), action: 'failed', before: e.before });
  }
  const done = new Set(members.map((m) => m.memberId));
  for (const d of plan?.decisions ?? []) {
    if (done.has(d.memberId)) continue;
    members.push(skippedResult(d, d.action === 'skip' ? d.reason : 'not attempted: the process running the run died'));
  }
  return { members, plan: plan === null ? null : JSON.stringify(plan) };
}

const RUN_SELECT = `
  SELECT r.*,
    (SELECT COUNT(*) FROM member_results m WHERE m.run_id = r.id) AS members_total,
    (SELECT COUNT(*) FROM member_results m WHERE m.run_id = r.id AND m.action = 'defragmented') AS members_defragmented,
    (SELECT COUNT(*) FROM member_results m WHERE m.run_id = r.id AND m.action = 'failed') AS members_failed
  FROM runs r`;

function toRun(r: Row): StoredRun {
  const started = r['started_at'] as number;
  const finished = r['finished_at'] as number | null;
  return {
    id: r['id'] as number,
    cluster: r['cluster'] as string,
    trigger: r['trigger'] as RunTrigger,
    by: r['by'] as string,
    startedAt: msToIso(started),
    finishedAt: finished === null ? null : msToIso(finished),
    outcome: r['outcome'] as StoredOutcome,
    message: (r['message'] as string | null) ?? null,
    dryRun: r['dry_run'] === 1,
    compactedRevision: (r['compacted_revision'] as number | null) ?? null,
    disarmed: r['disarmed'] === 1,
    reclaimedBytes: r['reclaimed_bytes'] as number,
    membersTotal: r['members_total'] as number,
    membersDefragmented: r['members_defragmented'] as number,
    membersFailed: r['members_failed'] as number,
    durationMs: finished === null ? null : finished - started,
  };
}

function toMember(r: Row): MemberResult {
  const sizes = (a: unknown, b: unknown) => (a === null || b === null ? null : { dbSize: a as number, dbSizeInUse: b as number });
  return {
    endpoint: r['endpoint'] as string,
    memberId: r['member_id'] as string,
    name: r['name'] as string,
    action: r['action'] as MemberResult['action'],
    reason: r['reason'] as string,
    wasLeader: r['was_leader'] === 1,
    movedLeaderTo: (r['moved_leader_to'] as string | null) ?? null,
    before: sizes(r['before_db_size'], r['before_db_size_in_use']),
    after: sizes(r['after_db_size'], r['after_db_size_in_use']),
    durationMs: (r['duration_ms'] as number | null) ?? null,
    revision: (r['revision'] as number | null) ?? null,
    deadlinePassed: r['deadline_passed'] === 1,
    connectionLost: r['connection_lost'] === 1,
  };
}

function isoToMs(iso: string): number {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new TypeError(`not an ISO time: "${iso}"`);
  return ms;
}

const msToIso = (ms: number) => new Date(ms).toISOString();

function hasTables(db: Database.Database): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1`).get() !== undefined;
}

function newerError(path: string, found: number, known: number): StoreError {
  return new StoreError(
    path,
    `was written by a newer defragd (schema version ${found}; this defragd knows up to version ${known}): upgrade defragd, or use another store file`,
    { kind: 'usage' },
  );
}

/** A directory, or a missing file where one must exist, said plainly (SQLite would say "unable to open database file"). */
/** A new store file is created readable and writable by its owner only (SQLite gives its -wal and -shm the same mode). */
function createPrivate(path: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new StoreError(path, `cannot be created: ${messageOf(err)}`, { kind: 'usage', cause: err });
  }
}

function fileIdentity(path: string): string {
  const st = statSync(path);
  return `${st.dev}:${st.ino}`;
}

/**
 * The store file read into memory, unchanged on disk: SQLite cannot open a WAL-mode file read-only
 * without writing its -shm beside it, so the copy is marked as a rollback-journal file (header bytes
 * 18-19) and opened read-only. Records still in an un-checkpointed -wal are not in it.
 */
function readOnlyCopy(path: string): Database.Database {
  const bytes = readFileSync(path);
  if (bytes.length >= 100 && bytes[18] === 2 && bytes[19] === 2) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  return new Database(bytes, { readonly: true });
}

function checkPath(path: string, mustExist: boolean): void {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (mustExist)
        throw new StoreError(path, 'does not exist (no run has been recorded there: defragd defrag --store creates it)', { kind: 'usage' });
      return;
    }
    throw new StoreError(path, `cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (isDir) throw new StoreError(path, 'is a directory, not a store file', { kind: 'usage' });
}

/** SQLite's result codes, turned into one line naming the file; the caller's usage errors pass through. */
function wrap(path: string, err: unknown, what: string): Error {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown }).code;
  const text = messageOf(err);
  if (err instanceof TypeError || err instanceof RangeError) return new StoreError(path, `${what}: ${text}`, { kind: 'usage', cause: err });
  switch (typeof code === 'string' ? code.replace(/^(SQLITE_[A-Z]+).*/, '$1') : '') {
    case 'SQLITE_NOTADB':
      return new StoreError(path, 'is not a defragd store (not a SQLite database)', { kind: 'usage', cause: err });
    case 'SQLITE_CORRUPT':
      return new StoreError(path, `is corrupt (${text})`, { kind: 'usage', cause: err });
    case 'SQLITE_CANTOPEN':
      return new StoreError(path, `cannot be opened (${text}): does its directory exist, and may this user write there?`, {
        kind: 'usage',
        cause: err,
      });
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new StoreError(path, `${what}: another process holds it locked (${text})`, { cause: err });
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return new StoreError(path, `${what}: not writable (${text})`, { cause: err });
    default:
      return new StoreError(path, `${what}: ${text}`, { cause: err });
  }
}
