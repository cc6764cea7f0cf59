/**
 * What starts a run, defined once. The store's runs, the records a run
 * leaves in the cluster, the daemon's scheduler and its metrics all take
 * their triggers from here; the store's SQL CHECK lists the same words
 * (its migration is history and is not rewritten: a test compares them).
 */

/** Every trigger a stored run can have: `external` is a defragmentation someone else did, noticed by the daemon. */
export const RUN_TRIGGERS = Object.freeze(['schedule', 'auto', 'nospace', 'manual', 'api', 'external'] as const);
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

/** The runs defragd itself starts: every trigger but `external`. The CLI says `manual`; the library defaults to `api`. */
export type DefragTrigger = Exclude<RunTrigger, 'external'>;
export const DEFRAG_TRIGGERS: readonly DefragTrigger[] = Object.freeze(RUN_TRIGGERS.filter((t): t is DefragTrigger => t !== 'external'));

/** The runs the daemon's scheduler starts by itself, most urgent first. */
export const START_TRIGGERS = Object.freeze(['nospace', 'schedule', 'auto'] as const satisfies readonly DefragTrigger[]);
export type StartTrigger = (typeof START_TRIGGERS)[number];
