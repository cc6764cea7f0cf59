/**
 * Who leads, over time: each member is asked for Status every ~50 ms (a loop
 * per member, so a member stalled by its own defrag does not hold up the
 * others) and every answer is kept with its arrival time and raft term.
 */
import { EtcdClient } from '../src/internals.js';
import type { LoadTarget } from './load.js';
import { now, sleep } from './util.js';

export interface LeaderSample {
  /** Arrival time of the Status answer. */
  t: number;
  /** Name of the member that answered. */
  reporter: string;
  /** Hex ID of the leader it knows; null when none. */
  leaderId: string | null;
  term: number;
}

export class LeaderPoller {
  readonly samples: LeaderSample[] = [];
  errors = 0;
  private readonly client: EtcdClient;
  private readonly loops: Promise<void>[] = [];
  private readonly stopper = new AbortController();

  constructor(
    private readonly targets: readonly LoadTarget[],
    private readonly intervalMs = 50,
  ) {
    this.client = new EtcdClient({ endpoints: targets.map((t) => t.url) });
  }

  start(): void {
    for (const t of this.targets) this.loops.push(this.loop(t));
  }

  private async loop(t: LoadTarget): Promise<void> {
    const mc = this.client.member(t.url);
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      try {
        const s = await mc.status({ timeoutMs: 10_000 });
        this.samples.push({ t: now(), reporter: t.name, leaderId: s.leader, term: s.raftTerm });
      } catch {
        this.errors++;
      }
      await sleep(this.intervalMs, signal);
    }
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.allSettled(this.loops);
    this.client.close();
  }
}

/**
 * The leader as a step function of time: answers are taken in arrival order
 * and one from an older raft term than already seen is ignored, so a member
 * that has not yet heard of an election cannot put an old leader back.
 * Returns the change points.
 */
export function leaderTimeline(samples: readonly LeaderSample[]): { t: number; leaderId: string | null; term: number }[] {
  const sorted = [...samples].sort((a, b) => a.t - b.t);
  const out: { t: number; leaderId: string | null; term: number }[] = [];
  let term = -1;
  let leader: string | null = null;
  for (const s of sorted) {
    if (s.term < term || s.leaderId === null) continue;
    if (s.term > term || s.leaderId !== leader) {
      term = s.term;
      leader = s.leaderId;
      out.push({ t: s.t, leaderId: leader, term });
    }
  }
  return out;
}

/**
 * Whether memberId led at any sample inside [start, end]: every answer that
 * arrived inside the window is read through the term-aware timeline.
 */
export function ledDuring(samples: readonly LeaderSample[], memberId: string, start: number, end: number): boolean {
  const timeline = leaderTimeline(samples);
  const inside = samples.filter((s) => s.t >= start && s.t <= end);
  return inside.some((s) => leaderAt(timeline, s.t) === memberId);
}

export function leaderAt(timeline: readonly { t: number; leaderId: string | null }[], t: number): string | null {
  let leader: string | null = null;
  for (const p of timeline) {
    if (p.t > t) break;
    leader = p.leaderId;
  }
  return leader;
}
