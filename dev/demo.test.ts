import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/serve/config.js';
import type { ClusterJson } from '../src/serve/cluster-json.js';
import type { StoredRunDetail } from '../src/store/types.js';
import { DEMO_CONFIG_DEFAULTS, demoConfigYaml, narrateLog, parseLogLine, runLine, sizesLine } from './demo.js';

const MiB = 1024 * 1024;

describe('demoConfigYaml', () => {
  it('is a config defragd serve accepts: auto mode, a schedule, the token file and the store beside it', () => {
    const yaml = demoConfigYaml({
      ...DEMO_CONFIG_DEFAULTS,
      listen: '127.0.0.1:0',
      endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
    });
    const files: Record<string, string> = { '/d/api-token': 'a-demo-secret-token-0123\n' };
    const config = parseConfig(yaml, {}, '/d', { readFile: (p) => files[p] ?? '' });
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 0 });
    expect(config.store).toBe('/d/defragd.sqlite');
    expect(config.apiToken).toBe('a-demo-secret-token-0123');
    const [cluster] = config.clusters;
    expect(cluster).toMatchObject({
      name: 'demo',
      connection: { endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] },
      auto: { intervalMs: 5_000, cooldownMs: 60_000 },
    });
    expect(cluster?.schedule?.cron).toBe('*/2 * * * *');
  });
});

describe('narrateLog', () => {
  const log = (o: object) => parseLogLine(JSON.stringify({ level: 30, time: 0, ...o }))!;

  it('says when a run starts, with its trigger and why', () => {
    expect(
      narrateLog(log({ msg: 'starting a run', cluster: 'demo', trigger: 'auto', reason: 'the rule holds for at least one member' })),
    ).toEqual({
      say: '▶ auto run starting: the rule holds for at least one member',
    });
  });

  it('says how a run ended, with its id so that the caller can fetch its members', () => {
    expect(
      narrateLog(
        log({
          msg: 'run finished',
          runId: 7,
          trigger: 'auto',
          outcome: 'interrupted',
          reclaimedBytes: 2 * MiB,
          message: 'stopped by SIGTERM',
        }),
      ),
    ).toEqual({
      say: '✘ run 7 (auto) interrupted: stopped by SIGTERM; reclaimed 2.0 MiB',
      runId: 7,
    });
  });

  it('passes warnings and errors on, and keeps routine lines quiet', () => {
    expect(narrateLog(log({ level: 40, msg: 'observation failed', err: 'm2 unreachable' }))).toEqual({
      say: 'daemon warning: observation failed (m2 unreachable)',
    });
    expect(narrateLog(log({ msg: 'reloaded the config' }))).toBeNull();
  });

  it('ignores what is not a pino JSON line', () => {
    expect(parseLogLine('defragd: SIGTERM: stopping')).toBeNull();
    expect(parseLogLine('{"not": "pino"}')).toBeNull();
  });
});

function detail(over: Partial<StoredRunDetail['run']>, members: object[]): StoredRunDetail {
  return {
    run: {
      id: 3,
      cluster: 'demo',
      trigger: 'auto',
      by: 'h:1',
      startedAt: '',
      finishedAt: '',
      outcome: 'success',
      message: null,
      dryRun: false,
      compactedRevision: null,
      disarmed: false,
      reclaimedBytes: 60 * MiB,
      membersTotal: members.length,
      membersDefragmented: 0,
      membersFailed: 0,
      durationMs: 3100,
      ...over,
    },
    report: { members } as StoredRunDetail['report'],
    events: [],
  };
}

describe('runLine', () => {
  it('names each member defragmented with its sizes, the leader hand-over, what was reclaimed and how long it took', () => {
    const line = runLine(
      detail({}, [
        {
          name: 'm2',
          action: 'defragmented',
          wasLeader: false,
          reason: '',
          before: { dbSize: 40 * MiB, dbSizeInUse: 10 * MiB },
          after: { dbSize: 10 * MiB, dbSizeInUse: 10 * MiB },
        },
        {
          name: 'm1',
          action: 'defragmented',
          wasLeader: true,
          reason: '',
          before: { dbSize: 40 * MiB, dbSizeInUse: 10 * MiB },
          after: { dbSize: 10 * MiB, dbSizeInUse: 10 * MiB },
        },
      ]),
    );
    expect(line).toBe(
      '✔ run 3 (auto) success: m2 40.0 → 10.0 MiB, m1 (was leader: moved first) 40.0 → 10.0 MiB; reclaimed 60.0 MiB in 3.1 s',
    );
  });

  it('says why nothing was done', () => {
    const members = ['m1', 'm2'].map((name) => ({
      name,
      action: 'skipped',
      wasLeader: false,
      reason: 'rule is false (dbSize 12.0 MiB, dbSizeFree 1.2 MiB)',
      before: null,
      after: null,
    }));
    expect(runLine(detail({ trigger: 'schedule', outcome: 'nothing-to-do', reclaimedBytes: 0 }, members))).toBe(
      '✔ run 3 (schedule) nothing-to-do: the rule is false for every member',
    );
    expect(runLine(detail({ outcome: 'refused', message: 'm3 is unreachable' }, []))).toBe('✘ run 3 (auto) refused: m3 is unreachable');
  });
});

describe('sizesLine', () => {
  it('shows each member by name with its size, free space and fragmentation, the leader starred, then the state', () => {
    const member = (name: string, isLeader: boolean) => ({
      name,
      endpoint: `e-${name}`,
      isLeader,
      dbSize: 50 * MiB,
      dbSizeFree: 20 * MiB,
      fragmentation: 0.4,
      error: null,
    });
    const c = {
      name: 'demo',
      state: 'cooldown',
      observeError: null,
      observation: { members: [member('m2', false), member('m1', true)] },
    } as unknown as ClusterJson;
    expect(sizesLine(c)).toBe('m1* 50.0 MiB, free 20.0 MiB (40%) · m2 50.0 MiB, free 20.0 MiB (40%) · cooldown');
  });
});
