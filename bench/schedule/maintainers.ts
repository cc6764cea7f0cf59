/**
 * The two ways of keeping a cluster defragmented that `make bench-schedule`
 * compares, each started and stopped by the benchmark:
 *
 * - Cron: `etcdctl defrag --cluster` every N minutes, as a crontab line would
 *   (a start that finds the previous one still running is skipped, as
 *   `flock -n` in a crontab would).
 * - `defragd serve --config F`, the built CLI (dist/cli/main.js) as a child
 *   process, its log kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { etcdUnderTest } from '../../dev/harness/etcd.js';
import { ChildProcesses, now, sleep } from '../util.js';

/** Child processes started here, for the exit handler. */
const children = new ChildProcesses();

export function killChildren(): void {
  children.killAll();
}

function track(child: ChildProcess): ChildProcess {
  return children.add(child);
}

function exited(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? 128);
  return new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1))));
}

export interface CronRun {
  start: number;
  end: number;
  code: number;
  lines: { t: number; line: string }[];
}

/**
 * `etcdctl defrag --cluster` every everyMs, the first half an interval after
 * start(): BENCH_MINUTES / N starts, none racing the end of the measurement.
 */
export class CronDefrag {
  readonly runs: CronRun[] = [];
  /** Starts skipped because the previous run was still going. */
  skipped = 0;
  private readonly stopper = new AbortController();
  private loop: Promise<void> = Promise.resolve();
  private current: Promise<void> | null = null;
  private child: ChildProcess | null = null;

  constructor(
    private readonly seedUrl: string,
    private readonly everyMs: number,
    private readonly commandTimeout: string,
  ) {}

  /** The command as a crontab line would hold it. */
  get command(): string {
    return `etcdctl defrag --cluster --command-timeout=${this.commandTimeout}`;
  }

  start(): void {
    const t0 = now();
    this.loop = (async () => {
      for (let i = 1; !this.stopper.signal.aborted; i++) {
        await sleep(Math.max(0, t0 + (i - 0.5) * this.everyMs - now()), this.stopper.signal);
        if (this.stopper.signal.aborted) break;
        if (this.current) this.skipped++;
        else this.current = this.runOnce().finally(() => (this.current = null));
      }
    })();
  }

  private async runOnce(): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, ETCDCTL_API: '3' };
    for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') && k !== 'ETCDCTL_API') delete env[k];
    const start = now();
    const lines: { t: number; line: string }[] = [];
    const child = track(
      spawn(etcdUnderTest().etcdctl, ['defrag', '--cluster', `--command-timeout=${this.commandTimeout}`, `--endpoints=${this.seedUrl}`], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    this.child = child;
    const onLine = (line: string): void => void lines.push({ t: now(), line });
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    const code = await new Promise<number>((resolve) => {
      child.once('error', () => resolve(127));
      child.once('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    this.child = null;
    this.runs.push({ start, end: now(), code, lines });
  }

  /** No new start; a run in progress may finish within graceMs, then it is killed. */
  async stop(graceMs: number): Promise<void> {
    this.stopper.abort();
    await this.loop;
    if (this.current) {
      const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
      await this.current;
      clearTimeout(timer);
    }
  }
}

export interface DaemonOptions {
  /** dist/cli/main.js of the built CLI. */
  cliPath: string;
  /** Where the config, store and log go. */
  dir: string;
  clusterName: string;
  endpoints: readonly string[];
  port: number;
  rule: string;
  interval: string;
  cooldown: string;
  /** More keys of the cluster's entry, as YAML lines indented under it (e.g. a waitForUrl block). */
  clusterYaml?: readonly string[];
}

/** The config file the benchmark gives `defragd serve` (also printed in the results). */
export function daemonConfig(o: DaemonOptions): string {
  return [
    `listen: 127.0.0.1:${o.port}`,
    `store: ${path.join(o.dir, 'defragd.sqlite')}`,
    'clusters:',
    `  - name: ${o.clusterName}`,
    `    endpoints: [${o.endpoints.join(', ')}]`,
    `    rule: ${JSON.stringify(o.rule)}`,
    `    auto: { interval: ${o.interval}, cooldown: ${o.cooldown} }`,
    '    nospace: recover',
    ...(o.clusterYaml ?? []).map((l) => `    ${l}`),
    '',
  ].join('\n');
}

/** `defragd serve` as a child process; its log lines (JSON) are kept with their arrival time. */
export class Daemon {
  readonly logs: { t: number; line: string }[] = [];
  private child: ChildProcess | null = null;
  readonly url: string;

  constructor(private readonly o: DaemonOptions) {
    this.url = `http://127.0.0.1:${o.port}`;
  }

  async start(): Promise<void> {
    const file = path.join(this.o.dir, 'defragd.yaml');
    await writeFile(file, daemonConfig(this.o));
    const child = track(
      spawn(process.execPath, [this.o.cliPath, 'serve', '--config', file, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    this.child = child;
    const onLine = (line: string): void => void this.logs.push({ t: now(), line });
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    const deadline = now() + 30_000;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(
          `defragd serve exited with code ${child.exitCode}:\n${this.logs
            .slice(-10)
            .map((l) => l.line)
            .join('\n')}`,
        );
      try {
        const res = await fetch(`${this.url}/readyz`);
        if (res.ok) return;
      } catch {
        /* not listening yet */
      }
      if (now() > deadline)
        throw new Error(
          `defragd serve not ready within 30 s:\n${this.logs
            .slice(-10)
            .map((l) => l.line)
            .join('\n')}`,
        );
      await sleep(200);
    }
  }

  /** The daemon's run history of the cluster, from its API (newest first). */
  async history(): Promise<Record<string, unknown>[]> {
    const res = await fetch(`${this.url}/api/v1/clusters/${this.o.clusterName}/history?limit=1000`);
    if (!res.ok) throw new Error(`history: HTTP ${res.status}`);
    const body = (await res.json()) as unknown;
    return Array.isArray(body) ? (body as Record<string, unknown>[]) : ((body as { runs?: Record<string, unknown>[] }).runs ?? []);
  }

  /** SIGTERM (a run in progress finishes its current member), SIGKILL after graceMs; resolves with the exit code. */
  async stop(graceMs: number): Promise<number> {
    const child = this.child;
    if (!child) return 0;
    const done = exited(child);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await done;
    clearTimeout(timer);
    this.child = null;
    return code;
  }
}
