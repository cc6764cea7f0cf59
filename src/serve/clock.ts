/**
 * The daemon's time: what it reads as now and how it waits. A dependency, so
 * unit tests drive the daemon with a fake clock (vitest's fake timers behind
 * `systemClock`, or a clock of their own).
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's clock, read at each call (so vitest's fake timers replace it too). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** One loop's sleep that another part can cut short (a run finished, the daemon stops). */
export class Sleeper {
  private timer: unknown = null;
  private resolveNow: (() => void) | null = null;

  constructor(private readonly clock: Clock) {}

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.timer !== null) this.clock.clearTimeout(this.timer);
        this.timer = null;
        this.resolveNow = null;
        resolve();
      };
      this.resolveNow = done;
      this.timer = this.clock.setTimeout(done, ms);
    });
  }

  /** Ends the current sleep now; no-op when not sleeping. */
  wake(): void {
    this.resolveNow?.();
  }
}
