/** The run history store: SQLite on better-sqlite3. See store.ts. */
export {
  openStore,
  Store,
  type StoreOptions,
  DEFAULT_BUSY_TIMEOUT_MS,
  DEFAULT_BUCKET_MS,
  DEFAULT_FULL_RESOLUTION_MS,
  DEFAULT_RETENTION_MS,
  DEFAULT_RUNS_LIMIT,
  DEFAULT_DEFRAG_HISTORY_LIMIT,
  IN_FLIGHT_REASON,
} from './store.js';
export { StoreError } from './errors.js';
export { recordRun, type RecordRunOptions, type StoredRunWriter } from './record.js';
export { MIGRATIONS, SCHEMA_VERSION, migrate } from './schema.js';
export * from './types.js';
export { processAlive, processStart, stillRunning, OWN_START } from './process.js';
