/**
 * The daemon's ClusterAccess on a FakeCluster: no gRPC, no processes, no
 * lock service. Observations are the fake's snapshots; a run is the real
 * planner and the real executor on the fake's port; each member's defrag count
 * (etcd's /metrics histogram count) goes up with every Defragment the fake
 * gets, and a test may raise it itself for a defragmentation by someone else.
 */
import { dryRunReport, refusedReport, type RunOptions } from '../../src/app/defragment.js';
import type { Policy } from '../../src/domain/plan.js';
import type { DefragRecord, MemberDefragStatus } from '../../src/domain/record.js';
import type { RunReport } from '../../src/domain/run.js';
import type { ClusterSnapshot } from '../../src/domain/snapshot.js';
import { executePlan } from '../../src/executor/execute.js';
import type { ObserveOptions } from '../../src/observe/observe.js';
import type { Refresh } from '../../src/observe/refresh.js';
import { nospaceRaised, planDefrag } from '../../src/planner/index.js';
import type { ClusterAccess } from '../../src/serve/access.js';
import { METRIC_DEFRAG_COUNT } from '../../src/serve/external.js';
import type { FakeCluster } from './cluster.js';

export class FakeAccess implements ClusterAccess {
  readonly commandTimeoutMs = 5_000;
  /** Each member's defrag count by name, as its /metrics would say it. */
  readonly defragCounts = new Map<string, number>();
  /** Runs the daemon asked for, with the policy each planned with. */
  readonly runs: { policy: Policy; report: RunReport }[] = [];
  /** When set, runs are refused as when another holder has the cluster lock. */
  lockHeldBy: string | null = null;
  /** Under NOSPACE, another defragd holds the recovery claim: runs are refused unless they take it over. */
  nospaceClaimTaken = false;
  /** Every run asked for, refused or not, with whether it would take the NOSPACE claim over. */
  readonly asked: { atMs: number; takeOver: boolean }[] = [];
  /** Records a run of another defragd left in the cluster, returned by memberRecords. */
  records: MemberDefragStatus[] = [];
  /** Full and light observations. */
  observations = { full: 0, light: 0 };
  /** How long each full observation takes (on the global timers: a test's fake ones). */
  observeDelayMs = 0;
  /** When set, every observation throws this (the cluster does not answer). */
  down: Error | null = null;
  /**
   * When set, a run, a dry run and the defragmentation status throw this, as the real ones throw a usage
   * error instead of reporting it (a MixedClustersError: the endpoints reach members of two clusters).
   */
  throws: Error | null = null;
  closed = false;

  constructor(readonly fake: FakeCluster) {
    for (const m of fake.members) this.defragCounts.set(m.name, 0);
    const defragment = fake.port.defragment;
    fake.port.defragment = async (endpoint, opts) => {
      const answer = await defragment(endpoint, opts);
      const m = fake.members.find((x) => x.endpoint === endpoint);
      if (m) this.defragCounts.set(m.name, (this.defragCounts.get(m.name) ?? 0) + 1);
      return answer;
    };
  }

  async observe(opts: Omit<ObserveOptions, 'cluster'>): Promise<ClusterSnapshot> {
    if (this.down) throw this.down;
    this.observations.full++;
    if (this.observeDelayMs > 0) await new Promise((r) => setTimeout(r, this.observeDelayMs));
    const snapshot = await this.fake.observe({ signal: opts.signal });
    for (const m of this.fake.members) {
      const status = snapshot.members.find((x) => x.memberId === m.memberId);
      if (!m.reachable || !status?.status) continue;
      opts.gauges?.found.set(m.endpoint, new Map([[METRIC_DEFRAG_COUNT, this.defragCounts.get(m.name) ?? 0]]));
    }
    return snapshot;
  }

  async refresh(previous: ClusterSnapshot): Promise<Refresh> {
    if (this.down) throw this.down;
    this.observations.light++;
    // As observe/refresh.ts: Status only, the alarms as last seen.
    return { snapshot: { ...(await this.fake.observe({ light: true })), alarms: previous.alarms }, fullBecause: null };
  }

  async run(policy: Policy, opts: RunOptions): Promise<RunReport> {
    if (this.throws) throw this.throws;
    if (this.down) return refusedReport(`no endpoint answered: ${this.down.message}`, null);
    const snapshot = await this.fake.observe({ signal: opts.signal });
    const plan = planDefrag(snapshot, policy);
    this.asked.push({ atMs: Date.now(), takeOver: opts.takeOverNospaceClaim === true });
    // A held lock is waited for as acquireLock waits (once a second, up to lock.waitMs), telling lock.onBusy first.
    const lock = opts.lock === false ? undefined : opts.lock;
    if (this.lockHeldBy !== null && !plan.refusal && (lock?.waitMs ?? 0) > 0) {
      lock?.onBusy?.({ holder: this.lockHeldBy, since: '2026-01-01T00:00:00.000Z' }, lock.waitMs as number);
      for (let waited = 0; this.lockHeldBy !== null && waited < (lock?.waitMs ?? 0); waited += 1_000) {
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    if (this.lockHeldBy !== null && !plan.refusal) return refusedReport(`the cluster lock is held by ${this.lockHeldBy}`, plan);
    if (this.nospaceClaimTaken && nospaceRaised(snapshot) && !opts.takeOverNospaceClaim) {
      return refusedReport(
        'the cluster is out of space (NOSPACE) and another defragd has claimed its recovery (/defragd/lock/nospace-claim was deleted): not going ahead',
        plan,
      );
    }
    const events = executePlan(plan, this.fake.port, policy, { pollIntervalMs: 5, firstPollMs: 5, ...opts.execute }, opts.signal);
    for (;;) {
      const next = await events.next();
      if (next.done) {
        this.runs.push({ policy, report: next.value });
        return next.value;
      }
      opts.onEvent?.(next.value);
    }
  }

  async dryRun(policy: Policy): Promise<RunReport> {
    if (this.throws) throw this.throws;
    return dryRunReport(planDefrag(await this.fake.observe(), policy), new Date().toISOString());
  }

  async defragmentationStatus(): Promise<MemberDefragStatus[]> {
    if (this.throws) throw this.throws;
    return this.records;
  }

  async memberRecords(): Promise<MemberDefragStatus[]> {
    return this.records;
  }

  /** Records written by putRecord, in order. */
  recordsPut: { memberId: string; record: DefragRecord }[] = [];

  async putRecord(_snapshot: ClusterSnapshot, _prefix: string, memberId: string, record: DefragRecord): Promise<void> {
    this.recordsPut.push({ memberId, record });
  }

  /** Claims prepared (the daemon's calls of prepareNospaceClaim). */
  claimsPrepared = 0;

  async prepareNospaceClaim(): Promise<void> {
    this.claimsPrepared++;
  }

  close(): void {
    this.closed = true;
  }
}
