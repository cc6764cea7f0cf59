/**
 * The record a run leaves in the cluster itself after defragmenting a member,
 * and what `defragd last` / defragmentationStatus() make of it per member.
 * Kept in etcd rather than on the host, so any host (another operator, the
 * daemon after a restart) can tell when each member was last defragmented.
 */
import type { Sizes } from './run.js';

import type { DefragTrigger } from './trigger.js';

/** The value stored at `<prefix>/members/<memberIdHex>/last-defrag` (JSON). */
export interface DefragRecord {
  /** ISO time the member's defragmentation finished (it had answered again and caught up). */
  at: string;
  /** The member's revision right after its defragmentation; null when unknown. */
  revision: number | null;
  /** Duration of the Defragment call. */
  durationMs: number | null;
  before: Sizes | null;
  after: Sizes | null;
  trigger: DefragTrigger;
  /** Who ran it: "<hostname>:<pid>" unless the caller said otherwise. */
  by: string;
}

/**
 * One member's defragmentation status: its last recorded defragmentation and
 * what has accumulated since. The JSON of `defragd last -w json`, field for field.
 */
export interface MemberDefragStatus {
  endpoint: string;
  /** Hex, as etcdctl prints it. */
  memberId: string;
  name: string;
  /** The record, or null when none is known (never defragmented by defragd, or unreadable: see `record`). */
  lastDefrag: DefragRecord | null;
  /**
   * `found`; `none` (no record); `invalid` (a value that is not a record: see `warning`);
   * `unreadable` (the records could not be read: see `error`).
   */
  record: 'found' | 'none' | 'invalid' | 'unreadable';
  /** Seconds since lastDefrag.at; null without a record. */
  ageSeconds: number | null;
  /** before.dbSize - after.dbSize of the last defragmentation; null when unknown. */
  reclaimedBytes: number | null;
  /** The member's etcd release; null when it did not answer. */
  version: string | null;
  /** Current figures; null when the member did not answer. */
  dbSize: number | null;
  dbSizeInUse: number | null;
  /** Free space accumulated since (what a defragmentation now would reclaim). */
  dbSizeFree: number | null;
  fragmentation: number | null;
  /** Why a stored value was not taken as a record; null otherwise. */
  warning: string | null;
  /** Why the member or its record could not be read; null otherwise. */
  error: string | null;
}
