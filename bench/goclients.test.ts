import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { parseGoReport, stopGrpcOnDefragArgs, summarizeGoReport, type GoKindStats, type GoReport } from './goclients.js';
import { goRows, lossesCell } from './goreport.js';
import type { ToolFigures } from './analyze.js';

const members = [
  { name: 'm1', url: 'http://127.0.0.1:2379' },
  { name: 'm2', url: 'http://127.0.0.1:2479' },
  { name: 'm3', url: 'http://127.0.0.1:2579' },
];

function stats(kind: string, mode: 'default' | 'health', over: Partial<GoKindStats> = {}): GoKindStats {
  return {
    kind,
    mode,
    clients: 3,
    calls: 10,
    retries: 0,
    attemptErrors: {},
    failed: {},
    streams: 0,
    sessionsLost: 0,
    leasesLost: 0,
    electionsLost: 0,
    watchInterruptions: 0,
    watchCompactedRestarts: 0,
    maxLatencyMs: 5,
    latencyOf: `what ${kind} measures`,
    ...over,
  };
}

const T0 = 1_000_000;

function aReport(over: Partial<GoReport> = {}): GoReport {
  return {
    label: 'defragd',
    startUnixMs: T0,
    endUnixMs: T0 + 20_000,
    kinds: [
      stats('session-5s', 'default', { sessionsLost: 1, electionsLost: 1, streamPeers: { '127.0.0.1:2379': 2, '127.0.0.1:2479': 1 } }),
      stats('session-5s', 'health'),
      stats('session-15s', 'default'),
      stats('session-15s', 'health'),
      stats('keepalive', 'default', { leasesLost: 1, streams: 1, streamPeers: { '127.0.0.1:2379': 3 } }),
      stats('watch', 'default', { streamPeers: { '127.0.0.1:2579': 3 } }),
      stats('keepalive', 'health'),
      stats('txn', 'default', { calls: 40, retries: 2, failed: { Unavailable: 1 }, maxLatencyMs: 2100 }),
      stats('txn', 'health', { calls: 50, maxLatencyMs: 90 }),
    ],
    events: [
      // m2 defragmented from T0+1000 to T0+4000: a session lost 2 s after through m2 was on it.
      {
        unixMs: T0 + 6_000,
        client: 'session-5s/default#0',
        kind: 'session-5s',
        mode: 'default',
        what: 'session lost (and its election)',
        peer: '127.0.0.1:2479',
      },
      // Through m3, never defragmented: lost away from any defrag.
      {
        unixMs: T0 + 9_000,
        client: 'keepalive/default#1',
        kind: 'keepalive',
        mode: 'default',
        what: 'lease lost',
        peer: '127.0.0.1:2579',
        detail: 'no keep-alive answer for 5s',
      },
      {
        unixMs: T0 + 2_000,
        client: 'txn/default#2',
        kind: 'txn',
        mode: 'default',
        what: 'txn',
        code: 'Unavailable',
        peer: '127.0.0.1:2479',
        detail: 'etcdserver: leader changed',
      },
    ],
    eventsDropped: 0,
    ...over,
  };
}

const defrags = [{ name: 'm2', start: T0 + 1_000, end: T0 + 4_000 }];

describe('parseGoReport', () => {
  it('takes a report line as etcd-clients prints it', () => {
    const r = aReport();
    expect(parseGoReport(JSON.stringify(r))).toEqual(r);
  });

  it('refuses anything else, naming the line', () => {
    expect(() => parseGoReport('{"ready":true}')).toThrow(/not a report/);
    expect(() => parseGoReport(JSON.stringify(aReport({ kinds: [{ ...stats('txn', 'default'), mode: 'other' as 'health' }] })))).toThrow(
      /bad kind/,
    );
    expect(() => parseGoReport('nope')).toThrow();
  });
});

describe('summarizeGoReport', () => {
  const s = summarizeGoReport(aReport(), members, defrags, T0, 5_000);

  it('adds up each mode', () => {
    expect(s.modes.default).toMatchObject({
      calls: 80,
      retries: 2,
      failed: { Unavailable: 1 },
      failedByKind: { txn: 1 },
      sessionsLost: { 'session-5s': 1, 'session-15s': 0 },
      leasesLost: 1,
      electionsLost: 1,
      streamsReopened: 1,
    });
    expect(s.modes.health).toMatchObject({ calls: 80, retries: 0, failed: {}, leasesLost: 0, electionsLost: 0, lostAwayFromDefrag: 0 });
    expect(s.modes.default.maxLatencyMs.txn).toBe(2100);
    expect(s.modes.health.maxLatencyMs.txn).toBe(90);
    expect(s.clientsPerKind).toMatchObject({ 'session-5s': 3, txn: 3 });
  });

  it("names each loss's member and whether it was being defragmented within a TTL before", () => {
    expect(s.losses.map((l) => [l.offsetMs, l.client, l.member, l.onDefragmented])).toEqual([
      [6_000, 'session-5s/default#0', 'm2', true],
      [9_000, 'keepalive/default#1', 'm3', false],
      [2_000, 'txn/default#2', 'm2', true],
    ]);
    // Only the lease lost through m3 counts as lost away from a defrag; a failed request is not a loss.
    expect(s.modes.default.lostAwayFromDefrag).toBe(1);
  });

  it('a session lost longer than its TTL after its member was defragmented is not put on the defrag', () => {
    const late = aReport({ events: [{ ...(aReport().events[0] as GoReport['events'][0]), unixMs: T0 + 4_000 + 5_001 }] });
    const r = summarizeGoReport(late, members, defrags, T0, 5_000);
    expect(r.losses[0]?.onDefragmented).toBe(false);
    expect(r.modes.default.lostAwayFromDefrag).toBe(1);
  });

  it('an address that is no member is shown as it is', () => {
    const r = summarizeGoReport(
      aReport({ events: [{ ...(aReport().events[0] as GoReport['events'][0]), peer: '' }] }),
      members,
      defrags,
      T0,
      5_000,
    );
    expect(r.losses[0]?.member).toBe('unknown');
  });
});

describe('the Go clients rows', () => {
  const go = summarizeGoReport(aReport(), members, defrags, T0, 5_000);
  const t = { go } as ToolFigures;
  const rows = goRows(Object.keys(go.clientsPerKind), go.latencyOf);
  const cell = (label: RegExp): string => {
    const row = rows.find(([l]) => label.test(l));
    if (!row) throw new Error(`no row ${label}`);
    return row[1](t);
  };

  it('shows default / health-checked, losses in bold', () => {
    expect(cell(/sessions lost \(TTL 5 s \+ 15 s\)/)).toBe('**1** + 0 / 0 + 0');
    expect(cell(/keep-alive streams per member/)).toBe('m1 5, m2 1 / –');
    expect(cell(/elections lost/)).toBe('**1** / 0');
    expect(cell(/not\*\* being defragmented/)).toBe('**1** / 0');
    expect(cell(/did not retry away/)).toBe('**1** (1× Unavailable; txn 1) / 0');
    expect(cell(/unary requests/)).toBe('80 (2) / 80 (0)');
    expect(cell(/^Go clients \(txn\), longest/)).toBe('2.10 s / 90 ms');
  });

  it('a run without Go clients shows –', () => {
    expect(rows.every(([, f]) => f({ go: null } as ToolFigures) === '–')).toBe(true);
  });

  it('lists losses with their member, ⊗ on the one being defragmented, and says how many more', () => {
    expect(lossesCell(go, 2)).toBe(
      '+6.00 s m2 ⊗ session-5s/default#0: session lost (and its election); +9.00 s m3 keepalive/default#1: lease lost (no keep-alive answer for 5s); and 1 more',
    );
    expect(lossesCell({ ...go, losses: [] })).toBe('none');
  });
});

describe('StopGRPCServiceOnDefrag', () => {
  it.each([
    ['3.7.4', ['--feature-gates=StopGRPCServiceOnDefrag=true']],
    ['3.6.17', ['--feature-gates=StopGRPCServiceOnDefrag=true']],
    ['3.5.36', ['--experimental-stop-grpc-service-on-defrag=true']],
    ['3.4.23', null],
    ['nonsense', null],
  ])('etcd %s: %j', (version, args) => {
    expect(stopGrpcOnDefragArgs(version)).toEqual(args);
  });

  it('is a bench option, off by default', () => {
    expect(loadConfig([], {})?.stopGrpcOnDefrag).toBe(false);
    expect(loadConfig(['--stop-grpc-on-defrag'], {})?.stopGrpcOnDefrag).toBe(true);
    expect(loadConfig([], { DEFRAGD_BENCH_STOP_GRPC_ON_DEFRAG: '1' })?.stopGrpcOnDefrag).toBe(true);
  });
});
