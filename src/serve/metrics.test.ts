/**
 * The metrics say what the snapshot says, member by member, and forget what
 * left: checked on prom-client's exposition text, line by line.
 */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { aSnapshot, MiB, memberIdAt } from '../../test/builders.js';
import type { RunReport } from '../domain/run.js';
import { collectProcessMetrics, createMetrics } from './metrics.js';

/** The exposition's samples: `name{labels}` → value (label order as prom-client prints it). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

const member = (name: string, memberId: string, cluster = 'prod') => `cluster="${cluster}",member="${name}",member_id="${memberId}"`;

const [ID1, ID2, ID3, ID4] = [memberIdAt(0), memberIdAt(1), memberIdAt(2), memberIdAt(3)];

function aReport(overrides: Partial<RunReport> = {}): RunReport {
  return {
    outcome: 'success',
    dryRun: false,
    message: null,
    startedAt: '2024-05-01T03:00:00.000Z',
    finishedAt: '2024-05-01T03:02:00.000Z',
    compactedRevision: null,
    disarmed: false,
    disarmNote: null,
    reclaimedBytes: 0,
    members: [],
    warnings: [],
    plan: null,
    ...overrides,
  };
}

function aResult(name: string, memberId: string, action: 'defragmented' | 'skipped' | 'failed') {
  return {
    endpoint: 'https://10.0.0.1:2379',
    memberId,
    name,
    action,
    reason: '',
    wasLeader: false,
    movedLeaderTo: null,
    before: null,
    after: null,
    durationMs: 1000,
    revision: 10,
    deadlinePassed: false,
    connectionLost: false,
  };
}

describe('createMetrics: member figures', () => {
  it("equal the snapshot's, for every member", async () => {
    const m = createMetrics();
    const snap = aSnapshot()
      .withMembers(3)
      .withLeader('m2')
      .withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB, quota: 1024 * MiB })
      .withLearner('m4')
      .build();
    m.observed('prod', snap, null);
    const s = samples(await m.text());

    expect(s.get(`defragd_member_db_size_bytes{${member('m1', ID1!)}}`)).toBe(300 * MiB);
    expect(s.get(`defragd_member_db_size_in_use_bytes{${member('m1', ID1!)}}`)).toBe(100 * MiB);
    expect(s.get(`defragd_member_db_size_free_bytes{${member('m1', ID1!)}}`)).toBe(200 * MiB);
    expect(s.get(`defragd_member_quota_bytes{${member('m1', ID1!)}}`)).toBe(1024 * MiB);
    // Every ratio equals the snapshot's own figure, unrounded.
    for (const ms of snap.members) {
      const labels = member(ms.name, ms.memberId);
      expect(s.get(`defragd_member_fragmentation_ratio{${labels}}`)).toBe(ms.status!.fragmentation);
      expect(s.get(`defragd_member_quota_usage_ratio{${labels}}`)).toBe(ms.status!.quotaUsage);
      expect(s.get(`defragd_member_db_size_bytes{${labels}}`)).toBe(ms.status!.dbSize);
      expect(s.get(`defragd_member_up{${labels}}`)).toBe(1);
    }
    expect(s.get(`defragd_member_fragmentation_ratio{${member('m1', ID1!)}}`)).toBeCloseTo(2 / 3, 12);
    expect(s.get(`defragd_member_is_leader{${member('m2', ID2!)}}`)).toBe(1);
    expect(s.get(`defragd_member_is_leader{${member('m1', ID1!)}}`)).toBe(0);
    expect(s.get(`defragd_member_is_learner{${member('m4', ID4!)}}`)).toBe(1);
    expect(s.get(`defragd_member_is_learner{${member('m3', ID3!)}}`)).toBe(0);
    expect(s.get('defragd_cluster_last_observation_timestamp_seconds{cluster="prod"}')).toBe(Date.parse(snap.observedAt) / 1000);
    expect(s.get('defragd_observation_errors_total{cluster="prod"}')).toBe(0);
  });

  it('print the exact exposition line for a member', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(1).build(), null);
    const lines = (await m.text()).split('\n');
    expect(lines).toContain(`defragd_member_db_size_bytes{${member('m1', ID1!)}} 104857600`);
    expect(lines).toContain(`defragd_member_fragmentation_ratio{${member('m1', ID1!)}} 0.4`);
    expect(lines).toContain('# TYPE defragd_member_db_size_bytes gauge');
    expect(lines).toContain('# TYPE defragd_runs_total counter');
  });

  it('label an unnamed member with its hex ID, and drop that series once it has a name', async () => {
    const m = createMetrics();
    m.observed(
      'prod',
      {
        ...aSnapshot().withMembers(1).build(),
        members: aSnapshot()
          .withMembers(1)
          .build()
          .members.map((x) => ({ ...x, name: '' })),
      },
      null,
    );
    expect(samples(await m.text()).get(`defragd_member_up{${member(ID1!, ID1!)}}`)).toBe(1);
    m.observed('prod', aSnapshot().withMembers(1).build(), null);
    const s = samples(await m.text());
    expect(s.get(`defragd_member_up{${member('m1', ID1!)}}`)).toBe(1);
    expect([...s.keys()].filter((k) => k.includes(`member="${ID1}"`))).toEqual([]);
  });

  it('show an unreachable member as down, without stale sizes', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(3).build(), null);
    m.observed('prod', aSnapshot().withMembers(3).unreachable('m3').unhealthy('m2').build(), null);
    const s = samples(await m.text());
    expect(s.get(`defragd_member_up{${member('m3', ID3!)}}`)).toBe(0);
    expect(s.get(`defragd_member_up{${member('m2', ID2!)}}`)).toBe(0);
    expect(s.get(`defragd_member_up{${member('m1', ID1!)}}`)).toBe(1);
    expect(s.has(`defragd_member_db_size_bytes{${member('m3', ID3!)}}`)).toBe(false);
    expect(s.get(`defragd_member_db_size_bytes{${member('m2', ID2!)}}`)).toBe(100 * MiB);
  });

  it('remove every series of a member that left the cluster', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(3).withAlarm('m3', 'NOSPACE').build(), null);
    m.lastDefrag('prod', 'm3', ID3!, { atMs: 1_700_000_000_000, durationMs: 2500, revision: 42 });
    m.runFinished('prod', 'schedule', aReport({ members: [aResult('m3', ID3!, 'defragmented')] }));
    const before = await m.text();
    expect(before).toContain(`member_id="${ID3}"`);
    expect(before).toContain('member="m3"');

    m.observed('prod', aSnapshot().withMembers(2).build(), null);
    const after = await m.text();
    expect(after).not.toContain(`member_id="${ID3}"`);
    expect(after).not.toContain('member="m3"');
    expect(samples(after).get(`defragd_member_up{${member('m2', ID2!)}}`)).toBe(1);
  });

  it('keep the figures of a failed observation, mark every member down and count the error', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(2).build(), null);
    m.observed('prod', null, 'no endpoint answered');
    m.observed('prod', null, 'no endpoint answered');
    const s = samples(await m.text());
    expect(s.get('defragd_observation_errors_total{cluster="prod"}')).toBe(2);
    expect(s.get(`defragd_member_up{${member('m1', ID1!)}}`)).toBe(0);
    expect(s.get(`defragd_member_up{${member('m2', ID2!)}}`)).toBe(0);
    expect(s.get(`defragd_member_db_size_bytes{${member('m1', ID1!)}}`)).toBe(100 * MiB);
  });
});

describe('createMetrics: alarms', () => {
  const alarmLine = (name: string, id: string, alarm: string) => `defragd_member_alarm{${member(name, id)},alarm="${alarm}"}`;

  it('show a raised alarm with 1 and remove it once cleared', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(3).withAlarm('*', 'NOSPACE').withAlarm('m2', 'CORRUPT').build(), null);
    let s = samples(await m.text());
    expect(s.get(alarmLine('m1', ID1!, 'NOSPACE'))).toBe(1);
    expect(s.get(alarmLine('m3', ID3!, 'NOSPACE'))).toBe(1);
    expect(s.get(alarmLine('m2', ID2!, 'CORRUPT'))).toBe(1);

    m.observed('prod', aSnapshot().withMembers(3).withAlarm('m2', 'CORRUPT').build(), null);
    s = samples(await m.text());
    expect([...s.keys()].filter((k) => k.startsWith('defragd_member_alarm{'))).toEqual([alarmLine('m2', ID2!, 'CORRUPT')]);
  });

  it('show an alarm of an ID that is no member under its hex ID', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(1).withOrphanAlarm('abc123', 'NOSPACE').build(), null);
    expect(samples(await m.text()).get(alarmLine('abc123', 'abc123', 'NOSPACE'))).toBe(1);
  });

  it('keep the alarms as known when the alarm list could not be read', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(2).withAlarm('m1', 'NOSPACE').build(), null);
    m.observed('prod', aSnapshot().withMembers(2).alarmsUnknown().build(), null);
    expect(samples(await m.text()).get(alarmLine('m1', ID1!, 'NOSPACE'))).toBe(1);
  });
});

describe('createMetrics: runs', () => {
  it('count runs by trigger and outcome, and show one in progress', async () => {
    const m = createMetrics();
    m.runStarted('prod', 'schedule');
    let s = samples(await m.text());
    expect(s.get('defragd_run_in_progress{cluster="prod"}')).toBe(1);
    // Zero before the first failure, so increase() sees it.
    expect(s.get('defragd_runs_total{cluster="prod",trigger="schedule",outcome="failed"}')).toBe(0);

    m.runFinished(
      'prod',
      'schedule',
      aReport({
        reclaimedBytes: 300 * MiB,
        members: [aResult('m1', ID1!, 'defragmented'), aResult('m2', ID2!, 'defragmented'), aResult('m3', ID3!, 'failed')],
        outcome: 'failed',
      }),
    );
    m.runStarted('prod', 'api');
    m.runFinished('prod', 'api', aReport({ reclaimedBytes: 100 * MiB, members: [aResult('m1', ID1!, 'defragmented')] }));
    s = samples(await m.text());
    expect(s.get('defragd_run_in_progress{cluster="prod"}')).toBe(0);
    expect(s.get('defragd_runs_total{cluster="prod",trigger="schedule",outcome="failed"}')).toBe(1);
    expect(s.get('defragd_runs_total{cluster="prod",trigger="schedule",outcome="success"}')).toBe(0);
    expect(s.get('defragd_runs_total{cluster="prod",trigger="api",outcome="success"}')).toBe(1);
    expect(s.get('defragd_reclaimed_bytes_total{cluster="prod"}')).toBe(400 * MiB);
    expect(s.get('defragd_member_results_total{cluster="prod",member="m1",action="defragmented"}')).toBe(2);
    expect(s.get('defragd_member_results_total{cluster="prod",member="m3",action="failed"}')).toBe(1);
    expect(s.get('defragd_last_run_timestamp_seconds{cluster="prod",outcome="success"}')).toBe(
      Date.parse('2024-05-01T03:02:00.000Z') / 1000,
    );
    expect(s.get('defragd_last_run_timestamp_seconds{cluster="prod",outcome="failed"}')).toBe(
      Date.parse('2024-05-01T03:02:00.000Z') / 1000,
    );
  });

  it('count a dry run, but neither reclaimed bytes nor member defrags', async () => {
    const m = createMetrics();
    m.runFinished(
      'prod',
      'api',
      aReport({ outcome: 'dry-run', dryRun: true, reclaimedBytes: 5, members: [aResult('m1', ID1!, 'defragmented')] }),
    );
    const s = samples(await m.text());
    expect(s.get('defragd_runs_total{cluster="prod",trigger="api",outcome="dry-run"}')).toBe(1);
    expect(s.get('defragd_reclaimed_bytes_total{cluster="prod"}')).toBe(0);
    expect([...s.keys()].some((k) => k.startsWith('defragd_member_results_total{'))).toBe(false);
  });

  it('show the last defragmentation of a member in seconds', async () => {
    const m = createMetrics();
    m.lastDefrag('prod', 'm1', ID1!, { atMs: 1_714_532_400_500, durationMs: 2500, revision: 42 });
    let s = samples(await m.text());
    expect(s.get(`defragd_member_last_defrag_timestamp_seconds{${member('m1', ID1!)}}`)).toBe(1_714_532_400.5);
    expect(s.get(`defragd_member_last_defrag_duration_seconds{${member('m1', ID1!)}}`)).toBe(2.5);
    expect(s.get(`defragd_member_last_defrag_revision{${member('m1', ID1!)}}`)).toBe(42);
    m.lastDefrag('prod', 'm1', ID1!, { atMs: 1_714_532_500_000, durationMs: null, revision: null });
    s = samples(await m.text());
    expect(s.get(`defragd_member_last_defrag_timestamp_seconds{${member('m1', ID1!)}}`)).toBe(1_714_532_500);
    expect(s.has(`defragd_member_last_defrag_duration_seconds{${member('m1', ID1!)}}`)).toBe(false);
    expect(s.has(`defragd_member_last_defrag_revision{${member('m1', ID1!)}}`)).toBe(false);
  });

  it('show the next scheduled run and the lock, and drop the next run when none is scheduled', async () => {
    const m = createMetrics();
    m.nextRun('prod', 1_714_532_400_000);
    m.lockHeld('prod', true);
    m.lockHeld('dev', false);
    let s = samples(await m.text());
    expect(s.get('defragd_next_scheduled_run_timestamp_seconds{cluster="prod"}')).toBe(1_714_532_400);
    expect(s.get('defragd_lock_held{cluster="prod"}')).toBe(1);
    expect(s.get('defragd_lock_held{cluster="dev"}')).toBe(0);
    m.nextRun('prod', null);
    s = samples(await m.text());
    expect(s.has('defragd_next_scheduled_run_timestamp_seconds{cluster="prod"}')).toBe(false);
  });
});

describe('createMetrics: isolation', () => {
  it('keep clusters apart and forget one on request', async () => {
    const m = createMetrics();
    m.observed('prod', aSnapshot().withMembers(1).withAlarm('m1', 'NOSPACE').build(), null);
    m.observed('dev', aSnapshot().withMembers(1).build(), 'partly failed');
    m.runFinished('prod', 'auto', aReport());
    m.nextRun('prod', 1000);
    m.lockHeld('prod', false);
    await m.forgetCluster('prod');
    const text = await m.text();
    expect(text).not.toContain('cluster="prod"');
    const s = samples(text);
    expect(s.get(`defragd_member_up{${member('m1', ID1!, 'dev')}}`)).toBe(1);
    expect(s.get('defragd_observation_errors_total{cluster="dev"}')).toBe(1);
  });

  it('use its own registry: two instances share nothing, the global registry stays empty', async () => {
    const a = createMetrics();
    const b = createMetrics(new Registry());
    a.lockHeld('prod', true);
    expect(await b.text()).not.toContain('cluster="prod"');
    expect(a.contentType).toMatch(/^text\/plain/);
    const { register } = await import('prom-client');
    expect(await register.metrics()).not.toContain('defragd_');
  });
});

describe('collectProcessMetrics', () => {
  it("adds the process's own figures under the defragd_ prefix: memory, CPU, event-loop delay since the last scrape", async () => {
    const m = createMetrics();
    collectProcessMetrics(m.registry);
    // Block the event loop for 150 ms after the monitor has sampled a while; the figures are per scrape.
    // A busy machine can delay the monitor's own timer past the scrape, so up to three tries.
    const blockedMax = async () => {
      await m.text(); // start a fresh window
      await new Promise((r) => setTimeout(r, 50));
      const until = Date.now() + 150;
      while (Date.now() < until) {
        /* busy */
      }
      await new Promise((r) => setTimeout(r, 50));
      return samples(await m.text());
    };
    let s = await blockedMax();
    for (let i = 0; i < 2 && (s.get('defragd_nodejs_eventloop_lag_max_seconds') ?? 0) < 0.1; i++) s = await blockedMax();
    const names = [...s.keys()].map((k) => k.replace(/\{.*$/, ''));
    expect(names.filter((n) => !n.startsWith('defragd_'))).toEqual([]);
    const rss = s.get('defragd_process_resident_memory_bytes') as number;
    expect(Math.abs(rss - process.memoryUsage().rss)).toBeLessThan(64 * MiB);
    expect(s.get('defragd_process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(s.get('defragd_nodejs_eventloop_lag_max_seconds')).toBeGreaterThanOrEqual(0.1);
    expect(s.has('defragd_nodejs_eventloop_lag_p99_seconds')).toBe(true);
    // The daemon's own series are unchanged beside them.
    m.lockHeld('prod', true);
    expect(samples(await m.text()).get('defragd_lock_held{cluster="prod"}')).toBe(1);
  });
});
