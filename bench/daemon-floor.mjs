/**
 * `make bench-daemon`'s floor: a process that makes only the calls of the
 * daemon's light observations, as often, through defragd's own client
 * (dist/internals.js): per cluster, every INTERVAL_MS, one Status to each member,
 * the rounds on a grid of the interval as the daemon's observations are. No store, HTTP server,
 * metrics, planning or logging. Its CPU and RSS, measured from outside like
 * the daemon's, are what watching these clusters costs a Node process before
 * defragd does anything with the answers.
 *
 * Usage: node bench/daemon-floor.mjs INTERVAL_MS CLUSTERS_JSON   (a JSON array of endpoint arrays)
 * Runs until SIGTERM; writes "ready" to stdout once every member answered.
 */
import { EtcdClient } from '../dist/internals.js';

const intervalMs = Number(process.argv[2]);
const clusters = JSON.parse(process.argv[3] ?? '[]');
if (!(intervalMs > 0) || !Array.isArray(clusters) || clusters.length === 0) {
  console.error('usage: node bench/daemon-floor.mjs INTERVAL_MS CLUSTERS_JSON');
  process.exit(2);
}
const clients = clusters.map((endpoints) => new EtcdClient({ endpoints, commandTimeoutMs: 5_000 }));
const round = (i) => Promise.allSettled(clusters[i].map((url) => clients[i].member(url).status()));
await Promise.all(clusters.map((_, i) => round(i)));
// As the daemon does: every round on a grid of the interval, so all clusters' calls go out together.
const untilNext = () => intervalMs - (Date.now() % intervalMs);
const timers = clusters.map((_, i) => {
  let t;
  const tick = () =>
    void round(i).then(() => {
      t = setTimeout(tick, untilNext());
    });
  t = setTimeout(tick, untilNext());
  return () => clearTimeout(t);
});
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  for (const stop of timers) stop();
  for (const c of clients) c.close();
  process.exit(0);
});
