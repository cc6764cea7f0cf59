/** Every exit code defragd uses, defined once. */
import { DefragdError } from '../domain/errors.js';
import type { RunReport } from '../domain/run.js';

export const EXIT = {
  /** Success, or nothing to do. */
  OK: 0,
  /** A member failed or did not answer. */
  FAILED: 1,
  /** Bad usage: flags, endpoint, rule, files. Nothing was changed. */
  USAGE: 2,
  /** Refused: the cluster is not in a state where the run is safe. Nothing was changed. */
  REFUSED: 3,
  /** Interrupted by a signal. */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof DefragdError) {
    switch (err.kind) {
      case 'usage':
        return EXIT.USAGE;
      case 'refused':
        return EXIT.REFUSED;
      case 'aborted':
        return EXIT.INTERRUPTED;
      default:
        return EXIT.FAILED;
    }
  }
  return EXIT.FAILED;
}

/** The one mapping from a run's outcome to the process's exit code. */
export function exitCodeForReport(report: RunReport): ExitCode {
  switch (report.outcome) {
    case 'success':
    case 'nothing-to-do':
    case 'dry-run':
      return EXIT.OK;
    case 'refused':
      return EXIT.REFUSED;
    case 'interrupted':
      return EXIT.INTERRUPTED;
    case 'failed':
      return EXIT.FAILED;
  }
}
