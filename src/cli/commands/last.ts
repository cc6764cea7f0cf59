/** `defragd last`: when each member was last defragmented (from the records runs leave in the cluster), and what has accumulated since. */
import { Command } from 'commander';
import { addClusterFlags, clusterConfig, EnvOption, sourceOf, withEnv } from '../config/flags.js';
import { recordPrefix } from '../../app/record.js';
import { DEFAULT_RECORD_PREFIX } from '../../domain/defaults.js';
import { EXIT } from '../exit-codes.js';
import type { CliIO } from '../io.js';
import { memberName } from '../../domain/member-name.js';

export function lastCommand(io: CliIO, done: (code: number) => void): Command {
  const cmd = new Command('last').description(
    'show when each member was last defragmented, what that reclaimed, and the free space accumulated since',
  );
  addClusterFlags(cmd);
  cmd.addOption(
    new EnvOption('--record-prefix <key>', 'prefix the runs recorded under (defragd defrag --record-prefix)', [
      'DEFRAGD_RECORD_PREFIX',
    ]).default(DEFAULT_RECORD_PREFIX),
  );
  cmd.action(async () => {
    const opts = withEnv(cmd, io.env);
    const config = clusterConfig(opts);
    const prefix = recordPrefix(
      typeof opts['recordPrefix'] === 'string' ? opts['recordPrefix'] : DEFAULT_RECORD_PREFIX,
      sourceOf(opts, 'recordPrefix'),
    );
    const [{ EtcdClient }, { defragmentationStatus }, { printLast }, { defectWarning }] = await Promise.all([
      import('../../etcd/client.js'),
      import('../../app/last.js'),
      import('../printers/last.js'),
      import('../../planner/versions.js'),
    ]);
    const client = new EtcdClient(config.connection);
    try {
      const members = await defragmentationStatus(client, {
        cluster: config.cluster,
        recordPrefix: prefix,
        timeoutMs: config.connection.commandTimeoutMs,
        signal: io.signal,
      });
      io.stdout(printLast(members, config.writeOut));
      for (const m of members)
        if (m.warning) io.stderr(`defragd: warning: ${memberName({ name: m.name, memberId: m.memberId })}: ${m.warning}\n`);
      for (const w of members.map(defectWarning)) if (w) io.stderr(`defragd: warning: ${w}\n`);
      // A record read that failed is the same for every member: say it once.
      // An error that already names the member's endpoint (a connection error) is not prefixed with it again.
      const errors = [
        ...new Set(
          members
            .filter((m) => m.error !== null)
            .map((m) =>
              (m.record === 'unreadable' && m.error?.startsWith('could not read the records')) || m.error?.startsWith(m.endpoint)
                ? m.error
                : `${memberName(m)}: ${m.error}`,
            ),
        ),
      ];
      for (const e of errors) io.stderr(`defragd: ${e}\n`);
      done(errors.length === 0 && members.length > 0 ? EXIT.OK : EXIT.FAILED);
    } finally {
      client.close();
    }
  });
  return cmd;
}
