/**
 * The executor's polling: what a wait costs when what it waits for holds
 * soon (catch-up, a leader move), and what it costs the cluster when it
 * does not.
 */
import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot } from '../domain/snapshot.js';
import type { ClusterPort } from './port.js';
import { waitFor } from './wait.js';

function countingPort(): { port: ClusterPort; looks: () => number } {
  let n = 0;
  const port = { observe: async () => (n++, {} as ClusterSnapshot) } as unknown as ClusterPort;
  return { port, looks: () => n };
}

describe('waitFor', () => {
  it('looks again fast at first: a condition true on the third look is seen long before two full poll intervals', async () => {
    const { port, looks } = countingPort();
    const t0 = Date.now();
    await waitFor({ port, now: Date.now, pollIntervalMs: 2_000, firstPollMs: 10 }, undefined, () => looks() >= 3, 60_000, 'the third look');
    // With a fixed 2 s poll this takes at least 4 s; starting at 10 ms it takes about 30 ms (generous for a busy machine).
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(looks()).toBe(3);
  });

  it('backs off to pollIntervalMs: a long wait costs the cluster about one look per interval, then gives up naming what it waited for', async () => {
    const { port, looks } = countingPort();
    const wait = waitFor(
      { port, now: Date.now, pollIntervalMs: 100, firstPollMs: 10 },
      undefined,
      () => false,
      700,
      'something that never holds',
    );
    await expect(wait).rejects.toThrow(/gave up waiting .* for something that never holds/);
    // 10, 20, 40, 80 ms, then 100 ms apart: about 10 looks in 700 ms (a fixed 10 ms poll would make about 70).
    expect(looks()).toBeGreaterThanOrEqual(3);
    expect(looks()).toBeLessThanOrEqual(15);
  });
});
