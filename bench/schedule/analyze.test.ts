import { describe, expect, it } from 'vitest';
import { analyzeCluster, stallSeconds } from './analyze.js';
import type { ProbeRecord } from './probe.js';
import type { MemberSample } from './sampler.js';

const MiB = 1024 * 1024;

function sample(t: number, member: string, dbSize: number, dbSizeInUse: number, more: Partial<MemberSample> = {}): MemberSample {
  return {
    t,
    member,
    dbSize: dbSize * MiB,
    dbSizeInUse: dbSizeInUse * MiB,
    quota: 256 * MiB,
    defrags: 0,
    defragSeconds: 0,
    isLeader: false,
    leaderChanges: 0,
    ...more,
  };
}

function probe(member: string, start: number, end: number): ProbeRecord {
  return { member, kind: 'get', start, end, ok: true, error: null };
}

describe('bench-schedule analysis', () => {
  it('stall-seconds: per member the union of the time past the threshold, summed over members', () => {
    // m1: two overlapping slow requests, 1000–3000 and 2000–4000 ms, past 100 ms: [1100, 4000] = 2.9 s; m2: 0.4 s.
    const records = [probe('m1', 1000, 3000), probe('m1', 2000, 4000), probe('m1', 5000, 5050), probe('m2', 0, 500)];
    expect(stallSeconds(records, 100)).toBeCloseTo(3.3, 6);
    // Only what falls inside the runs counts for the goal.
    expect(stallSeconds(records, 100, undefined, [{ start: 3000, end: 10_000 }])).toBeCloseTo(1.0, 6);
  });

  it('reclaimed bytes are the drops of dbSize; the most one defrag could reclaim is the largest free space seen', () => {
    const samples = [
      sample(0, 'm1', 100, 70),
      sample(1000, 'm1', 110, 70), // compaction: 40 MiB free
      sample(2000, 'm1', 72, 72, { defrags: 1, defragSeconds: 1.5 }), // defragmented: 38 MiB reclaimed
      sample(0, 'm2', 100, 80),
      sample(2000, 'm2', 100, 75),
    ];
    const f = analyzeCluster([], samples, [], { start: 0, end: 5000 }, [{ start: 1500, end: 2500 }], 100);
    expect(f.memberDefrags).toBe(1);
    expect(f.defragSeconds).toBeCloseTo(1.5, 6);
    expect(f.reclaimedBytes).toBe(38 * MiB);
    expect(f.maxFreeBytes).toBe(40 * MiB);
    expect(f.peakDbSize).toBe(110 * MiB);
  });
});
