import { describe, expect, it } from 'vitest';
import type { LoadStats } from '../../dev/harness/kube.js';
import { ConfigError, loadConfig } from './config.js';
import { loadFigures, presetTable, type KubeBenchResult, type ToolResult } from './report.js';

const stats = (over: Partial<LoadStats> = {}): LoadStats => ({
  since: '2026-12-07T00:00:00Z',
  requests: { PUT: { '200': 50, '504': 2, '409': 3 }, GET: { '200': 10, '<error>': 1 }, POST: { '201': 5, '429': 1 } },
  retries: { GET: { '503': 2 } },
  maxLatencyMs: { GET: 9000, PUT: 2100, POST: 300, DELETE: 2500 },
  operations: {
    'configmap-update': { ok: 40, failed: 2, failedBy: { Timeout: 1, InternalError: 1 }, maxLatencyMs: 2100 },
    'event-create': { ok: 5, failed: 0, maxLatencyMs: 300 },
  },
  leases: { 'load-controller-0': { acquired: 1, lost: 1, handovers: 1 } },
  informers: {
    configmaps: { lists: 2, relists: 1, watches: 3, restarts: 2, watchErrors: 0, events: 10 },
    leases: { lists: 1, relists: 0, watches: 1, restarts: 0, watchErrors: 0, events: 4 },
  },
  readyz: { polls: 100, failures: 3, longestFailureMs: 2000 },
  ...over,
});

describe('loadFigures', () => {
  it('counts failed attempts (5xx, 429, no answer) apart from answers that are not failures (409)', () => {
    const f = loadFigures(stats(), 'kcm', 3);
    expect(f.failedAttempts).toEqual({ '504': 2, '<error>': 1, '429': 1 });
    expect(f.retries).toEqual({ '503': 2 });
    expect(f.failedCalls).toEqual({ 'configmap-update: Timeout': 1, 'configmap-update: InternalError': 1 });
    expect([f.leases, f.lost, f.handovers]).toEqual([3, 1, 1]);
    expect([f.relists, f.watchRestarts]).toEqual([1, 2]);
  });

  it('takes the longest write from the write verbs only (a 9 s GET is a watch or a slow read, not a write)', () => {
    const f = loadFigures(stats(), 'kcm', 3);
    expect([f.maxWriteMs, f.maxWriteVerb]).toEqual([2500, 'DELETE']);
  });
});

const tool = (name: string, lost: number, failedCalls: Record<string, number> = {}): ToolResult => {
  const fig = { ...loadFigures(stats({ operations: {}, leases: {} }), 'kcm', 3), lost, failedCalls };
  return {
    preset: 'small',
    tool: name,
    command: name,
    ok: true,
    note: null,
    before: [{ name: 'm1', dbSize: 200 * 2 ** 20, dbSizeInUse: 100 * 2 ** 20 }],
    after: [],
    order: [{ name: 'm1', led: name === 'etcdctl', ms: 2200, ok: true, note: null }],
    serverDefragSec: 2.2,
    wallMs: 2500,
    elections: 0,
    leaderMoves: 0,
    compactedBefore: false,
    baseline: [fig],
    run: [fig],
  };
};
const result = (tools: ToolResult[]): KubeBenchResult => ({
  version: 1,
  startedAt: 'x',
  finishedAt: 'y',
  command: 'make bench-kube',
  machine: { cpus: 2, cpuModel: 'cpu', node: 'v20', etcd: '3.6.17', kube: 'v1.37.2', loadAvgAtStart: 1 },
  settings: {},
  presets: [{ name: 'small', liveMiB: 100, about: 'small' }],
  tools,
  sideBySide: null,
  totalSeconds: 60,
});

describe('presetTable', () => {
  it('marks the leader defragmented while it led and says whether defragd met its goal', () => {
    const met = presetTable(result([tool('etcdctl', 2), tool('defragd', 0)]), 'small');
    expect(met).toContain('m1 ⚑ 2.20 s');
    expect(met).toContain('**2** of 3');
    expect(met).toContain('Goal for defragd');
    expect(met).toMatch(/\*\*met\*\* \(0 lost, 0 failed\)/);
    const notMet = presetTable(result([tool('defragd', 1, { 'configmap-update: Timeout': 1 })]), 'small');
    expect(notMet).toMatch(/\*\*not met\*\* \(1 lost, 1 failed\)/);
  });
});

describe('loadConfig', () => {
  it('refuses an unknown tool or preset with a one-line reason', () => {
    expect(() => loadConfig({ BENCH_KUBE_TOOLS: 'etcdctl,kubectl' })).toThrow(ConfigError);
    expect(() => loadConfig({ BENCH_KUBE_PRESETS: 'huge' })).toThrow(
      /BENCH_KUBE_PRESETS=huge: expected a comma-separated list of small, stall/,
    );
    expect(loadConfig({}).tools).toEqual(['etcdctl', 'etcd-defrag', 'defragd']);
  });
});
