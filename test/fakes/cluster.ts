/**
 * A scripted, in-memory etcd cluster for unit tests of the executor: no gRPC,
 * no processes. Its state is a list of members (sizes, health, alarms, raft
 * indexes) and a leader; `port` is the executor's ClusterPort on that state:
 * `observe()` builds a ClusterSnapshot with the test builders, and the other
 * calls answer as etcd would, recording every one of them.
 *
 * It also watches the safety promises the executor makes and records a
 * violation (instead of throwing, so the executor's own handling is not in
 * the way) when one is broken:
 * - a Defragment on the member that leads at that moment (with >1 voter);
 * - a Defragment while another voter is still catching up after its own;
 * - a Defragment while another Defragment is running;
 * - a MoveLeader sent to a member that does not lead;
 * - an AlarmDisarm of anything but NOSPACE.
 *
 * Behaviour is scripted by replacing the `on*` handlers; the defaults behave
 * like a healthy cluster (Defragment shrinks dbSize to dbSizeInUse, MoveLeader
 * hands leadership over at once).
 */
import { AbortedError, ConnectionError } from '../../src/domain/errors.js';
import type { ClusterSnapshot } from '../../src/domain/snapshot.js';
import type { AlarmEntry } from '../../src/etcd/client.js';
import type { ClusterPort } from '../../src/executor/port.js';
import { aSnapshot, memberIdAt, MiB } from '../builders.js';

export interface FakeMember {
  name: string;
  memberId: string;
  endpoint: string;
  dbSize: number;
  dbSizeInUse: number;
  quota: number;
  revision: number;
  reachable: boolean;
  healthy: boolean;
  isLearner: boolean;
  error: string | null;
  alarms: string[];
  /** Light polls left before this member has applied what the leader committed (0: caught up). */
  lag: number;
}

export type FakeMethod = 'defragment' | 'moveLeader' | 'status' | 'alarmList' | 'alarmDisarm' | 'compact' | 'defragInFlight';

export interface FakeCall {
  /** Global order of calls (and observations). */
  seq: number;
  method: FakeMethod;
  endpoint: string;
  /** Name of the member the endpoint belongs to. */
  member: string;
  args: unknown[];
  /** Name of the leader when the call was made; null when none. */
  leaderAtCall: string | null;
}

interface CallOpts {
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface FakeClusterOptions {
  /** Light polls a member lags behind the leader after its Defragment (default 2). */
  lagAfterDefrag?: number;
}

export class FakeCluster {
  readonly members: FakeMember[];
  leader: string | null;
  readonly calls: FakeCall[] = [];
  readonly violations: string[] = [];
  /** Alarms for IDs that are not members. */
  readonly orphanAlarms: AlarmEntry[] = [];
  observations = 0;
  raftIndex = 20_000;
  lagAfterDefrag: number;
  private seq = 0;
  private defragsRunning = 0;

  /** Runs in place of the default Defragment (call `fake.shrink(m)` for what etcd does); may throw or hang. */
  onDefragment: (m: FakeMember, opts: CallOpts & { timeoutMs: number }) => Promise<void> = async (m) => {
    this.shrink(m);
  };
  /** Runs in place of the default MoveLeader (leadership goes to the target at once). */
  onMoveLeader: (from: FakeMember, to: FakeMember) => Promise<void> = async (_from, to) => {
    this.leader = to.name;
  };
  /** Runs before a Status answers; throw to make it fail. Default: fails when the member is unreachable. */
  onStatus: (m: FakeMember) => Promise<void> = async (m) => {
    if (!m.reachable) throw new ConnectionError(m.endpoint, `${m.endpoint}: connection refused`);
  };
  onCompact: (revision: number) => Promise<void> = async () => undefined;
  /** What the member's /metrics say of etcd_disk_defrag_inflight (null: /metrics unreadable). Default 0. */
  onDefragInFlight: (m: FakeMember) => number | null = () => 0;
  /** Defragmentations of each member (by name) that someone else did: they count in its etcd defrag count. */
  readonly foreignDefrags = new Map<string, number>();
  /** The member whose Defragment is running now. */
  private running: string | null = null;
  /** Runs before each observation builds its snapshot (n counts from 1). */
  onObserve: (n: number, light: boolean) => void = () => undefined;

  constructor(members: Partial<FakeMember>[], leader: string | null = 'm1', opts: FakeClusterOptions = {}) {
    this.members = members.map((o, i) => ({
      name: `m${i + 1}`,
      memberId: memberIdAt(i),
      endpoint: `http://127.0.0.1:${i + 1}`,
      dbSize: 100 * MiB,
      dbSizeInUse: 60 * MiB,
      quota: 2048 * MiB,
      revision: 10_000,
      reachable: true,
      healthy: true,
      isLearner: false,
      error: null,
      alarms: [],
      lag: 0,
      ...o,
    }));
    this.leader = leader;
    this.lagAfterDefrag = opts.lagAfterDefrag ?? 2;
  }

  m(name: string): FakeMember {
    const found = this.members.find((x) => x.name === name);
    if (!found) throw new Error(`fake: no member ${name}`);
    return found;
  }

  idOf(name: string): string {
    return this.m(name).memberId;
  }

  /** What etcd does on a finished Defragment: dbSize shrinks to what is in use; the member then catches up. */
  shrink(m: FakeMember): void {
    m.dbSize = m.dbSizeInUse;
    m.lag = this.lagAfterDefrag;
  }

  /** Calls of one method, in order. */
  callsOf(method: FakeMethod): FakeCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Names of the members that got a Defragment, in order. */
  defragmented(): string[] {
    return this.callsOf('defragment').map((c) => c.member);
  }

  private byEndpoint(endpoint: string): FakeMember {
    const found = this.members.find((x) => x.endpoint === endpoint);
    if (!found) throw new Error(`fake: no member at ${endpoint}`);
    return found;
  }

  private voters(): FakeMember[] {
    return this.members.filter((m) => !m.isLearner);
  }

  private record(method: FakeMethod, m: FakeMember, args: unknown[]): FakeCall {
    const c: FakeCall = { seq: ++this.seq, method, endpoint: m.endpoint, member: m.name, args, leaderAtCall: this.leader };
    this.calls.push(c);
    return c;
  }

  /** The cluster ID the members answer with (default: the builders' CLUSTER_ID); set it to be another cluster. */
  clusterId: string | undefined = undefined;

  /** The ClusterPort.observe of this cluster. */
  readonly observe = async (opts: { light?: boolean; signal?: AbortSignal | undefined } = {}): Promise<ClusterSnapshot> => {
    if (opts.signal?.aborted) throw new AbortedError('observation aborted');
    const light = opts?.light === true;
    this.observations++;
    this.seq++;
    this.onObserve(this.observations, light);
    const b = aSnapshot();
    for (const m of this.members) {
      b.withMember(m.name, {
        memberId: m.memberId,
        endpoint: m.endpoint,
        dbSize: m.dbSize,
        dbSizeInUse: m.dbSizeInUse,
        quota: m.quota,
        quotaSource: 'metrics',
        revision: m.revision,
        raftIndex: this.raftIndex,
        raftAppliedIndex: this.raftIndex - (m.lag > 0 ? 5 : 0),
        reachable: m.reachable,
        healthy: m.healthy,
        isLearner: m.isLearner,
        error: m.error,
        // Light polls skip the alarm list, as the real observe does.
        alarms: light ? [] : m.alarms,
      });
    }
    if (!light) for (const a of this.orphanAlarms) b.withOrphanAlarm(a.memberId, a.alarm);
    b.withLeader(this.leader);
    const built = b.build();
    const snap = this.clusterId === undefined || built.clusterId === null ? built : { ...built, clusterId: this.clusterId };
    // A member catches up a little at every poll.
    for (const m of this.members) if (m.lag > 0) m.lag--;
    return snap;
  };

  /** The ClusterPort the executor acts through, recording every call. */
  readonly port: ClusterPort = {
    observe: (opts) => this.observe(opts),
    defragment: async (endpoint, opts) => {
      const m = this.byEndpoint(endpoint);
      this.record('defragment', m, [{ timeoutMs: opts.timeoutMs }]);
      if (this.leader === m.name && this.voters().length > 1) this.violations.push(`Defragment sent to ${m.name} while it leads`);
      const lagging = this.voters().filter((x) => x !== m && x.lag > 0);
      if (lagging.length > 0)
        this.violations.push(`Defragment sent to ${m.name} while ${lagging.map((x) => x.name).join(', ')} still catching up`);
      if (this.defragsRunning > 0) this.violations.push(`Defragment sent to ${m.name} while another one runs`);
      this.defragsRunning++;
      this.running = m.name;
      try {
        await this.onDefragment(m, opts);
      } finally {
        this.defragsRunning--;
        this.running = null;
      }
      return { revision: m.revision };
    },
    moveLeader: async (endpoint, targetId, opts) => {
      const m = this.byEndpoint(endpoint);
      this.record('moveLeader', m, [targetId, opts]);
      if (this.leader !== m.name) this.violations.push(`MoveLeader sent to ${m.name}, which does not lead`);
      const to = this.members.find((x) => x.memberId === targetId);
      if (!to) throw new Error(`fake: MoveLeader to unknown ${targetId}`);
      await this.onMoveLeader(m, to);
    },
    status: async (endpoint, opts) => {
      const m = this.byEndpoint(endpoint);
      this.record('status', m, [opts]);
      await this.onStatus(m);
      return { dbSize: m.dbSize, dbSizeInUse: m.dbSizeInUse, revision: m.revision };
    },
    alarmList: async (endpoint, opts) => {
      this.record('alarmList', this.byEndpoint(endpoint), [opts]);
      return this.allAlarms();
    },
    alarmDisarm: async (endpoint, memberId, alarm, opts) => {
      this.record('alarmDisarm', this.byEndpoint(endpoint), [memberId, alarm, opts]);
      if (alarm !== 'NOSPACE') this.violations.push(`AlarmDisarm of ${alarm} on ${memberId}`);
      const target = this.members.find((x) => x.memberId === memberId);
      if (target) target.alarms = target.alarms.filter((a) => a !== alarm);
    },
    compact: async (endpoint, revision, opts) => {
      this.record('compact', this.byEndpoint(endpoint), [revision, opts]);
      await this.onCompact(revision);
    },
    defragInFlight: async (endpoint) => {
      const m = this.byEndpoint(endpoint);
      this.record('defragInFlight', m, []);
      return this.onDefragInFlight(m);
    },
    defragGauges: async (endpoint) => {
      const m = this.byEndpoint(endpoint);
      this.record('defragInFlight', m, []);
      const inflight = this.onDefragInFlight(m);
      // etcd counts a defrag when it ends: the ones this port sent (finished) and those of others (foreignDefrags).
      const own =
        this.callsOf('defragment').filter((c) => c.member === m.name).length - (this.defragsRunning > 0 && this.running === m.name ? 1 : 0);
      return inflight === null ? null : { inflight, count: own + (this.foreignDefrags.get(m.name) ?? 0) };
    },
  };

  allAlarms(): AlarmEntry[] {
    return [...this.members.flatMap((m) => m.alarms.map((alarm) => ({ memberId: m.memberId, alarm }))), ...this.orphanAlarms];
  }
}
