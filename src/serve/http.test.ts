/**
 * The HTTP API against a fake DaemonView: every route and status code, the
 * bearer token, the SSE stream, through `app.request()` without a socket, and
 * once through serveApi on a loopback socket.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { aSnapshot, MiB } from '../../test/builders.js';
import { aClusterView, aStoredRun, FakeDaemonView } from '../../test/fakes/daemon-view.js';
import { statusJson } from '../app/status-json.js';
import type { RunReport } from '../domain/run.js';
import { AbortedError, ConnectionError, DeadlineError, EtcdError, MixedClustersError, RefusedError } from '../domain/errors.js';
import { StoreError } from '../store/errors.js';
import { ANY_HOST, hostPolicy } from './hosts.js';
import { createApi, DASHBOARD_CSP, serveApi, type ApiLogger, type ApiOptions } from './http.js';
import { MAX_POINTS_PER_MEMBER } from './samples.js';
import type { Sample } from '../store/types.js';
import { createMetrics } from './metrics.js';
import type { DaemonEvent } from './types.js';

const TOKEN = 's3cret-token';

const snapshot = aSnapshot()
  .withMembers(3)
  .withLeader('m2')
  .withMember('m1', { dbSize: 300 * MiB, dbSizeInUse: 100 * MiB })
  .withAlarm('m3', 'NOSPACE')
  .build();

function aView(): FakeDaemonView {
  return new FakeDaemonView()
    .withCluster(
      aClusterView('prod', {
        snapshot,
        observedAt: snapshot.observedAt,
        state: 'running',
        lastRun: aStoredRun(3, 'prod'),
        nextRun: { at: '2024-05-05T03:00:00.000Z', trigger: 'schedule' },
        schedule: '0 3 * * 0',
        runningRunId: 4,
        lockHeld: true,
      }),
    )
    .withCluster(aClusterView('dev', { state: 'unreachable', observedAt: snapshot.observedAt, observeError: 'connection refused' }));
}

function anApi(view = aView(), opts: Partial<ApiOptions> = {}) {
  const metrics = createMetrics();
  // Requests without a socket carry no Host header; the guard has its own tests.
  return createApi(view, { token: TOKEN, hosts: ANY_HOST, metrics, ...opts });
}

async function expectJson(res: Response, status: number): Promise<any> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json\b/);
  expect(res.headers.get('cache-control')).toBe('no-store');
  return res.json();
}

const report: RunReport = {
  outcome: 'dry-run',
  dryRun: true,
  message: null,
  startedAt: '2024-05-01T03:00:00.000Z',
  finishedAt: '2024-05-01T03:00:00.000Z',
  compactedRevision: null,
  disarmed: false,
  disarmNote: null,
  reclaimedBytes: 0,
  members: [],
  warnings: [],
  plan: null,
};

describe('health and readiness', () => {
  it('/healthz answers ok', async () => {
    expect(await expectJson(await anApi().request('/healthz'), 200)).toEqual({ ok: true });
  });

  it.each([
    [{ ok: true, reason: null }, 200, { ok: true }],
    [{ ok: false, reason: 'cluster prod not observed yet' }, 503, { ok: false, reason: 'cluster prod not observed yet' }],
  ])('/readyz with %j answers %i', async (readiness, status, body) => {
    const view = aView();
    view.readiness = readiness;
    expect(await expectJson(await anApi(view).request('/readyz'), status)).toEqual(body);
  });
});

describe('/metrics', () => {
  it("answers the metrics' text with their content type", async () => {
    const metrics = createMetrics();
    metrics.observed('prod', snapshot, null);
    const res = await createApi(aView(), { token: null, hosts: ANY_HOST, metrics }).request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.contentType);
    expect(await res.text()).toContain('defragd_member_db_size_bytes{cluster="prod",member="m1"');
  });
});

describe('/metrics and /api/v1/clusters', () => {
  it('say the same of every member: bytes exactly, ratios to the 4 decimals the JSON keeps', async () => {
    const metrics = createMetrics();
    metrics.observed('prod', snapshot, null);
    const app = createApi(aView(), { token: null, hosts: ANY_HOST, metrics });
    const text = await (await app.request('/metrics')).text();
    const value = (name: string, m: { name: string; memberId: string }) => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{cluster="prod",member="${m.name}",member_id="${m.memberId}"} `));
      if (line === undefined) throw new Error(`no ${name} for ${m.name}`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const body = await expectJson(await app.request('/api/v1/clusters/prod'), 200);
    expect(body.observation.members).toHaveLength(3);
    for (const m of body.observation.members) {
      expect(value('defragd_member_db_size_bytes', m)).toBe(m.dbSize);
      expect(value('defragd_member_db_size_in_use_bytes', m)).toBe(m.dbSizeInUse);
      expect(value('defragd_member_db_size_free_bytes', m)).toBe(m.dbSizeFree);
      expect(value('defragd_member_quota_bytes', m)).toBe(m.quota);
      expect(value('defragd_member_fragmentation_ratio', m)).toBeCloseTo(m.fragmentation, 4);
      expect(value('defragd_member_quota_usage_ratio', m)).toBeCloseTo(m.quotaUsage, 4);
      expect(value('defragd_member_is_leader', m)).toBe(m.isLeader ? 1 : 0);
      expect(value('defragd_member_is_learner', m)).toBe(m.isLearner ? 1 : 0);
      expect(value('defragd_member_up', m)).toBe(m.healthy ? 1 : 0);
    }
  });
});

describe('GET /api/v1/clusters', () => {
  it('lists each cluster with its members as `status -w json` prints them, state, last and next run', async () => {
    const body = await expectJson(await anApi().request('/api/v1/clusters'), 200);
    expect(body.clusters.map((c: { name: string }) => c.name)).toEqual(['prod', 'dev']);
    const [prod, dev] = body.clusters;
    expect(prod.observation.members).toEqual(statusJson(snapshot));
    expect(Object.keys(prod.observation.members[0]).sort()).toEqual(Object.keys(statusJson(snapshot)[0]!).sort());
    expect(prod.observation.members[0].dbSizeFree).toBe(200 * MiB);
    expect(prod.observation.alarms).toEqual([{ memberId: snapshot.members[2]!.memberId, alarm: 'NOSPACE' }]);
    expect(prod.observation.leaderId).toBe(snapshot.members[1]!.memberId);
    expect(prod).toMatchObject({
      state: 'running',
      lastRun: { id: 3, outcome: 'success' },
      nextRun: { at: '2024-05-05T03:00:00.000Z', trigger: 'schedule' },
      runningRunId: 4,
      lockHeld: true,
    });
    expect(prod).not.toHaveProperty('snapshot');
    expect(dev).toMatchObject({ state: 'unreachable', observation: null, observeError: 'connection refused' });
  });

  it('says whether the dashboard may offer runs: only with a token configured, else why not', async () => {
    expect((await expectJson(await anApi().request('/api/v1/clusters'), 200)).actions).toEqual({ enabled: true, reason: null });
    const off = (await expectJson(await anApi(aView(), { token: null }).request('/api/v1/clusters'), 200)).actions;
    expect(off).toEqual({ enabled: false, reason: expect.stringMatching(/no API token is configured \(apiTokenFile\)/) });
  });

  it('answers one cluster, and 404 for an unknown one', async () => {
    const app = anApi();
    expect((await expectJson(await app.request('/api/v1/clusters/prod'), 200)).name).toBe('prod');
    expect(await expectJson(await app.request('/api/v1/clusters/nope'), 404)).toEqual({ error: 'no cluster named "nope"' });
  });
});

describe('GET /api/v1/clusters/:name/samples', () => {
  const NOW = Date.parse('2024-05-01T12:00:00.000Z');
  const sample = (member: string, minutesAgo: number, dbSize: number): Sample => ({
    cluster: 'prod',
    memberId: `id-${member}`,
    memberName: member,
    at: new Date(NOW - minutesAgo * 60_000).toISOString(),
    dbSize,
    dbSizeInUse: dbSize / 2,
    quota: 2048 * MiB,
    revision: 100,
    isLeader: member === 'm2',
  });
  function viewWithSamples(): FakeDaemonView {
    const view = aView();
    // Two hours of samples every minute for m1 and m2; the 1h range keeps the last hour.
    view.sampleLists.set(
      'prod',
      Array.from({ length: 120 }, (_, i) => 119 - i).flatMap((ago) => [sample('m1', ago, (200 - ago) * MiB), sample('m2', ago, 10 * MiB)]),
    );
    view.histories.set('prod', [
      aStoredRun(9, 'prod', {
        startedAt: new Date(NOW - 10 * 60_000).toISOString(),
        finishedAt: new Date(NOW - 9 * 60_000).toISOString(),
        outcome: 'failed',
      }),
      aStoredRun(8, 'prod', {
        startedAt: new Date(NOW - 20 * 60_000).toISOString(),
        finishedAt: new Date(NOW - 20 * 60_000).toISOString(),
        dryRun: true,
      }),
      aStoredRun(7, 'prod', {
        startedAt: new Date(NOW - 90 * 60_000).toISOString(),
        finishedAt: new Date(NOW - 89 * 60_000).toISOString(),
      }),
    ]);
    return view;
  }

  it('answers per member the points of the range (default 1h) as columns, and the runs in it (no dry runs) for the markers', async () => {
    const body = await expectJson(await anApi(viewWithSamples(), { now: () => NOW }).request('/api/v1/clusters/prod/samples'), 200);
    expect(body).toMatchObject({ cluster: 'prod', range: '1h', from: '2024-05-01T11:00:00.000Z', to: '2024-05-01T12:00:00.000Z' });
    expect(body.members.map((m: { name: string }) => m.name)).toEqual(['m1', 'm2']);
    const m1 = body.members[0];
    expect(m1.atMs).toHaveLength(61);
    expect(m1.atMs[0]).toBe(NOW - 60 * 60_000);
    expect(m1.dbSize.at(-1)).toBe(200 * MiB);
    expect(m1.dbSizeInUse.at(-1)).toBe(100 * MiB);
    expect(m1.quota[0]).toBe(2048 * MiB);
    expect(body.members[1].isLeader.every(Boolean)).toBe(true);
    expect(body.runs.map((r: { id: number }) => r.id)).toEqual([9]);
  });

  it('thins a long range to at most a few hundred points per member, each a real sample (the last of its bucket)', async () => {
    const view = aView();
    // 7 days, one sample a minute: 10080 per member.
    view.sampleLists.set(
      'prod',
      Array.from({ length: 7 * 1440 }, (_, i) => 7 * 1440 - 1 - i).map((ago) => sample('m1', ago, ago * 1024)),
    );
    const body = await expectJson(await anApi(view, { now: () => NOW }).request('/api/v1/clusters/prod/samples?range=7d'), 200);
    const m1 = body.members[0];
    expect(m1.atMs.length).toBeLessThanOrEqual(MAX_POINTS_PER_MEMBER);
    expect(m1.atMs.length).toBeGreaterThan(MAX_POINTS_PER_MEMBER / 2);
    expect(m1.atMs.at(-1)).toBe(NOW);
    for (const [i, t] of (m1.atMs as number[]).entries()) expect(m1.dbSize[i]).toBe(((NOW - t) / 60_000) * 1024);
  });

  it.each(['2h', '', '1H', '24h;drop'])('range=%j is a 400 naming the ranges', async (range) => {
    const body = await expectJson(
      await anApi(viewWithSamples(), { now: () => NOW }).request(`/api/v1/clusters/prod/samples?range=${encodeURIComponent(range)}`),
      400,
    );
    expect(body).toEqual({ error: 'range must be one of 1h, 24h, 7d, 30d' });
  });

  it('answers 404 for an unknown cluster', async () => {
    expect(await expectJson(await anApi().request('/api/v1/clusters/nope/samples?range=1h'), 404)).toEqual({
      error: 'no cluster named "nope"',
    });
  });
});

describe('GET /api/v1/clusters/:name/history', () => {
  it.each([
    ['', 50],
    ['?limit=1', 1],
    ['?limit=10', 10],
    ['?limit=1000', 1000],
  ])('history%s asks for %i runs', async (query, limit) => {
    const view = aView();
    view.histories.set('prod', [aStoredRun(2, 'prod'), aStoredRun(1, 'prod')]);
    const body = await expectJson(await anApi(view).request(`/api/v1/clusters/prod/history${query}`), 200);
    expect(view.calls.filter((c) => c.method === 'history')).toEqual([{ method: 'history', args: ['prod', limit] }]);
    expect(body.runs.map((r: { id: number }) => r.id)).toEqual(limit === 1 ? [2] : [2, 1]);
  });

  it.each(['0', '1001', '-1', '1.5', 'abc', '', '1e2', '%205', '0x10'])('limit=%j is a 400', async (limit) => {
    const view = aView();
    const body = await expectJson(await anApi(view).request(`/api/v1/clusters/prod/history?limit=${limit}`), 400);
    expect(body.error).toBe('limit must be an integer from 1 to 1000');
    expect(view.calls.some((c) => c.method === 'history')).toBe(false);
  });

  it('answers 404 for an unknown cluster', async () => {
    await expectJson(await anApi().request('/api/v1/clusters/nope/history'), 404);
  });
});

describe('GET /api/v1/clusters/:name/status', () => {
  it("answers the view's defragmentation status", async () => {
    const view = aView();
    const member = {
      endpoint: 'https://10.0.0.1:2379',
      memberId: 'abc',
      name: 'm1',
      lastDefrag: null,
      record: 'none' as const,
      ageSeconds: null,
      reclaimedBytes: null,
      version: '3.6.17',
      dbSize: 1,
      dbSizeInUse: 1,
      dbSizeFree: 0,
      fragmentation: 0,
      warning: null,
      error: null,
    };
    view.statuses.set('prod', [member]);
    expect(await expectJson(await anApi(view).request('/api/v1/clusters/prod/status'), 200)).toEqual({
      cluster: 'prod',
      members: [member],
    });
  });

  it('answers 404 for an unknown cluster without asking the view', async () => {
    const view = aView();
    await expectJson(await anApi(view).request('/api/v1/clusters/nope/status'), 404);
    expect(view.calls.some((c) => c.method === 'defragmentationStatus')).toBe(false);
  });
});

describe('GET /api/v1/runs/:id', () => {
  it('answers the report and events of a run', async () => {
    const view = aView();
    const detail = {
      run: aStoredRun(12, 'prod'),
      report: null,
      events: [{ seq: 1, at: '2024-05-01T03:00:00.000Z', event: { type: 'pause' as const, ms: 5 } }],
    };
    view.runs.set(12, detail);
    expect(await expectJson(await anApi(view).request('/api/v1/runs/12'), 200)).toEqual(detail);
  });

  it.each(['abc', '0', '-1', '1.5', '1e3', '99999999999999999999'])('id %s is a 400', async (id) => {
    const body = await expectJson(await anApi().request(`/api/v1/runs/${id}`), 400);
    expect(body.error).toContain('run id must be a positive integer');
  });

  it('answers 404 for an unknown run', async () => {
    expect(await expectJson(await anApi().request('/api/v1/runs/99'), 404)).toEqual({ error: 'no run 99' });
  });
});

describe('POST /api/v1/clusters/:name/runs', () => {
  const post = (app: ReturnType<typeof anApi>, body: string | null, auth: string | null = `Bearer ${TOKEN}`, name = 'prod') =>
    app.request(`/api/v1/clusters/${name}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth === null ? {} : { authorization: auth }) },
      ...(body === null ? {} : { body }),
    });
  const started = (view: FakeDaemonView) => view.calls.filter((c) => c.method === 'startRun');

  it('starts a run: 202 with its id', async () => {
    const view = aView();
    expect(await expectJson(await post(anApi(view), '{"dryRun": false}'), 202)).toEqual({ runId: 7, dryRun: false });
    expect(started(view)).toEqual([{ method: 'startRun', args: ['prod', { dryRun: false }] }]);
  });

  it('takes an empty body as a real run', async () => {
    const view = aView();
    await expectJson(await post(anApi(view), null), 202);
    expect(started(view)[0]!.args).toEqual(['prod', { dryRun: false }]);
  });

  it('answers a dry run at once: 200 with the report', async () => {
    const view = aView();
    view.startRunAnswer = { ok: true, runId: 8, dryRun: true, report };
    expect(await expectJson(await post(anApi(view), '{"dryRun": true}'), 200)).toEqual({ runId: 8, dryRun: true, report });
    expect(started(view)[0]!.args).toEqual(['prod', { dryRun: true }]);
  });

  it('answers 409 with the reason when the view says so', async () => {
    const view = aView();
    view.startRunAnswer = { ok: false, status: 409, reason: 'the cluster lock is held by host-b:42' };
    expect(await expectJson(await post(anApi(view), '{}'), 409)).toEqual({ error: 'the cluster lock is held by host-b:42' });
  });

  it('answers 404 for an unknown cluster', async () => {
    const view = aView();
    await expectJson(await post(anApi(view), '{}', `Bearer ${TOKEN}`, 'nope'), 404);
    expect(started(view)).toEqual([]);
  });

  it.each([
    ['not JSON', '{dryRun: true', 'the body is not valid JSON'],
    ['a misspelt key', '{"dryrun": true}', 'bad run request'],
    ['a non-boolean', '{"dryRun": "yes"}', 'bad run request: dryRun'],
    ['an array', '[]', 'bad run request'],
  ])('answers 400 for %s', async (_what, body, error) => {
    const view = aView();
    expect((await expectJson(await post(anApi(view), body), 400)).error).toContain(error);
    expect(started(view)).toEqual([]);
  });

  it('answers 413 for a huge body', async () => {
    await expectJson(await post(anApi(), JSON.stringify({ dryRun: true, pad: 'x'.repeat(100_000) })), 413);
  });

  describe('auth', () => {
    it('answers 403 when no token is configured, saying so, even with a header', async () => {
      const view = aView();
      const body = await expectJson(await post(anApi(view, { token: null }), '{}', `Bearer ${TOKEN}`), 403);
      expect(body.error).toContain('no API token is configured');
      expect(started(view)).toEqual([]);
    });

    it.each([
      ['no header', null],
      ['an empty bearer', 'Bearer '],
      ['a wrong token', 'Bearer s3cret-tokem'],
      ['a longer token', `Bearer ${TOKEN}x`],
      ['a prefix of the token', 'Bearer s3cret'],
      ['another scheme', `Basic ${TOKEN}`],
    ])('answers 401 with %s', async (_what, auth) => {
      const view = aView();
      const res = await post(anApi(view), '{}', auth);
      expect((await expectJson(res, 401)).error).toBe('a valid bearer token is required');
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(started(view)).toEqual([]);
    });

    it('checks the token before anything else: no 404 for an unknown cluster without it', async () => {
      await expectJson(await post(anApi(), '{}', null, 'nope'), 401);
    });

    it('accepts the right token in any case of the scheme', async () => {
      await expectJson(await post(anApi(), '{}', `bearer ${TOKEN}`), 202);
    });
  });
});

describe('errors', () => {
  it('answers an unknown route with a JSON 404', async () => {
    const app = anApi();
    expect((await expectJson(await app.request('/nope'), 404)).error).toBe('no such route: GET /nope');
    expect((await expectJson(await app.request('/api/v1/nope'), 404)).error).toBe('no such route: GET /api/v1/nope');
    await expectJson(await app.request('/api/v1/clusters', { method: 'DELETE' }), 404);
  });

  it('answers a thrown error with a bare 500 and logs it with its stack', async () => {
    const lines: string[] = [];
    const logger: ApiLogger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    const view = aView();
    view.failWith = new Error('database is locked at /var/lib/defragd.sqlite');
    const app = anApi(view, { logger });
    for (const path of ['/readyz', '/api/v1/clusters', '/api/v1/clusters/prod/history', '/api/v1/runs/1']) {
      const res = await app.request(path);
      const text = await res.clone().text();
      expect(await expectJson(res, 500)).toEqual({ error: 'internal error' });
      expect(text).not.toContain('database is locked');
      expect(text).not.toContain('at ');
    }
    expect(lines).toHaveLength(4);
    const logged = JSON.parse(lines[0]!);
    expect(logged).toMatchObject({ level: 50, msg: 'HTTP request failed', method: 'GET', path: '/readyz' });
    expect(logged.err.message).toBe('database is locked at /var/lib/defragd.sqlite');
    expect(logged.err.stack).toContain('Error: database is locked');
  });
});

describe("defragd's own errors", () => {
  const mixed = new MixedClustersError(
    'the endpoints reach members of more than one cluster: 10.0.0.1:2379 is cluster a1; 10.0.0.9:2379 is cluster b2; give the endpoints of one cluster',
    [],
  );
  const asked = [
    ['the status', (app: ReturnType<typeof anApi>) => app.request('/api/v1/clusters/prod/status')],
    [
      'a dry run',
      (app: ReturnType<typeof anApi>) =>
        app.request('/api/v1/clusters/prod/runs', {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}` },
          body: '{"dryRun":true}',
        }),
    ],
    [
      'a run',
      (app: ReturnType<typeof anApi>) =>
        app.request('/api/v1/clusters/prod/runs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: '{}' }),
    ],
  ] as const;
  const errors = [
    ['endpoints of two clusters', mixed, 502],
    ['a cluster that does not answer', new ConnectionError('10.0.0.1:2379', '10.0.0.1:2379: connection refused'), 502],
    ['an etcd error', new EtcdError('10.0.0.1:2379', 'PERMISSION_DENIED', 'etcdserver: permission denied'), 502],
    ['a deadline', new DeadlineError('10.0.0.1:2379', '10.0.0.1:2379: no answer within 5s'), 504],
    ['a refusal', new RefusedError('the cluster has no leader'), 409],
    ['a stop', new AbortedError('the daemon is stopping'), 503],
  ] as const;

  it.each(asked.flatMap(([what, ask]) => errors.map(([err, e, status]) => [what, err, ask, e, status] as const)))(
    '%s that meets %s answers its status with its one-line message, not a 500',
    async (_what, _err, ask, error, status) => {
      const lines: string[] = [];
      const view = aView();
      view.failures.set('defragmentationStatus', error);
      view.failures.set('startRun', error);
      const res = await ask(anApi(view, { logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(s) }) }));
      expect(await expectJson(res, status)).toEqual({ error: error.message });
      // Not a bug: nothing for the error log (the daemon logs what a run met).
      expect(lines).toEqual([]);
    },
  );

  it("keeps 500 for the routes that ask no cluster (a store that cannot be read is /readyz's to say) and for a bug", async () => {
    const view = aView();
    view.failures.set('run', new StoreError('/var/lib/defragd.sqlite', 'database is locked'));
    view.failures.set('defragmentationStatus', new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(await expectJson(await anApi(view).request('/api/v1/runs/1'), 500)).toEqual({ error: 'internal error' });
    expect(await expectJson(await anApi(view).request('/api/v1/clusters/prod/status'), 500)).toEqual({ error: 'internal error' });
  });
});

describe('GET /api/v1/events', () => {
  const anEvent = (cluster: string): DaemonEvent => ({
    cluster,
    runId: 4,
    at: '2024-05-01T03:00:01.000Z',
    event: { type: 'warning', message: 'slow member' },
  });

  async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, done: (text: string) => boolean): Promise<string> {
    const decoder = new TextDecoder();
    let text = '';
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error(`stream ended after ${JSON.stringify(text)}`);
      text += decoder.decode(value, { stream: true });
    }
    return text;
  }

  const subscribed = async (view: FakeDaemonView, n: number) => {
    for (let i = 0; i < 100 && view.subscribers !== n; i++) await new Promise((r) => setTimeout(r, 5));
    expect(view.subscribers).toBe(n);
  };

  it('carries every daemon event as `event: step` with JSON data, and unsubscribes when the client goes', async () => {
    const view = aView();
    const res = await anApi(view).request('/api/v1/events');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    await subscribed(view, 1);

    view.emit(anEvent('prod'));
    view.emit(anEvent('dev'));
    const text = await readUntil(reader, (t) => t.split('\n\n').length > 2);
    const events = text.split('\n\n').filter(Boolean);
    expect(events[0]).toBe(`event: step\ndata: ${JSON.stringify(anEvent('prod'))}`);
    expect(events[1]).toBe(`event: step\ndata: ${JSON.stringify(anEvent('dev'))}`);

    await reader.cancel();
    await subscribed(view, 0);
  });

  it('ends the stream and logs when subscribing fails, without telling the client why', async () => {
    const lines: string[] = [];
    const view = aView();
    view.failWith = new Error('subscribers full');
    const res = await anApi(view, { logger: pino({}, { write: (s: string) => void lines.push(s) }) }).request('/api/v1/events');
    expect(await res.text()).toBe('');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      msg: 'HTTP request failed',
      path: '/api/v1/events',
      err: { message: 'subscribers full' },
    });
  });

  it('sends a keep-alive comment while idle', async () => {
    const view = aView();
    const res = await anApi(view, { keepAliveMs: 20 }).request('/api/v1/events');
    const reader = res.body!.getReader();
    expect(await readUntil(reader, (t) => t.includes('\n\n'))).toBe(': keep-alive\n\n');
    await reader.cancel();
    await subscribed(view, 0);
  });
});

describe('static files', () => {
  let dir: string | null = null;
  afterEach(() => {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it('serves the dashboard from staticDir, and still answers unknown API routes with JSON', async () => {
    dir = mkdtempSync(join(tmpdir(), 'defragd-static-'));
    writeFileSync(join(dir, 'index.html'), '<h1>defragd</h1>');
    const app = anApi(aView(), { staticDir: dir });
    const res = await app.request('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('<h1>defragd</h1>');
    // Scripts, styles and connections from the daemon only: no inline script runs, nothing is fetched elsewhere.
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).toMatch(/default-src 'self'/);
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline/);
    await expectJson(await app.request('/api/v2/x'), 404);
    await expectJson(await app.request('/missing.js'), 404);
  });
});

describe('the Host header (DNS rebinding)', () => {
  const get = (app: ReturnType<typeof anApi>, path: string, host: string) => app.request(path, { headers: { host } });
  const refusal = (host: string) =>
    `this daemon does not serve the host name ${JSON.stringify(host)} (a guard against DNS rebinding): add it to allowedHosts, or use localhost or an IP address`;

  it.each([
    'localhost',
    'localhost:9479',
    'LocalHost:9479',
    'localhost.:9479',
    '127.0.0.1',
    '127.0.0.1:9479',
    '127.1.2.3:9479',
    '[::1]',
    '[::1]:9479',
    // Never a rebound name: a page's origin is then the IP itself (kubelet probes the pod's IP).
    '10.1.2.3:9479',
    '[fd00::7]:9479',
  ])('on a loopback address, serves Host %s', async (host) => {
    const app = anApi(aView(), { hosts: hostPolicy('127.0.0.1', null) });
    await expectJson(await get(app, '/api/v1/clusters', host), 200);
    await expectJson(await get(app, '/healthz', host), 200);
  });

  it.each([
    'evil.example',
    'evil.example:9479',
    'localhost.evil.example:9479',
    '127.0.0.1.evil.example',
    'localhost:9479@evil.example',
    'localhost:notaport',
    '',
  ])('on a loopback address, refuses Host %j with a 421 on every route, before the token', async (host) => {
    const view = aView();
    const app = anApi(view, { hosts: hostPolicy('127.0.0.1', null) });
    for (const path of ['/api/v1/clusters', '/healthz', '/metrics', '/api/v1/events', '/', '/nope']) {
      const body = await expectJson(await get(app, path, host), 421);
      expect(body).toEqual({ error: host === '' ? 'a Host header is required' : refusal(host) });
    }
    const run = await app.request('/api/v1/clusters/prod/runs', { method: 'POST', headers: { host, authorization: `Bearer ${TOKEN}` } });
    await expectJson(run, 421);
    expect(view.calls).toEqual([]);
  });

  it('refuses a missing Host (but for HTTP/1.0, which has none)', async () => {
    const app = anApi(aView(), { hosts: hostPolicy('127.0.0.1', null) });
    expect(await expectJson(await app.request('/healthz'), 421)).toEqual({ error: 'a Host header is required' });
    expect((await app.request('/healthz', {}, { incoming: { httpVersion: '1.1' } })).status).toBe(421);
    await expectJson(await app.request('/healthz', {}, { incoming: { httpVersion: '1.0' } }), 200);
  });

  it('allowedHosts adds names, whatever the listen address; without it a non-loopback address serves any', async () => {
    const named = anApi(aView(), { hosts: hostPolicy('0.0.0.0', ['defragd.example.com']) });
    await expectJson(await get(named, '/api/v1/clusters', 'defragd.example.com:9479'), 200);
    await expectJson(await get(named, '/api/v1/clusters', 'localhost:9479'), 200);
    await expectJson(await get(named, '/healthz', '10.0.0.7:9479'), 200);
    await expectJson(await get(named, '/api/v1/clusters', 'evil.example'), 421);
    const loopback = anApi(aView(), { hosts: hostPolicy('::1', ['defragd.internal']) });
    await expectJson(await get(loopback, '/api/v1/clusters', 'defragd.internal'), 200);
    await expectJson(await get(loopback, '/api/v1/clusters', 'evil.example'), 421);
    const open = anApi(aView(), { hosts: hostPolicy('0.0.0.0', null) });
    await expectJson(await get(open, '/api/v1/clusters', 'anything.example'), 200);
  });

  it('through a socket: the dashboard at 127.0.0.1 and localhost, a rebound name refused, HTTP/1.0 without Host served', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'defragd-static-'));
    writeFileSync(join(dir, 'index.html'), '<h1>defragd</h1>');
    const server = await serveApi(anApi(aView(), { hosts: hostPolicy('127.0.0.1', null), staticDir: dir }), { host: '127.0.0.1', port: 0 });
    try {
      const port = Number(new URL(server.url).port);
      const ask = (host: string | null, path = '/', version = '1.1') =>
        new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () =>
            socket.write(`GET ${path} HTTP/${version}\r\n${host === null ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`),
          );
          let text = '';
          socket.on('data', (d) => (text += d.toString()));
          socket.on('end', () => resolve(text));
          socket.on('error', reject);
        });
      expect(await ask(`127.0.0.1:${port}`)).toMatch(/^HTTP\/1\.1 200 [\s\S]*<h1>defragd<\/h1>$/);
      expect(await ask(`localhost:${port}`)).toMatch(/^HTTP\/1\.1 200 [\s\S]*<h1>defragd<\/h1>$/);
      expect(await ask(`evil.example:${port}`, '/api/v1/clusters')).toMatch(/^HTTP\/1\.1 421 [\s\S]*does not serve the host name/);
      expect(await ask(null, '/healthz', '1.0')).toMatch(/^HTTP\/1\.1 200 [\s\S]*\{"ok":true\}$/);
      // Node itself refuses an HTTP/1.1 request without Host.
      expect(await ask(null, '/healthz')).toMatch(/^HTTP\/1\.1 400 /);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serveApi', () => {
  it('serves the API on a loopback socket, and closes with an SSE client still connected', async () => {
    const view = aView();
    const server = await serveApi(anApi(view), { host: '127.0.0.1', port: 0 });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${server.url}/healthz`);
      expect(await expectJson(health, 200)).toEqual({ ok: true });
      const clusters = await expectJson(await fetch(`${server.url}/api/v1/clusters`), 200);
      expect(clusters.clusters[0].observation.members).toEqual(statusJson(snapshot));

      const unauthorized = await fetch(`${server.url}/api/v1/clusters/prod/runs`, { method: 'POST', body: '{}' });
      await expectJson(unauthorized, 401);

      const events = await fetch(`${server.url}/api/v1/events`);
      const reader = events.body!.getReader();
      await new Promise((r) => setTimeout(r, 50));
      view.emit({ cluster: 'prod', runId: 1, at: '2024-05-01T03:00:00.000Z', event: { type: 'pause', ms: 1 } });
      const { value } = await reader.read();
      expect(new TextDecoder().decode(value)).toContain('event: step\ndata: {"cluster":"prod"');
    } finally {
      await server.close();
    }
    // The server ended the SSE connection: the subscription went with it.
    for (let i = 0; i < 100 && view.subscribers !== 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(view.subscribers).toBe(0);
  });

  it('answers 503 beyond maxEventStreams, keeps /healthz answering, frees each stream it closes, and takes a new one then', async () => {
    const view = aView();
    const server = await serveApi(anApi(view, { maxEventStreams: 3 }), { host: '127.0.0.1', port: 0 });
    const clients = Array.from({ length: 3 }, () => new AbortController());
    try {
      const open = await Promise.all(clients.map((ac) => fetch(`${server.url}/api/v1/events`, { signal: ac.signal })));
      expect(open.map((r) => r.status)).toEqual([200, 200, 200]);
      for (let i = 0; i < 100 && view.subscribers !== 3; i++) await new Promise((r) => setTimeout(r, 5));
      const refused = await fetch(`${server.url}/api/v1/events`);
      expect(refused.headers.get('retry-after')).toBe('30');
      expect(await expectJson(refused, 503)).toEqual({ error: 'too many event streams open (maxEventStreams 3); try again later' });
      expect(view.subscribers).toBe(3);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      // One client goes: its subscription and its place go with it.
      clients[0]!.abort();
      for (let i = 0; i < 200 && view.subscribers !== 2; i++) await new Promise((r) => setTimeout(r, 5));
      expect(view.subscribers).toBe(2);
      const again = new AbortController();
      clients.push(again);
      expect((await fetch(`${server.url}/api/v1/events`, { signal: again.signal })).status).toBe(200);
    } finally {
      for (const ac of clients) ac.abort();
      await server.close();
    }
  });

  it('rejects when the address is taken', async () => {
    const first = await serveApi(anApi(), { host: '127.0.0.1', port: 0 });
    try {
      const port = Number(new URL(first.url).port);
      await expect(serveApi(anApi(), { host: '127.0.0.1', port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
