/**
 * Runs the library's `defragment()` in a process of its own with a short
 * cluster-lock lease, so a test can SIGKILL it mid-run and see what its
 * orphaned lock and Defragment do, without waiting for the CLI's 30 s lease.
 *
 * Usage: node --import tsx test/support/defragd-lock-child.mts <ttlSeconds> <holder> <endpoint>...
 * Prints one JSON object a line on stdout: {"type":"event","event":StepEvent}
 * for every event, then {"type":"report","report":RunReport}.
 */
import { defragment } from '../../src/index.js';

const [ttl, holder, ...endpoints] = process.argv.slice(2);
const out = (o: object): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};
const report = await defragment({
  connection: { endpoints },
  lock: { ttlSeconds: Number(ttl), holder },
  onEvent: (event) => out({ type: 'event', event }),
});
out({ type: 'report', report });
