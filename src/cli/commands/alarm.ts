/**
 * `defragd alarm list | disarm`. Disarm clears NOSPACE only (all other alarm
 * types with --all), and never CORRUPT: a corrupt member needs an operator.
 */
import { Command, Option } from 'commander';
import { addClusterFlags, clusterConfig, withEnv } from '../config/flags.js';
import { alarmsToDisarm, checkDisarm } from '../../planner/index.js';
import type { EtcdClient } from '../../etcd/client.js';
import type { ClusterSnapshot } from '../../domain/snapshot.js';
import { ConnectionError } from '../../domain/errors.js';
import { EXIT } from '../exit-codes.js';
import type { CliIO } from '../io.js';
import { memberName } from '../../domain/member-name.js';

export function alarmCommand(io: CliIO, done: (code: number) => void): Command {
  const cmd = new Command('alarm').description('list or disarm alarms (NOSPACE, CORRUPT)');

  const list = addClusterFlags(new Command('list').description('list every active alarm'));
  list.action(async () => {
    const config = clusterConfig({ ...withEnv(list, io.env), cluster: true });
    const { EtcdClient, printAlarmList } = await load();
    const client = new EtcdClient(config.connection);
    try {
      const snap = await observe(client, config, io);
      if (snap.alarmsError)
        throw new ConnectionError(config.connection.endpoints.join(','), `could not read the alarm list: ${snap.alarmsError}`);
      io.stdout(printAlarmList(snap, config.writeOut));
      done(EXIT.OK);
    } finally {
      client.close();
    }
  });

  const disarm = addClusterFlags(new Command('disarm').description('disarm NOSPACE alarms (never CORRUPT)'));
  disarm.addOption(new Option('--all', 'also disarm alarm types other than NOSPACE (still never CORRUPT)'));
  disarm.action(async () => {
    const opts = withEnv(disarm, io.env);
    const config = clusterConfig({ ...opts, cluster: true });
    const { EtcdClient, clusterPort, disarmAlarms, printDisarm } = await load();
    const client = new EtcdClient(config.connection);
    try {
      const snap = await observe(client, config, io);
      if (snap.alarmsError)
        throw new ConnectionError(config.connection.endpoints.join(','), `could not read the alarm list: ${snap.alarmsError}`);
      const corrupt = snap.alarms.filter((a) => a.alarm === 'CORRUPT');
      const targets = alarmsToDisarm(snap, opts['all'] === true);
      const check = checkDisarm(snap, 0.999_999);
      if (targets.some((a) => a.alarm === 'NOSPACE') && !check.ok) {
        io.stderr(
          `defragd: warning: ${check.blockers.map((b) => `${memberName(b)} is at or over its quota`).join('; ')}; NOSPACE will come back on the next write (defragment, or compact and defragment, first)\n`,
        );
      }
      const { remaining: left } = await disarmAlarms(clusterPort(client), snap, targets, io.signal);
      io.stdout(printDisarm(snap, targets, left, config.writeOut));
      if (corrupt.length > 0)
        io.stderr(
          'defragd: CORRUPT alarms are never disarmed by defragd: investigate the member (etcdctl check hashkv / restore it from a snapshot)\n',
        );
      const stillTargeted = left.filter((a) => targets.some((t) => t.memberId === a.memberId && t.alarm === a.alarm));
      done(stillTargeted.length > 0 ? EXIT.FAILED : EXIT.OK);
    } finally {
      client.close();
    }
  });

  cmd.addCommand(list);
  cmd.addCommand(disarm);
  return cmd;
}

/** What the subcommands use once they run, loaded then: --help and a usage error need none of it. */
async function load() {
  const [client, port, disarm, printers] = await Promise.all([
    import('../../etcd/client.js'),
    import('../../app/port.js'),
    import('../../executor/disarm.js'),
    import('../printers/alarm.js'),
  ]);
  return { ...client, ...port, ...disarm, ...printers };
}

/** Observes the cluster, warning on stderr (as every command that observes does) about its members' releases. */
async function observe(client: EtcdClient, config: ReturnType<typeof clusterConfig>, io: CliIO): Promise<ClusterSnapshot> {
  const [{ observeCluster }, { versionWarnings }] = await Promise.all([
    import('../../observe/observe.js'),
    import('../../planner/versions.js'),
  ]);
  const snap = await observeCluster(client, {
    cluster: true,
    quotaBytes: config.quotaBytes,
    timeoutMs: config.connection.commandTimeoutMs,
    signal: io.signal,
  });
  for (const w of versionWarnings(snap)) io.stderr(`defragd: warning: ${w}\n`);
  return snap;
}
