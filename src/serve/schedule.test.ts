import { describe, expect, it } from 'vitest';
import {
  type ClusterSchedulerState,
  type Decision,
  clusterState,
  decide,
  drawScheduledStart,
  jitteredStart,
  nextScheduledStart,
  nextScheduledStarts,
  retentionRevision,
  startQueuePosition,
  validateSchedule,
} from './schedule.js';
import { parseWindow } from './window.js';

const at = (iso: string): number => Date.parse(iso);
const isos = (ms: number[]): string[] => ms.map((t) => new Date(t).toISOString());
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('validateSchedule', () => {
  it('accepts 5 and 6 fields', () => {
    expect(() => validateSchedule('0 3 * * 0', 'Europe/Berlin')).not.toThrow();
    expect(() => validateSchedule('30 0 3 * * 0', 'UTC')).not.toThrow();
  });

  it.each([
    ['61 * * * *', 'UTC', 'invalid cron expression "61 * * * *": '],
    ['0 3 * *', 'UTC', 'invalid cron expression "0 3 * *": '],
    ['0 0 3 * * * 2027', 'UTC', 'invalid cron expression "0 0 3 * * * 2027": '],
    ['0 3 * * *', 'Nope/Nowhere', 'unknown time zone "Nope/Nowhere"'],
  ])('refuses %j in %s, in one line', (cron, tz, reason) => {
    expect(() => validateSchedule(cron, tz)).toThrow(reason);
    expect(() => validateSchedule(cron, tz)).not.toThrow(/\n/);
  });
});

describe('nextScheduledStart(s)', () => {
  it('is strictly after the instant given, sub-second instants included', () => {
    expect(nextScheduledStart('30 2 * * *', 'UTC', at('2026-03-28T02:29:59.500Z'))).toBe(at('2026-03-28T02:30:00Z'));
    expect(nextScheduledStart('30 2 * * *', 'UTC', at('2026-03-28T02:30:00Z'))).toBe(at('2026-03-29T02:30:00Z'));
    expect(nextScheduledStart('30 2 * * *', 'UTC', at('2026-03-28T02:30:00.500Z'))).toBe(at('2026-03-29T02:30:00Z'));
  });

  it('follows the timezone', () => {
    expect(nextScheduledStart('0 3 * * 0', 'Europe/Berlin', at('2026-11-25T00:00:00Z'))).toBe(at('2026-11-29T02:00:00Z'));
    expect(nextScheduledStart('0 3 * * 0', 'America/New_York', at('2026-11-25T00:00:00Z'))).toBe(at('2026-11-29T08:00:00Z'));
  });

  it('is null when the expression never matches', () => {
    expect(nextScheduledStart('0 0 30 2 *', 'UTC', 0)).toBeNull();
    expect(nextScheduledStarts('0 0 30 2 *', 'UTC', 0, 5)).toEqual([]);
  });

  describe('daylight saving time: a fixed-time job runs once every day', () => {
    it.each([
      // Europe/Berlin spring forward, 2026-03-29: 02:30 does not exist; it runs at 03:00 CEST.
      [
        '30 2 * * *',
        'Europe/Berlin',
        '2026-03-27T12:00:00Z',
        ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'],
      ],
      // Europe/Berlin fall back, 2026-10-25: 02:30 happens twice; it runs on the first (CEST).
      [
        '30 2 * * *',
        'Europe/Berlin',
        '2026-10-23T12:00:00Z',
        ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z'],
      ],
      // The example schedule lands on the fall-back Sunday: 03:00 CET, once.
      ['0 3 * * 0', 'Europe/Berlin', '2026-10-23T12:00:00Z', ['2026-10-25T02:00:00.000Z', '2026-11-01T02:00:00.000Z']],
      // America/New_York spring forward, 2026-03-08: 02:30 does not exist; it runs at 03:00 EDT.
      ['30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', ['2026-03-08T07:00:00.000Z', '2026-03-09T06:30:00.000Z']],
      // America/New_York fall back, 2026-11-01: 01:30 happens twice; it runs on the first (EDT).
      ['30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']],
    ])('%s in %s after %s', (cron, tz, after, expected) => {
      expect(isos(nextScheduledStarts(cron, tz, at(after), expected.length))).toEqual(expected);
    });

    it.each([
      ['Europe/Berlin', '2026-03-01T00:00:00Z'],
      ['Europe/Berlin', '2026-10-01T00:00:00Z'],
      ['America/New_York', '2026-03-01T00:00:00Z'],
      ['America/New_York', '2026-10-20T00:00:00Z'],
    ])('chained after each scheduled time through the change in %s: one start per local day, none missed', (tz, from) => {
      const days = 40;
      const starts: number[] = [];
      let after = at(from);
      for (let i = 0; i < days; i++) {
        const next = nextScheduledStart('30 2 * * *', tz, after);
        expect(next).not.toBeNull();
        starts.push(next ?? 0);
        after = next ?? 0;
      }
      const localDay = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
      const localDays = starts.map((t) => localDay.format(t));
      expect(new Set(localDays).size).toBe(days);
      // Consecutive local days: 23 to 25 hours apart.
      for (let i = 1; i < days; i++) {
        const gapMs = (starts[i] ?? 0) - (starts[i - 1] ?? 0);
        expect(gapMs).toBeGreaterThanOrEqual(23 * HOUR - 30 * MINUTE);
        expect(gapMs).toBeLessThanOrEqual(25 * HOUR);
      }
    });
  });

  describe('daylight saving time: an interval job follows real time', () => {
    it('skips the gap (Europe/Berlin spring forward): still every 30 minutes of real time', () => {
      expect(isos(nextScheduledStarts('*/30 * * * *', 'Europe/Berlin', at('2026-03-29T00:10:00Z'), 4))).toEqual([
        '2026-03-29T00:30:00.000Z', // 01:30 CET
        '2026-03-29T01:00:00.000Z', // 03:00 CEST
        '2026-03-29T01:30:00.000Z',
        '2026-03-29T02:00:00.000Z',
      ]);
    });

    it('runs the repeated hour twice (Europe/Berlin fall back): still every 30 minutes of real time', () => {
      expect(isos(nextScheduledStarts('*/30 * * * *', 'Europe/Berlin', at('2026-10-24T23:50:00Z'), 4))).toEqual([
        '2026-10-25T00:00:00.000Z', // 02:00 CEST
        '2026-10-25T00:30:00.000Z', // 02:30 CEST
        '2026-10-25T01:00:00.000Z', // 02:00 CET
        '2026-10-25T01:30:00.000Z', // 02:30 CET
      ]);
    });
  });
});

describe('jitteredStart', () => {
  it.each([
    [0, 10 * MINUTE, 0],
    [0.5, 10 * MINUTE, 5 * MINUTE],
    [0.9999999999, 10 * MINUTE, 10 * MINUTE - 1],
    [1, 10 * MINUTE, 10 * MINUTE - 1], // a random() that rounds up stays below the jitter
    [0.7, 0, 0],
  ])('random %d, jitter %d ms: +%d ms', (r, jitterMs, delayMs) => {
    expect(jitteredStart(1_000_000, jitterMs, () => r)).toBe(1_000_000 + delayMs);
  });

  it('draws the next cron time and adds the jitter', () => {
    expect(drawScheduledStart({ cron: '0 3 * * *', jitterMs: 10 * MINUTE }, 'UTC', at('2026-11-25T12:00:00Z'), () => 0.25)).toEqual({
      scheduledMs: at('2026-11-26T03:00:00Z'),
      startMs: at('2026-11-26T03:02:30Z'),
    });
    expect(drawScheduledStart({ cron: '0 0 30 2 *', jitterMs: 0 }, 'UTC', 0, () => 0)).toBeNull();
  });
});

// --- decide ------------------------------------------------------------------

// Saturday 2026-11-28, 02:00 UTC.
const NOW = at('2026-11-28T02:00:00Z');
const SAT = [parseWindow('Sat 01:00-05:00')];
const SUN = [parseWindow('Sun 01:00-05:00')];
const SUN_OPENS = at('2026-11-29T01:00:00Z');

const idle: ClusterSchedulerState = {
  running: false,
  unreachable: false,
  nospace: false,
  nospaceMode: 'recover',
  schedule: null,
  pendingStart: null,
  auto: null,
  autoRunDue: false,
  lastRunFinishedMs: null,
  windows: [],
  timezone: 'UTC',
  globalRunning: 0,
  maxConcurrentRuns: 1,
  queuedAhead: 0,
};
const hourly = { cron: '55 * * * *', jitterMs: 10 * MINUTE }; // 01:55, 02:55, ...
const dueNow = { scheduledMs: NOW - 5 * MINUTE, startMs: NOW - MINUTE };
const later = { scheduledMs: NOW + 55 * MINUTE, startMs: NOW + 58 * MINUTE };
const scheduled: Partial<ClusterSchedulerState> = { schedule: hourly, pendingStart: dueNow };
const auto: Partial<ClusterSchedulerState> = { auto: { cooldownMs: 6 * HOUR }, autoRunDue: true };
const busy: Partial<ClusterSchedulerState> = { globalRunning: 1, maxConcurrentRuns: 1 };

type Expected = Pick<Decision, 'action'> & { trigger?: string; waitingFor?: string; nextCheckMs?: number; dueMs?: number; reason?: RegExp };

describe('decide', () => {
  it.each<[string, Partial<ClusterSchedulerState>, Expected]>([
    // Nothing configured.
    ['observed only', {}, { action: 'wait', waitingFor: 'nothing', reason: /observed only/ }],

    // 1. Never two runs of one cluster.
    ['running', { running: true, ...auto }, { action: 'wait', waitingFor: 'running' }],
    ['running, NOSPACE', { running: true, nospace: true }, { action: 'wait', waitingFor: 'running' }],
    ['running, scheduled start due: skipped', { running: true, ...scheduled }, { action: 'skip-scheduled', reason: /in progress/ }],
    [
      'running, scheduled start not due',
      { running: true, schedule: hourly, pendingStart: later },
      { action: 'wait', waitingFor: 'running' },
    ],

    // 2. A due start the schedule has moved past.
    [
      'scheduled start late by a whole interval',
      { schedule: hourly, pendingStart: { scheduledMs: NOW - 65 * MINUTE, startMs: NOW - 60 * MINUTE }, windows: SAT },
      { action: 'skip-scheduled', reason: /next cron time's turn/ },
    ],
    [
      'scheduled start late by less than an interval',
      { schedule: hourly, pendingStart: { scheduledMs: NOW - 65 * MINUTE, startMs: NOW - 59 * MINUTE }, windows: SAT },
      { action: 'start', trigger: 'schedule' },
    ],
    [
      'a jitter longer than the interval is no lateness',
      {
        schedule: { cron: '55 * * * *', jitterMs: 3 * HOUR },
        pendingStart: { scheduledMs: NOW - 5 * HOUR - 5 * MINUTE, startMs: NOW - MINUTE },
      },
      { action: 'start', trigger: 'schedule' },
    ],
    [
      'scheduled start overtaken, even while unreachable',
      { unreachable: true, schedule: hourly, pendingStart: { scheduledMs: NOW - 65 * MINUTE, startMs: NOW - 65 * MINUTE } },
      { action: 'skip-scheduled', reason: /next cron time's turn/ },
    ],

    // 3. Unreachable: nothing starts.
    ['unreachable', { unreachable: true, ...auto }, { action: 'wait', waitingFor: 'unreachable' }],
    ['unreachable, NOSPACE', { unreachable: true, nospace: true }, { action: 'wait', waitingFor: 'unreachable' }],
    ['unreachable, scheduled start due: kept', { unreachable: true, ...scheduled }, { action: 'wait', waitingFor: 'unreachable' }],

    // 4. NOSPACE recovery.
    ['NOSPACE', { nospace: true }, { action: 'start', trigger: 'nospace' }],
    [
      'NOSPACE before its retry time: nothing starts, auto included, until then',
      { nospace: true, nospaceRetryAtMs: NOW + MINUTE, ...auto },
      { action: 'wait', waitingFor: 'nospace', nextCheckMs: NOW + MINUTE },
    ],
    ['NOSPACE at its retry time', { nospace: true, nospaceRetryAtMs: NOW }, { action: 'start', trigger: 'nospace' }],
    [
      'NOSPACE ignores windows, cooldown, the queue and maxConcurrentRuns',
      { nospace: true, ...auto, windows: SUN, lastRunFinishedMs: NOW - MINUTE, ...busy, queuedAhead: 3 },
      { action: 'start', trigger: 'nospace' },
    ],
    ['NOSPACE before a due scheduled start', { nospace: true, ...scheduled }, { action: 'start', trigger: 'nospace' }],
    ['NOSPACE with nospace: ignore', { nospace: true, nospaceMode: 'ignore' }, { action: 'wait', waitingFor: 'nothing' }],
    [
      'NOSPACE with nospace: ignore, auto as usual',
      { nospace: true, nospaceMode: 'ignore', ...auto, windows: SUN },
      { action: 'wait', waitingFor: 'window', nextCheckMs: SUN_OPENS },
    ],

    // 5. Scheduled starts.
    ['scheduled start due, no windows', { ...scheduled }, { action: 'start', trigger: 'schedule' }],
    ['scheduled start due, inside the windows', { ...scheduled, windows: SAT }, { action: 'start', trigger: 'schedule' }],
    [
      'scheduled start due exactly now',
      { schedule: hourly, pendingStart: { scheduledMs: NOW - 5 * MINUTE, startMs: NOW } },
      { action: 'start', trigger: 'schedule' },
    ],
    [
      'scheduled start due, outside the windows: skipped',
      { ...scheduled, windows: SUN },
      { action: 'skip-scheduled', reason: /outside the windows/ },
    ],
    [
      'scheduled start due, no slot: queued',
      { ...scheduled, ...busy },
      { action: 'wait', waitingFor: 'slot', trigger: 'schedule', dueMs: dueNow.startMs },
    ],
    [
      'scheduled start due, one queued ahead, max 1',
      { ...scheduled, queuedAhead: 1 },
      { action: 'wait', waitingFor: 'slot', trigger: 'schedule' },
    ],
    [
      'scheduled start due, one queued ahead, max 2',
      { ...scheduled, queuedAhead: 1, maxConcurrentRuns: 2 },
      { action: 'start', trigger: 'schedule' },
    ],
    [
      'scheduled start due, no slot and outside the windows: skipped',
      { ...scheduled, ...busy, windows: SUN },
      { action: 'skip-scheduled' },
    ],
    [
      'scheduled start due, in cooldown: the cooldown is for auto',
      { ...scheduled, ...auto, lastRunFinishedMs: NOW - MINUTE },
      { action: 'start', trigger: 'schedule' },
    ],
    [
      'scheduled start due, rule holds for nobody: the run records nothing-to-do',
      { ...scheduled, auto: { cooldownMs: HOUR } },
      { action: 'start', trigger: 'schedule' },
    ],
    [
      'scheduled start not due',
      { schedule: hourly, pendingStart: later },
      { action: 'wait', waitingFor: 'schedule', nextCheckMs: later.startMs },
    ],
    ['schedule without a drawn start', { schedule: hourly }, { action: 'wait', waitingFor: 'nothing', reason: /no scheduled start drawn/ }],

    // 6. Auto.
    ['auto, rule holds, never ran', { ...auto }, { action: 'start', trigger: 'auto' }],
    ['auto, rule holds, cooldown passed', { ...auto, lastRunFinishedMs: NOW - 7 * HOUR }, { action: 'start', trigger: 'auto' }],
    ['auto, rule holds, cooldown ends exactly now', { ...auto, lastRunFinishedMs: NOW - 6 * HOUR }, { action: 'start', trigger: 'auto' }],
    [
      'auto, rule holds, in cooldown',
      { ...auto, lastRunFinishedMs: NOW - HOUR },
      { action: 'wait', waitingFor: 'cooldown', nextCheckMs: NOW + 5 * HOUR },
    ],
    [
      'auto, in cooldown, a scheduled start comes first',
      { ...auto, lastRunFinishedMs: NOW - HOUR, schedule: hourly, pendingStart: later },
      { action: 'wait', waitingFor: 'cooldown', nextCheckMs: later.startMs },
    ],
    [
      'auto, in cooldown that ends outside the windows: check when the window opens',
      { ...auto, lastRunFinishedMs: NOW - HOUR, windows: SUN },
      { action: 'wait', waitingFor: 'cooldown', nextCheckMs: SUN_OPENS },
    ],
    ['auto, rule holds, inside the windows', { ...auto, windows: SAT }, { action: 'start', trigger: 'auto' }],
    ['auto, rule holds, outside the windows', { ...auto, windows: SUN }, { action: 'wait', waitingFor: 'window', nextCheckMs: SUN_OPENS }],
    [
      'auto, outside the windows, a scheduled start comes first',
      { ...auto, windows: SUN, schedule: hourly, pendingStart: later },
      { action: 'wait', waitingFor: 'window', nextCheckMs: later.startMs },
    ],
    ['auto, rule holds, no slot: queued', { ...auto, ...busy }, { action: 'wait', waitingFor: 'slot', trigger: 'auto', dueMs: NOW }],
    ['auto, rule holds for nobody', { auto: { cooldownMs: HOUR } }, { action: 'wait', waitingFor: 'rule' }],
    ['rule holds but no auto', { autoRunDue: true }, { action: 'wait', waitingFor: 'nothing' }],
    [
      'rule holds, no auto, a scheduled start pending',
      { autoRunDue: true, schedule: hourly, pendingStart: later },
      { action: 'wait', waitingFor: 'schedule', nextCheckMs: later.startMs },
    ],
  ])('%s', (_name, overrides, expected) => {
    const { reason, ...fields } = expected;
    const decision = decide({ ...idle, ...overrides }, NOW);
    expect(decision).toMatchObject(fields);
    if (!('nextCheckMs' in fields)) expect(decision).not.toHaveProperty('nextCheckMs');
    expect(decision.reason).toMatch(reason ?? /./);
    expect(decision.reason).not.toContain('\n');
  });

  it('a week of one daily schedule with weekday windows: five runs, two skips, no doubles (fake clock)', () => {
    // The daemon's loop in miniature: draw after the previous scheduled time,
    // decide every minute, a run lasts 20 minutes.
    const schedule = { cron: '0 3 * * *', jitterMs: 30 * MINUTE };
    const windows = [parseWindow('Mon-Fri 01:00-05:00')];
    let random = 0;
    const nextRandom = (): number => (random = (random + 0.37) % 1);
    let now = at('2026-11-23T00:00:00Z'); // Monday
    let pending = drawScheduledStart(schedule, 'Europe/Berlin', now, nextRandom);
    let runningUntil: number | null = null;
    const started: string[] = [];
    const skipped: string[] = [];
    for (; now < at('2026-11-30T00:00:00Z'); now += MINUTE) {
      if (runningUntil !== null && now >= runningUntil) runningUntil = null;
      const d = decide(
        { ...idle, schedule, windows, timezone: 'Europe/Berlin', pendingStart: pending, running: runningUntil !== null },
        now,
      );
      if (d.action === 'start') {
        expect(d.trigger).toBe('schedule');
        started.push(new Date(now).toISOString());
        runningUntil = now + 20 * MINUTE;
      }
      if (d.action === 'skip-scheduled') skipped.push(new Date(now).toISOString());
      if ((d.action === 'start' || d.action === 'skip-scheduled') && pending !== null) {
        pending = drawScheduledStart(schedule, 'Europe/Berlin', pending.scheduledMs, nextRandom);
      }
    }
    // 03:00 CET = 02:00Z plus 0..30 min of jitter; Saturday and Sunday fall outside the windows.
    expect(started.map((s) => s.slice(0, 10))).toEqual(['2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26', '2026-11-27']);
    expect(started.every((s) => s.slice(11, 16) >= '02:00' && s.slice(11, 16) < '02:30')).toBe(true);
    expect(skipped.map((s) => s.slice(0, 10))).toEqual(['2026-11-28', '2026-11-29']);
  });
});

describe('startQueuePosition', () => {
  const queue = [
    { cluster: 'c', dueMs: 30 },
    { cluster: 'a', dueMs: 10 },
    { cluster: 'b', dueMs: 10 },
  ];
  it.each([
    ['a', 0],
    ['b', 1], // same due time as a: by name
    ['c', 2],
    ['d', 3], // not queued: behind everyone
  ])('%s: %d ahead', (cluster, ahead) => {
    expect(startQueuePosition(queue, cluster)).toBe(ahead);
  });
});

describe('clusterState', () => {
  type View = Parameters<typeof clusterState>[0];
  const base: View = { running: false, unreachable: false, auto: null, lastRunFinishedMs: null };
  const cooling: Partial<View> = { auto: { cooldownMs: HOUR }, lastRunFinishedMs: NOW - MINUTE };
  it.each<[string, Partial<View>, string]>([
    ['idle', {}, 'idle'],
    ['running', { running: true, unreachable: true, ...cooling }, 'running'],
    ['unreachable', { unreachable: true, ...cooling }, 'unreachable'],
    ['cooldown', { ...cooling }, 'cooldown'],
    ['cooldown over', { auto: { cooldownMs: HOUR }, lastRunFinishedMs: NOW - HOUR }, 'idle'],
    ['no auto, so no cooldown', { lastRunFinishedMs: NOW - MINUTE }, 'idle'],
  ])('%s', (_name, overrides, expected) => {
    expect(clusterState({ ...base, ...overrides }, NOW)).toBe(expected);
  });
});

describe('retentionRevision', () => {
  const samples = [
    { atMs: NOW - 3 * HOUR, revision: 7000 },
    { atMs: NOW - 90 * MINUTE, revision: 8500 },
    { atMs: NOW - HOUR, revision: 9000 },
    { atMs: NOW - 30 * MINUTE, revision: 9500 },
    { atMs: NOW, revision: 10_000 },
  ];
  it.each<[string, typeof samples, number, number | null]>([
    ['the newest sample at or before now - retain', samples, 75 * MINUTE, 7000 + 1500],
    ['a sample exactly retain ago', samples, HOUR, 9000],
    ['unordered samples', [...samples].reverse(), HOUR, 9000],
    ['samples that do not reach back far enough', samples, 4 * HOUR, null],
    ['no samples', [], HOUR, null],
    ['retain 0: the newest sample', samples, 0, 10_000],
    ['a revision 0 sample (nothing written yet) is no target', [{ atMs: NOW - 2 * HOUR, revision: 0 }], HOUR, null],
  ])('%s', (_name, s, retainMs, expected) => {
    expect(retentionRevision(s, retainMs, NOW)).toBe(expected);
  });
});
