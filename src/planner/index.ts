/** The planner's public face: ClusterSnapshot + Policy → Plan, one member's Turn, and the definitions both use. */
export { planDefrag, defragTimeoutMs } from './plan.js';
export { afterDefrag, planTurn, votersDown, type AfterDefrag } from './turn.js';
export {
  DEFAULT_FORECAST_SAMPLES,
  describeForecast,
  exceedsMaxDuration,
  forecastDefragMs,
  forecastOrigin,
  memberForecast,
  type DurationForecast,
} from './forecast.js';
export { DEFAULT_LEADER_MOVES_MAX, DEFAULT_LEADER_MOVES_PER_MS, leaderMovesAllowed, rationedBecause } from './leader-moves.js';
export { alarmsToDisarm, checkDisarm, disarmDecision } from './disarm.js';
export {
  defectWarning,
  describeDefects,
  membersWithDefects,
  midUpgrade,
  refusesDefrag,
  releasesInUse,
  stopGrpcNote,
  versionWarnings,
} from './versions.js';
export {
  catchUpTarget,
  chooseTransferee,
  compactionRevision,
  currentRevision,
  describeMembers,
  hasCaughtUp,
  isLearner,
  leaderOf,
  leaderOrHealthyVoter,
  leadershipMovedAway,
  leads,
  memberById,
  nospaceRaised,
  shortName,
  unfitVoters,
  voters,
  votersHealthy,
} from './cluster.js';
