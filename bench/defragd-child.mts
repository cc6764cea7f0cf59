/**
 * Runs defragd (the library's `defragment({ onEvent })`, what `defragd defrag`
 * runs) in a process of its own, so that its work does not share an event
 * loop with the load that measures it, just as etcdctl runs in its own.
 *
 * Protocol on stdout, one JSON object a line: {"type":"ready"} once loaded;
 * after a line on stdin, {"type":"event","t":ms,"event":StepEvent} for every
 * event, then {"type":"report","start":ms,"end":ms,"report":RunReport}, or
 * {"type":"error","message":...}. Times are epoch ms (performance.timeOrigin
 * + performance.now(), the clock of the benchmark process too).
 *
 * Usage: bench/defragd-child.mts <endpoint>...
 */
import { createInterface } from 'node:readline';
import { defragment } from '../src/index.js';

const endpoints = process.argv.slice(2);
const now = (): number => performance.timeOrigin + performance.now();
const out = (o: object): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};

const abort = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => abort.abort());

out({ type: 'ready' });
const rl = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => rl.once('line', () => resolve()));
rl.close();

try {
  const start = now();
  const report = await defragment({ connection: { endpoints }, signal: abort.signal, onEvent: (event) => out({ type: 'event', t: now(), event }) });
  const end = now();
  out({ type: 'report', start, end, report });
} catch (err) {
  out({ type: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
}
