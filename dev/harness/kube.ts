/**
 * A real Kubernetes control plane on a harness etcd cluster: kube-apiserver and the client-go load
 * program `kube-load`, both built from Kubernetes' own Go modules by `scripts/go-bin kube` (go/kube/,
 * pinned in its go.mod) and cached outside the tree.
 *
 * {@link startKube} starts one or two kube-apiservers on free loopback ports against a started
 * cluster ({@link startCluster}), with everything they need generated per run in a fresh temp dir
 * (`os.tmpdir()/defragd-kube-XXXXXX`):
 *
 * - `sa.key`, `sa.pub`      the service-account signing key pair (EC P-256, Node's crypto)
 * - `tokens.csv`            a static token (`--token-auth-file`) in group system:masters
 * - `<name>.certs/`         the apiserver's self-signed serving certificate (it makes one itself)
 * - `<name>.log`            each apiserver's output
 * - `load-<n>.log`          each load program's stderr (client-go's klog)
 *
 * Nothing leaks: `stop()` ends every process it started and removes the dir; a process 'exit'
 * handler SIGKILLs what is still alive, and a detached `sh` watchdog does the same (and removes
 * the dir) if the test process dies without running its handlers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ETCD_LINE, etcdUnderTest, freePorts, isAlive, terminate, type EtcdCluster } from './etcd.js';

const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the built kube-apiserver and kube-load are. */
export interface KubeBinaries {
  /** Kubernetes' version as go/kube/go.mod pins it, e.g. "v1.37.2". */
  version: string;
  dir: string;
  apiserver: string;
  load: string;
}

/**
 * Why a Kubernetes test cannot run here, or '' when it can: go/kube is built, and the etcd under test is
 * the default line (Kubernetes' own tests ask no more; the other versions' runs are for defragd).
 */
export function kubeSkipReason(): string {
  const kube = kubeBinaries();
  if (!kube.ok) return kube.why;
  const underTest = etcdUnderTest().version;
  return underTest.startsWith(`${DEFAULT_ETCD_LINE}.`) ? '' : `runs on etcd ${DEFAULT_ETCD_LINE} only, not ${underTest}`;
}

/**
 * The cached build of go/kube, without building it (a build takes many minutes): `ok: false` with
 * the reason when this machine has not built it yet (`make kube` does).
 * @example
 * const kube = kubeBinaries();
 * it.skipIf(!kube.ok)(`… ${kube.ok ? '' : `(skipped: ${kube.why})`}`, …);
 */
export function kubeBinaries(): { ok: true; bins: KubeBinaries } | { ok: false; why: string } {
  const r = spawnSync(path.join(ROOT_DIR, 'scripts/go-bin'), ['kube'], {
    encoding: 'utf8',
    env: { ...process.env, GO_BIN_NO_BUILD: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  if (!dir) {
    const why = (r.stderr || r.error?.message || '').trim().split('\n').pop();
    return { ok: false, why: why || `scripts/go-bin kube exited ${r.status}` };
  }
  const version = /-(v\d+\.\d+\.\d+)-[0-9a-f]+$/.exec(dir)?.[1] ?? 'unknown';
  return { ok: true, bins: { version, dir, apiserver: path.join(dir, 'kube-apiserver'), load: path.join(dir, 'kube-load') } };
}

/** Options for {@link startKube}. */
export interface KubeOptions {
  /** kube-apiservers to start, each with every etcd member in `--etcd-servers`; default 1. */
  apiservers?: 1 | 2;
  /**
   * `--etcd-compaction-interval` (default here "30s"; kube-apiserver's own default is 5m): the
   * apiserver compacts etcd at this pace, so a load fragments the database by itself.
   */
  compactionInterval?: string;
  /** Appended to every apiserver's command line (a later flag wins, except list flags, which add up). */
  extraArgs?: string[];
  /**
   * `--etcd-servers` (default every member's client URL). Not through extraArgs: kube-apiserver's list flags
   * (--etcd-servers, --authorization-mode) add up when repeated rather than the last one winning.
   */
  etcdServers?: readonly string[];
  /** The bearer token in system:masters (default: a random one per run); give another stack's to share one. */
  token?: string;
  /** How long an apiserver may take to answer /readyz with 200, ms; default 120 000 (2 cores). */
  startTimeoutMs?: number;
}

/** One kube-apiserver process. */
export interface KubeApiserver {
  /** "api1", "api2". */
  name: string;
  /** e.g. `https://127.0.0.1:34567`. */
  url: string;
  port: number;
  logFile: string;
  pid(): number | null;
  running(): boolean;
}

/** Options of one kube-load run ({@link KubeStack.startLoad}); unset ones keep the program's defaults. */
export interface LoadOptions {
  /** Which apiserver it talks to (index into `apiservers`); default 0. */
  apiserver?: number;
  /**
   * Leader-election timings: "kcm" (15 s / 10 s / 2 s, the program's default) or "fast" (4 s / 3 s / 500 ms).
   * Either way its requests time out at half the renew deadline, as kube-controller-manager's do.
   */
  profile?: 'kcm' | 'fast';
  controllers?: number;
  candidates?: number;
  configmapWriters?: number;
  configmaps?: number;
  configmapBytes?: number;
  deleteAfter?: number;
  configmapIntervalMs?: number;
  eventWriters?: number;
  eventIntervalMs?: number;
  /** Stop by itself after this long; default: until {@link KubeLoad.stop}. */
  durationMs?: number;
  /** More flags, e.g. `['--namespace', 'other']`. */
  extraArgs?: string[];
}

/** A count per verb (GET, PUT, POST, DELETE, PATCH, WATCH…) and HTTP status code ("<error>": no answer). */
export type CountsByVerb = Record<string, Record<string, number>>;

/** One window (or the whole run) of a kube-load report; see go/kube/cmd/kube-load/stats.go. */
export interface LoadStats {
  since: string;
  /** Every HTTP attempt client-go made, by verb and code. */
  requests: CountsByVerb;
  /** client-go's own retries, by verb and the code that caused them. */
  retries: CountsByVerb;
  /** Longest request per verb, client-go's retries included, ms. */
  maxLatencyMs: Record<string, number>;
  /** The load's own calls (configmap-create, configmap-update, configmap-delete, event-create). */
  operations: Record<string, { ok: number; failed: number; failedBy?: Record<string, number>; maxLatencyMs: number }>;
  /** Per Lease: acquisitions, losses (OnStoppedLeading of a leader not told to stop), hand-overs. */
  leases: Record<
    string,
    { acquired: number; lost: number; handovers: number; events?: Array<{ at: string; kind: 'lost' | 'handover'; identity: string }> }
  >;
  /** Per informer (configmaps, events, leases): listings, re-lists, watches, watch restarts. */
  informers: Record<string, { lists: number; relists: number; watches: number; restarts: number; watchErrors: number; events: number }>;
  /** apiserver's /readyz?verbose, polled every 100 ms. */
  readyz: {
    polls: number;
    failures: number;
    longestFailureMs: number;
    windows?: Array<{ from: string; to?: string; durationMs: number; status: string; failed: string[] | null }>;
  };
}

/** One JSON line of kube-load's stdout. */
export interface LoadReport {
  /** "report" (asked for), "signal" (stopped), "end" (its duration ran out). */
  reason: 'report' | 'signal' | 'end';
  at: string;
  seq: number;
  config: Record<string, string>;
  /** Lease → identity of the candidate leading it at the report ("" if none). */
  holders: Record<string, string>;
  /** Informer cache sizes. */
  objects: Record<string, number>;
  total: LoadStats;
  /** Since the previous report. */
  window: LoadStats;
  /** HTTP attempts, client-go retries and failed load calls (after retries) in the whole run. */
  attempts: number;
  retries: number;
  failedOps: number;
}

/** A running kube-load. */
export interface KubeLoad {
  pid: number | null;
  logFile: string;
  /** Every report read so far, oldest first. */
  reports: LoadReport[];
  /** Ask for a report now (a line "report" on its stdin) and wait for it (10 s bound). */
  report(): Promise<LoadReport>;
  /**
   * SIGTERM it and wait for its final report (15 s bound, else reject), then for its exit (it
   * releases its leases first; SIGKILL after 10 s).
   */
  stop(): Promise<LoadReport>;
  /** Resolves with its exit code when it exits. */
  exited: Promise<number | null>;
}

/** A running control plane on a harness cluster. */
export interface KubeStack {
  apiservers: KubeApiserver[];
  /** The bearer token in system:masters that the load program uses. */
  token: string;
  /** The run's temp dir. */
  dir: string;
  bins: KubeBinaries;
  /** GET `/readyz?verbose` on an apiserver (default the first) with the token; status 0 when it did not answer. */
  readyz(apiserver?: number): Promise<{ status: number; body: string }>;
  /** Start kube-load against one apiserver (its stderr goes to `load-<n>.log`). */
  startLoad(opts?: LoadOptions): Promise<KubeLoad>;
  /** Stop every load program and apiserver, wait for their exit, remove `dir`. Idempotent. */
  stop(): Promise<void>;
  /** Log tails of every apiserver and load program, for failing tests. */
  logTails(lines?: number): string;
}

// ---------------------------------------------------------------------------
// Process bookkeeping: nothing may outlive the test process.

const liveChildren = new Set<ChildProcess>();
const openDirs = new Set<string>();
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const dir of openDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  });
}

/** Whether something listens on the loopback port (a connect succeeds). */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Process ids whose command line mentions `text` (pgrep -f), this process left out. */
export function processesMentioning(text: string): number[] {
  const r = spawnSync('pgrep', ['-f', '--', text], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

function tail(file: string, lines = 40): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n') || '(log empty)';
  } catch {
    return '(no log)';
  }
}

/** GET over https, trusting any certificate (the apiserver's is self-signed per run); status 0 on no answer. */
function httpsGet(url: string, token: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = https.get(url, { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
  });
}

// ---------------------------------------------------------------------------
// The stack.

const DEFAULT_COMPACTION_INTERVAL = '30s';
const START_TIMEOUT_MS = 120_000;
/** kube-apiserver's graceful shutdown is quick without --shutdown-delay-duration; then SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** kube-load waits up to 10 s for its writers' last calls, then up to 5 s for its leases' release. */
const LOAD_STOP_GRACE_MS = 10_000;
/** A range for ClusterIP allocation only: no address of it is ever used here. */
const SERVICE_CIDR = '10.96.0.0/16';

interface ApiserverState extends KubeApiserver {
  proc: ChildProcess | null;
}

class Stack implements KubeStack {
  apiservers: ApiserverState[] = [];
  readonly token: string;
  private readonly loads = new Set<ChildProcess>();
  private readonly loadLogs: string[] = [];
  private watchdog: ChildProcess | null = null;
  private stopping: Promise<void> | null = null;

  constructor(
    readonly dir: string,
    readonly bins: KubeBinaries,
    private readonly cluster: EtcdCluster,
    private readonly opts: KubeOptions,
  ) {
    this.token = opts.token ?? randomBytes(24).toString('hex');
  }

  async boot(): Promise<void> {
    this.startWatchdog();
    // The key pair every apiserver signs service-account tokens with and checks them against.
    const { privateKey, publicKey } = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    await writeFile(path.join(this.dir, 'sa.key'), privateKey, { mode: 0o600 });
    await writeFile(path.join(this.dir, 'sa.pub'), publicKey);
    // token,user,uid,"groups": system:masters is allowed everything, whatever the authorizer.
    await writeFile(path.join(this.dir, 'tokens.csv'), `${this.token},defragd-kube-load,defragd-kube-load,"system:masters"\n`, {
      mode: 0o600,
    });
    const n = this.opts.apiservers ?? 1;
    const ports = await freePorts(n);
    for (let i = 0; i < n; i++) {
      const name = `api${i + 1}`;
      const port = ports[i]!;
      const a: ApiserverState = {
        name,
        port,
        url: `https://127.0.0.1:${port}`,
        logFile: path.join(this.dir, `${name}.log`),
        proc: null,
        pid: () => (isAlive(a.proc) ? (a.proc?.pid ?? null) : null),
        running: () => isAlive(a.proc),
      };
      this.apiservers.push(a);
      this.spawnApiserver(a);
    }
    await Promise.all(this.apiservers.map((a) => this.waitReady(a)));
  }

  /**
   * The flags, and why each: the etcd members and the compaction pace are the point; the rest is
   * what kube-apiserver needs to start on loopback with nothing else around it.
   */
  private apiserverArgs(a: ApiserverState): string[] {
    const f = (name: string): string => path.join(this.dir, name);
    return [
      `--etcd-servers=${(this.opts.etcdServers ?? this.cluster.endpoints).join(',')}`,
      `--etcd-compaction-interval=${this.opts.compactionInterval ?? DEFAULT_COMPACTION_INTERVAL}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${a.port}`,
      // The address written into the `kubernetes` Service's endpoints; loopback is refused there,
      // so the endpoint reconciler is off (nothing here routes to the Service).
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      // No --tls-cert-file: the apiserver writes a self-signed certificate for 127.0.0.1 here.
      `--cert-dir=${f(`${a.name}.certs`)}`,
      `--service-account-key-file=${f('sa.pub')}`,
      `--service-account-signing-key-file=${f('sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--token-auth-file=${f('tokens.csv')}`,
      '--authorization-mode=AlwaysAllow',
      // No /debug/pprof on a throw-away server.
      '--profiling=false',
      ...(this.opts.extraArgs ?? []),
    ];
  }

  private spawnApiserver(a: ApiserverState): void {
    const args = this.apiserverArgs(a);
    appendFileSync(a.logFile, `[harness] ${new Date().toISOString()} ${this.bins.apiserver} ${args.join(' ')}\n`);
    const fd = openSync(a.logFile, 'a');
    try {
      a.proc = this.track(spawn(this.bins.apiserver, args, { stdio: ['ignore', fd, fd], cwd: this.dir }));
    } finally {
      closeSync(fd);
    }
    a.proc.once('error', () => {
      /* reported through waitReady (process not alive) */
    });
  }

  private track(child: ChildProcess): ChildProcess {
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    if (child.pid !== undefined) appendFileSync(path.join(this.dir, 'pids'), `${child.pid}\n`);
    return child;
  }

  private async waitReady(a: ApiserverState): Promise<void> {
    const timeoutMs = this.opts.startTimeoutMs ?? START_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (!isAlive(a.proc)) {
        // The port was free when picked; another process may have taken it since.
        if (/address already in use/i.test(tail(a.logFile))) throw new PortClashError(`kube-apiserver ${a.name}: port ${a.port} taken`);
        throw new Error(
          `kube-apiserver ${a.name} exited (code ${a.proc?.exitCode}) before it was ready. Log tail (${a.logFile}):\n${tail(a.logFile)}`,
        );
      }
      const r = await httpsGet(`${a.url}/readyz?verbose`, this.token, 2000);
      if (r.status === 200) return;
      last = `${r.status} ${
        r.body
          .split('\n')
          .filter((l) => l.startsWith('[-]'))
          .join('; ') || r.body.slice(0, 200)
      }`;
      if (Date.now() > deadline) {
        throw new Error(
          `kube-apiserver ${a.name} (${a.url}) not ready within ${timeoutMs} ms (last /readyz: ${last}). Log tail (${a.logFile}):\n${tail(a.logFile)}`,
        );
      }
      await sleep(250);
    }
  }

  /**
   * A detached shell that outlives a SIGKILLed test process for at most ~1 s: it kills every
   * recorded pid whose command line still mentions this dir, then removes the dir.
   */
  private startWatchdog(): void {
    const script = [
      'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
      'if [ -f "$2/pids" ]; then for p in $(sort -u "$2/pids"); do',
      '  grep -qaF -- "$2" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p" 2>/dev/null',
      'done; fi',
      'rm -rf -- "$2"',
    ].join('\n');
    const wd = spawn('/bin/sh', ['-c', script, 'defragd-kube-watchdog', String(process.pid), this.dir], {
      detached: true,
      stdio: 'ignore',
    });
    wd.on('error', () => {
      /* best effort */
    });
    wd.unref();
    this.watchdog = wd;
  }

  readyz(apiserver = 0): Promise<{ status: number; body: string }> {
    const a = this.apiservers[apiserver];
    if (!a) throw new Error(`no apiserver ${apiserver} (have ${this.apiservers.length})`);
    return httpsGet(`${a.url}/readyz?verbose`, this.token, 5000);
  }

  async startLoad(opts: LoadOptions = {}): Promise<KubeLoad> {
    if (this.stopping) throw new Error('the kube stack is stopped');
    const a = this.apiservers[opts.apiserver ?? 0];
    if (!a) throw new Error(`no apiserver ${opts.apiserver} (have ${this.apiservers.length})`);
    // The token on the command line is a per-run secret of a throw-away apiserver. --log_dir is a
    // klog flag that puts the run's dir on the command line, which is how the watchdog and
    // processesMentioning(dir) find the process; klog writes nothing there (it logs to stderr).
    const args = [`--log_dir=${this.dir}`, `--server=${a.url}`, `--token=${this.token}`, '--insecure-skip-tls-verify'];
    const num = (flag: string, v: number | undefined): void => {
      if (v !== undefined) args.push(`--${flag}=${v}`);
    };
    if (opts.profile) args.push(`--profile=${opts.profile}`);
    num('controllers', opts.controllers);
    num('candidates', opts.candidates);
    num('configmap-writers', opts.configmapWriters);
    num('configmaps', opts.configmaps);
    num('configmap-bytes', opts.configmapBytes);
    num('delete-after', opts.deleteAfter);
    num('event-writers', opts.eventWriters);
    if (opts.configmapIntervalMs !== undefined) args.push(`--configmap-interval=${opts.configmapIntervalMs}ms`);
    if (opts.eventIntervalMs !== undefined) args.push(`--event-interval=${opts.eventIntervalMs}ms`);
    if (opts.durationMs !== undefined) args.push(`--duration=${opts.durationMs}ms`);
    args.push(...(opts.extraArgs ?? []));
    const logFile = path.join(this.dir, `load-${this.loadLogs.length + 1}.log`);
    this.loadLogs.push(logFile);
    appendFileSync(logFile, `[harness] ${new Date().toISOString()} ${this.bins.load} ${args.join(' ')}\n`);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = this.track(spawn(this.bins.load, args, { stdio: ['pipe', 'pipe', fd], cwd: this.dir }));
    } finally {
      closeSync(fd);
    }
    this.loads.add(child);
    child.once('exit', () => this.loads.delete(child));
    return loadHandle(child, logFile);
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    await Promise.all([...this.loads].map((c) => terminate(c, 'SIGTERM', LOAD_STOP_GRACE_MS + 10_000)));
    await Promise.all(this.apiservers.map((a) => (a.proc ? terminate(a.proc, 'SIGTERM', STOP_GRACE_MS) : Promise.resolve())));
    if (this.watchdog?.pid !== undefined && isAlive(this.watchdog)) {
      try {
        this.watchdog.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
    openDirs.delete(this.dir);
  }

  logTails(lines = 30): string {
    const files = [...this.apiservers.map((a) => a.logFile), ...this.loadLogs];
    return files.map((f) => `--- ${path.basename(f)} ---\n${tail(f, lines)}`).join('\n');
  }
}

/** Reads kube-load's JSON lines and answers report()/stop() with the next one. */
function loadHandle(child: ChildProcess, logFile: string): KubeLoad {
  const reports: LoadReport[] = [];
  const waiters: Array<(r: LoadReport) => void> = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      let r: LoadReport;
      try {
        r = JSON.parse(line) as LoadReport;
      } catch {
        appendFileSync(logFile, `[harness] not a report on stdout: ${line}\n`);
        return;
      }
      reports.push(r);
      waiters.shift()?.(r);
    });
  }
  const next = (timeoutMs: number, what: string): Promise<LoadReport> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kube-load gave no report within ${timeoutMs} ms (${what}); log tail:\n${tail(logFile)}`)),
        timeoutMs,
      );
      waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
      void exited.then(() =>
        setTimeout(() => {
          clearTimeout(timer);
          reject(new Error(`kube-load exited (code ${child.exitCode}) without a report (${what}); log tail:\n${tail(logFile)}`));
        }, 200),
      );
    });
  return {
    pid: child.pid ?? null,
    logFile,
    reports,
    exited,
    report() {
      if (!isAlive(child))
        return Promise.reject(new Error(`kube-load is not running (exit ${child.exitCode}); log tail:\n${tail(logFile)}`));
      const r = next(10_000, 'report');
      child.stdin?.write('report\n');
      return r;
    },
    async stop() {
      if (!isAlive(child)) {
        const last = reports.at(-1);
        if (last && last.reason !== 'report') return last;
        throw new Error(`kube-load had exited (code ${child.exitCode}) without a final report; log tail:\n${tail(logFile)}`);
      }
      const r = next(15_000, 'stop');
      child.kill('SIGTERM');
      try {
        return await r;
      } finally {
        // After its report it releases its leases (ReleaseOnCancel) and exits.
        await terminate(child, 'SIGTERM', LOAD_STOP_GRACE_MS).catch(() => undefined);
      }
    },
  };
}

/**
 * Start kube-apiserver(s) on a started etcd cluster and wait until each answers /readyz with 200;
 * a port taken between picking and binding it starts everything again (fresh ports and dir, 3 tries).
 * Throws (having stopped what it started) when the binaries are not built or an apiserver does not
 * get ready. Always `stop()` it.
 * @example
 * const cluster = await startCluster();
 * const kube = await startKube(cluster, { compactionInterval: '10s' });
 * const load = await kube.startLoad({ profile: 'fast', durationMs: 20_000 });
 * const final = await load.stop();
 * await kube.stop();
 * await cluster.close();
 */
export async function startKube(cluster: EtcdCluster, opts: KubeOptions = {}): Promise<KubeStack> {
  const found = kubeBinaries();
  if (!found.ok) throw new Error(`no kube-apiserver to start: ${found.why}`);
  installExitHandler();
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'defragd-kube-'));
    openDirs.add(dir);
    const stack = new Stack(dir, found.bins, cluster, opts);
    try {
      await stack.boot();
      return stack;
    } catch (err) {
      const tails = stack.logTails();
      await stack.stop();
      if (err instanceof PortClashError && attempt < 3) continue;
      if (err instanceof Error && !err.message.includes('Log tail')) err.message += `\n${tails}`;
      throw err;
    }
  }
}

class PortClashError extends Error {}
