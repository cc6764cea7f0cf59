/** `defragd defrag`: a safe rolling defragmentation of the cluster, or its plan with --dry-run. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { addClusterFlags, clusterConfig, withEnv } from '../config/flags.js';
import { addDefragFlags, defragConfig, type DefragWaitForUrlsConfig } from '../config/defrag-flags.js';
import type { reportWithoutRun as ReportWithoutRun } from '../../app/defragment.js';
import { AbortedError, DefragdError } from '../../domain/errors.js';
import type { RunReport } from '../../domain/run.js';
import { exitCodeForReport } from '../exit-codes.js';
import type { CliIO } from '../io.js';
import type { CliRunWriter } from '../run-store.js';

export function defragCommand(io: CliIO, done: (code: number) => void): Command {
  const cmd = new Command('defrag').description(
    'defragment every member, one at a time: followers first, the leader last after moving leadership away',
  );
  addClusterFlags(cmd);
  addDefragFlags(cmd);
  cmd.action(async () => {
    const opts = withEnv(cmd, io.env);
    // Loaded here, not with this module: --help, --version and the other commands need none of it.
    const [{ buildPolicy, dryRun, reportWithoutRun, runDefrag }, { EtcdClient }, { printDryRun, printReport }, { createProgress }] =
      await Promise.all([
        import('../../app/defragment.js'),
        import('../../etcd/client.js'),
        import('../printers/defrag.js'),
        import('../progress.js'),
      ]);
    // Known before the connection flags are checked, so that a bad one (--command-timeout 999h) still gets its JSON report.
    const json = opts['writeOut'] === 'json';
    const startedAt = new Date().toISOString();
    // With -w json the why of a run that did not succeed goes to stderr too, as one line (cron mails stderr).
    const sayWhyOnStderr = (report: RunReport) => {
      if (json && exitCodeForReport(report) !== 0) io.stderr(`defragd: ${report.outcome}: ${report.message ?? 'see the report'}\n`);
    };
    let recorder: CliRunWriter | null = null;
    try {
      // A safe run must see every voter, so defrag always discovers the whole membership (--cluster is implied).
      const config = clusterConfig({ ...opts, cluster: true });
      const defrag = defragConfig(opts);
      const rulePolicy = buildPolicy(defrag.policy);
      const { lock } = defrag;
      // The files are read before any contact with etcd: one that cannot be read stops here, with its flag.
      const { readWaitForUrlFiles, urlReadiness } = await import('../../app/readiness.js');
      const execute = {
        ...defrag.execute,
        readiness: defrag.waitForUrls
          ? urlReadiness(
              readWaitForUrlFiles(
                defrag.waitForUrls,
                (p) => readFileSync(p, 'utf8'),
                (f) => (defrag.waitForUrls as DefragWaitForUrlsConfig).sources[f],
              ),
            )
          : null,
      };
      const record = defrag.record === false ? false : { prefix: defrag.record.prefix, trigger: 'manual' as const };
      const observe = { cluster: true, quotaBytes: config.quotaBytes, dataDirs: defrag.dataDirs };
      // Before any contact with etcd: an unusable --store stops the run before it changes anything.
      // SQLite is loaded only when --store is given.
      recorder = defrag.store ? (await import('../run-store.js')).recordCliRun(defrag.store, defrag.dryRun, io) : null;
      // The store's past defrags are what each member's duration is forecast from.
      const policy = recorder ? { ...rulePolicy, defragHistory: recorder.defragHistory() } : rulePolicy;

      const client = new EtcdClient(config.connection);
      try {
        if (defrag.dryRun) {
          const report = await dryRun(client, policy, { observe, signal: io.signal });
          recorder?.finish(report);
          io.stdout(printDryRun(report, config.writeOut));
          sayWhyOnStderr(report);
          done(exitCodeForReport(report));
          return;
        }
        if (policy.skipHealthCheck)
          io.stderr('defragd: warning: --skip-health-check: unreachable or unhealthy members are skipped, not waited for\n');
        // With -w json, stdout carries only the JSON report; progress goes to stderr.
        const progress = createProgress(json ? io.stderr : io.stdout, io.isTTY && !json);
        // A second Ctrl-C exits at once, before the run's report: -w json still prints one JSON object.
        const finished: RunReport['members'] = [];
        const forcedExit = new AbortedError(
          'interrupted: exited at once on a second signal; the member in progress, if any, may still be defragmenting in etcd',
        );
        const unregisterJson = json
          ? io.registerCleanup?.(async () =>
              io.stdout(printReport({ ...errorReport(reportWithoutRun, forcedExit, startedAt), members: [...finished] }, 'json')),
            )
          : undefined;
        let report: RunReport;
        try {
          report = await runDefrag(client, policy, {
            observe,
            execute,
            lock,
            record,
            signal: io.signal,
            registerCleanup: io.registerCleanup,
            onEvent: (e) => {
              if (e.type === 'member-finished') finished.push(e.result);
              progress.onEvent(e);
              recorder?.onEvent(e);
            },
          });
        } finally {
          unregisterJson?.();
          progress.close();
        }
        recorder?.finish(report);
        io.stdout(printReport(report, config.writeOut));
        sayWhyOnStderr(report);
        done(exitCodeForReport(report));
      } finally {
        client.close();
      }
    } catch (err) {
      // -w json always prints one JSON object, also when the run could not start.
      if (json && err instanceof DefragdError) io.stdout(printReport(errorReport(reportWithoutRun, err, startedAt), 'json'));
      if (err instanceof DefragdError) recorder?.finish(errorReport(reportWithoutRun, err, startedAt));
      throw err;
    } finally {
      recorder?.close();
    }
  });
  return cmd;
}

/** A run that ended in an error before or outside the executor: nothing was started by it. */
function errorReport(reportWithoutRun: typeof ReportWithoutRun, err: DefragdError, at: string): RunReport {
  const outcome = err instanceof AbortedError ? 'interrupted' : err.kind === 'usage' || err.kind === 'refused' ? 'refused' : 'failed';
  return reportWithoutRun(outcome, err.message, { startedAt: at });
}
