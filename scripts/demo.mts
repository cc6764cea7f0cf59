/**
 * `make demo`: starts a local 3-member etcd cluster (Debian's etcd, loopback
 * ports, a temp dir), writes a fragmenting workload, and runs the real
 * defragd CLI against it: status, a dry run, the rolling defrag, status again.
 * Everything is torn down at the end, also on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCluster, type EtcdCluster } from '../dev/harness/etcd.js';
import { fragment } from '../dev/workload.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const MiB = 1024 * 1024;

function defragd(args: string[], endpoints: string[]): number {
  const shown = ['defragd', ...args].map((a) => (/^[\w.,:/=-]+$/.test(a) ? a : `'${a}'`)).join(' ');
  console.log(`\n$ ${shown}`);
  const r = spawnSync(process.execPath, [CLI, ...args, '--endpoints', endpoints.join(',')], { stdio: 'inherit' });
  return r.status ?? 1;
}

let cluster: EtcdCluster | undefined;
const cleanup = async () => {
  await cluster?.close();
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  console.log('Starting a local 3-member etcd cluster ...');
  cluster = await startCluster({ members: 3, quotaBackendBytes: 256 * MiB });
  console.log(`members: ${cluster.members.map((m) => `${m.name} ${m.clientUrl}`).join(', ')}`);
  console.log('Writing 48 MiB twice over the same keys, then compacting (what kube-apiserver does every 5 minutes) ...');
  await fragment({ endpoints: [cluster.endpoints[0] as string] }, { bytes: 48 * MiB, passes: 2 });

  const eps = cluster.endpoints;
  defragd(['status', '--cluster'], eps);
  defragd(['defrag', '--dry-run', '--rule', 'fragmentation > 0.3 && dbSizeFree > 10*MiB'], eps);
  const code = defragd(['defrag', '--rule', 'fragmentation > 0.3 && dbSizeFree > 10*MiB'], eps);
  defragd(['status', '--cluster'], eps);
  console.log(`\nDemo finished (defrag exit code ${code}); tearing the cluster down.`);
  await cleanup();
  process.exit(code);
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  await cleanup();
  process.exit(1);
}
