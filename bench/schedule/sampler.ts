/**
 * What `make bench-schedule` reads from etcd itself, once a second per
 * member: dbSize, in use, quota, the defrag counter and who leads (from the
 * member's /metrics, which answers during a defrag), and the alarms.
 */
import type { EtcdClient } from '../../src/index.js';
import { fetchGauges } from '../../src/etcd/metrics.js';
import { now, sleep } from '../util.js';

const GAUGES = {
  dbSize: 'etcd_mvcc_db_total_size_in_bytes',
  dbSizeInUse: 'etcd_mvcc_db_total_size_in_use_in_bytes',
  quota: 'etcd_server_quota_backend_bytes',
  defrags: 'etcd_disk_backend_defrag_duration_seconds_count',
  defragSeconds: 'etcd_disk_backend_defrag_duration_seconds_sum',
  isLeader: 'etcd_server_is_leader',
  leaderChanges: 'etcd_server_leader_changes_seen_total',
} as const;

export interface MemberSample {
  t: number;
  member: string;
  dbSize: number;
  dbSizeInUse: number;
  quota: number;
  defrags: number;
  defragSeconds: number;
  isLeader: boolean;
  leaderChanges: number;
}

export interface AlarmSample {
  t: number;
  /** Names of the members with an active NOSPACE alarm; null when no member answered. */
  nospace: string[] | null;
}

export class Sampler {
  readonly samples: MemberSample[] = [];
  readonly alarms: AlarmSample[] = [];
  private readonly stopper = new AbortController();
  private loops: Promise<void>[] = [];

  constructor(
    private readonly client: EtcdClient,
    private readonly members: readonly { name: string; url: string; memberId: string }[],
    private readonly everyMs: number,
  ) {}

  start(): void {
    this.loops = [...this.members.map((m) => this.memberLoop(m)), this.alarmLoop()];
  }

  private async memberLoop(m: { name: string; url: string }): Promise<void> {
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      const began = now();
      const g = await fetchGauges(m.url, Object.values(GAUGES), null, { timeoutMs: 5_000 });
      const get = (k: keyof typeof GAUGES): number | undefined => g?.get(GAUGES[k]);
      const dbSize = get('dbSize');
      if (dbSize !== undefined) {
        this.samples.push({
          t: now(),
          member: m.name,
          dbSize,
          dbSizeInUse: get('dbSizeInUse') ?? NaN,
          quota: get('quota') ?? NaN,
          defrags: get('defrags') ?? 0,
          defragSeconds: get('defragSeconds') ?? 0,
          isLeader: get('isLeader') === 1,
          leaderChanges: get('leaderChanges') ?? 0,
        });
      }
      await sleep(Math.max(0, this.everyMs - (now() - began)), signal);
    }
  }

  /** AlarmList through whichever member answers first within a second (a defragmenting member does not). */
  private async alarmLoop(): Promise<void> {
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      const began = now();
      let nospace: string[] | null = null;
      for (const m of this.members) {
        try {
          const list = await this.client.member(m.url).alarmList({ timeoutMs: 1_000 });
          nospace = list
            .filter((a) => a.alarm === 'NOSPACE')
            .map((a) => this.members.find((x) => x.memberId === a.memberId)?.name ?? a.memberId);
          break;
        } catch {
          /* try the next member */
        }
      }
      this.alarms.push({ t: now(), nospace });
      await sleep(Math.max(0, this.everyMs - (now() - began)), signal);
    }
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.allSettled(this.loops);
  }
}
