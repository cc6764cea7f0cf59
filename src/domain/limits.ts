/**
 * The largest values the duration settings accept, shared by the CLI's flags
 * and the daemon's config file so both refuse the same typos.
 */

/**
 * Connecting takes milliseconds on a LAN and seconds across regions; an hour
 * is already far past anything useful, and keeps a typo such as 9999h from
 * overflowing Node's timers (MAX_TIMER_MS).
 */
export const MAX_DIAL_TIMEOUT_MS = 3_600_000;
/**
 * Ordinary calls (Status, MemberList, MoveLeader, a physical Compact) take
 * milliseconds to minutes even on multi-GiB members; an hour bounds a typo
 * such as 999999999h, which grpc-js would reject mid-run ("Deadline is too
 * far in the future") after members may already have been touched.
 */
export const MAX_COMMAND_TIMEOUT_MS = 3_600_000;

/**
 * Reported defrags take about 1 s per 100 MB (a comment in etcd's backend) and
 * 17-21 s for 3.8 GB in use (gardener/etcd-backup-restore#1061), over 30 s for
 * 8 GB (k3s-io/k3s#11122); a day covers the slowest disk with a wide margin. Longer
 * is a typo, and past Node's timer limit it would fire at once.
 */
export const MAX_DEFRAG_TIMEOUT_MS = 24 * 3_600_000;
/** A pause of more than a day between members is a schedule, not a pause: use cron. */
export const MAX_WAIT_BETWEEN_MS = 24 * 3_600_000;
/**
 * maxDefragDuration: a limit on one member's expected defrag time. Anything
 * a defrag deadline may be, it may be; longer is a typo.
 */
export const MAX_MAX_DEFRAG_DURATION_MS = MAX_DEFRAG_TIMEOUT_MS;
