/**
 * One cluster's scheduled starts: the drawn (jittered) start it waits for,
 * drawn after the cron time of the previous one, so a start is never lost or
 * doubled (after now on the first draw; see schedule.ts's header).
 */
import type { ScheduleConfig } from './config.js';
import { drawScheduledStart, type PendingStart } from './schedule.js';

export class ScheduledStarts {
  /** The start this cluster waits for; null without a schedule, or when none is drawn. */
  pending: PendingStart | null = null;
  /** The cron time the last start was drawn for. */
  private lastScheduledMs: number | null = null;

  constructor(
    private readonly schedule: ScheduleConfig | null,
    private readonly timezone: string,
    private readonly random: () => number,
    /** Told each new pending start (ms since the epoch), or null. */
    private readonly onDrawn: (startMs: number | null) => void,
  ) {}

  /** Draws the next start (jitter included) when none is pending. */
  draw(now: number): void {
    if (!this.schedule || this.pending !== null) return;
    this.pending = drawScheduledStart(this.schedule, this.timezone, Math.max(this.lastScheduledMs ?? 0, now - 1), this.random);
    if (this.pending) this.lastScheduledMs = this.pending.scheduledMs;
    this.onDrawn(this.pending?.startMs ?? null);
  }

  /** The pending start was taken (it started) or dropped (skipped): the next one is drawn when asked. */
  done(): void {
    this.pending = null;
  }
}
