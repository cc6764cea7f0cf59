/** The unit parsers moved to src/domain/units.ts (the daemon's config needs them too); re-exported so the CLI's imports stay. */
export * from '../../domain/units.js';
