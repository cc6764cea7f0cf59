/**
 * The executor's waits: polling the cluster until something holds, and
 * waiting out a Defragment that got no answer. Every wait is bounded and
 * ends early on abort.
 */
import { AbortedError, DefragdError } from '../domain/errors.js';
import { formatDuration } from '../domain/format.js';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { ClusterPort } from './port.js';

export interface WaitDeps {
  port: ClusterPort;
  now: () => number;
  /** The longest pause between two polls. */
  pollIntervalMs: number;
  /** The first pause between two polls; each next one doubles, up to pollIntervalMs. */
  firstPollMs: number;
}

/** Sleeps, turning an abort into AbortedError. On the global timers, so a test's fake timers drive it too. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError('interrupted'));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError('interrupted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Polls the cluster (light observations) until `pred` holds; throws
 * DefragdError('timeout') naming what was awaited. The first poll is at once,
 * the pauses after it start at firstPollMs and double up to pollIntervalMs:
 * what is awaited usually holds within tens of milliseconds, and a slow wait
 * still costs the cluster no more than one light observation per pollIntervalMs.
 */
export async function waitFor(
  deps: WaitDeps,
  signal: AbortSignal | undefined,
  pred: (s: ClusterSnapshot) => boolean,
  timeoutMs: number,
  what: string,
): Promise<ClusterSnapshot> {
  const deadline = deps.now() + timeoutMs;
  let delay = Math.min(deps.firstPollMs, deps.pollIntervalMs);
  for (;;) {
    const snap = await deps.port.observe({ light: true, signal });
    if (pred(snap)) return snap;
    if (deps.now() >= deadline) throw new DefragdError('timeout', `gave up waiting ${formatDuration(timeoutMs)} for ${what}`);
    await pause(delay, signal);
    delay = Math.min(delay * 2, deps.pollIntervalMs);
  }
}

/**
 * After a Defragment got no answer: waits until the member answers Status
 * again and, where its /metrics can be read, etcd_disk_defrag_inflight is 0.
 * Resolves true when it did within `limitMs`, false when it did not.
 */
export async function waitForDefragEnd(
  deps: WaitDeps,
  endpoint: string,
  limitMs: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const deadline = deps.now() + limitMs;
  for (;;) {
    const [answered, inflight] = await Promise.all([
      deps.port.status(endpoint, { timeoutMs: 2_000, signal }).then(
        () => true,
        () => false,
      ),
      deps.port.defragInFlight(endpoint, { timeoutMs: 2_000, signal }),
    ]);
    if (signal?.aborted) throw new AbortedError('interrupted');
    if (answered && (inflight === null || inflight === 0)) return true;
    if (deps.now() >= deadline) return false;
    await pause(Math.min(deps.pollIntervalMs * 4, Math.max(1, deadline - deps.now())), signal);
  }
}
