/**
 * Load from real Go clients: go/clients' `etcd-clients` (built by `scripts/go-bin clients`), the
 * clients a Kubernetes control plane runs against etcd on `go.etcd.io/etcd/client/v3`, every one
 * with all three endpoints: election sessions (TTL 5 s and 15 s), lease keep-alives, a watch with
 * progress notifications, compare-and-swap Txn writes and paginated lists, each kind as clientv3
 * connects by default and with gRPC health checking (etcd's failover test's service config).
 *
 * The program counts until asked: `report(label)` writes "report LABEL" to its stdin and resolves
 * with the JSON line it answers, what happened since the previous report. The pure half of this
 * module (parseGoReport, summarizeGoReport) turns that into the table's figures and is unit-tested.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export type GoMode = 'default' | 'health';
export const GO_MODES: readonly GoMode[] = ['default', 'health'];

/** One kind's figures in one mode over one report window, as etcd-clients prints them. */
export interface GoKindStats {
  kind: string;
  mode: GoMode;
  clients: number;
  /** Unary RPCs as the caller made them / extra attempts clientv3's retry interceptor made. */
  calls: number;
  retries: number;
  /** Attempts that failed, by gRPC code, retried ones included. */
  attemptErrors: Record<string, number>;
  /** Errors the client's own code got back after clientv3's retries, by gRPC code. */
  failed: Record<string, number>;
  /** Watch and LeaseKeepAlive streams opened (clientv3 opens a new one when one breaks). */
  streams: number;
  sessionsLost: number;
  leasesLost: number;
  electionsLost: number;
  watchInterruptions: number;
  watchCompactedRestarts: number;
  maxLatencyMs: number;
  latencyOf: string;
  /** At the report, how many of these clients had their stream (LeaseKeepAlive, else Watch) on each member, by address. */
  streamPeers?: Record<string, number> | null;
}

/** One thing lost or failed, with the address of the member the client was talking to for it. */
export interface GoEvent {
  unixMs: number;
  client: string;
  kind: string;
  mode: GoMode;
  what: string;
  code?: string;
  peer: string;
  detail?: string;
}

export interface GoReport {
  label: string;
  startUnixMs: number;
  endUnixMs: number;
  kinds: GoKindStats[];
  events: GoEvent[];
  eventsDropped: number;
}

/** Parses one report line; throws on anything else, so a changed program is noticed. */
export function parseGoReport(line: string): GoReport {
  const r = JSON.parse(line) as Partial<GoReport>;
  if (typeof r.label !== 'string' || !Array.isArray(r.kinds) || !Array.isArray(r.events))
    throw new Error(`etcd-clients: not a report: ${line.slice(0, 200)}`);
  for (const k of r.kinds)
    if (typeof k.kind !== 'string' || !GO_MODES.includes(k.mode) || typeof k.calls !== 'number')
      throw new Error(`etcd-clients: bad kind in report: ${JSON.stringify(k).slice(0, 200)}`);
  return r as GoReport;
}

/** A member's defrag, in the same clock as the events (ms since the epoch). */
export interface DefragWindow {
  name: string;
  start: number;
  end: number;
}

export interface ModeFigures {
  calls: number;
  retries: number;
  /** Final errors (what clientv3 did not retry away), by gRPC code, and by kind. */
  failed: Record<string, number>;
  failedByKind: Record<string, number>;
  sessionsLost: Record<string, number>;
  leasesLost: number;
  electionsLost: number;
  watchInterruptions: number;
  watchCompactedRestarts: number;
  /** Watch and keep-alive streams opened beyond one per client: clientv3 replacing a broken one. */
  streamsReopened: number;
  maxLatencyMs: Record<string, number>;
  /** Sessions and leases lost by clients whose member was not defragmented within a TTL before. */
  lostAwayFromDefrag: number;
  /** Sessions' and keep-alive clients' LeaseKeepAlive streams per member at the end of the window. */
  keepAliveStreams: Record<string, number>;
}

export interface LossDetail {
  offsetMs: number;
  client: string;
  what: string;
  code: string | null;
  member: string;
  /** The member the client talked to was being defragmented within the loss's TTL before it (or during a failed request). */
  onDefragmented: boolean;
  detail: string | null;
}

export interface GoFigures {
  clientsPerKind: Record<string, number>;
  latencyOf: Record<string, string>;
  modes: Record<GoMode, ModeFigures>;
  losses: LossDetail[];
  eventsDropped: number;
}

const LOSS = /lost|interrupted|compacted/;

/** How far back a loss can have been caused: a session's TTL (from its kind's name), else the request deadline. */
function reachMs(kind: string, deadlineMs: number): number {
  const ttl = /(\d+)s$/.exec(kind)?.[1];
  if (ttl) return Number(ttl) * 1000;
  return kind === 'keepalive' ? 5_000 : deadlineMs;
}

/**
 * One report (a tool's run) as the table's figures: per mode, with each loss and failure mapped to
 * the member it went through (`members` maps "host:port" to a name) and to whether that member was
 * being defragmented then.
 */
export function summarizeGoReport(
  report: GoReport,
  members: readonly { name: string; url: string }[],
  defrags: readonly DefragWindow[],
  origin: number,
  deadlineMs: number,
): GoFigures {
  const byAddr = new Map(members.map((m) => [new URL(m.url).host, m.name]));
  const empty = (): ModeFigures => ({
    calls: 0,
    retries: 0,
    failed: {},
    failedByKind: {},
    sessionsLost: {},
    leasesLost: 0,
    electionsLost: 0,
    watchInterruptions: 0,
    watchCompactedRestarts: 0,
    streamsReopened: 0,
    maxLatencyMs: {},
    lostAwayFromDefrag: 0,
    keepAliveStreams: {},
  });
  const modes: Record<GoMode, ModeFigures> = { default: empty(), health: empty() };
  const clientsPerKind: Record<string, number> = {};
  const latencyOf: Record<string, string> = {};
  for (const k of report.kinds) {
    const m = modes[k.mode];
    clientsPerKind[k.kind] = k.clients;
    latencyOf[k.kind] = k.latencyOf;
    m.calls += k.calls;
    m.retries += k.retries;
    for (const [code, n] of Object.entries(k.failed)) m.failed[code] = (m.failed[code] ?? 0) + n;
    const failed = Object.values(k.failed).reduce((a, b) => a + b, 0);
    if (failed > 0) m.failedByKind[k.kind] = (m.failedByKind[k.kind] ?? 0) + failed;
    if (k.kind.startsWith('session')) m.sessionsLost[k.kind] = k.sessionsLost;
    m.leasesLost += k.leasesLost;
    m.electionsLost += k.electionsLost;
    m.watchInterruptions += k.watchInterruptions;
    m.watchCompactedRestarts += k.watchCompactedRestarts;
    // Each watch and keep-alive client opens one stream at its start, before the first report.
    m.streamsReopened += k.streams;
    m.maxLatencyMs[k.kind] = Math.max(m.maxLatencyMs[k.kind] ?? 0, k.maxLatencyMs);
    if (k.kind.startsWith('session') || k.kind === 'keepalive')
      for (const [addr, n] of Object.entries(k.streamPeers ?? {})) {
        const name = byAddr.get(addr) ?? addr;
        m.keepAliveStreams[name] = (m.keepAliveStreams[name] ?? 0) + n;
      }
  }
  const losses = report.events.map((e): LossDetail => {
    const member = byAddr.get(e.peer) ?? (e.peer || 'unknown');
    const reach = reachMs(e.kind, deadlineMs);
    const onDefragmented = defrags.some((d) => d.name === member && d.start <= e.unixMs && d.end >= e.unixMs - reach);
    const loss = LOSS.test(e.what);
    if (loss && !onDefragmented && /session|lease/.test(e.what)) modes[e.mode].lostAwayFromDefrag++;
    return {
      offsetMs: Math.round(e.unixMs - origin),
      client: e.client,
      what: e.what,
      code: e.code ?? null,
      member,
      onDefragmented,
      detail: e.detail ?? null,
    };
  });
  return { clientsPerKind, latencyOf, modes, losses, eventsDropped: report.eventsDropped };
}

/** The etcd flags that turn StopGRPCServiceOnDefrag on, per etcd line; null where etcd has none (3.4). */
export function stopGrpcOnDefragArgs(etcdVersion: string): string[] | null {
  const [major, minor] = etcdVersion.split('.').map(Number);
  if (major !== 3 || minor === undefined || Number.isNaN(minor)) return null;
  if (minor >= 6) return ['--feature-gates=StopGRPCServiceOnDefrag=true'];
  // 3.5.14 and later (etcd #17914); the flag is unknown before, and etcd then refuses to start.
  if (minor === 5) return ['--experimental-stop-grpc-service-on-defrag=true'];
  return null;
}

/** The running etcd-clients process. */
export class GoClients {
  private child: ChildProcess | null = null;
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly stderr: string[] = [];
  private exited: string | null = null;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly deadlineMs: number,
  ) {}

  /** Builds the program when missing (scripts/go-bin) and returns its path. */
  static binary(): string {
    const dir = execFileSync(path.join(ROOT, 'scripts/go-bin'), ['clients'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    return path.join(dir.trim(), 'etcd-clients');
  }

  /** Starts the clients; resolves once every one of them is connected and campaigning. */
  async start(bin: string, timeoutMs = 120_000): Promise<void> {
    const child = spawn(bin, [`-endpoints=${this.endpoints.join(',')}`, `-timeout=${this.deadlineMs}ms`], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => this.waiting.shift()?.(line));
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      if (this.stderr.length < 50) this.stderr.push(line);
    });
    child.once('close', (code, sig) => {
      this.exited = `etcd-clients exited (${sig ?? `code ${code}`})${this.stderr.length ? `: ${this.stderr.join(' | ')}` : ''}`;
      this.child = null;
      for (const w of this.waiting.splice(0)) w('');
    });
    const ready = await this.nextLine(timeoutMs);
    if (ready !== '{"ready":true}') throw new Error(this.exited ?? `etcd-clients did not start: ${ready}`);
  }

  /** What happened since the previous report (or the start). */
  async report(label: string, timeoutMs = 30_000): Promise<GoReport> {
    if (!this.child) throw new Error(this.exited ?? 'etcd-clients is not running');
    const line = this.nextLine(timeoutMs);
    this.child.stdin?.write(`report ${label}\n`);
    const text = await line;
    if (text === '') throw new Error(this.exited ?? 'etcd-clients ended');
    return parseGoReport(text);
  }

  private nextLine(timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(done);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new Error(`etcd-clients did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiting.push(done);
    });
  }

  /** Ends the program: EOF on stdin lets it close its clients; SIGKILL after 3 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 3_000);
      child.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      child.stdin?.end();
    });
  }

  /** For process exit handlers: no waiting. */
  kill(): void {
    try {
      this.child?.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}
