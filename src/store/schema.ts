/**
 * The store's schema as ordered migrations. Migration i (0-based) takes a
 * store from `PRAGMA user_version` i to i + 1; a store is only ever moved
 * forward, all pending steps in one transaction, so a crash during an upgrade
 * leaves the old version intact. Never edit a released migration: append one.
 *
 * Times are epoch milliseconds (INTEGER): they sort and bucket without
 * parsing. Member IDs are hex TEXT (uint64 exceeds 2^53).
 */
import type Database from 'better-sqlite3';

/** Marks a SQLite file as a defragd store ("dfrg"), so another program's database is never migrated into one. */
export const APPLICATION_ID = 0x64667267;

export const MIGRATIONS: readonly string[] = Object.freeze([
  // 1: runs, their member results and events; member samples.
  `
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'auto', 'nospace', 'manual', 'api', 'external')),
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT NOT NULL CHECK (outcome IN ('running', 'success', 'nothing-to-do', 'failed', 'refused', 'interrupted', 'dry-run')),
    message TEXT,
    compacted_revision INTEGER,
    disarmed INTEGER NOT NULL DEFAULT 0,
    disarm_note TEXT,
    reclaimed_bytes INTEGER NOT NULL DEFAULT 0,
    by TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    -- The process writing the run: a run left 'running' by a process that no longer exists died with it.
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    warnings TEXT NOT NULL DEFAULT '[]',
    plan TEXT
  );
  CREATE INDEX runs_by_cluster_newest ON runs (cluster, started_at DESC, id DESC);
  CREATE INDEX runs_newest ON runs (started_at DESC, id DESC);
  CREATE INDEX runs_running ON runs (outcome) WHERE outcome = 'running';

  CREATE TABLE member_results (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    member_id TEXT NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('defragmented', 'skipped', 'failed')),
    reason TEXT NOT NULL,
    was_leader INTEGER NOT NULL,
    moved_leader_to TEXT,
    before_db_size INTEGER,
    before_db_size_in_use INTEGER,
    after_db_size INTEGER,
    after_db_size_in_use INTEGER,
    duration_ms INTEGER,
    revision INTEGER,
    deadline_passed INTEGER NOT NULL,
    connection_lost INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
  );

  CREATE TABLE events (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    at INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
  );

  CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    cluster TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_name TEXT NOT NULL,
    at INTEGER NOT NULL,
    db_size INTEGER NOT NULL,
    db_size_in_use INTEGER NOT NULL,
    quota INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    is_leader INTEGER NOT NULL
  );
  CREATE INDEX samples_by_member_time ON samples (cluster, member_id, at);
  CREATE INDEX samples_by_time ON samples (at);
  `,
  // 2: where the last thinning stopped, so the next one reads only what became old since.
  `
  CREATE TABLE store_state (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 3: small sample rows. A sample named its cluster, member ID and name in
  // every row and had two indexes (~128 bytes a row); the names now sit once
  // in sample_members and a sample is its member's key, its time and its
  // figures, clustered by (member, time): the one order every query reads in.
  `
  CREATE TABLE sample_members (
    key INTEGER PRIMARY KEY,
    cluster TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_name TEXT NOT NULL,
    UNIQUE (cluster, member_id, member_name)
  );
  CREATE TABLE samples_v3 (
    member INTEGER NOT NULL REFERENCES sample_members (key),
    at INTEGER NOT NULL,
    db_size INTEGER NOT NULL,
    db_size_in_use INTEGER NOT NULL,
    quota INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    is_leader INTEGER NOT NULL,
    PRIMARY KEY (member, at)
  ) WITHOUT ROWID;
  INSERT INTO sample_members (cluster, member_id, member_name)
    SELECT DISTINCT cluster, member_id, member_name FROM samples ORDER BY cluster, member_id, member_name;
  -- Two samples of one member at the same millisecond were one observation recorded twice: the later row is kept.
  INSERT OR REPLACE INTO samples_v3 (member, at, db_size, db_size_in_use, quota, revision, is_leader)
    SELECT m.key, s.at, s.db_size, s.db_size_in_use, s.quota, s.revision, s.is_leader
    FROM samples s JOIN sample_members m ON m.cluster = s.cluster AND m.member_id = s.member_id AND m.member_name = s.member_name
    ORDER BY s.id;
  DROP TABLE samples;
  ALTER TABLE samples_v3 RENAME TO samples;
  `,
  // 4: the start of the process running a run (boot id and start time, store/process.ts), so that a later
  // process given the same pid (pid 1 in a restarted container) is not taken for it.
  `
  ALTER TABLE runs ADD COLUMN proc_start TEXT;
  `,
  // 5: what a run that died leaves to check against the cluster, and the cluster ID behind each name. A run interrupted by its process's death with
  // a member's Defragment in flight (or a member defragmented whose in-cluster record may not be written) is
  // marked \`reconcile\`; each member's etcd defrag count when its Defragment was sent is kept beside it.
  `
  ALTER TABLE runs ADD COLUMN reconcile INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE defrag_counts (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (run_id, member_id)
  ) WITHOUT ROWID;
  CREATE INDEX runs_reconcile ON runs (cluster) WHERE reconcile = 1;
  -- The etcd cluster ID each name was first seen with: endpoints that later reach another cluster are refused.
  CREATE TABLE cluster_ids (
    name TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    first_seen INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
]);

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Applies the migrations from the store's version up to `migrations.length`,
 * in one IMMEDIATE transaction (a second process opening the same new file
 * waits, then finds it migrated). Returns the version found before.
 * Throws (the caller wraps it) when the store is newer than `migrations`.
 */
export function migrate(db: Database.Database, migrations: readonly string[] = MIGRATIONS): { from: number; to: number } {
  return db
    .transaction(() => {
      const from = db.pragma('user_version', { simple: true }) as number;
      if (from > migrations.length) return { from, to: from };
      for (let v = from; v < migrations.length; v++) db.exec(migrations[v] as string);
      if (from < migrations.length) {
        db.pragma(`user_version = ${migrations.length}`);
        db.pragma(`application_id = ${APPLICATION_ID}`);
      }
      return { from, to: migrations.length };
    })
    .immediate();
}
