/**
 * The JSON of one cluster in `/api/v1/clusters`: the daemon's ClusterView with
 * its snapshot summarised as `defragd status -w json` prints members (same
 * field names, memberId in hex), so scripts read both the same way.
 */
import { statusJson, type StatusJson } from '../app/status-json.js';
import type { ClusterAlarm } from '../domain/snapshot.js';
import type { ClusterView } from './types.js';

export interface ObservationJson {
  /** ISO time the observation that answered finished. */
  observedAt: string;
  clusterId: string | null;
  leaderId: string | null;
  members: StatusJson[];
  alarms: ClusterAlarm[];
  /** Why the alarm list could not be read; null when it was. */
  alarmsError: string | null;
}

export type ClusterJson = Omit<ClusterView, 'snapshot'> & {
  /** The latest observation that answered; null before the first. */
  observation: ObservationJson | null;
};

/**
 * @example
 *   clusterJson(view.cluster('prod')!).observation?.members[0]?.dbSizeFree
 */
export function clusterJson(view: ClusterView): ClusterJson {
  const { snapshot, ...rest } = view;
  return {
    ...rest,
    observation:
      snapshot === null
        ? null
        : {
            observedAt: snapshot.observedAt,
            clusterId: snapshot.clusterId,
            leaderId: snapshot.leaderId,
            members: statusJson(snapshot),
            alarms: snapshot.alarms,
            alarmsError: snapshot.alarmsError,
          },
  };
}
