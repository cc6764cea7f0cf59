/**
 * The run history store on :memory: and on real files: what an operator
 * relies on is that a run is never half-written, that a crash shows as an
 * interrupted run, that an unusable file is refused in one line naming it,
 * and that old samples thin out on schedule.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MemberResult, RunReport, StepEvent } from '../domain/run.js';
import { aSnapshot, MiB } from '../../test/builders.js';
import { IN_FLIGHT_REASON, migrate, openStore, recordRun, SCHEMA_VERSION, StoreError, type Store } from './index.js';
import type { MemberDecision } from '../domain/plan.js';
import { planDefrag } from '../planner/index.js';
import { aPolicy } from '../../test/builders.js';
import { FakeCluster } from '../../test/fakes/cluster.js';
import { MIGRATIONS } from './schema.js';
import { RUN_TRIGGERS } from '../domain/trigger.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function member(name: string, o: Partial<MemberResult> = {}): MemberResult {
  return {
    endpoint: `http://${name}:2379`,
    memberId: `${name}aa`,
    name,
    action: 'defragmented',
    reason: 'no rule',
    wasLeader: false,
    movedLeaderTo: null,
    before: { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB },
    after: { dbSize: 100 * MiB, dbSizeInUse: 100 * MiB },
    durationMs: 1_200,
    revision: 42,
    deadlinePassed: false,
    connectionLost: false,
    ...o,
  };
}

function report(o: Partial<RunReport> = {}): RunReport {
  const members = o.members ?? [
    member('m1'),
    member('m2', { action: 'skipped', reason: 'rule is false', after: null, durationMs: null, revision: null }),
  ];
  return {
    outcome: 'success',
    dryRun: false,
    message: null,
    startedAt: iso(T0),
    finishedAt: iso(T0 + 5_000),
    compactedRevision: 40,
    disarmed: false,
    disarmNote: null,
    reclaimedBytes: 200 * MiB,
    members,
    warnings: ['a warning'],
    plan: null,
    ...o,
  };
}

let dir: string;
const open: Store[] = [];
const track = (s: Store) => (open.push(s), s);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-store-'));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A pid that existed and has exited: a child run to completion. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid as number;
}

/** The StoreError an action throws (fails the test when it throws nothing or something else). */
function storeErrorOf(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError, nothing was thrown');
}

describe('the schema and the domain agree', () => {
  it("the runs table's trigger CHECK lists exactly the domain's triggers (a new trigger needs a migration)", () => {
    const checks = MIGRATIONS.flatMap((sql) =>
      [...sql.matchAll(/trigger\s+TEXT[^,]*CHECK\s*\(\s*trigger\s+IN\s*\(([^)]*)\)/gi)].map((m) => m[1] as string),
    );
    expect(checks).toHaveLength(1);
    const inSql = [...(checks[0] as string).matchAll(/'([^']+)'/g)].map((m) => m[1]);
    expect(inSql).toEqual([...RUN_TRIGGERS]);
  });
});

describe('runs', () => {
  it('records a run from start to finish and gives back the same report, member results and events in order', () => {
    const store = track(openStore(':memory:'));
    // Recording began a little before the executor's own start: the report's times win.
    const id = store.startRun({ cluster: 'prod', trigger: 'manual', by: 'host:1', startedAt: iso(T0 - 700) });
    expect(store.runs()).toMatchObject([{ id, outcome: 'running', finishedAt: null, durationMs: null }]);
    expect(store.run(id)?.report).toBeNull();

    const events: StepEvent[] = [
      { type: 'compaction-started', revision: 40, keepRevisions: 0 },
      { type: 'member-finished', result: member('m1') },
      { type: 'warning', message: 'w' },
    ];
    for (const e of events) store.appendEvent(id, e);
    const r = report();
    store.finishRun(id, r);

    const got = store.run(id);
    expect(got?.report).toEqual(r);
    expect(got?.events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(got?.events.map((e) => e.event)).toEqual(events);
    expect(got?.run).toMatchObject({
      cluster: 'prod',
      trigger: 'manual',
      by: 'host:1',
      outcome: 'success',
      reclaimedBytes: 200 * MiB,
      membersTotal: 2,
      membersDefragmented: 1,
      membersFailed: 0,
      durationMs: 5_000,
      compactedRevision: 40,
    });
    expect(store.run(id + 1)).toBeNull();
  });

  it('lists runs newest first, per cluster, up to the limit', () => {
    const store = track(openStore(':memory:'));
    const ids = [3, 1, 2].map((minute) => ({
      minute,
      id: store.startRun({ cluster: minute === 2 ? 'b' : 'a', trigger: 'schedule', by: 'x', startedAt: iso(T0 + minute * 60_000) }),
    }));
    expect(store.runs().map((r) => r.startedAt)).toEqual([3, 2, 1].map((m) => iso(T0 + m * 60_000)));
    expect(store.runs({ cluster: 'a' }).map((r) => r.id)).toEqual([ids[0]?.id, ids[1]?.id]);
    expect(store.runs({ limit: 1 })).toHaveLength(1);
    expect(storeErrorOf(() => store.runs({ limit: 0 })).message).toMatch(/limit must be a whole number >= 1/);
  });

  it('lists, with since, only runs still running or finished at or after it (a chart range)', () => {
    const store = track(openStore(':memory:'));
    const run = (startMin: number, endMin: number | null) => {
      const id = store.startRun({ cluster: 'a', trigger: 'auto', by: 'x', startedAt: iso(T0 + startMin * 60_000) });
      if (endMin !== null)
        store.finishRun(id, report({ outcome: 'success', startedAt: iso(T0 + startMin * 60_000), finishedAt: iso(T0 + endMin * 60_000) }));
      return id;
    };
    const old = run(0, 1);
    const spanning = run(9, 11);
    const inside = run(20, 21);
    const running = run(30, null);
    expect(store.runs({ cluster: 'a', since: iso(T0 + 10 * 60_000) }).map((r) => r.id)).toEqual([running, inside, spanning]);
    expect(store.runs({ cluster: 'a' }).map((r) => r.id)).toContain(old);
  });

  it('refuses events and a second finish for a finished run, and an unknown trigger, leaving the run as it was', () => {
    const store = track(openStore(':memory:'));
    const id = store.startRun({ cluster: 'c', trigger: 'api', by: 'x' });
    store.finishRun(id, report({ outcome: 'failed', message: 'm2 failed' }));
    expect(storeErrorOf(() => store.appendEvent(id, { type: 'pause', ms: 1 })).message).toMatch(/already finished \(failed\)/);
    expect(() => store.finishRun(id, report())).toThrow(StoreError);
    expect(store.run(id)?.run).toMatchObject({ outcome: 'failed', message: 'm2 failed', membersTotal: 2 });
    expect(store.run(id)?.events).toEqual([]);
    // @ts-expect-error: a trigger the schema does not know
    expect(storeErrorOf(() => store.startRun({ cluster: 'c', trigger: 'cron', by: 'x' })).kind).toBe('usage');
  });

  it('a finish that fails half-way writes nothing of it: the run stays running', () => {
    const store = track(openStore(':memory:'));
    const id = store.startRun({ cluster: 'c', trigger: 'manual', by: 'x' });
    // The second member violates the schema (action), after the run row was updated and the first member inserted.
    const bad = report({ members: [member('m1'), member('m2', { action: 'exploded' as never })] });
    expect(() => store.finishRun(id, bad)).toThrow(StoreError);
    expect(store.run(id)?.run).toMatchObject({ outcome: 'running', membersTotal: 0, reclaimedBytes: 0 });
    store.finishRun(id, report());
    expect(store.run(id)?.run.outcome).toBe('success');
  });

  it('recordRun feeds events and the report through, and with onError a failing store stops recording instead of throwing into the run', () => {
    const store = track(openStore(':memory:'));
    const rec = recordRun(store, { cluster: 'c', trigger: 'manual', by: 'x' });
    rec.onEvent({ type: 'pause', ms: 5 });
    rec.finish(report());
    rec.finish(report({ outcome: 'failed' }));
    expect(store.run(rec.runId)?.run.outcome).toBe('success');
    expect(store.run(rec.runId)?.events).toHaveLength(1);

    const errors: unknown[] = [];
    const rec2 = recordRun(store, { cluster: 'c', trigger: 'manual', by: 'x', onError: (e) => errors.push(e) });
    store.close();
    // Starting is not guarded: nothing has run yet, so the caller hears of it.
    expect(() => recordRun(store, { cluster: 'c', trigger: 'manual', by: 'x', onError: (e) => errors.push(e) })).toThrow(StoreError);
    rec2.onEvent({ type: 'pause', ms: 5 });
    rec2.onEvent({ type: 'pause', ms: 5 });
    rec2.finish(report());
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StoreError);
  });
});

describe('external runs', () => {
  it('recordExternal writes a finished external run with its one member in one go; a bad member writes nothing', () => {
    const store = track(openStore(':memory:'));
    const m = member('m2', {
      reason: 'by another defragd (ops1:42, trigger manual)',
      before: { dbSize: 30 * MiB, dbSizeInUse: 10 * MiB },
      after: { dbSize: 10 * MiB, dbSizeInUse: 10 * MiB },
    });
    const id = store.recordExternal({
      cluster: 'prod',
      by: 'ops1:42',
      startedAt: iso(T0),
      finishedAt: iso(T0 + 1_500),
      message: 'noticed',
      member: m,
    });
    const got = store.run(id);
    expect(got?.run).toMatchObject({
      cluster: 'prod',
      trigger: 'external',
      by: 'ops1:42',
      outcome: 'success',
      message: 'noticed',
      reclaimedBytes: 20 * MiB,
      membersTotal: 1,
      membersDefragmented: 1,
      durationMs: 1_500,
      dryRun: false,
    });
    expect(got?.report?.members).toEqual([m]);
    expect(got?.events).toEqual([]);

    // Sizes observed around writes can show growth: nothing reclaimed, never a negative figure.
    const grew = store.recordExternal({
      cluster: 'prod',
      by: 'x',
      startedAt: iso(T0),
      finishedAt: iso(T0 + 1),
      message: 'm',
      member: member('m3', { before: { dbSize: 1, dbSizeInUse: 1 }, after: { dbSize: 2, dbSizeInUse: 2 } }),
    });
    expect(store.run(grew)?.run.reclaimedBytes).toBe(0);

    expect(() =>
      store.recordExternal({
        cluster: 'prod',
        by: 'x',
        startedAt: iso(T0),
        finishedAt: iso(T0 + 1),
        message: 'm',
        member: member('m4', { action: 'exploded' as never }),
      }),
    ).toThrow(StoreError);
    expect(store.runs({ cluster: 'prod' }).map((r) => r.id)).toEqual([grew, id].sort((a, b) => b - a));
    expect(store.runs().every((r) => r.outcome !== 'running')).toBe(true);
  });
});

describe('defrag history (the duration forecast)', () => {
  /** A finished run of `cluster` at minute `minute` with these member results. */
  const runAt = (store: Store, cluster: string, minute: number, members: MemberResult[], o: Partial<RunReport> = {}) => {
    const id = store.startRun({ cluster, trigger: 'schedule', by: 'x', startedAt: iso(T0 + minute * 60_000) });
    store.finishRun(id, report({ members, startedAt: iso(T0 + minute * 60_000), finishedAt: iso(T0 + minute * 60_000 + 5_000), ...o }));
    return id;
  };
  const past = (inUseMiB: number, durationMs: number) => ({
    before: { dbSize: 2 * inUseMiB * MiB, dbSizeInUse: inUseMiB * MiB },
    durationMs,
  });

  it("gives each member's newest successful defrags, oldest first, from a file that was closed and opened again", () => {
    const path = join(dir, 'history.db');
    const store = openStore(path);
    for (let minute = 1; minute <= 7; minute++)
      runAt(store, 'prod', minute, [member('m1', past(minute * 10, minute * 100)), member('m2', past(50, 1_000 + minute))]);
    // Not what a forecast may learn from: a skipped or failed member, a lost connection, no duration, no size, a dry run, another cluster.
    runAt(store, 'prod', 8, [
      member('m1', { action: 'skipped', reason: 'rule is false', after: null, durationMs: null }),
      member('m2', { action: 'failed', reason: 'deadline', durationMs: 9_999 }),
    ]);
    runAt(store, 'prod', 9, [member('m1', { ...past(10, 50_000), connectionLost: true }), member('m2', { durationMs: null })]);
    runAt(store, 'prod', 10, [member('m1', { before: null })]);
    runAt(store, 'prod', 11, [member('m1', past(999, 1))], { outcome: 'dry-run', dryRun: true });
    runAt(store, 'staging', 12, [member('m1', past(999, 1))]);
    // A member whose deadline passed still counts: the time until it answered again is its duration.
    runAt(store, 'prod', 13, [member('m3', { ...past(20, 70_000), deadlinePassed: true })]);
    // External: with a known duration it counts, without it says nothing.
    store.recordExternal({
      cluster: 'prod',
      by: 'ops:1',
      startedAt: iso(T0 + 14 * 60_000),
      finishedAt: iso(T0 + 15 * 60_000),
      message: 'noticed',
      member: member('m3', past(30, 3_000)),
    });
    store.recordExternal({
      cluster: 'prod',
      by: 'etcdctl?',
      startedAt: iso(T0 + 16 * 60_000),
      finishedAt: iso(T0 + 17 * 60_000),
      message: 'noticed',
      member: member('m3', { durationMs: null }),
    });
    store.close();

    const reopened = track(openStore(path, { mustExist: true }));
    expect(reopened.defragHistory({ cluster: 'prod' })).toEqual({
      m1aa: [3, 4, 5, 6, 7].map((m) => ({ dbSizeInUse: m * 10 * MiB, durationMs: m * 100 })),
      m2aa: [3, 4, 5, 6, 7].map((m) => ({ dbSizeInUse: 50 * MiB, durationMs: 1_000 + m })),
      m3aa: [
        { dbSizeInUse: 20 * MiB, durationMs: 70_000 },
        { dbSizeInUse: 30 * MiB, durationMs: 3_000 },
      ],
    });
    expect(reopened.defragHistory({ cluster: 'prod', memberId: 'm2aa', limit: 2 })).toEqual({
      m2aa: [6, 7].map((m) => ({ dbSizeInUse: 50 * MiB, durationMs: 1_000 + m })),
    });
    expect(reopened.defragHistory({ cluster: 'staging' })).toEqual({ m1aa: [{ dbSizeInUse: 999 * MiB, durationMs: 1 }] });
    expect(reopened.defragHistory({ cluster: 'nowhere' })).toEqual({});
    expect(storeErrorOf(() => reopened.defragHistory({ cluster: 'prod', limit: 0 })).message).toMatch(/limit must be a whole number >= 1/);
  });

  it('a run interrupted by a dead process counts with the members its events recorded', () => {
    const path = join(dir, 'history.db');
    const pid = deadPid();
    const first = openStore(path, { owner: { host: 'h', pid } });
    const id = first.startRun({ cluster: 'prod', trigger: 'manual', by: 'x' });
    first.appendEvent(id, { type: 'member-finished', result: member('m1', past(40, 400)) });
    first.close();
    const store = track(openStore(path, { owner: { host: 'h', pid: process.pid } }));
    expect(store.run(id)?.run.outcome).toBe('interrupted');
    expect(store.defragHistory({ cluster: 'prod' })).toEqual({ m1aa: [{ dbSizeInUse: 40 * MiB, durationMs: 400 }] });
  });
});

describe('crash recovery', () => {
  it('marks a run left running by a dead process interrupted, keeping the members its events recorded; a live process keeps its run', () => {
    const file = join(dir, 'h.db');
    const pid = deadPid();
    const crashed = track(openStore(file, { owner: { host: 'here', pid } }));
    const id = crashed.startRun({ cluster: 'c', trigger: 'manual', by: `here:${pid}`, startedAt: iso(T0) });
    crashed.appendEvent(id, { type: 'member-finished', result: member('m1') });
    const liveId = track(openStore(file, { owner: { host: 'here', pid: process.pid } })).startRun({
      cluster: 'c',
      trigger: 'manual',
      by: 'me',
      startedAt: iso(T0 + 1),
    });
    const elsewhere = track(openStore(file, { owner: { host: 'other-host', pid } })).startRun({
      cluster: 'c',
      trigger: 'manual',
      by: 'far',
      startedAt: iso(T0 + 2),
    });
    crashed.close();

    // Reopened by another process of the same host.
    const store = track(openStore(file, { owner: { host: 'here', pid: process.pid + 100_000 } }));
    const run = store.run(id);
    expect(run?.run.outcome).toBe('interrupted');
    expect(run?.run.message).toMatch(new RegExp(`pid ${pid} on here\\) died before the run finished`));
    // Finished at its last sign of life (the last event), not when the next process found it.
    expect(run?.run.finishedAt).toBe(run?.events.at(-1)?.at);
    expect(run?.report?.members.map((m) => [m.name, m.action])).toEqual([['m1', 'defragmented']]);
    expect(run?.run.reclaimedBytes).toBe(200 * MiB);
    expect(store.run(liveId)?.run.outcome).toBe('running');
    expect(store.run(elsewhere)?.run.outcome).toBe('running');
  });
});

describe('a run whose process died with a Defragment in flight', () => {
  it('records the member in flight as failed "in flight" (never lost), the rest of the plan as not attempted, and leaves the run to reconcile; reconciled() settles it', async () => {
    const fake = new FakeCluster(
      [
        { dbSize: 500 * MiB, dbSizeInUse: 100 * MiB },
        { dbSize: 500 * MiB, dbSizeInUse: 400 * MiB },
        { dbSize: 500 * MiB, dbSizeInUse: 200 * MiB },
      ],
      'm1',
    );
    const plan = planDefrag(await fake.observe(), aPolicy());
    const [first, second, third] = plan.decisions.filter((d) => d.action === 'defragment');
    expect(third).toBeDefined();
    const file = join(dir, 'inflight.db');
    const pid = deadPid();
    const crashed = openStore(file, { owner: { host: 'h', pid } });
    const id = crashed.startRun({ cluster: 'prod', trigger: 'schedule', by: `h:${pid}` });
    const started = (d: MemberDecision): StepEvent => ({
      type: 'member-started',
      decision: d,
      before: { dbSize: d.dbSize as number, dbSizeInUse: d.dbSizeInUse as number },
      timeoutMs: 60_000,
      index: 1,
      total: 3,
    });
    crashed.appendEvent(id, { type: 'run-started', at: iso(T0), plan });
    crashed.appendEvent(id, started(first!));
    crashed.appendEvent(id, {
      type: 'member-finished',
      result: member(first!.name, {
        memberId: first!.memberId,
        before: { dbSize: 500 * MiB, dbSizeInUse: 200 * MiB },
        after: { dbSize: 200 * MiB, dbSizeInUse: 200 * MiB },
      }),
    });
    crashed.appendEvent(id, started(second!));
    crashed.noteDefragCount(id, second!.memberId, 7);
    crashed.close();

    const store = track(openStore(file, { owner: { host: 'h', pid: process.pid } }));
    const run = store.run(id);
    expect(run?.run.outcome).toBe('interrupted');
    expect(run?.run.message).toContain(`${second!.name} had a Defragment in flight`);
    expect(run?.report?.members.map((m) => [m.name, m.action, m.reason])).toEqual([
      [first!.name, 'defragmented', 'no rule'],
      [second!.name, 'failed', IN_FLIGHT_REASON],
      [third!.name, 'skipped', 'not attempted: the process running the run died'],
    ]);
    expect(run?.report?.plan).toEqual(plan);
    const pending = store.runsToReconcile('prod');
    expect(pending.map((r) => r.runId)).toEqual([id]);
    expect(pending[0]?.members.map((m) => [m.result.name, m.inFlight, m.countAtStart])).toEqual([
      [first!.name, false, null],
      [second!.name, true, 7],
    ]);
    expect(store.runsToReconcile('other')).toEqual([]);

    const inFlight = pending[0]!.members[1]!;
    store.reconciled(
      id,
      [{ ...inFlight.result, action: 'defragmented', reason: 'found', after: { dbSize: 400 * MiB, dbSizeInUse: 400 * MiB } }],
      `${second!.name}: found defragmented at a restart`,
    );
    const after = store.run(id);
    expect(after?.report?.members.map((m) => [m.name, m.action])).toEqual([
      [first!.name, 'defragmented'],
      [second!.name, 'defragmented'],
      [third!.name, 'skipped'],
    ]);
    expect(after?.run.reclaimedBytes).toBe(300 * MiB + 100 * MiB);
    expect(after?.run.message).toMatch(new RegExp(`in flight.*; ${second!.name}: found defragmented at a restart$`));
    expect(store.runsToReconcile('prod')).toEqual([]);
  });
});

describe('the file itself', () => {
  it('a new store and its WAL are readable and writable by their owner only', () => {
    const file = join(dir, 'private.db');
    const store = track(openStore(file));
    store.recordExternal({
      cluster: 'c',
      by: 'x',
      startedAt: iso(T0),
      finishedAt: iso(T0 + 1),
      message: 'm',
      member: member('m1'),
    });
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect((statSync(f).mode & 0o777).toString(8), f).toBe('600');
  });

  it('a store corrupt in its middle is refused at open with check (PRAGMA quick_check), in one line naming the file', () => {
    const file = join(dir, 'corrupt.db');
    const store = openStore(file);
    for (let i = 0; i < 400; i++)
      store.recordExternal({
        cluster: 'c',
        by: 'x',
        startedAt: iso(T0 + i),
        finishedAt: iso(T0 + i + 1),
        message: 'm'.repeat(200),
        member: member(`m${i}`),
      });
    store.close();
    const bytes = readFileSync(file);
    const pageSize = bytes.readUInt16BE(16);
    const pages = bytes.length / pageSize;
    expect(pages).toBeGreaterThan(20);
    // Zeroes over pages in the middle of the file (not the header): what a torn write or a bad disk leaves.
    for (let p = Math.floor(pages / 2); p < Math.floor(pages / 2) + 3; p++) bytes.fill(0x5a, p * pageSize + 8, (p + 1) * pageSize);
    writeFileSync(file, bytes);
    const err = storeErrorOf(() => openStore(file, { check: true }));
    expect(err.message).toMatch(
      new RegExp(
        `^store ${file.replace(/[.]/g, '\\.')}: is corrupt \\(quick_check: .+\\): move it aside to start a new history, or restore a copy$`,
      ),
    );
  });

  it('fileProblem says when the file was deleted or replaced under the open store', () => {
    const file = join(dir, 'gone.db');
    const store = track(openStore(file));
    expect(store.fileProblem()).toBeNull();
    rmSync(file);
    expect(store.fileProblem()).toMatch(/gone\.db was deleted while in use: what is recorded now is lost when this process stops/);
    writeFileSync(file, '');
    expect(store.fileProblem()).toMatch(/gone\.db was replaced by another file while in use/);
  });

  it('readOnly reads a store without writing a byte, as it was last checkpointed', () => {
    const file = join(dir, 'ro.db');
    const w = openStore(file);
    const id = w.startRun({ cluster: 'c', trigger: 'manual', by: 'x', startedAt: iso(T0) });
    w.finishRun(id, report());
    w.close();
    const before = readFileSync(file);
    const r = track(openStore(file, { readOnly: true }));
    expect(r.runs().map((x) => [x.id, x.outcome])).toEqual([[id, 'success']]);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(false);
  });
});

describe('crash recovery in a container', () => {
  it('a run left running by an earlier process with this same pid (pid 1 in a restarted container) is interrupted at open; its own runs are not', () => {
    const file = join(dir, 'pid1.db');
    const before = track(openStore(file, { owner: { host: 'pod', pid: 1, start: 'boot-a:1000' } }));
    const id = before.startRun({ cluster: 'c', trigger: 'auto', by: 'pod:1', startedAt: iso(T0) });
    before.appendEvent(id, { type: 'member-finished', result: member('m1') });
    before.close();
    // The restarted container: pid 1 again, alive (it is this process), started later.
    const after = track(
      openStore(file, {
        owner: { host: 'pod', pid: 1, start: 'boot-a:2000' },
        processAlive: () => true,
        processStart: () => 'boot-a:2000',
      }),
    );
    expect(after.run(id)?.run.outcome).toBe('interrupted');
    expect(after.run(id)?.report?.members.map((m) => m.name)).toEqual(['m1']);
    const live = after.startRun({ cluster: 'c', trigger: 'auto', by: 'pod:1' });
    // Opened again by the same process (the API, history): its run goes on.
    const again = track(
      openStore(file, {
        owner: { host: 'pod', pid: 1, start: 'boot-a:2000' },
        processAlive: () => true,
        processStart: () => 'boot-a:2000',
      }),
    );
    expect(again.run(live)?.run.outcome).toBe('running');
  });

  it('a run of another live process of this host is left running while that process is the one that started it', () => {
    const file = join(dir, 'other.db');
    const other = track(openStore(file, { owner: { host: 'h', pid: 4242, start: 'boot-a:10' } }));
    const id = other.startRun({ cluster: 'c', trigger: 'auto', by: 'h:4242' });
    const same = track(openStore(file, { owner: { host: 'h', pid: 5000 }, processAlive: () => true, processStart: () => 'boot-a:10' }));
    expect(same.run(id)?.run.outcome).toBe('running');
    // pid 4242 now belongs to a process started later: the run's process is gone.
    const reused = track(openStore(file, { owner: { host: 'h', pid: 5000 }, processAlive: () => true, processStart: () => 'boot-a:99' }));
    expect(reused.run(id)?.run.outcome).toBe('interrupted');
  });
});

describe('files', () => {
  it('creates a new file at the current schema version in WAL mode with a busy timeout', () => {
    const file = join(dir, 'new.db');
    const store = track(openStore(file));
    expect(store.openedAtVersion).toBe(0);
    store.close();
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map(
        (t) => t.name,
      );
      expect(tables).toEqual(expect.arrayContaining(['events', 'member_results', 'runs', 'samples']));
    } finally {
      db.close();
    }
    expect(track(openStore(file)).openedAtVersion).toBe(SCHEMA_VERSION);
  });

  it('migrates an empty version-0 file, and a failing migration leaves it at version 0 with none of the earlier steps', () => {
    const file = join(dir, 'v0.db');
    new Database(file).close();
    const db = new Database(file);
    try {
      expect(() => migrate(db, ['CREATE TABLE a (x)', 'CREATE TABLE b (y'])).toThrow();
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'a'`).get()).toBeUndefined();
      expect(migrate(db, ['CREATE TABLE a (x)', 'CREATE TABLE b (y)'])).toEqual({ from: 0, to: 2 });
      expect(migrate(db, ['CREATE TABLE a (x)', 'CREATE TABLE b (y)', 'CREATE TABLE c (z)'])).toEqual({ from: 2, to: 3 });
      expect(db.pragma('user_version', { simple: true })).toBe(3);
    } finally {
      db.close();
    }
    const fresh = join(dir, 'v0b.db');
    new Database(fresh).close();
    const store = track(openStore(fresh));
    expect(store.openedAtVersion).toBe(0);
    expect(store.runs()).toEqual([]);
  });

  it('refuses a store written by a newer schema, naming the file and both versions, and changes nothing', () => {
    const file = join(dir, 'newer.db');
    track(openStore(file)).close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    db.close();
    const err = storeErrorOf(() => openStore(file));
    expect(err.message).toBe(
      `store ${file}: was written by a newer defragd (schema version ${SCHEMA_VERSION + 5}; this defragd knows up to version ${SCHEMA_VERSION}): upgrade defragd, or use another store file`,
    );
    expect(err.kind).toBe('usage');
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 5);
    after.close();
  });

  it.each([
    [
      'a text file',
      (f: string) => writeFileSync(f, 'this is not a database, just text that is long enough to have a header\n'.repeat(20)),
      /is not a defragd store \(not a SQLite database\)$/,
    ],
    ['a directory', (f: string) => mkdirSync(f), /is a directory, not a store file$/],
    [
      "another program's SQLite database",
      (f: string) => {
        const db = new Database(f);
        db.exec('CREATE TABLE users (name TEXT)');
        db.close();
      },
      /is a SQLite database with tables of its own, not a defragd store$/,
    ],
  ])('refuses %s in one line naming the file (exit 2), leaving it untouched', (_what, make, message) => {
    const file = join(dir, 'bad');
    make(file);
    const err = storeErrorOf(() => openStore(file));
    expect(err.message.startsWith(`store ${file}: `)).toBe(true);
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(/\n/);
    expect(err.kind).toBe('usage');
  });

  it('with mustExist, a missing file is refused and not created', () => {
    const file = join(dir, 'missing.db');
    expect(storeErrorOf(() => openStore(file, { mustExist: true })).message).toMatch(/does not exist/);
    expect(existsSync(file)).toBe(false);
  });

  it('a second connection reads while the first holds a write transaction (WAL), and sees the commit after', () => {
    const file = join(dir, 'wal.db');
    const writer = track(openStore(file));
    const reader = track(openStore(file, { busyTimeoutMs: 100 }));
    const id = writer.startRun({ cluster: 'c', trigger: 'manual', by: 'x' });
    // An open write transaction on a raw connection to the same file: readers must not wait for it.
    const raw = new Database(file);
    try {
      raw.exec('BEGIN IMMEDIATE');
      raw.prepare(`UPDATE runs SET message = 'uncommitted' WHERE id = ?`).run(id);
      expect(reader.runs().map((r) => [r.id, r.message])).toEqual([[id, null]]);
      // A writer does wait, and after the busy timeout fails in one line (exit 1, not a usage error).
      const err = storeErrorOf(() => reader.startRun({ cluster: 'c', trigger: 'manual', by: 'y' }));
      expect(err.message).toMatch(new RegExp(`^store ${file}: cannot record the run: another process holds it locked`));
      expect(err.kind).toBe('failed');
      raw.exec('COMMIT');
    } finally {
      raw.close();
    }
    expect(reader.run(id)?.run.message).toBe('uncommitted');
  });
});

describe('samples', () => {
  it('records one row per member that answered, and queries by member and inclusive time range', () => {
    const store = track(openStore(':memory:'));
    const snap = aSnapshot()
      .withMembers(3)
      .withMember('m2', { dbSize: 300 * MiB, dbSizeInUse: 120 * MiB })
      .withLeader('m2')
      .unreachable('m3')
      .build();
    expect(store.recordSamples('prod', { ...snap, observedAt: iso(T0) })).toBe(2);
    store.recordSamples('prod', { ...snap, observedAt: iso(T0 + 60_000) });
    store.recordSamples('other', { ...snap, observedAt: iso(T0) });
    const m2 = snap.members[1]?.memberId as string;
    expect(store.samples({ cluster: 'prod', memberId: m2 })).toEqual(
      [T0, T0 + 60_000].map((at) => ({
        cluster: 'prod',
        memberId: m2,
        memberName: 'm2',
        at: iso(at),
        dbSize: 300 * MiB,
        dbSizeInUse: 120 * MiB,
        quota: 2 * 1024 * MiB,
        revision: 10_000,
        isLeader: true,
      })),
    );
    // m3 did not answer: no row for it, not a row of zeros.
    expect(
      store
        .samples({ cluster: 'prod' })
        .map((s) => `${s.at} ${s.memberName}`)
        .sort(),
    ).toEqual([`${iso(T0)} m1`, `${iso(T0)} m2`, `${iso(T0 + 60_000)} m1`, `${iso(T0 + 60_000)} m2`]);
    expect(store.samples({ cluster: 'prod', from: iso(T0 + 1), to: iso(T0 + 60_000) })).toHaveLength(2);
    expect(store.samples({ cluster: 'prod', to: iso(T0) })).toHaveLength(2);
  });

  it('downsample keeps 24 h in full, then the last sample per member per 5-minute bucket, and deletes past retention; again changes nothing', () => {
    const store = track(openStore(':memory:'));
    const HOUR = 3_600_000;
    const MIN = 60_000;
    const now = T0 + 200 * 24 * HOUR;
    const snap = aSnapshot().withMembers(2).build();
    const at = (ms: number) => store.recordSamples('c', { ...snap, observedAt: iso(ms) });
    // Every minute for an hour, 30 h ago (older than full resolution): 12 buckets of 5 minutes.
    const old = now - 30 * HOUR - ((now - 30 * HOUR) % (5 * MIN));
    for (let i = 0; i < 60; i++) at(old + i * MIN);
    // Every minute for 10 minutes, 1 h ago: kept as they are.
    for (let i = 0; i < 10; i++) at(now - HOUR + i * MIN);
    // 91 and 100 days ago: gone.
    at(now - 91 * 24 * HOUR);
    at(now - 100 * 24 * HOUR);

    expect(store.downsample(now)).toEqual({ expired: 4, thinned: 2 * (60 - 12), expiredRuns: 0 });
    const m1 = snap.members[0]?.memberId as string;
    const left = store.samples({ cluster: 'c', memberId: m1 }).map((s) => Date.parse(s.at));
    // The last minute of each old bucket (…+4, …+9, …), then the recent minutes untouched.
    expect(left).toEqual([
      ...Array.from({ length: 12 }, (_, b) => old + (b * 5 + 4) * MIN),
      ...Array.from({ length: 10 }, (_, i) => now - HOUR + i * MIN),
    ]);
    expect(store.downsample(now)).toEqual({ expired: 0, thinned: 0, expiredRuns: 0 });
    // A day later the once-recent minutes are old too: two of their buckets remain per member.
    expect(store.downsample(now + 24 * HOUR).thinned).toBe(2 * (10 - 2));
    expect(storeErrorOf(() => store.downsample(now, { bucketMs: 0 })).message).toMatch(/bucketMs must be a whole number of ms > 0/);
  });

  it('downsample deletes runs finished before the retention, with their member results and events, on a real file; running and recent runs stay', () => {
    const DAY = 24 * 3_600_000;
    const path = join(dir, 'retention.db');
    let store = track(openStore(path, { now: () => T0 }));
    const oldRun = store.startRun({ cluster: 'prod', trigger: 'manual', by: 'ops', startedAt: iso(T0) });
    store.appendEvent(oldRun, { type: 'run-started' } as unknown as StepEvent);
    store.finishRun(oldRun, report());
    const newRun = store.startRun({ cluster: 'prod', trigger: 'manual', by: 'ops', startedAt: iso(T0 + 20 * DAY) });
    store.finishRun(newRun, report({ startedAt: iso(T0 + 20 * DAY), finishedAt: iso(T0 + 20 * DAY + 5_000) }));
    const stillRunning = store.startRun({ cluster: 'prod', trigger: 'manual', by: 'ops', startedAt: iso(T0 + DAY) });
    store.close();

    store = track(openStore(path, { now: () => T0 + 30 * DAY }));
    expect(store.downsample(T0 + 30 * DAY, { retentionMs: 15 * DAY })).toEqual({ expired: 0, thinned: 0, expiredRuns: 1 });
    expect(
      store
        .runs()
        .map((r) => r.id)
        .sort(),
    ).toEqual([newRun, stillRunning].sort());
    expect(store.run(oldRun)).toBeNull();
    store.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare('SELECT COUNT(*) AS n FROM member_results WHERE run_id = ?').get(oldRun)).toEqual({ n: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM events WHERE run_id = ?').get(oldRun)).toEqual({ n: 0 });
      expect(db.prepare('SELECT COUNT(*) AS n FROM member_results WHERE run_id = ?').get(newRun)).toEqual({ n: 2 });
    } finally {
      db.close();
    }
  });

  it('downsample is incremental: a later pass thins only what became old since the last one, remembered across reopening', () => {
    const MIN = 60_000;
    const HOUR = 60 * MIN;
    const path = join(dir, 'thin.db');
    const snap = aSnapshot().withMembers(1).build();
    let store = track(openStore(path));
    const start = T0 - (T0 % (5 * MIN));
    // 26 hours of one sample a minute.
    for (let i = 0; i < 26 * 60; i++) store.recordSamples('c', { ...snap, observedAt: iso(start + i * MIN) });
    const now = start + 26 * HOUR;
    // Everything older than 24 h: 2 h of minutes down to 12 an hour.
    expect(store.downsample(now).thinned).toBe(2 * (60 - 12));
    // A sample that arrives late into the first, already thinned, bucket: a pass that re-read the history would thin it.
    store.recordSamples('c', { ...snap, observedAt: iso(start + 30_000) });
    store.close();
    store = track(openStore(path));
    // An hour later, only the hour that became old is read and thinned.
    expect(store.downsample(now + HOUR).thinned).toBe(60 - 12);
    // Nothing left to do, and what was thinned before is not thinned again.
    expect(store.downsample(now + HOUR)).toEqual({ expired: 0, thinned: 0, expiredRuns: 0 });
    const left = store.samples({ cluster: 'c' }).map((s) => Date.parse(s.at));
    expect(left.filter((at) => at < now + HOUR - 24 * HOUR)).toHaveLength(3 * 12 + 1);
    expect(left.filter((at) => at >= now + HOUR - 24 * HOUR)).toHaveLength(23 * 60);
  });

  it('a version-2 store (samples with names in every row) opens migrated: runs and samples intact, sample rows keyed by member', () => {
    const path = join(dir, 'v2.db');
    const v2 = track(openStore(path, { migrations: MIGRATIONS.slice(0, 2) }));
    const runId = v2.startRun({ cluster: 'prod', trigger: 'manual', by: 'ops', startedAt: iso(T0) });
    v2.finishRun(runId, report());
    v2.close();
    const raw = new Database(path);
    const insert = raw.prepare(
      `INSERT INTO samples (cluster, member_id, member_name, at, db_size, db_size_in_use, quota, revision, is_leader) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run('prod', 'aa', 'm1', T0, 300, 100, 2048, 7, 1);
    insert.run('prod', 'bb', 'm2', T0, 310, 110, 2048, 7, 0);
    insert.run('prod', 'aa', 'm1', T0 + 5_000, 320, 120, 2048, 8, 1);
    insert.run('other', 'aa', 'x1', T0, 1, 1, 1, 1, 0);
    // One observation recorded twice at the same millisecond: the later row stays.
    insert.run('prod', 'bb', 'm2', T0 + 5_000, 1, 1, 1, 1, 0);
    insert.run('prod', 'bb', 'm2', T0 + 5_000, 330, 130, 2048, 8, 0);
    raw.close();

    const store = track(openStore(path));
    expect(store.openedAtVersion).toBe(2);
    const sample = (
      memberId: string,
      memberName: string,
      at: number,
      dbSize: number,
      dbSizeInUse: number,
      revision: number,
      isLeader: boolean,
    ) => ({
      cluster: 'prod',
      memberId,
      memberName,
      at: iso(at),
      dbSize,
      dbSizeInUse,
      quota: 2048,
      revision,
      isLeader,
    });
    expect(store.samples({ cluster: 'prod' })).toEqual([
      sample('aa', 'm1', T0, 300, 100, 7, true),
      sample('bb', 'm2', T0, 310, 110, 7, false),
      sample('aa', 'm1', T0 + 5_000, 320, 120, 8, true),
      sample('bb', 'm2', T0 + 5_000, 330, 130, 8, false),
    ]);
    expect(store.samples({ cluster: 'other' })).toHaveLength(1);
    expect(store.run(runId)?.report).toEqual(report());
    // New samples of a known member join its rows.
    store.recordSamples('prod', { ...aSnapshot().withMembers(1).build(), observedAt: iso(T0 + 10_000) });
    expect(store.samples({ cluster: 'prod', from: iso(T0 + 10_000) })).toHaveLength(1);
    store.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'samples'`).all()).toEqual([]);
      expect(db.prepare(`SELECT COUNT(*) AS n FROM sample_members`).get()).toEqual({ n: 4 });
    } finally {
      db.close();
    }
  });
});
