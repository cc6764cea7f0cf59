/**
 * The disarm sequence, shared by a run's NOSPACE step and `defragd alarm
 * disarm`: send each deactivation to the leader (or a healthy voter: learners
 * refuse alarm requests), then read back what is still raised. Which alarms
 * to disarm is the planner's to say.
 */
import { DefragdError } from '../domain/errors.js';
import type { ClusterAlarm, ClusterSnapshot } from '../domain/snapshot.js';
import { leaderOrHealthyVoter } from '../planner/index.js';
import type { ClusterPort } from './port.js';

/**
 * Disarms `alarms` and returns every alarm still raised afterwards.
 *
 * @example const { remaining } = await disarmAlarms(port, snapshot, alarmsToDisarm(snapshot, false));
 */
export async function disarmAlarms(
  port: ClusterPort,
  snapshot: ClusterSnapshot,
  alarms: readonly ClusterAlarm[],
  signal?: AbortSignal,
): Promise<{ remaining: ClusterAlarm[] }> {
  const via = leaderOrHealthyVoter(snapshot);
  if (!via) throw new DefragdError('failed', 'no voting member answered, so no alarm was disarmed');
  for (const a of alarms) await port.alarmDisarm(via.endpoint, a.memberId, a.alarm, { signal });
  return { remaining: await port.alarmList(via.endpoint, { signal }) };
}
