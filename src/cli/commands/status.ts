/** `defragd status`: one row per member with sizes, fragmentation, quota use, leader and alarms. */
import { Command } from 'commander';
import { addClusterFlags, clusterConfig, withEnv } from '../config/flags.js';
import { EXIT } from '../exit-codes.js';
import type { CliIO } from '../io.js';
import { memberName } from '../../domain/member-name.js';

export function statusCommand(io: CliIO, done: (code: number) => void): Command {
  const cmd = new Command('status').description("show every member's size, fragmentation, quota use, leader and alarms");
  addClusterFlags(cmd);
  cmd.action(async () => {
    const config = clusterConfig(withEnv(cmd, io.env));
    const [{ EtcdClient }, { observeCluster }, { printStatus }, { versionWarnings }] = await Promise.all([
      import('../../etcd/client.js'),
      import('../../observe/observe.js'),
      import('../printers/status.js'),
      import('../../planner/versions.js'),
    ]);
    const client = new EtcdClient(config.connection);
    try {
      const snapshot = await observeCluster(client, {
        cluster: config.cluster,
        quotaBytes: config.quotaBytes,
        features: true,
        timeoutMs: config.connection.commandTimeoutMs,
        signal: io.signal,
      });
      io.stdout(printStatus(snapshot, config.writeOut));
      const failed = snapshot.members.filter((m) => m.error !== null);
      if (snapshot.alarmsError && snapshot.members.some((m) => m.reachable))
        io.stderr(`defragd: warning: could not read the alarm list: ${snapshot.alarmsError}\n`);
      for (const w of versionWarnings(snapshot)) io.stderr(`defragd: warning: ${w}\n`);
      for (const m of failed) io.stderr(`defragd: ${m.error?.startsWith(m.endpoint) ? m.error : `${memberName(m)}: ${m.error}`}\n`);
      done(failed.length === 0 && snapshot.members.length > 0 ? EXIT.OK : EXIT.FAILED);
    } finally {
      client.close();
    }
  });
  return cmd;
}
