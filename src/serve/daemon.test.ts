/**
 * The daemon driven with fake clusters (test/fakes/cluster-access.ts: the
 * real planner and executor on an in-memory cluster) and vitest's fake
 * timers: what it starts, when, and what it remembers, without etcd or real
 * time. The real-etcd serve tests (test/integration/serve*.test.ts) check the
 * same daemon against real members.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MiB } from '../../test/builders.js';
import { ConnectionError } from '../domain/errors.js';
import { FakeCluster, type FakeMember } from '../../test/fakes/cluster.js';
import { FakeAccess } from '../../test/fakes/cluster-access.js';
import { MixedClustersError } from '../domain/errors.js';
import { openStore, type Store } from '../store/index.js';
import { parseConfig } from './config.js';
import { Daemon } from './daemon.js';
import { createMetrics } from './metrics.js';
import type { DaemonEvent } from './types.js';

const T0 = Date.parse('2026-12-07T10:00:00Z');
const SECOND = 1_000;
const MINUTE = 60 * SECOND;

interface LogLine {
  level: 'info' | 'warn' | 'error' | 'debug';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A daemon on the given fake clusters (by name) and config YAML; nothing starts until `start()`. */
/** A store whose writes fail while `broken.now` is set (a full disk, a deleted file). */
function breakable(store: Store, broken: { now: boolean }): Store {
  const writes = new Set(['recordSamples', 'startRun', 'appendEvent', 'finishRun', 'recordExternal']);
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (broken.now && writes.has(String(prop))) throw new Error('cannot record samples: database or disk is full');
        return v.apply(target, args);
      };
    },
  });
}

function daemonOn(
  clusters: Record<string, FakeCluster>,
  clustersYaml: string,
  o: { maxConcurrentRuns?: number; store?: (s: Store) => Store; lockWaitMs?: number } = {},
) {
  const text = `maxConcurrentRuns: ${o.maxConcurrentRuns ?? 1}\nclusters:\n${clustersYaml}`;
  const config = parseConfig(text, {}, '/etc/defragd');
  const store: Store = (o.store ?? ((s) => s))(openStore(':memory:'));
  const logs: LogLine[] = [];
  const log = (level: LogLine['level']) => (obj: object, msg?: string) =>
    void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  const logger = { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') };
  const access = new Map<string, FakeAccess>();
  /** Every access the daemon opened, in order (one per cluster loop it made). */
  const opened: { cluster: string; access: FakeAccess }[] = [];
  const events: DaemonEvent[] = [];
  const metrics = createMetrics();
  const daemon = new Daemon(config, {
    store,
    metrics,
    logger,
    random: () => 0.5,
    by: 'replica-a:1',
    lockWaitMs: o.lockWaitMs ?? 0,
    connect: (c) => {
      const fake = clusters[c.name];
      if (!fake) throw new Error(`no fake cluster ${c.name}`);
      const a = new FakeAccess(fake);
      access.set(c.name, a);
      opened.push({ cluster: c.name, access: a });
      return a;
    },
  });
  daemon.subscribe((e) => events.push(e));
  const runs = (cluster: string) => store.runs({ cluster, limit: 100 }).reverse();
  const said = (msg: string) => logs.filter((l) => l.msg === msg);
  return { daemon, store, logs, access, opened, events, runs, said, config, metrics };
}

/** A 3-member cluster, m1 leading, every member fragmented by `freeMiB` (100 MiB files). */
function fragmented(freeMiB: Partial<Record<'m1' | 'm2' | 'm3', number>> = {}, extra: Partial<FakeMember> = {}): FakeCluster {
  const free = { m1: 40, m2: 40, m3: 40, ...freeMiB };
  return new FakeCluster(
    (['m1', 'm2', 'm3'] as const).map((name) => ({ dbSize: 100 * MiB, dbSizeInUse: (100 - free[name]) * MiB, ...extra })),
    'm1',
  );
}

/** Lets the daemon run for `ms` of fake time, promises settled at each step. */
async function pass(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

const cluster = (name: string, lines: string) => `  - name: ${name}\n    endpoints: ["127.0.0.1:2379"]\n${lines.replace(/^/gm, '    ')}\n`;

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('auto mode', () => {
  it('starts a run when the rule holds, defragments the members it holds for, and waits the cooldown before the next', async () => {
    const fake = fragmented({ m2: 5 });
    const d = daemonOn({ a: fake }, cluster('a', 'rule: "dbSizeFree > 20*MiB"\nauto: { interval: 10s, cooldown: 10m }'));
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.runs('a').map((r) => [r.trigger, r.outcome])).toEqual([['auto', 'success']]);
    expect(fake.defragmented().sort()).toEqual(['m1', 'm3']);
    expect(fake.violations).toEqual([]);
    // Fragmented again at once: the cooldown holds the next run back until 10 minutes after the last finished.
    for (const m of fake.members) m.dbSize = 100 * MiB;
    await pass(9 * MINUTE);
    expect(d.runs('a')).toHaveLength(1);
    expect(d.daemon.cluster('a')?.state).toBe('cooldown');
    await pass(2 * MINUTE);
    expect(d.runs('a')).toHaveLength(2);
    await d.daemon.stop();
  });

  it('starts nothing while the rule holds for no member', async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const d = daemonOn({ a: fake }, cluster('a', 'rule: "dbSizeFree > 20*MiB"\nauto: { interval: 10s, cooldown: 1m }'));
    d.daemon.start();
    await pass(5 * MINUTE);
    expect(d.runs('a')).toEqual([]);
    expect(fake.callsOf('defragment')).toEqual([]);
    await d.daemon.stop();
  });

  it('with the leader-move ration spent, starts no run whose only due member is the leader (it used to start one that did nothing)', async () => {
    // Only the leader is fragmented; each run moves leadership away and defragments it; then the new
    // leader becomes fragmented (as in a cluster under write load, where the leader's file grows).
    const fake = fragmented({ m1: 40, m2: 1, m3: 1 });
    fake.onMoveLeader = async (_from, to) => {
      fake.leader = to.name;
    };
    const d = daemonOn({ a: fake }, cluster('a', 'rule: "dbSizeFree > 20*MiB"\nauto: { interval: 10s, cooldown: 1m }'));
    const refragmentLeader = () => {
      const leader = fake.m(fake.leader!);
      leader.dbSize = 100 * MiB;
      leader.dbSizeInUse = 60 * MiB;
    };
    d.daemon.start();
    await pass(20 * SECOND);
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['success']);
    refragmentLeader();
    await pass(2 * MINUTE);
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['success', 'success']);
    expect(fake.callsOf('moveLeader')).toHaveLength(2);
    refragmentLeader();
    // Two moves in 15 minutes: the ration is spent, so the leader is not due and no run starts.
    await pass(5 * MINUTE);
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['success', 'success']);
    const dry = await d.daemon.startRun('a', { dryRun: true });
    expect(dry.ok && dry.report?.plan?.decisions.find((x) => x.isLeader)).toMatchObject({
      action: 'skip',
      code: 'leader-move-rationed',
      reason: expect.stringMatching(
        /^leader: leadership was moved 2 times in the last 15 min \(the ration is 2; etcdHighNumberOfLeaderChanges fires at 4\); the next move fits at 2026-12-07T10:15:\d\d\.\d+Z/,
      ),
    });
    // Once the first move is 15 minutes old, one fits again.
    await pass(10 * MINUTE);
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['success', 'success', 'success']);
    expect(fake.callsOf('moveLeader')).toHaveLength(3);
    expect(fake.violations).toEqual([]);
    await d.daemon.stop();
  });
});

describe('schedule, windows and jitter', () => {
  it('starts at the cron time plus the drawn jitter, and only inside the windows', async () => {
    const fake = fragmented();
    // Jitter 10 min with random() = 0.5: 5 minutes after 10:30. The window closes at 11:00.
    const d = daemonOn(
      { a: fake },
      cluster(
        'a',
        'schedule: "30 10 * * *"\njitter: 10m\ntimezone: UTC\nwindows: ["Mon 10:00-11:00"]\nauto: { interval: 30s, cooldown: 1h }\nrule: "dbSizeFree > 1000*MiB"',
      ),
    );
    d.daemon.start();
    await pass(34 * MINUTE);
    expect(d.runs('a')).toEqual([]);
    expect(d.daemon.cluster('a')?.nextRun).toEqual({ at: '2026-12-07T10:35:00.000Z', trigger: 'schedule' });
    await pass(2 * MINUTE);
    expect(d.runs('a').map((r) => [r.trigger, r.startedAt.slice(11, 16)])).toEqual([['schedule', '10:35']]);
    // The next day's 10:35 falls on Tuesday, outside the only window: skipped, and the one after is drawn.
    await pass(24 * HOUR_MS);
    expect(d.runs('a')).toHaveLength(1);
    expect(d.said('scheduled start skipped')).toHaveLength(1);
    await d.daemon.stop();
  });
});

const HOUR_MS = 60 * MINUTE;

describe('maxConcurrentRuns and the start queue', () => {
  it('runs one cluster at a time with maxConcurrentRuns 1, the earlier due first, and never two at once', async () => {
    const a = fragmented();
    const b = fragmented();
    let running = 0;
    let most = 0;
    for (const f of [a, b]) {
      f.onDefragment = async (m) => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 40 * SECOND));
        f.shrink(m);
        running--;
      };
    }
    const yaml =
      cluster('a', 'schedule: "0 11 * * *"\njitter: 0s\ntimezone: UTC') + cluster('b', 'schedule: "1 11 * * *"\njitter: 0s\ntimezone: UTC');
    const d = daemonOn({ a, b }, yaml, { maxConcurrentRuns: 1 });
    d.daemon.start();
    await pass(61 * MINUTE + 30 * SECOND);
    // a started at 11:00 and runs three 40 s defrags; b fell due at 11:01 and waits in the queue.
    expect(d.daemon.cluster('a')?.state).toBe('running');
    expect(d.runs('b')).toEqual([]);
    expect(d.said('starting a run').map((l) => l.obj.cluster)).toEqual(['a']);
    await pass(5 * MINUTE);
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['success']);
    expect(d.runs('b').map((r) => r.outcome)).toEqual(['success']);
    expect(Date.parse(d.runs('b')[0]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(d.runs('a')[0]!.finishedAt!));
    expect(most).toBe(1);
    await d.daemon.stop();
  });
});

describe('NOSPACE', () => {
  it('recovers at once, ignoring windows and cooldown; after a recovery that did not clear the alarm it waits 5 minutes', async () => {
    // Every member is over 90 % of its 100 MiB quota even after a defrag: the alarm cannot be disarmed.
    const fake = fragmented({}, { quota: 100 * MiB, alarms: ['NOSPACE'] });
    for (const m of fake.members) m.dbSizeInUse = 95 * MiB;
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 6h }\nwindows: ["Sun 01:00-02:00"]\nnospace: recover'));
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.runs('a').map((r) => r.trigger)).toEqual(['nospace']);
    expect(d.said('NOSPACE recovery did not clear the alarm; the next attempt waits 5 minutes')).toHaveLength(1);
    await pass(4 * MINUTE);
    expect(d.runs('a')).toHaveLength(1);
    await pass(90 * SECOND);
    expect(d.runs('a').map((r) => r.trigger)).toEqual(['nospace', 'nospace']);
    // Recovery compacts (to the newest revision: no retention) and defragments every member whatever the rule.
    const policy = d.access.get('a')!.runs[0]!.policy;
    expect(policy).toMatchObject({ rule: null, compactKeepRevisions: 0, disarmNospace: true });
    expect(fake.violations).toEqual([]);
    await d.daemon.stop();
  });

  it('while another defragd holds the recovery claim, stays away, asking again every 30 s; after 10 minutes takes it over', async () => {
    const fake = fragmented({}, { quota: 100 * MiB, alarms: ['NOSPACE'] });
    for (const m of fake.members) m.dbSizeInUse = 30 * MiB;
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 5s, cooldown: 6h }\nnospace: recover'));
    const access = d.access.get('a')!;
    access.nospaceClaimTaken = true;
    d.daemon.start();
    await pass(5 * MINUTE);
    // Refused each time (nothing recorded), and asked about every 30 s, not at every 5 s observation.
    expect(d.runs('a')).toEqual([]);
    expect(fake.callsOf('defragment')).toEqual([]);
    expect(access.asked.length).toBeGreaterThanOrEqual(9);
    expect(access.asked.length).toBeLessThanOrEqual(11);
    expect(access.asked.every((a) => !a.takeOver)).toBe(true);
    await pass(6 * MINUTE);
    expect(access.asked.at(-1)?.takeOver).toBe(true);
    expect(d.runs('a').map((r) => [r.trigger, r.outcome])).toEqual([['nospace', 'success']]);
    expect(fake.allAlarms()).toEqual([]);
    await d.daemon.stop();
  });

  it('recovers and disarms when the defrags bring every member under the margin', async () => {
    const fake = fragmented({}, { quota: 100 * MiB, alarms: ['NOSPACE'] });
    for (const m of fake.members) m.dbSizeInUse = 30 * MiB;
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 6h }\nnospace: recover'));
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.runs('a').map((r) => [r.trigger, r.outcome])).toEqual([['nospace', 'success']]);
    expect(fake.allAlarms()).toEqual([]);
    await pass(10 * MINUTE);
    expect(d.runs('a')).toHaveLength(1);
    await d.daemon.stop();
  });
});

describe('a store that fails', () => {
  it('stops neither observation nor NOSPACE recovery nor an API run; /readyz and the metrics say the store fails (it used to turn every cluster unreachable)', async () => {
    const fake = fragmented({}, { quota: 100 * MiB, alarms: ['NOSPACE'] });
    for (const m of fake.members) m.dbSizeInUse = 30 * MiB;
    const broken = { now: true };
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 6h }\nnospace: recover'), {
      store: (s) => breakable(s, broken),
    });
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.daemon.cluster('a')).toMatchObject({ state: 'cooldown', observeError: null });
    // Recovered, though nothing could be recorded.
    expect(d.access.get('a')!.runs.map((r) => r.report.outcome)).toEqual(['success']);
    expect(fake.allAlarms()).toEqual([]);
    expect(d.daemon.ready()).toEqual({
      ok: false,
      reason: expect.stringMatching(/^the store fails \(.*\): cannot record samples: database or disk is full$/),
    });
    const text = await d.metrics.text();
    expect(text).toMatch(/^defragd_store_up 0$/m);
    expect(text).toMatch(/^defragd_store_errors_total\{operation="record samples"\} [1-9]/m);
    expect(text).toMatch(/^defragd_member_up\{[^}]*member="m1"[^}]*\} 1$/m);
    // An API run goes ahead too, unrecorded.
    expect(await d.daemon.startRun('a', { dryRun: false })).toEqual({ ok: true, runId: null, dryRun: false });
    await pass(MINUTE);
    expect(d.access.get('a')!.runs).toHaveLength(2);
    // Logged once, not at every failure.
    expect(d.said('the store failed: observation and runs go on, unrecorded').length).toBeLessThanOrEqual(2);
    // Back: ready again, and recorded again.
    broken.now = false;
    await pass(20 * SECOND);
    expect(d.daemon.ready()).toEqual({ ok: true, reason: null });
    expect(await d.metrics.text()).toMatch(/^defragd_store_up 1$/m);
    expect(d.said('the store works again')).toHaveLength(1);
    await d.daemon.stop();
  });
});

describe('a store that cannot be read', () => {
  it("is the store's condition too (/readyz, defragd_store_errors_total): the policy goes on without forecasts, runs still start", async () => {
    const fake = fragmented();
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 6h }\nrule: "dbSizeFree > 20*MiB"'), {
      store: (s) =>
        new Proxy(s, {
          get(target, prop, receiver) {
            if (prop === 'defragHistory')
              return () => {
                throw new Error('store /var/lib/defragd/h.db: cannot be read: disk I/O error');
              };
            const v = Reflect.get(target, prop, receiver);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }),
    });
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['success']);
    // Counted and logged as the store's failure (a later write that works clears /readyz: reads alone failing is rarer).
    expect(d.said('the store failed: observation and runs go on, unrecorded')[0]?.obj).toMatchObject({
      operation: 'read the policy facts',
      err: 'store /var/lib/defragd/h.db: cannot be read: disk I/O error',
    });
    expect(await d.metrics.text()).toMatch(/^defragd_store_errors_total\{operation="read the policy facts"\} [1-9]/m);
    expect(d.said('the defrag history could not be read: durations are not forecast').length).toBeGreaterThanOrEqual(1);
    await d.daemon.stop();
  });
});

describe('a store file deleted under the daemon', () => {
  it('is noticed within a minute: /readyz and defragd_store_up say so until a restart, though writes still "succeed"', async () => {
    const fake = fragmented();
    const gone = { now: false };
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 6h }'), {
      store: (s) =>
        new Proxy(s, {
          get(target, prop, receiver) {
            if (prop === 'fileProblem')
              return () => (gone.now ? '/var/lib/defragd/h.db was deleted while in use: what is recorded now is lost' : null);
            const v = Reflect.get(target, prop, receiver);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }),
    });
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.daemon.ready()).toEqual({ ok: true, reason: null });
    gone.now = true;
    await pass(MINUTE);
    expect(d.daemon.ready()).toEqual({
      ok: false,
      reason: expect.stringMatching(/^the store fails \(keep its file, since .*\): \/var\/lib\/defragd\/h\.db was deleted while in use/),
    });
    expect(await d.metrics.text()).toMatch(/^defragd_store_up 0$/m);
    expect(d.said('the store failed: observation and runs go on, unrecorded')).toHaveLength(1);
    await pass(5 * MINUTE);
    expect(d.daemon.ready().ok).toBe(false);
    await d.daemon.stop();
  });
});

describe('an API run that must wait for the cluster lock', () => {
  it('is answered at once, saying whose lock it waits for and how long at most, and logged; it runs when the lock is freed', async () => {
    const fake = fragmented();
    const d = daemonOn({ a: fake }, cluster('a', 'rule: "dbSizeFree > 20*MiB"'), { lockWaitMs: 26_000 });
    d.daemon.start();
    await pass(15 * SECOND);
    const access = d.access.get('a')!;
    // A run of another process still holds it (a daemon killed a moment ago: its lease lives on).
    access.lockHeldBy = 'host-a:41 (defragd serve)';
    let answered: unknown = null;
    void d.daemon.startRun('a', { dryRun: false }).then((r) => (answered = r));
    await pass(100);
    expect(answered).toEqual({
      ok: true,
      runId: null,
      dryRun: false,
      waiting:
        'for the cluster lock, held by host-a:41 (defragd serve) since 2026-01-01T00:00:00.000Z; the run starts when it is free (waiting up to 26 s)',
    });
    expect(d.said('waiting for the cluster lock')).toHaveLength(1);
    access.lockHeldBy = null;
    await pass(5 * SECOND);
    expect(d.runs('a').map((r) => [r.trigger, r.outcome])).toEqual([['api', 'success']]);
    await d.daemon.stop();
  });
});

describe('a name whose endpoints come to reach another cluster', () => {
  it('is refused loudly: the cluster shows the reason, nothing runs under that name, until the endpoints reach its cluster again', async () => {
    const fake = fragmented();
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1m }\nrule: "dbSizeFree > 20*MiB"'));
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.runs('a')).toHaveLength(1);
    const known = d.store.clusterId('a')?.clusterId;
    expect(known).toMatch(/^[0-9a-f]+$/);
    // The endpoints now answer for another cluster (a reload that pointed them elsewhere, a cluster rebuilt).
    fake.clusterId = 'abcdef0123456789';
    for (const m of fake.members) m.dbSize = 200 * MiB;
    await pass(5 * MINUTE);
    expect(d.runs('a')).toHaveLength(1);
    expect(d.daemon.cluster('a')?.observeError).toBe(
      `the endpoints now reach etcd cluster abcdef0123456789, but "a" is cluster ${known} in this daemon's history: nothing is observed or run under this name until its endpoints reach that cluster again (a new cluster, or one restored from a snapshot, needs a new name: its history starts there)`,
    );
    expect(d.store.clusterId('a')?.clusterId).toBe(known);
    fake.clusterId = undefined;
    await pass(MINUTE);
    expect(d.daemon.cluster('a')?.observeError).toBeNull();
    expect(d.runs('a').length).toBeGreaterThan(1);
    await d.daemon.stop();
  });
});

describe('defragmentations by someone else', () => {
  it("records a rise of a member's defrag count as an external run once, and not its own runs", async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1h }\nrule: "dbSizeFree > 20*MiB"'));
    d.daemon.start();
    await pass(40 * SECOND);
    const access = d.access.get('a')!;
    // etcdctl defrag on m2, leaving no record: recorded as unknown once the grace for a record has passed.
    access.defragCounts.set('m2', 1);
    fake.m('m2').dbSize = fake.m('m2').dbSizeInUse;
    await pass(2 * MINUTE);
    const external = d.runs('a').filter((r) => r.trigger === 'external');
    expect(external).toHaveLength(1);
    expect(external[0]!.by).toBe('unknown (etcdctl or another tool)');
    expect(d.events.filter((e) => e.event.type === 'run-finished')).toHaveLength(1);
    // Its own run raises every count: not external.
    for (const m of fake.members) m.dbSizeInUse = 10 * MiB;
    await pass(2 * MINUTE);
    expect(d.runs('a').map((r) => r.trigger)).toEqual(['external', 'auto']);
    await pass(2 * MINUTE);
    expect(d.runs('a').map((r) => r.trigger)).toEqual(['external', 'auto']);
    await d.daemon.stop();
  });

  it("records a defrag by another replica (its record in the cluster says who) as that replica's, once", async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1h }\nrule: "dbSizeFree > 20*MiB"'));
    const access = d.access.get('a')!;
    d.daemon.start();
    await pass(40 * SECOND);
    const m2 = fake.m('m2');
    const at = new Date(Date.now()).toISOString();
    access.records = [
      {
        endpoint: m2.endpoint,
        memberId: m2.memberId,
        name: 'm2',
        lastDefrag: {
          at,
          revision: 10_000,
          durationMs: 1_200,
          before: { dbSize: 100 * MiB, dbSizeInUse: 99 * MiB },
          after: { dbSize: 99 * MiB, dbSizeInUse: 99 * MiB },
          trigger: 'schedule',
          by: 'replica-b:7',
        },
        record: 'found',
        ageSeconds: 0,
        reclaimedBytes: MiB,
        version: '3.6.17',
        dbSize: 99 * MiB,
        dbSizeInUse: 99 * MiB,
        dbSizeFree: 0,
        fragmentation: 0,
        warning: null,
        error: null,
      },
    ];
    access.defragCounts.set('m2', 1);
    m2.dbSize = 99 * MiB;
    await pass(2 * MINUTE);
    expect(d.runs('a').map((r) => [r.trigger, r.by, r.finishedAt])).toEqual([['external', 'replica-b:7', at]]);
    await pass(2 * MINUTE);
    expect(d.runs('a')).toHaveLength(1);
    await d.daemon.stop();
  });

  it('takes a count that went down (the member restarted) as the new baseline, recording nothing', async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1h }\nrule: "dbSizeFree > 20*MiB"'));
    const access = () => d.access.get('a')!;
    access().defragCounts.set('m3', 5);
    d.daemon.start();
    await pass(6 * MINUTE);
    access().defragCounts.set('m3', 0);
    await pass(6 * MINUTE);
    access().defragCounts.set('m3', 1);
    await pass(2 * MINUTE);
    // 5 → 0 is a restart; 0 → 1 a defrag; the first 5 was the first count seen (a baseline).
    expect(d.runs('a').map((r) => r.trigger)).toEqual(['external']);
    await d.daemon.stop();
  });
});

describe('lasting failures besides observations', () => {
  it('warns of noticing that fails at most once a minute, and says once when it works again', async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1h }\nrule: "dbSizeFree > 20*MiB"'));
    d.daemon.start();
    await pass(40 * SECOND);
    const access = d.access.get('a')!;
    const memberRecords = access.memberRecords.bind(access);
    access.memberRecords = async () => {
      throw new Error('etcdserver: permission denied');
    };
    // Someone else defragments m2: the rise is looked into at every full observation (every 30 s), and fails.
    access.defragCounts.set('m2', 1);
    fake.m('m2').dbSize = fake.m('m2').dbSizeInUse;
    await pass(5 * MINUTE);
    expect(d.said('noticing defragmentations by others failed').map((l) => l.obj)).toEqual([
      { cluster: 'a', err: 'etcdserver: permission denied' },
      ...Array(4).fill({ cluster: 'a', err: 'etcdserver: permission denied', repeated: 1 }),
    ]);
    access.memberRecords = memberRecords;
    await pass(3 * MINUTE);
    expect(d.said('noticing defragmentations by others works again')).toMatchObject([{ level: 'info', obj: { cluster: 'a' } }]);
    expect(d.runs('a').map((r) => r.trigger)).toEqual(['external']);
    await d.daemon.stop();
  });

  it('warns of in-cluster records it cannot read to check a run that died at most once a minute, and says once when it can', async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const m2 = fake.m('m2');
    let dead = [
      {
        runId: 7,
        cluster: 'a',
        trigger: 'schedule' as const,
        by: 'replica-a:0',
        members: [
          {
            result: {
              endpoint: m2.endpoint,
              memberId: m2.memberId,
              name: 'm2',
              action: 'defragmented' as const,
              reason: '',
              wasLeader: false,
              movedLeaderTo: null,
              before: { dbSize: 100 * MiB, dbSizeInUse: 99 * MiB },
              after: { dbSize: 99 * MiB, dbSizeInUse: 99 * MiB },
              durationMs: 1_000,
              revision: 10_000,
              deadlinePassed: false,
              connectionLost: false,
            },
            inFlight: false,
            at: new Date(T0 - MINUTE).toISOString(),
            countAtStart: null,
          },
        ],
      },
    ];
    // A run that died (as the store lists it at a restart), until it is reconciled.
    const withDeadRun = (store: Store): Store =>
      new Proxy(store, {
        get(target, prop, receiver) {
          if (prop === 'runsToReconcile') return () => dead;
          if (prop === 'reconciled') return () => void (dead = []);
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1h }\nrule: "dbSizeFree > 20*MiB"'), {
      store: withDeadRun,
    });
    const access = d.access.get('a')!;
    const memberRecords = access.memberRecords.bind(access);
    access.memberRecords = async () => {
      throw new Error('etcdserver: permission denied');
    };
    d.daemon.start();
    await pass(5 * MINUTE);
    const warned = d.said('cannot read the in-cluster records to check a run that died');
    // Eleven full observations in 5 minutes (at 0 s, 30 s, ... 300 s): the first failure, then one line a minute.
    expect(warned.map((l) => l.obj)).toEqual([
      { cluster: 'a', err: 'etcdserver: permission denied' },
      ...Array(5).fill({ cluster: 'a', err: 'etcdserver: permission denied', repeated: 1 }),
    ]);
    access.memberRecords = memberRecords;
    await pass(3 * MINUTE);
    expect(d.said('the in-cluster records are readable again')).toMatchObject([{ level: 'info', obj: { cluster: 'a' } }]);
    expect(access.recordsPut.map((r) => r.memberId)).toEqual([m2.memberId]);
    expect(dead).toEqual([]);
    await d.daemon.stop();
  });
});

describe('reload', () => {
  it('keeps an unchanged cluster, lets a changed one finish its run first, stops a removed one and starts an added one', async () => {
    const a = fragmented();
    const b = fragmented();
    const c = fragmented();
    a.onDefragment = async (m) => {
      await new Promise((r) => setTimeout(r, 30 * SECOND));
      a.shrink(m);
    };
    const base =
      cluster('a', 'auto: { interval: 10s, cooldown: 1h }') +
      cluster('b', 'auto: { interval: 10s, cooldown: 1h }\nrule: "dbSizeFree > 1000*MiB"');
    const d = daemonOn({ a, b, c }, base, { maxConcurrentRuns: 3 });
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.daemon.cluster('a')?.state).toBe('running');
    const next = parseConfig(
      `maxConcurrentRuns: 3\nclusters:\n${cluster('a', 'auto: { interval: 20s, cooldown: 1h }')}${cluster('c', 'auto: { interval: 10s, cooldown: 1h }')}`,
      {},
      '/etc/defragd',
    );
    const reloaded = d.daemon.reload(next);
    await pass(2 * MINUTE);
    expect(await reloaded).toEqual({ added: ['c'], changed: ['a'], removed: ['b'] });
    // a's run finished all three members before its loop was replaced.
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['success']);
    expect(a.defragmented()).toHaveLength(3);
    expect(
      d.daemon
        .clusters()
        .map((x) => x.name)
        .sort(),
    ).toEqual(['a', 'c']);
    expect(d.access.get('b')!.closed).toBe(true);
    expect(d.runs('c').map((r) => r.outcome)).toEqual(['success']);
    await d.daemon.stop();
  });
});

describe('reload, again and again', () => {
  it('five SIGHUPs in a row during a run leave one loop for the changed cluster, and removing it later stops it (they used to leave five)', async () => {
    const a = fragmented();
    a.onDefragment = async (m) => {
      await new Promise((r) => setTimeout(r, 20 * SECOND));
      a.shrink(m);
    };
    const d = daemonOn({ a, b: fragmented() }, cluster('a', 'auto: { interval: 10s, cooldown: 1h }'));
    d.daemon.start();
    await pass(15 * SECOND);
    expect(d.daemon.cluster('a')?.state).toBe('running');
    const changed = parseConfig(
      `maxConcurrentRuns: 1\nclusters:\n${cluster('a', 'auto: { interval: 10s, cooldown: 2h }')}`,
      {},
      '/etc/defragd',
    );
    const reloads: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      reloads.push(d.daemon.reload(changed));
      await pass(300);
    }
    await pass(2 * MINUTE);
    expect((await Promise.all(reloads)).map((r) => JSON.stringify(r))).toEqual([
      JSON.stringify({ added: [], changed: ['a'], removed: [] }),
      ...Array(4).fill(JSON.stringify({ added: [], changed: [], removed: [] })),
    ]);
    // One loop: the first access closed, one open, observing once per 10 s.
    expect(d.opened.map((o) => o.access.closed)).toEqual([true, false]);
    const live = d.opened[1]!.access;
    const before = live.observations.full + live.observations.light;
    await pass(MINUTE);
    expect(live.observations.full + live.observations.light - before).toBe(6);
    // Removed (another cluster stays): nothing observes it any more.
    await d.daemon.reload(parseConfig(`maxConcurrentRuns: 1\nclusters:\n${cluster('b', '')}`, {}, '/etc/defragd'));
    const ofA = () => d.opened.filter((o) => o.cluster === 'a');
    const after = ofA().map((o) => o.access.observations.full + o.access.observations.light);
    await pass(MINUTE);
    expect(ofA().map((o) => o.access.observations.full + o.access.observations.light)).toEqual(after);
    expect(ofA().every((o) => o.access.closed)).toBe(true);
    expect(d.daemon.clusters().map((c) => c.name)).toEqual(['b']);
    await d.daemon.stop();
  });
});

describe('stop', () => {
  it('during a run lets the member being defragmented finish, records the run as interrupted and starts nothing more', async () => {
    const fake = fragmented();
    fake.onDefragment = async (m) => {
      await new Promise((r) => setTimeout(r, 30 * SECOND));
      fake.shrink(m);
    };
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1m }'));
    d.daemon.start();
    await pass(15 * SECOND);
    expect(fake.callsOf('defragment')).toHaveLength(1);
    const stopped = d.daemon.stop();
    await pass(MINUTE);
    await stopped;
    expect(d.runs('a').map((r) => r.outcome)).toEqual(['interrupted']);
    expect(fake.callsOf('defragment')).toHaveLength(1);
    expect(fake.defragmented()).toEqual([fake.callsOf('defragment')[0]!.member]);
    expect(d.access.get('a')!.closed).toBe(true);
    await pass(10 * MINUTE);
    expect(fake.callsOf('defragment')).toHaveLength(1);
  });
});

describe('the log of a run', () => {
  it('says as they happen a lost connection mid-defrag and the wait for the member (it used to be silent until "run finished")', async () => {
    const fake = fragmented();
    fake.onDefragment = async (m) => {
      fake.shrink(m);
      if (m.name !== 'm2') return;
      // m2 restarts: its connection is lost, and it answers again 40 s later.
      m.reachable = false;
      setTimeout(() => (m.reachable = true), 40 * SECOND);
      throw new ConnectionError(m.endpoint, `${m.endpoint}: connection reset`);
    };
    const d = daemonOn({ a: fake }, cluster('a', ''));
    d.daemon.start();
    await pass(SECOND);
    const started = await d.daemon.startRun('a', { dryRun: false });
    await pass(10 * SECOND);
    const runId = started.ok ? started.runId : -1;
    // Mid-wait: the run has not finished, and the log already says why it waits.
    expect(d.said('run finished')).toEqual([]);
    expect(d.said('member started').map((l) => l.obj)).toContainEqual(
      expect.objectContaining({ cluster: 'a', runId, member: 'm2', dbSize: 100 * MiB, timeoutMs: expect.any(Number) }),
    );
    expect(d.said('connection lost during defragment')).toMatchObject([
      { level: 'warn', obj: { cluster: 'a', runId, member: 'm2', detail: expect.stringMatching(/connection reset/) } },
    ]);
    expect(d.said('waiting for a member')).toMatchObject([
      { level: 'warn', obj: { cluster: 'a', runId, member: 'm2', waitingFor: expect.any(String), limitMs: expect.any(Number) } },
    ]);
    await pass(2 * MINUTE);
    expect(d.said('member finished').map((l) => l.obj)).toContainEqual(
      expect.objectContaining({ member: 'm2', action: 'defragmented', connectionLost: true }),
    );
    expect(d.said('run finished')).toHaveLength(1);
    await d.daemon.stop();
  });
});

describe('stop during an observation', () => {
  it('ends the loop when the observation returns: no run starts and no interval is waited out (it used to)', async () => {
    const fake = fragmented();
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 1m, cooldown: 1m }'));
    d.access.get('a')!.observeDelayMs = 5 * SECOND;
    d.daemon.start();
    await pass(2 * SECOND);
    let stopped = false;
    const stopping = d.daemon.stop().then(() => (stopped = true));
    await pass(4 * SECOND);
    expect(stopped).toBe(true);
    await stopping;
    expect(d.runs('a')).toEqual([]);
    expect(d.said('starting a run')).toEqual([]);
  });
});

describe('the API', () => {
  it('starts a run now, refuses a second while it runs (409), and 404s an unknown cluster', async () => {
    const fake = fragmented();
    fake.onDefragment = async (m) => {
      await new Promise((r) => setTimeout(r, 10 * SECOND));
      fake.shrink(m);
    };
    const d = daemonOn({ a: fake }, cluster('a', ''));
    d.daemon.start();
    await pass(SECOND);
    const first = await d.daemon.startRun('a', { dryRun: false });
    expect(first).toMatchObject({ ok: true, dryRun: false });
    expect(await d.daemon.startRun('a', { dryRun: false })).toMatchObject({
      ok: false,
      status: 409,
      reason: expect.stringMatching(/^a run of a is in progress \(run \d+\)$/),
    });
    expect(await d.daemon.startRun('zz', { dryRun: false })).toEqual({ ok: false, status: 404, reason: 'no cluster named zz' });
    await pass(2 * MINUTE);
    expect(d.runs('a').map((r) => [r.trigger, r.outcome])).toEqual([['api', 'success']]);
    await d.daemon.stop();
  });

  it('answers 409 with the reason when the cluster lock is held elsewhere, recording nothing', async () => {
    const fake = fragmented();
    const d = daemonOn({ a: fake }, cluster('a', ''));
    d.access.get('a')!.lockHeldBy = 'replica-b:7 (defragd serve)';
    d.daemon.start();
    await pass(SECOND);
    expect(await d.daemon.startRun('a', { dryRun: false })).toEqual({
      ok: false,
      status: 409,
      reason: 'the cluster lock is held by replica-b:7 (defragd serve)',
    });
    expect(d.runs('a')).toEqual([]);
    await d.daemon.stop();
  });

  it('throws what kept a run, a dry run or the status from happening (endpoints of two clusters), for the API to answer with', async () => {
    const d = daemonOn({ a: fragmented() }, cluster('a', ''));
    d.daemon.start();
    await pass(SECOND);
    const mixed = new MixedClustersError(
      'the endpoints reach members of more than one cluster: ...; give the endpoints of one cluster',
      [],
    );
    d.access.get('a')!.throws = mixed;
    await expect(d.daemon.startRun('a', { dryRun: false })).rejects.toBe(mixed);
    await expect(d.daemon.startRun('a', { dryRun: true })).rejects.toBe(mixed);
    await expect(d.daemon.defragmentationStatus('a')).rejects.toBe(mixed);
    expect(d.runs('a')).toEqual([]);
    await d.daemon.stop();
  });
});

describe('observations', () => {
  it('marks a cluster that stops answering unreachable, starts nothing there, and is ready once each was observed', async () => {
    const fake = fragmented();
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 10s, cooldown: 1m }\nnospace: recover'));
    expect(d.daemon.ready()).toEqual({ ok: false, reason: 'not observed yet: a' });
    d.access.get('a')!.down = new Error('connection refused');
    d.daemon.start();
    await pass(SECOND);
    expect(d.daemon.ready()).toEqual({ ok: true, reason: null });
    expect(d.daemon.cluster('a')).toMatchObject({ state: 'unreachable', observeError: 'connection refused' });
    await pass(MINUTE);
    expect(d.runs('a')).toEqual([]);
    d.access.get('a')!.down = null;
    await pass(20 * SECOND);
    expect(d.runs('a').map((r) => r.trigger)).toEqual(['auto']);
    await d.daemon.stop();
  });

  it('warns of a cluster that does not answer once a minute, not at every observation, and says once when it answers again', async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 1s, cooldown: 1m }\nrule: "dbSizeFree > 20*MiB"'));
    d.access.get('a')!.down = new Error('connection refused');
    d.daemon.start();
    await pass(150 * SECOND);
    // 150 failed observations: the first, then one a minute with how many were left out.
    expect(d.said('observation failed').map((l) => [l.level, l.obj])).toEqual([
      ['warn', { cluster: 'a', err: 'connection refused' }],
      ['warn', { cluster: 'a', err: 'connection refused', repeated: 59 }],
      ['warn', { cluster: 'a', err: 'connection refused', repeated: 59 }],
    ]);
    // A different error is said at once.
    d.access.get('a')!.down = new Error('deadline exceeded');
    await pass(2 * SECOND);
    expect(
      d
        .said('observation failed')
        .slice(3)
        .map((l) => l.obj),
    ).toEqual([{ cluster: 'a', err: 'deadline exceeded' }]);
    d.access.get('a')!.down = null;
    await pass(10 * SECOND);
    expect(d.said('observation succeeded again')).toMatchObject([
      { level: 'info', obj: { cluster: 'a', failures: expect.any(Number), since: new Date(T0).toISOString() } },
    ]);
    expect(d.said('observation failed')).toHaveLength(4);
    await d.daemon.stop();
  });

  it('observes lightly between full observations, and fully at least every 30 s', async () => {
    const fake = fragmented({ m1: 1, m2: 1, m3: 1 });
    const d = daemonOn({ a: fake }, cluster('a', 'auto: { interval: 5s, cooldown: 1m }\nrule: "dbSizeFree > 20*MiB"'));
    d.daemon.start();
    await pass(5 * MINUTE);
    const { full, light } = d.access.get('a')!.observations;
    // 60 observations in 5 minutes: one full every 30 s (10 or 11), the rest light.
    expect(full + light).toBeGreaterThanOrEqual(60);
    expect(full).toBeGreaterThanOrEqual(10);
    expect(full).toBeLessThanOrEqual(12);
    await d.daemon.stop();
  });
});
