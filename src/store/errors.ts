/**
 * The one error a store throws. It names the file, so an operator with more
 * than one --store (a cron job and a daemon, say) knows which one is unusable,
 * and its kind picks the exit code: a file that is not a usable store is the
 * operator's to fix (usage, exit 2), a lock or a disk that fails is not (exit 1).
 */
import { DefragdError } from '../domain/errors.js';

export class StoreError extends DefragdError {
  /** The store file as given (`:memory:` for an in-memory store). */
  readonly file: string;
  constructor(file: string, message: string, options: { kind?: 'usage' | 'failed'; cause?: unknown } = {}) {
    super(options.kind ?? 'failed', `store ${file}: ${message}`, { cause: options.cause });
    this.file = file;
  }
}
