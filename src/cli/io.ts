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
  /** Registers a clean-up to run before the process exits at once (a second SIGINT); returns its unregister. */
  registerCleanup?: ((cleanup: () => Promise<void>) => () => void) | undefined;
  /** Registers a handler for SIGHUP (reload); returns its unregister. Without one, SIGHUP stops like SIGTERM. */
  onReload?: ((handler: () => void) => () => void) | undefined;
}
