/**
 * What one cluster's loop remembers about NOSPACE recovery between turns:
 * when the next attempt may come (after one that did not clear the alarm, or
 * while another defragd holds the recovery claim), whether the claim is in
 * the cluster (lock/nospace-claim.ts), and since when another defragd has
 * held it (held too long with the alarm still raised, its holder died: take
 * it over). The decisions about starting are the scheduler's (schedule.ts).
 */
import { nospaceClaimTaken } from '../app/defragment.js';
import { messageOf } from '../domain/errors.js';
import type { RunReport } from '../domain/run.js';
import type { DefragTrigger } from '../domain/trigger.js';
import type { DaemonLogger } from './types.js';

/** After a NOSPACE recovery that did not clear the alarm, the next attempt waits this long (it would fail the same way). */
export const NOSPACE_RETRY_MS = 5 * 60_000;
/** While another defragd holds the NOSPACE recovery claim, look again this often. */
export const NOSPACE_CLAIM_RETRY_MS = 30_000;
/**
 * A claim that stood this long with NOSPACE still raised was taken by a run that died: take it over. A
 * recovery compacts and defragments every member; on the largest clusters that takes minutes, not ten.
 */
export const NOSPACE_CLAIM_STALE_MS = 10 * 60_000;

export class NospaceState {
  /** No NOSPACE recovery before this time. */
  retryAtMs = 0;
  private claimTakenSinceMs: number | null = null;
  private claimPrepared = false;

  constructor(
    private readonly cluster: string,
    private readonly logger: DaemonLogger,
  ) {}

  /** Whether a recovery started at `now` takes over a claim another defragd has held too long. */
  takeOver(now: number): boolean {
    return this.claimTakenSinceMs !== null && now - this.claimTakenSinceMs >= NOSPACE_CLAIM_STALE_MS;
  }

  /**
   * A full observation without NOSPACE (a light one does not read the alarm list): nobody holds the claim
   * now, and it is put in the cluster when it is not known to be there (`prepare`; tried again next time).
   */
  async clear(prepare: () => Promise<void>, runInProgress: boolean): Promise<void> {
    this.claimTakenSinceMs = null;
    if (this.claimPrepared || runInProgress) return;
    try {
      await prepare();
      this.claimPrepared = true;
    } catch (err) {
      this.logger.debug(
        { cluster: this.cluster, err: messageOf(err) },
        'the NOSPACE recovery claim could not be prepared; trying again at the next observation',
      );
    }
  }

  /** A run that never got going: when another defragd holds the claim, look again in a while. */
  notStarted(trigger: DefragTrigger, report: RunReport, now: number): void {
    if (trigger !== 'nospace' || !nospaceClaimTaken(report)) return;
    this.claimTakenSinceMs ??= now;
    this.retryAtMs = now + NOSPACE_CLAIM_RETRY_MS;
  }

  /** A recovery ran: the claim is to be checked again; one that left the alarm waits before the next. */
  recovered(report: RunReport, now: number): void {
    this.claimPrepared = false;
    this.claimTakenSinceMs = null;
    if (report.disarmed) return;
    this.retryAtMs = now + NOSPACE_RETRY_MS;
    this.logger.error(
      { cluster: this.cluster, message: report.message },
      'NOSPACE recovery did not clear the alarm; the next attempt waits 5 minutes',
    );
  }
}
