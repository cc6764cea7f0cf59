#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The defragd executable: the only place that exits the process.
 *
 * The shebang caps V8's young generation (semi-spaces of 2 MB instead of
 * 16 MB): `defragd serve` allocates in many small bursts, one per member
 * observed, and a young generation left to grow to its default maximum held
 * ~25 MB more RSS at the peak in bench-daemon, for no CPU saved. `env -S`
 * (coreutils 8.30+, BSD/macOS env) splits the flag off; `node dist/cli/main.js`
 * run directly does not get it (pass it, or NODE_OPTIONS).
 */
import { setMaxListeners } from 'node:events';
import { runCli } from './run.js';

const controller = new AbortController();
// Observing a cluster hangs a few short-lived abort listeners per member on this one signal.
setMaxListeners(1_000, controller.signal);

// grpc-js sets the TLS server name to the endpoint's host even when it is an IP address, and Node
// warns (DEP0123) on every connection; the warning is about grpc-js, not anything a user can change.
process.removeAllListeners('warning');
process.on('warning', (w: Error & { code?: string }) => {
  if (w.code !== 'DEP0123') process.stderr.write(`(node) ${w.name}: ${w.message}\n`);
});
// Clean-ups to run before exiting at once (the cluster lock's lease revoke), so a second Ctrl-C
// does not leave other runs waiting for the lease to expire.
const cleanups = new Set<() => Promise<void>>();
const registerCleanup = (fn: () => Promise<void>) => {
  cleanups.add(fn);
  return () => void cleanups.delete(fn);
};
/** How long clean-ups may take on the way out before the process exits anyway. */
const CLEANUP_GRACE_MS = 2_000;
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    signals++;
    // The first signal lets a running defrag finish its member and stop cleanly; a second one exits.
    if (signals > 1) {
      process.stderr.write(`defragd: ${sig} again: exiting now${cleanups.size > 0 ? ' (releasing the cluster lock first)' : ''}\n`);
      const grace = new Promise((resolve) => setTimeout(resolve, CLEANUP_GRACE_MS).unref());
      void Promise.race([Promise.allSettled([...cleanups].map((fn) => fn())), grace]).then(() => process.exit(130));
      return;
    }
    process.stderr.write(`defragd: ${sig}: stopping after the current step (send again to exit now)\n`);
    controller.abort();
  });
}

// SIGHUP reloads where a command registered for it (serve); elsewhere it stops like SIGTERM.
const reloaders = new Set<() => void>();
const onReload = (handler: () => void) => {
  reloaders.add(handler);
  return () => void reloaders.delete(handler);
};
process.on('SIGHUP', () => {
  if (reloaders.size > 0) for (const r of reloaders) r();
  else controller.abort();
});

// Node ends a process whose event loop has nothing left while this file still awaits (exit 13, and
// nothing said): a step waiting on a promise that nothing will settle. Say so in one line, with the
// same exit as a failed run, rather than leave a cron log empty.
let finished = false;
process.on('exit', () => {
  if (finished || process.exitCode !== 13) return;
  process.stderr.write('defragd: internal error: stopped with a step still waiting on nothing (no report); please report it\n');
  process.exitCode = 1;
});

const code = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: process.stdout.isTTY === true,
  env: process.env,
  signal: controller.signal,
  registerCleanup,
  onReload,
});
finished = true;
process.exitCode = code;
// gRPC channels may keep the event loop alive a little; exit once output is flushed.
process.stdout.write('', () => process.exit(code));
