/**
 * The store as the daemon's own condition, apart from the clusters': a write
 * that fails (disk full, file deleted, read-only) is counted, shown in
 * /readyz and logged (the first failure, then at most once a minute), and
 * never stops an observation, a run or a NOSPACE recovery. The history is
 * lost for as long as it fails; the clusters are not.
 */
import { messageOf } from '../domain/errors.js';
import type { Clock } from './clock.js';
import type { DaemonMetrics } from './metrics.js';
import type { DaemonLogger } from './types.js';

const LOG_EVERY_MS = 60_000;
/** How often a write also checks that the store's file is still the one at its path. */
export const FILE_CHECK_EVERY_MS = 30_000;

export class StoreHealth {
  private failing: { since: string; operation: string; message: string } | null = null;
  private loggedAtMs = -Infinity;
  private suppressed = 0;
  private fileCheckedAtMs = -Infinity;
  /** The file was deleted or replaced: writes "succeed" into a file no one will read again, so this stays until a restart. */
  private fileGone: string | null = null;

  constructor(
    private readonly deps: {
      metrics: DaemonMetrics;
      logger: DaemonLogger;
      clock: Clock;
      /** Store.fileProblem: null while the file written is the one at the store's path. */
      fileProblem?: () => string | null;
    },
  ) {}

  /** A write: a failure is recorded and returns `fallback` instead of throwing; a success after failures clears them. */
  write<T>(operation: string, fn: () => T, fallback: T, context: object = {}): T {
    return this.run(operation, fn, fallback, context, true);
  }

  /** A read: as write(), but a success says nothing of writes (a full disk still reads). */
  read<T>(operation: string, fn: () => T, fallback: T, context: object = {}): T {
    return this.run(operation, fn, fallback, context, false);
  }

  private run<T>(operation: string, fn: () => T, fallback: T, context: object, write: boolean): T {
    try {
      const value = fn();
      if (write) this.checkFile(context);
      if (write && this.failing !== null && this.fileGone === null) {
        this.deps.logger.info({ operation, since: this.failing.since }, 'the store works again');
        this.failing = null;
        this.deps.metrics.storeOk(true);
      }
      return value;
    } catch (err) {
      this.failed(operation, messageOf(err), context);
      return fallback;
    }
  }

  private checkFile(context: object): void {
    const now = this.deps.clock.now();
    if (this.fileGone !== null || this.deps.fileProblem === undefined || now - this.fileCheckedAtMs < FILE_CHECK_EVERY_MS) return;
    this.fileCheckedAtMs = now;
    const problem = this.deps.fileProblem();
    if (problem === null) return;
    this.fileGone = problem;
    this.failed('keep its file', problem, context);
  }

  /** Why the store is failing, for /readyz; null while it works. */
  problem(): string | null {
    if (this.failing === null) return null;
    const message = this.fileGone ?? this.failing.message;
    return `the store fails (${this.fileGone === null ? this.failing.operation : 'keep its file'}, since ${this.failing.since}): ${message}`;
  }

  failed(operation: string, message: string, context: object = {}): void {
    const now = this.deps.clock.now();
    this.deps.metrics.storeFailed(operation);
    this.deps.metrics.storeOk(false);
    if (this.failing === null) this.failing = { since: new Date(now).toISOString(), operation, message };
    else this.failing = { ...this.failing, operation, message };
    if (now - this.loggedAtMs >= LOG_EVERY_MS) {
      this.deps.logger.error(
        { ...context, operation, err: message, ...(this.suppressed > 0 ? { alsoFailedSinceLastLine: this.suppressed } : {}) },
        'the store failed: observation and runs go on, unrecorded',
      );
      this.loggedAtMs = now;
      this.suppressed = 0;
    } else {
      this.suppressed++;
    }
  }
}
