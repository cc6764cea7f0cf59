/**
 * `make demo`: defragd at work on a local 3-member etcd cluster (Debian's
 * etcd, loopback ports, one temp dir).
 *
 * 1. The CLI walkthrough: fragment the cluster, then `defragd status`, a dry
 *    run, the rolling defrag and `status` again.
 * 2. The daemon: `defragd serve` (the built CLI, as a child process) with a
 *    demo config (auto mode, a cron schedule, an API token), while a workload
 *    keeps overwriting and deleting keys and compacting, so fragmentation
 *    grows and is reclaimed. Prints the dashboard URL, the token, commands to
 *    try in another terminal, and a line per run as it happens.
 *
 * Runs until Ctrl-C (or SIGTERM); `DEMO_SECONDS=N` stops it after N seconds
 * of the daemon part; `DEMO_WALKTHROUGH=0` skips the walkthrough. Whatever
 * ends it (the end, a signal, an error), everything it started is stopped in
 * order (workload, daemon, etcd) and its temp dir removed; a second Ctrl-C
 * kills what is left at once; a detached watchdog cleans up even if this
 * process is SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startCluster, type EtcdCluster } from '../dev/harness/etcd.js';
import { fragment, startChurn, type Churn } from '../dev/workload.js';
import { DEMO_CONFIG_DEFAULTS, demoConfigYaml, narrateLog, parseLogLine, runLine, sizesLine } from '../dev/demo.js';
import type { ClusterJson } from '../src/serve/cluster-json.js';
import type { StoredRunDetail } from '../src/store/types.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli/main.js');
const MiB = 1024 * 1024;
const QUOTA_BYTES = 256 * MiB;
const PREFERRED_PORT = 9479;
const WALKTHROUGH_RULE = 'fragmentation > 0.3 && dbSizeFree > 10*MiB';
/** How often the cluster's sizes are printed while the daemon runs. */
const SIZES_EVERY_MS = 10_000;
/** The workload: 1 MiB/s of 64 KiB values, compacted every 30 s (kube-apiserver: every 5 min). */
const CHURN = { bytesPerSecond: 1 * MiB, compactEveryMs: 30_000 };
/** How long the daemon gets to stop after SIGTERM (it finishes the member in progress) before SIGKILL. */
const DAEMON_STOP_GRACE_MS = 30_000;

// --- settings -----------------------------------------------------------------

function settings(): { seconds: number | null; walkthrough: boolean } {
  const raw = process.env['DEMO_SECONDS'];
  let seconds: number | null = null;
  if (raw !== undefined && raw.trim() !== '') {
    if (!/^[0-9]+$/.test(raw.trim()) || Number(raw) < 1)
      throw new UsageError(`DEMO_SECONDS must be a whole number of seconds, at least 1 (got "${raw}")`);
    seconds = Number(raw);
  }
  const w = (process.env['DEMO_WALKTHROUGH'] ?? '1').trim();
  if (!['0', '1', ''].includes(w)) throw new UsageError(`DEMO_WALKTHROUGH must be 0 or 1 (got "${w}")`);
  return { seconds, walkthrough: w !== '0' };
}

class UsageError extends Error {}
/** Thrown out of the steps when the demo is asked to stop; not an error. */
class Stopped extends Error {}

// --- output -------------------------------------------------------------------

const hhmmss = () => new Date().toISOString().slice(11, 19);
const say = (line = '') => console.log(line);
const live = (line: string) => console.log(`${hhmmss()}  ${line}`);
/** A command as the user would type it (repo-relative CLI when run from the repo). */
const cliShown = () => (path.resolve(process.cwd()) === path.resolve(ROOT) ? 'node dist/cli/main.js' : `node ${CLI}`);
const quote = (a: string) => (/^[\w.,:/=@*-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

// --- what the demo owns, and its teardown ---------------------------------------

const stop = new AbortController();
let exitCode = 0;
let dir: string | null = null;
let cluster: EtcdCluster | undefined;
let churn: Churn | undefined;
let daemon: ChildProcess | undefined;
let walkthroughChild: ChildProcess | undefined;
let daemonLog: WriteStream | undefined;
let storePath: string | null = null;
/** Set when the demo stops its children itself: their exits are expected from then on. */
let tearingDown = false;

const alive = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null;

let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    signals++;
    if (signals === 1) {
      exitCode = sig === 'SIGINT' ? 130 : 143;
      say();
      say(
        `${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping what the demo started, in order (workload, daemon, etcd). Ctrl-C again to stop at once.`,
      );
      stop.abort();
      return;
    }
    // Second signal: kill what is left now; the exit handlers below and the harness's kill etcd and remove the dirs.
    say('Stopping at once.');
    process.exit(exitCode || 130);
  });
}
// Synchronous last resort on any exit: nothing of ours outlives this process.
process.on('exit', () => {
  for (const c of [daemon, walkthroughChild]) if (alive(c)) c.kill('SIGKILL');
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
});

/**
 * A detached shell that outlives a SIGKILLed demo for about a second: it kills
 * every process whose command line mentions the demo's dir (the daemon, etcd
 * members: their data dirs are inside it) and removes the dir.
 */
function startWatchdog(pid: number, d: string): void {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    // One grep over every command line (the grep itself matches too, and is gone by then).
    'for f in $(grep -laF -- "$2" /proc/[0-9]*/cmdline 2>/dev/null); do',
    '  n=${f#/proc/}; n=${n%/cmdline}; [ "$n" = "$$" ] && continue',
    '  kill -CONT "$n" 2>/dev/null; kill -9 "$n" 2>/dev/null',
    'done',
    'sleep 0.5; rm -rf -- "$2"',
  ].join('\n');
  const wd = spawn('/bin/sh', ['-c', script, 'defragd-demo-watchdog', String(pid), d], { detached: true, stdio: 'ignore' });
  wd.on('error', () => undefined);
  wd.unref();
}

/** Stops everything in order; safe to call more than once and after a partial start. */
async function teardown(): Promise<void> {
  tearingDown = true;
  await churn?.stop();
  if (alive(walkthroughChild)) {
    // A defrag in progress finishes its member and stops (exit 130); bounded, then killed.
    const w = walkthroughChild;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.kill('SIGINT');
    const timer = setTimeout(() => w.kill('SIGKILL'), DAEMON_STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
  if (alive(daemon)) {
    const d = daemon;
    const exited = new Promise<void>((resolve) => d.once('exit', () => resolve()));
    d.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (alive(d)) {
        live(`the daemon did not stop within ${DAEMON_STOP_GRACE_MS / 1000} s: killing it`);
        d.kill('SIGKILL');
      }
    }, DAEMON_STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
  if (storePath !== null) await showHistory(storePath);
  await cluster?.close();
  await new Promise<void>((resolve) => (daemonLog ? daemonLog.end(resolve) : resolve()));
  if (dir !== null) {
    rmSync(dir, { recursive: true, force: true });
    const stopped = [churn && 'the workload', daemon && 'the daemon', cluster && 'etcd'].filter((x): x is string => typeof x === 'string');
    say(`${stopped.length > 0 ? `Stopped ${stopped.join(', ')}; removed` : 'Removed'} ${dir}.`);
  }
}

/** What the daemon recorded, as `defragd history` prints it, before the store goes with the temp dir. */
async function showHistory(store: string): Promise<void> {
  say();
  say(`What the daemon recorded:`);
  say(`$ ${cliShown()} history --store ${store}`);
  await new Promise<void>((resolve) => {
    const c = spawn(process.execPath, [CLI, 'history', '--store', store], { stdio: ['ignore', 'inherit', 'inherit'] });
    c.once('exit', () => resolve());
    c.once('error', () => resolve());
  });
}

// --- steps --------------------------------------------------------------------

function checkStop(): void {
  if (stop.signal.aborted) throw new Stopped();
}

/** Runs the built CLI in the foreground of the demo's output; its own process group, so Ctrl-C reaches only the demo. */
async function defragd(args: string[], endpoints: string[]): Promise<number> {
  checkStop();
  say(`\n$ defragd ${args.map(quote).join(' ')}`);
  const child = spawn(process.execPath, [CLI, ...args, '--endpoints', endpoints.join(',')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  walkthroughChild = child;
  // Stopped meanwhile: the CLI is told as Ctrl-C tells it (a defrag finishes its member, the rest are not started).
  const interrupt = () => child.kill('SIGINT');
  stop.signal.addEventListener('abort', interrupt, { once: true });
  const code = await new Promise<number>((resolve) => {
    child.once('exit', (c, s) => resolve(c ?? (s ? 128 : 1)));
    child.once('error', () => resolve(1));
  });
  stop.signal.removeEventListener('abort', interrupt);
  checkStop();
  return code;
}

async function walkthrough(c: EtcdCluster): Promise<void> {
  say('Writing 48 MiB twice over the same keys, then compacting (what kube-apiserver does every 5 minutes) ...');
  const writing = fragment({ endpoints: [c.endpoints[0] as string] }, { bytes: 48 * MiB, passes: 2 });
  // Stopped halfway, the writes fail once etcd is gone: that is not an error of the demo.
  writing.catch(() => undefined);
  await abortable(writing, 300_000, 'writing the data took over 5 minutes');
  const eps = c.endpoints;
  await defragd(['status', '--cluster'], eps);
  await defragd(['defrag', '--dry-run', '--rule', WALKTHROUGH_RULE], eps);
  const code = await defragd(['defrag', '--rule', WALKTHROUGH_RULE], eps);
  if (code !== 0) throw new Error(`defragd defrag exited ${code}`);
  await defragd(['status', '--cluster'], eps);
}

async function freePreferredPort(): Promise<number> {
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(PREFERRED_PORT, '127.0.0.1', () => resolve(true));
  });
  if (ok) await new Promise((resolve) => srv.close(resolve));
  // Port 0: the daemon picks a free one and logs its URL.
  return ok ? PREFERRED_PORT : 0;
}

/** Starts `defragd serve`; resolves with its URL once it listens. */
async function startDaemon(d: string, endpoints: string[]): Promise<{ url: string; token: string; configPath: string }> {
  const token = randomBytes(16).toString('hex');
  writeFileSync(path.join(d, DEMO_CONFIG_DEFAULTS.apiTokenFile), `${token}\n`, { mode: 0o600 });
  const configPath = path.join(d, 'defragd.yaml');
  const port = await freePreferredPort();
  writeFileSync(configPath, demoConfigYaml({ ...DEMO_CONFIG_DEFAULTS, listen: `127.0.0.1:${port}`, endpoints }));
  storePath = path.join(d, DEMO_CONFIG_DEFAULTS.store);
  daemonLog = createWriteStream(path.join(d, 'defragd.log'));

  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath, '--log-format', 'json', '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  daemon = child;
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
    daemonLog?.write(b);
  });
  let url: string | null = null;
  const listening = new Promise<string>((resolve, reject) => {
    child.once('exit', (code, sig) =>
      reject(new Error(`defragd serve exited (${code ?? sig}) before it listened: ${stderr.trim() || 'no output'}`)),
    );
    child.once('error', reject);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      daemonLog?.write(`${line}\n`);
      const l = parseLogLine(line);
      if (l === null) return;
      if (l.msg === 'defragd serve listening' && typeof l['url'] === 'string') {
        url = l['url'];
        resolve(url);
        return;
      }
      if (url !== null) void narrate(url, l);
    });
  });
  child.once('exit', (code, sig) => {
    if (!tearingDown) {
      live(
        `defragd serve exited unexpectedly (${code ?? sig})${stderr.trim() ? `: ${stderr.trim()}` : ''}; see ${path.join(d, 'defragd.log')}`,
      );
      exitCode = 1;
      stop.abort();
    }
  });
  return { url: await abortable(listening, 60_000, 'defragd serve did not listen within 60 s'), token, configPath };
}

async function narrate(url: string, l: NonNullable<ReturnType<typeof parseLogLine>>): Promise<void> {
  const n = narrateLog(l);
  if (n === null) return;
  // While the daemon stops, its API closes: the log's own line is said, in order.
  if (n.runId === undefined || tearingDown) return live(n.say);
  try {
    const res = await fetch(`${url}/api/v1/runs/${n.runId}`, { signal: AbortSignal.timeout(5_000) });
    live(res.ok ? runLine((await res.json()) as StoredRunDetail) : n.say);
  } catch {
    live(n.say);
  }
}

async function printSizes(url: string): Promise<void> {
  try {
    const c = (await (await fetch(`${url}/api/v1/clusters/demo`, { signal: AbortSignal.timeout(5_000) })).json()) as ClusterJson;
    if (!tearingDown) live(sizesLine(c));
  } catch {
    // The daemon is busy or stopping; the next tick prints again.
  }
}

/** Waits for p, or throws Stopped when the demo is stopped, or Error(message) after ms. */
async function abortable<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
        onAbort = () => reject(new Stopped());
        if (stop.signal.aborted) onAbort();
        stop.signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) stop.signal.removeEventListener('abort', onAbort);
  }
}

/** Resolves after `seconds` (never when null); throws Stopped when the demo is stopped first. */
function untilStopped(seconds: number | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = seconds === null ? undefined : setTimeout(resolve, seconds * 1000);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Stopped());
    };
    if (stop.signal.aborted) onAbort();
    stop.signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function livePhase(d: string, c: EtcdCluster, seconds: number | null, walked: boolean): Promise<void> {
  say();
  say('Starting the daemon, defragd serve, on this cluster ...');
  const { url, token, configPath } = await startDaemon(d, c.endpoints);
  const eps = c.endpoints.join(',');
  const cli = cliShown();
  say(`Its config (${configPath}):`);
  say(
    demoConfigYaml({ ...DEMO_CONFIG_DEFAULTS, listen: new URL(url).host, endpoints: c.endpoints })
      .trimEnd()
      .replace(/^/gm, '  '),
  );
  say();
  say(`  Dashboard:  ${url}/`);
  say(`  API token:  ${token}`);
  say();
  say('Try in another terminal:');
  say(`  curl -s ${url}/api/v1/clusters`);
  say(`  curl -s ${url}/metrics | grep '^defragd_'`);
  say(`  curl -s -X POST -H 'Authorization: Bearer ${token}' -d '{"dryRun": true}' ${url}/api/v1/clusters/demo/runs`);
  say(`  ${cli} history --store ${storePath}`);
  say(`  ${cli} last --endpoints ${eps}`);
  say(`  ${cli} status --endpoints ${eps} --cluster`);
  say(`  tail -f ${path.join(d, 'defragd.log')}     # the daemon's own log (JSON)`);
  say();
  say(
    `A workload now overwrites and deletes keys (${CHURN.bytesPerSecond / MiB} MiB/s) and compacts every ${CHURN.compactEveryMs / 1000} s, as kube-apiserver does every 5 minutes:`,
  );
  say(
    `fragmentation grows; the daemon defragments when the rule holds (auto, at most once per ${DEMO_CONFIG_DEFAULTS.cooldown}) and on its schedule (${DEMO_CONFIG_DEFAULTS.schedule}).`,
  );
  say(seconds === null ? 'Runs until Ctrl-C.' : `Stops by itself in ${seconds} s (DEMO_SECONDS); Ctrl-C stops it sooner.`);
  say(`Sizes every ${SIZES_EVERY_MS / 1000} s as the daemon observed them (* = leader), and a line per run:`);

  if (walked) live("workload: deleting the walkthrough's keys (a namespace removed) and compacting: their pages become free");
  let lastErrorAt = 0;
  churn = startChurn(
    { endpoints: c.endpoints },
    {
      ...CHURN,
      // Deleted and compacted at once: the daemon's rule holds at its first observations.
      deletePrefixes: walked ? ['/fragment/'] : [],
      onCompact: (rev) => live(`workload: compacted to revision ${rev}`),
      onError: (err) => {
        // A member being defragmented stalls its requests, a leader move fails a few: said, at most every 10 s.
        if (Date.now() - lastErrorAt < 10_000) return;
        lastErrorAt = Date.now();
        live(`workload: a request failed and was skipped (${err.message.split('\n')[0]})`);
      },
    },
  );
  const sizes = setInterval(() => void printSizes(url), SIZES_EVERY_MS);
  const firstSizes = setTimeout(() => void printSizes(url), 5_000);
  try {
    await untilStopped(seconds);
    say();
    say(`DEMO_SECONDS=${seconds} reached: stopping the workload, then the daemon, then etcd.`);
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
  } finally {
    clearInterval(sizes);
    clearTimeout(firstSizes);
  }
}

// --- main ---------------------------------------------------------------------

async function main(): Promise<void> {
  const { seconds, walkthrough: walk } = settings();
  dir = mkdtempSync(path.join(os.tmpdir(), 'defragd-demo-'));
  startWatchdog(process.pid, dir);
  say(`Starting a local 3-member etcd cluster (quota ${QUOTA_BYTES / MiB} MiB) in ${dir} ...`);
  const before = new Map((['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, new Set(process.listeners(s))]));
  // Not abortable: a cluster half started would have no owner; the harness bounds its start.
  cluster = await startCluster({ members: 3, quotaBackendBytes: QUOTA_BYTES, parentDir: dir });
  // The harness kills its members at once on a signal; here they must outlive the daemon's
  // graceful stop, so the demo's own handlers stop them in order (its exit handler stays).
  for (const [sig, had] of before) for (const l of process.listeners(sig)) if (!had.has(l)) process.removeListener(sig, l);
  checkStop();
  say(`members: ${cluster.members.map((m) => `${m.name} ${m.clientUrl}`).join(', ')}`);
  if (walk) await walkthrough(cluster);
  checkStop();
  await livePhase(dir, cluster, seconds, walk);
}

try {
  await main();
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`demo: ${err.message}`);
    process.exit(2);
  }
  // Stopped halfway (e.g. during etcd's start), what failed next is the stop's doing, not an error.
  if (!(err instanceof Stopped) && !stop.signal.aborted) {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    exitCode = 1;
  }
} finally {
  try {
    await teardown();
  } catch (err) {
    console.error(`demo: cleaning up failed: ${(err as Error).message}`);
    exitCode ||= 1;
  }
}
process.exit(exitCode);
