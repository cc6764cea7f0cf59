/**
 * Starting one run of a cluster in the background: the same runDefrag the
 * CLI uses (cluster lock, planner, executor), recorded in the store from its
 * first event (a run that found the lock busy records nothing), each event
 * streamed, counted and logged (its important steps as they happen,
 * step-log.ts). What the run means for the cluster's loop
 * (cooldown, NOSPACE back-off, leader moves) is the loop's: it gets `onStep`
 * and the report.
 */
import type { RunOptions } from '../app/defragment.js';
import { messageOf } from '../domain/errors.js';
import type { Policy } from '../domain/plan.js';
import type { RunReport, StepEvent } from '../domain/run.js';
import type { DefragTrigger } from '../domain/trigger.js';
import { recordRun, type StoredRunWriter, type Store } from '../store/index.js';
import type { ClusterAccess } from './access.js';
import type { StoreHealth } from './store-health.js';
import type { Clock } from './clock.js';
import type { DaemonMetrics } from './metrics.js';
import { stepLogLine } from './step-log.js';
import type { ClusterView, DaemonEvent, DaemonLogger } from './types.js';

/** A run in progress, as the loop and the API see it. */
export interface RunInProgress {
  /** The store's id once the run recorded its first event; null before (or when it never starts). */
  runId: number | null;
  /** It got going (its first event: it holds the cluster lock, or went ahead without it). */
  started: boolean;
  trigger: DefragTrigger;
  currentMember: ClusterView['currentMember'];
  /** The report when it ends; null when it failed to start at all (logged). */
  done: Promise<RunReport | null>;
  /** What it threw when it failed to start at all (endpoints of two clusters, say); null otherwise. */
  failure: unknown;
}

export interface LaunchDeps {
  store: Store;
  storeHealth: StoreHealth;
  metrics: DaemonMetrics;
  logger: DaemonLogger;
  clock: Clock;
  by: string;
  lockWaitMs: number;
  emit(e: DaemonEvent): void;
}

export interface LaunchRequest {
  cluster: string;
  trigger: DefragTrigger;
  policy: Policy;
  access: ClusterAccess;
  options: Pick<RunOptions, 'observe' | 'execute' | 'takeOverNospaceClaim'> & { record: false | { prefix: string } };
  /** Stops the run after its current member (the daemon is stopping). */
  signal: AbortSignal;
  /** etcd's defrag count of a member as last observed: kept with a Defragment sent, for a restart to judge it by. */
  defragCountOf?(memberId: string): number | null;
  /** Every event of the run, after it is recorded and streamed. */
  onStep(event: StepEvent): void;
  /** The run recorded its report (it started: it held the lock or went ahead without it). */
  onRecorded(report: RunReport): void;
  /** It never got going (refused before its first event: the lock busy, the NOSPACE claim taken, ...). */
  onNotStarted?(report: RunReport): void;
  /** Last of all, started or not. */
  onSettled(): void;
}

/**
 * A run that got going: its id in the store, or null when the store could not record it (it goes on
 * unrecorded); or one waiting for the cluster lock another run holds (`waiting` says whose and how long).
 */
export type Started = { runId: number | null; waiting?: string | undefined } | null;

/** A writer for a run the store could not start recording: the run goes on, nothing is written. */
const UNRECORDED: StoredRunWriter = { runId: -1, onEvent: () => undefined, finish: () => undefined };

/**
 * Starts the run; `started` resolves once it got going (its first event), null when it never did
 * (the lock was busy, the cluster did not answer).
 *
 * @example const { running, started } = launchRun({ cluster: 'prod', trigger: 'api', policy, access, ... }, deps);
 */
export function launchRun(req: LaunchRequest, deps: LaunchDeps): { running: RunInProgress; started: Promise<Started> } {
  let announce: (s: Started) => void = () => undefined;
  const started = new Promise<Started>((resolve) => (announce = resolve));
  const { cluster, trigger } = req;
  const running: RunInProgress = {
    runId: null,
    started: false,
    trigger,
    currentMember: null,
    done: Promise.resolve(null),
    failure: null,
  };
  let recorder: StoredRunWriter | null = null;
  const onEvent = (event: StepEvent): void => {
    if (recorder === null) {
      // A store that cannot record is the store's problem: the run, a NOSPACE recovery above all, goes on.
      recorder = deps.storeHealth.write(
        'record a run',
        () =>
          recordRun(deps.store, {
            cluster,
            trigger,
            by: deps.by,
            onError: (err) => deps.storeHealth.failed('record a run', messageOf(err), { cluster }),
          }),
        UNRECORDED,
        { cluster },
      );
      running.runId = recorder === UNRECORDED ? null : recorder.runId;
      running.started = true;
      announce({ runId: running.runId });
      deps.metrics.lockHeld(cluster, true);
    }
    recorder.onEvent(event);
    if (event.type === 'member-started' && running.runId !== null) noteCount(running.runId, event.decision.memberId);
    trackMember(running, event, deps.clock);
    const line = stepLogLine(event);
    if (line !== null) deps.logger[line.level]({ cluster, runId: running.runId, ...line.fields }, line.msg);
    req.onStep(event);
    deps.emit({ cluster, runId: running.runId, at: new Date(deps.clock.now()).toISOString(), event });
  };
  // Before the Defragment goes out (onEvent is synchronous): if this process dies with it in flight, the count then is the evidence.
  const noteCount = (runId: number, memberId: string): void => {
    const count = req.defragCountOf?.(memberId) ?? null;
    if (count === null) return;
    deps.storeHealth.write('record a defrag count', () => deps.store.noteDefragCount(runId, memberId, count), undefined, { cluster });
  };
  deps.metrics.runStarted(cluster, trigger);
  running.done = (async () => {
    try {
      const { record } = req.options;
      const report = await req.access.run(req.policy, {
        observe: req.options.observe,
        execute: req.options.execute,
        takeOverNospaceClaim: req.options.takeOverNospaceClaim,
        lock: {
          waitMs: deps.lockWaitMs,
          holder: `${deps.by} (defragd serve)`,
          onBusy: (current, waitMs) => {
            const waiting = `for the cluster lock, held by ${current ? `${current.holder} since ${current.since}` : 'another run'}; the run starts when it is free (waiting up to ${Math.ceil(waitMs / 1_000)} s)`;
            deps.logger.info(
              { cluster, trigger, holder: current?.holder ?? null, since: current?.since ?? null, waitMs },
              'waiting for the cluster lock',
            );
            announce({ runId: null, waiting });
          },
        },
        record: record === false ? false : { prefix: record.prefix, trigger, by: deps.by },
        signal: req.signal,
        onEvent,
      });
      const writer = recorder as StoredRunWriter | null;
      if (writer === null) {
        deps.logger.info({ cluster, trigger, outcome: report.outcome, reason: report.message }, 'run not started');
        req.onNotStarted?.(report);
      } else {
        writer.finish(report);
        req.onRecorded(report);
        deps.logger.info(
          {
            cluster,
            trigger,
            runId: running.runId,
            outcome: report.outcome,
            reclaimedBytes: report.reclaimedBytes,
            message: report.message,
          },
          'run finished',
        );
      }
      deps.metrics.runFinished(cluster, trigger, report);
      return report;
    } catch (err) {
      deps.logger.error({ cluster, trigger, err: messageOf(err) }, 'run failed to start');
      running.failure = err;
      return null;
    } finally {
      announce(null);
      deps.metrics.lockHeld(cluster, false);
      req.onSettled();
    }
  })();
  return { running, started };
}

function trackMember(running: RunInProgress, event: StepEvent, clock: Clock): void {
  if (event.type === 'member-started') {
    running.currentMember = {
      memberId: event.decision.memberId,
      name: event.decision.name,
      startedAt: new Date(clock.now()).toISOString(),
    };
  } else if (event.type === 'member-finished') {
    running.currentMember = null;
  }
}
