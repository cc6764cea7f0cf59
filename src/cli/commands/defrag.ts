/** `defragd defrag`: a safe rolling defragmentation of the cluster, or its plan with --dry-run. */
import { Command, Option } from 'commander';
import { addClusterFlags, clusterConfig, withEnv } from '../config/flags.js';
import { parseDuration, parseFraction, parseNonNegativeInt, parsePositiveDuration } from '../config/units.js';
import { buildPolicy, dryRunReport, runDefrag } from '../../app/defragment.js';
import { DEFAULT_DISARM_BELOW, DEFAULT_LOCK_KEY } from '../../domain/defaults.js';
import { AbortedError, DefragdError } from '../../domain/errors.js';
import type { RunReport } from '../../domain/run.js';
import { EtcdClient } from '../../etcd/client.js';
import { exitCodeForReport } from '../exit-codes.js';
import type { CliIO } from '../io.js';
import { printDryRun, printReport } from '../printers/defrag.js';
import { createProgress } from '../progress.js';
import { prepareRun } from '../../app/defragment.js';

export function defragCommand(io: CliIO, done: (code: number) => void): Command {
  const cmd = new Command('defrag').description('defragment every member, one at a time: followers first, the leader last after moving leadership away');
  addClusterFlags(cmd);
  cmd
    .addOption(new Option('--rule <cel>', 'CEL expression evaluated per member right before its turn, e.g. "dbSizeFree > 100*MiB"; variables: dbSize, dbSizeInUse, dbSizeFree, dbQuota, dbQuotaUsage, fragmentation, isLeader, isLearner, memberName, version; constants KiB, MiB, GiB'))
    .addOption(new Option('--no-move-leader', 'do not hand leadership away; the leader is then skipped (never defragmented while it leads)'))
    .addOption(new Option('--skip-health-check', 'go ahead although some members are unreachable or unhealthy (they are skipped)'))
    .addOption(new Option('--compact-keep-revisions <n>', 'compact (physically) to revision - n once before the first defrag; breaks watchers older than that'))
    .addOption(new Option('--disarm-nospace', 'disarm NOSPACE alarms after the run when every member is under the margin'))
    .addOption(new Option('--disarm-below <fraction>', 'margin for --disarm-nospace: every dbSize under this fraction of the quota').default(String(DEFAULT_DISARM_BELOW)))
    .addOption(new Option('--defrag-timeout <duration>', 'deadline of each Defragment call (default: 60s + 1s per 10 MiB in use); a passed deadline is never retried'))
    .addOption(new Option('--wait-between <duration>', 'extra pause after each member has caught up').default('0s'))
    .addOption(new Option('--continue-on-error', 'go on with the next member after one fails (still exits 1)'))
    .addOption(new Option('--dry-run', 'print the plan with each rule result and reason; change nothing'))
    .addOption(new Option('--no-lock', 'do not take the cluster lock (only when nothing else can defragment this cluster)'))
    .addOption(new Option('--lock-key <key>', 'key of the lease-bound cluster lock that keeps runs from overlapping').default(DEFAULT_LOCK_KEY))
    .addOption(new Option('--lock-wait <duration>', 'wait this long for another run to finish instead of refusing at once').default('0s'));
  cmd.action(async () => {
    const opts = withEnv(cmd, io.env);
    // A safe run must see every voter, so defrag always discovers the whole membership (--cluster is implied).
    const config = clusterConfig({ ...opts, cluster: true });
    const json = config.writeOut === 'json';
    const startedAt = new Date().toISOString();
    try {
      const str = (k: string) => opts[k] as string | undefined;
      const policy = buildPolicy({
        rule: str('rule'),
        moveLeader: opts['moveLeader'] !== false,
        skipHealthCheck: opts['skipHealthCheck'] === true,
        compactKeepRevisions: str('compactKeepRevisions') !== undefined ? parseNonNegativeInt(str('compactKeepRevisions') as string, '--compact-keep-revisions') : null,
        disarmNospace: opts['disarmNospace'] === true,
        disarmBelow: parseFraction(str('disarmBelow') ?? String(DEFAULT_DISARM_BELOW), '--disarm-below'),
        defragTimeoutMs: str('defragTimeout') ? parsePositiveDuration(str('defragTimeout') as string, '--defrag-timeout') : null,
      });
      const execute = { waitBetweenMs: parseDuration(str('waitBetween') ?? '0s', '--wait-between'), continueOnError: opts['continueOnError'] === true };
      const lock = opts['lock'] === false ? false : { key: str('lockKey') ?? DEFAULT_LOCK_KEY, waitMs: parseDuration(str('lockWait') ?? '0s', '--lock-wait') };
      const observe = { cluster: true, quotaBytes: config.quotaBytes };

      const client = new EtcdClient(config.connection);
      try {
        if (opts['dryRun'] === true) {
          const run = await prepareRun(client, policy, { observe, signal: io.signal });
          const report = dryRunReport(run.plan, startedAt);
          io.stdout(printDryRun(report, config.writeOut));
          done(exitCodeForReport(report));
          return;
        }
        if (policy.skipHealthCheck) io.stderr('defragd: warning: --skip-health-check: unreachable or unhealthy members are skipped, not waited for\n');
        // With -w json, stdout carries only the JSON report; progress goes to stderr.
        const progress = createProgress(json ? io.stderr : io.stdout, io.isTTY && !json);
        let report: RunReport;
        try {
          report = await runDefrag(client, policy, { observe, execute, lock, signal: io.signal, registerCleanup: io.registerCleanup, onEvent: (e) => progress.onEvent(e) });
        } finally {
          progress.close();
        }
        io.stdout(printReport(report, config.writeOut));
        // With -w json the why goes to stderr too, as one line (cron mails stderr).
        if (json && report.outcome !== 'success' && report.outcome !== 'nothing-to-do') io.stderr(`defragd: ${report.outcome}: ${report.message ?? 'see the report'}\n`);
        done(exitCodeForReport(report));
      } finally {
        client.close();
      }
    } catch (err) {
      // -w json always prints one JSON object, also when the run could not start.
      if (json && err instanceof DefragdError) io.stdout(printReport(errorReport(err, startedAt), 'json'));
      throw err;
    }
  });
  return cmd;
}

/** A run that ended in an error before or outside the executor: nothing was started by it. */
function errorReport(err: DefragdError, at: string): RunReport {
  return {
    outcome: err instanceof AbortedError ? 'interrupted' : err.kind === 'usage' || err.kind === 'refused' ? 'refused' : 'failed',
    dryRun: false,
    message: err.message,
    startedAt: at,
    finishedAt: new Date().toISOString(),
    compactedRevision: null,
    disarmed: false,
    disarmNote: null,
    reclaimedBytes: 0,
    members: [],
    warnings: [],
    plan: null,
  };
}
