/** What a command may touch of its process: passed in, so commands run in tests without one. */
import type { Env } from './config/flags.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** stdout is a terminal: live progress lines instead of log lines. */
  isTTY: boolean;
  env: Env;
  /** Aborted on SIGINT/SIGTERM. */
  signal?: AbortSignal | undefined;
}
