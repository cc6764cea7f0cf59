/**
 * Load from a real etcd client that nobody here wrote: `etcdctl` (Go
 * clientv3) processes pinned to each member, running for the whole
 * measurement:
 *
 * - `etcdctl lock --ttl <ttl> <name>`: holds a lock through a session (a
 *   lease kept alive by clientv3); when the session's lease expires it exits
 *   with "session expired" (what the issue's measurement used);
 * - `etcdctl lease keep-alive <id>`: keeps a lease of the same TTL alive;
 *   prints "lease ... expired or revoked." when it could not;
 * - `etcdctl watch --prefix /bench/load/<member>/`: watches the load's keys.
 *
 * Any output on stderr, an "expired"/"revoked" line or an exit is an error
 * event, with its time. Processes that ended are started again after each
 * tool's run, so every tool starts with every session alive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { EtcdClient } from '../src/internals.js';
import type { LoadTarget } from './load.js';
import { etcdctlBin } from './tools.js';
import { now } from './util.js';

export type GoKind = 'lock' | 'keep-alive' | 'watch';
export const GO_KINDS: readonly GoKind[] = ['lock', 'keep-alive', 'watch'];

export interface GoEvent {
  t: number;
  member: string;
  kind: GoKind;
  line: string;
}

interface Proc {
  member: LoadTarget;
  kind: GoKind;
  child: ChildProcess | null;
}

const ERROR_LINE = /error|expired|revoked|timed out|deadline|unavailable|failed/i;

export class GoClients {
  readonly events: GoEvent[] = [];
  private readonly procs: Proc[] = [];
  private readonly client: EtcdClient;
  private stopped = false;

  constructor(
    readonly targets: readonly LoadTarget[],
    private readonly ttlSec: number,
  ) {
    this.client = new EtcdClient({ endpoints: targets.map((t) => t.url) });
    for (const member of targets) for (const kind of GO_KINDS) this.procs.push({ member, kind, child: null });
  }

  async start(): Promise<void> {
    for (const p of this.procs) await this.spawn(p);
  }

  /** Starts again the processes that ended; resolves with how many. */
  async restartEnded(): Promise<number> {
    let n = 0;
    for (const p of this.procs) {
      if (p.child === null) {
        await this.spawn(p);
        n++;
      }
    }
    return n;
  }

  /** Error events inside [start, end], grouped "m1 lock: session expired". */
  errorsBetween(start: number, end: number): GoEvent[] {
    return this.events.filter((e) => e.t >= start && e.t <= end);
  }

  private async spawn(p: Proc): Promise<void> {
    if (this.stopped) return;
    const base = [`--endpoints=${p.member.url}`];
    let args: string[];
    if (p.kind === 'lock') args = [...base, 'lock', `--ttl=${this.ttlSec}`, `/bench/go-lock/${p.member.name}`];
    else if (p.kind === 'watch') args = [...base, 'watch', '--prefix', `/bench/load/${p.member.name}/`];
    else {
      const lease = await this.client.member(p.member.url).leaseGrant(this.ttlSec, { timeoutMs: 10_000 });
      args = [...base, 'lease', 'keep-alive', BigInt(lease.id).toString(16)];
    }
    const env: NodeJS.ProcessEnv = { ...process.env, ETCDCTL_API: '3' };
    for (const k of Object.keys(env)) if (k.startsWith('ETCDCTL_') && k !== 'ETCDCTL_API') delete env[k];
    const child = spawn(etcdctlBin(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    p.child = child;
    const note = (line: string) => this.events.push({ t: now(), member: p.member.name, kind: p.kind, line: line.slice(0, 200) });
    // Watch prints every event on stdout; only its errors matter.
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (p.kind !== 'watch' && ERROR_LINE.test(line)) note(line);
    });
    createInterface({ input: child.stderr }).on('line', (line) => note(line));
    child.once('error', (err) => note(`spawn failed: ${err.message}`));
    child.once('close', (code, sig) => {
      p.child = null;
      if (!this.stopped) note(`exited (${sig ?? `code ${code}`})`);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.procs) {
      try {
        p.child?.kill('SIGKILL');
      } catch {
        /* gone */
      }
      p.child = null;
    }
    this.client.close();
  }
}
