/**
 * The policy of one daemon run, decided in one place for whatever asks: the
 * auto check at every observation, the run it starts, a run or a dry run from
 * the API. So the check and the run agree by construction: the check starts a
 * run exactly when that run's plan defragments some member. Pure: the daemon
 * gathers the facts (store reads, its clock, its leader moves) and passes them.
 */
import type { Plan, Policy } from '../domain/plan.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { DefragTrigger } from '../domain/trigger.js';
import { planDefrag } from '../planner/index.js';

/** What the daemon knows that shapes a run's policy, besides the cluster's configured policy. */
export interface PolicyFacts {
  /** The cluster's configured policy (buildPolicy of its config). */
  base: Policy;
  /** Each member's past defrags from the store; undefined when the store could not be read (forecasts unknown). */
  defragHistory: Policy['defragHistory'];
  /** When this daemon moved leadership lately (the ration counts them). */
  leaderMovesMs: readonly number[];
  nowMs: number;
  /** Revisions the compaction retention keeps; null: no retention, or the samples do not reach back that far. */
  keepRevisions: number | null;
}

/**
 * The policy a run started by `trigger` plans with:
 * - every trigger: the member history (forecasts, maxDefragDuration) and the leader-move ration;
 * - with a compaction retention: compact, keeping that many revisions;
 * - `nospace`: every member whatever the rule says (writes are down until each dbSize is under the
 *   margin), compacting to the newest revision when no retention says otherwise, and disarming after.
 *
 * @example policyFor('auto', { base, defragHistory, leaderMovesMs: [], nowMs: Date.now(), keepRevisions: null })
 */
export function policyFor(trigger: DefragTrigger, facts: PolicyFacts): Policy {
  const policy: Policy = {
    ...facts.base,
    ...(facts.defragHistory !== undefined ? { defragHistory: facts.defragHistory } : {}),
    leaderMoves: { movedAtMs: facts.leaderMovesMs, nowMs: facts.nowMs },
  };
  if (trigger === 'nospace')
    return { ...policy, rule: null, compactKeepRevisions: facts.keepRevisions ?? 0, disarmNospace: true, onlyWhileNospace: true };
  return facts.keepRevisions === null ? policy : { ...policy, compactKeepRevisions: facts.keepRevisions };
}

/**
 * The auto check: the plan an auto run would make now, and whether it defragments some member (a
 * refused plan defragments none). With the forecast and the ration: a cluster whose only due member
 * is over maxDefragDuration, or is the leader while the ration is spent, starts no run that would skip it.
 */
export function autoCheck(snapshot: ClusterSnapshot, facts: PolicyFacts): { due: boolean; plan: Plan } {
  const plan = planDefrag(snapshot, policyFor('auto', facts));
  return { due: plan.decisions.some((d) => d.action === 'defragment'), plan };
}
