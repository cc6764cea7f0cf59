/** The planner's public face: ClusterSnapshot + Policy → Plan, and the checks the executor repeats. */
export { planDefrag, chooseTransferee, defragTimeoutMs, votersHealthy, checkDisarm, leaderOrHealthyVoter } from './plan.js';
