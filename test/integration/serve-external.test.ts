/**
 * `defragd serve` notices defragmentations it did not do, against a real
 * 3-member etcd: an `etcdctl defrag` of one member shows in the daemon's
 * history as one external run by an unknown tool; a `defragd defrag` run
 * elsewhere (here: the CLI in this process, recorded under its own host:pid,
 * while the daemon goes by another name) shows once, as that defragd's, with
 * the details of its in-cluster record. Each defrag has something to reclaim
 * (its member's db file shrinks), which makes the daemon read the counters at
 * once rather than at its 5-minutely read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../../dev/harness/etcd.js';
import type { RunReport } from '../../src/domain/run.js';
import { UNKNOWN_BY } from '../../src/serve/external.js';
import { cli, fragmentAndWait, MiB, parseJson, show } from './helpers-defrag.js';
import { moreObservations, observationsOf, startServe, until } from './serve-support.js';

const DAEMON_BY = 'replica-a:1 (defragd serve under test)';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'defragd-serve-external-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface RunRow {
  id: number;
  trigger: string;
  by: string;
  outcome: string;
  message: string | null;
  startedAt: string;
  finishedAt: string | null;
  membersTotal: number;
  membersDefragmented: number;
}

describe('serve notices defragmentations by others', () => {
  const cluster = useCluster({ members: 3 });

  it('etcdctl defrag → one external run by an unknown tool; a defragd CLI run → once, as that defragd with its record', async () => {
    const c = cluster();
    // No schedule, no auto: only observed, every second.
    const daemon = await startServe(
      dir,
      'serve',
      `listen: 127.0.0.1:0\nstore: ${join(dir, 'history.sqlite')}\nclusters:\n  - name: main\n    endpoints: [${c.endpoints.join(', ')}]\n`,
      { by: DAEMON_BY, adjust: (loaded) => ({ ...loaded, clusters: loaded.clusters.map((k) => ({ ...k, observeIntervalMs: 1_000 })) }) },
    );
    const url = daemon.url;
    const history = async () => ((await (await fetch(`${url}/api/v1/clusters/main/history`)).json()) as { runs: RunRow[] }).runs;
    // Until the daemon has observed the member's file as etcd has it now (fragmented): a defrag right
    // after is then a shrink it sees. Fragmenting and defragmenting both between two of its observations
    // would look like growth, which only its 5-minutely read of the defrag counters tells apart.
    const daemonSees = async (member: string) => {
      const statuses = parseJson<{ name: string; dbSize: number }[]>(
        await cli(['status', '--endpoints', c.endpoints.join(','), '--cluster', '-w', 'json']),
      );
      const dbSize = statuses.find((m) => m.name === member)!.dbSize;
      const line = new RegExp(`^defragd_member_db_size_bytes\\{[^}]*member="${member}"[^}]*\\} ${dbSize}$`, 'm');
      await until(
        `the daemon to observe ${member}'s file at ${dbSize} bytes`,
        async () => line.test(await (await fetch(`${url}/metrics`)).text()),
        10_000,
      );
    };
    const detail = async (id: number) => (await (await fetch(`${url}/api/v1/runs/${id}`)).json()) as { run: RunRow; report: RunReport };
    // The event stream, as the dashboard reads it.
    const sse = new AbortController();
    let streamed = '';
    const reading = fetch(`${url}/api/v1/events`, { signal: sse.signal })
      .then(async (res) => {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) streamed += Buffer.from(chunk).toString();
      })
      .catch(() => undefined);
    try {
      await until('ready', async () => (await fetch(`${url}/readyz`)).status === 200);
      // The first (full) observation read every member's count; two more, and nothing was taken for a defrag.
      expect((await observationsOf(url, 'main')).full).toBeGreaterThanOrEqual(1);
      await moreObservations(url, 'main', 2);
      expect(await history()).toEqual([]);

      // Something to reclaim, as in real life: the daemon reads the defrag counters at once when a
      // member's db file shrank (and every 5 minutes otherwise).
      await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 4 * MiB, passes: 2, minFree: 1 * MiB, members: 3, prefix: '/frag1/' });
      await daemonSees('m2');
      // etcdctl defrag of m2: no record explains it.
      const etcdctl = await c.etcdctlDefrag('m2').done;
      expect(etcdctl.code, etcdctl.stderr).toBe(0);
      const doneAt = Date.now();
      const [unknown] = await until(
        'the etcdctl defrag in the history',
        async () => {
          const runs = await history();
          return runs.length > 0 ? runs : null;
        },
        20_000,
        () =>
          daemon
            .logs()
            .slice(-40)
            .map((l) => JSON.stringify(l))
            .join('\n'),
      );
      expect(Date.now() - doneAt).toBeLessThan(15_000);
      expect(unknown).toMatchObject({ trigger: 'external', by: UNKNOWN_BY, outcome: 'success', membersTotal: 1, membersDefragmented: 1 });
      expect(unknown!.message).toMatch(
        /m2 \([0-9a-f]+\) was defragmented by something other than defragd \(etcdctl defrag or another tool\)/,
      );
      const d1 = await detail(unknown!.id);
      expect(d1.report.members).toMatchObject([{ name: 'm2', action: 'defragmented', endpoint: c.endpoints[1] }]);
      expect(d1.report.members[0]!.before?.dbSize).toBeGreaterThan(0);
      expect(d1.report.members[0]!.after?.dbSize).toBeGreaterThan(0);
      // The window holds the defrag: it ended before the history showed it.
      expect(Date.parse(unknown!.finishedAt!)).toBeLessThanOrEqual(Date.now());
      expect(Date.parse(unknown!.startedAt)).toBeLessThan(doneAt);

      // A defragd run elsewhere (the CLI), of m2 only: the daemon records it as that defragd's, once.
      await fragmentAndWait({ endpoints: c.endpoints }, { bytes: 4 * MiB, passes: 2, minFree: 1 * MiB, members: 3, prefix: '/frag2/' });
      await daemonSees('m2');
      const run = await cli(['defrag', '--endpoints', c.endpoints.join(','), '--rule', 'memberName == "m2"', '-w', 'json']);
      expect(run.code, show(run)).toBe(0);
      const report = parseJson<RunReport>(run);
      expect(report.members.filter((m) => m.action === 'defragmented').map((m) => m.name)).toEqual(['m2']);
      const cliBy = `${hostname()}:${process.pid}`;
      const last = parseJson<{ name: string; lastDefrag: { by: string; trigger: string; at: string; revision: number } | null }[]>(
        await cli(['last', '--endpoints', c.endpoints.join(','), '--cluster', '-w', 'json']),
      );
      const record = last.find((m) => m.name === 'm2')!.lastDefrag!;
      expect(record).toMatchObject({ by: cliBy, trigger: 'manual' });

      const theirs = await until(
        'the CLI run in the history',
        async () => {
          const runs = await history();
          return runs.length > 1 ? runs[0] : null;
        },
        20_000,
      );
      expect(theirs).toMatchObject({ trigger: 'external', by: cliBy, outcome: 'success', membersDefragmented: 1, finishedAt: record.at });
      expect(theirs.message).toContain(`another defragd (${cliBy}, trigger manual) defragmented m2`);
      const d2 = await detail(theirs.id);
      const m2 = report.members.find((m) => m.name === 'm2')!;
      expect(d2.report.members).toMatchObject([
        { name: 'm2', action: 'defragmented', before: m2.before, after: m2.after, durationMs: m2.durationMs, revision: record.revision },
      ]);

      // Only once, and nothing else: no second entry for either, no run of the daemon's own, after one more
      // full observation (full ones read the counts again; one comes at least every 30 s).
      await moreObservations(url, 'main', 1, { kind: 'full' });
      const runs = await history();
      expect(runs.map((r) => [r.trigger, r.by])).toEqual([
        ['external', cliBy],
        ['external', UNKNOWN_BY],
      ]);
      const logs = daemon.logs();
      expect(logs.filter((l) => l['msg'] === 'a defragmentation by someone else noticed')).toHaveLength(2);
      expect(logs.filter((l) => l['msg'] === 'noticing defragmentations by others failed')).toEqual([]);

      // The last-defrag series of m2 is the CLI's.
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`defragd_member_last_defrag_revision\\{[^}]*member="m2"[^}]*\\} ${record.revision}\\b`));
      // Both are counted as runs, and were streamed as they were noticed.
      expect(metrics).toMatch(
        /defragd_runs_total\{[^}]*trigger="external"[^}]*outcome="success"[^}]*\} 2\b|defragd_runs_total\{[^}]*outcome="success"[^}]*trigger="external"[^}]*\} 2\b/,
      );
      const finished = streamed
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as { cluster: string; runId: number; event: { type: string } })
        .filter((e) => e.event.type === 'run-finished');
      expect(finished.map((e) => [e.cluster, e.runId]).sort()).toEqual(runs.map((r) => ['main', r.id]).sort());
    } finally {
      sse.abort();
      await reading;
      await daemon.stop();
    }
  }, 120_000);
});
