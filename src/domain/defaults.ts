/**
 * Defaults that more than one layer needs (the library's options, the CLI's
 * flags and their help), named once. Each consumer's own tuning stays with it
 * (the executor's waits in executor/options.ts, the client's deadlines in
 * etcd/options.ts).
 */

/** --endpoints when none is given, as etcdctl. */
export const DEFAULT_ENDPOINT = '127.0.0.1:2379';

/** --disarm-below: every member's dbSize must be under this fraction of its quota before NOSPACE is disarmed. */
export const DEFAULT_DISARM_BELOW = 0.9;

/** The cluster lock's key. */
export const DEFAULT_LOCK_KEY = '/defragd/lock';

/** The cluster lock's lease TTL: how long a holder that died blocks other runs. */
export const DEFAULT_LOCK_TTL_SECONDS = 30;

/**
 * Where each run records, in the cluster itself, when it last defragmented a
 * member: `<prefix>/members/<memberIdHex>/last-defrag`.
 */
export const DEFAULT_RECORD_PREFIX = '/defragd';
