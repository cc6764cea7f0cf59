/** The markdown table (one column per tool, one row per figure) and the result files. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Breakdown, ToolFigures, WindowStats, Sizes } from './analyze.js';
import { BIG_SNAPSHOT_COUNT, type BenchConfig, type ToolName } from './config.js';
import { goRows } from './goreport.js';
import { fmtMiB, fmtMs, median, MiB } from './util.js';

export interface BenchResult {
  version: 1;
  startedAt: string;
  finishedAt: string;
  totalSeconds: number;
  command: string;
  config: BenchConfig;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    loadAvgAtStart: number;
    platform: string;
    release: string;
    node: string;
    etcd: string;
    etcdctl: string;
    /** go.etcd.io/etcd/client/v3 of the Go clients (go/clients/go.mod); absent in results from before them. */
    clientv3?: string;
  };
  /** etcd's flags for StopGRPCServiceOnDefrag when the run turned it on; absent or null: off. */
  stopGrpcOnDefrag?: string[] | null;
  cluster: { members: { name: string; memberId: string }[]; leaderAtStart: string | null };
  setup: { fragmentMs: number[]; quietBeforeToolMs: number[] };
  baseline: WindowStats & { seconds: number; eventLoopMaxMs: number };
  load: { requests: number; failed: number; clients: number };
  tools: ToolFigures[];
  /**
   * Start-up floor, after the tools under the same load: process start to first connection of
   * a Node process that only connects (bare) and of one that loads @grpc/grpc-js and connects;
   * and of `defragd defrag --dry-run`, interleaved with them. Absent in results from before
   * it existed (defragdMs: from before it was measured).
   */
  startupFloor?: { bareMs: number[]; grpcMs: number[]; defragdMs?: number[] };
  /** Leader timeline and the tools' logs, for digging. */
  raw?: unknown;
}

const TITLES: Record<ToolName, string> = {
  etcdctl: '`etcdctl defrag --cluster`',
  defragd: 'defragd',
  'etcd-defrag': 'etcd-defrag',
  'etcd-defrag-move-leader': 'etcd-defrag `--move-leader`',
};

function range(values: number[], fmt: (x: number) => string): string {
  if (values.length === 0) return '–';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return fmt(lo) === fmt(hi) ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
}

const mib = (x: number): string => (x / MiB).toFixed(1);

function startState(s: Record<string, Sizes>): string {
  const v = Object.values(s);
  return `${range(
    v.map((x) => x.dbSize),
    mib,
  )} / ${range(
    v.map((x) => x.dbSizeInUse),
    mib,
  )} MiB`;
}

function failures(f: ToolFigures['failed']): string {
  if (f.count === 0) return '0';
  const parts = Object.entries(f.byError)
    .sort((a, b) => b[1] - a[1])
    .map(([e, n]) => `${n}× ${e.replace(/\|/g, '\\|')}`);
  return `**${f.count}**: ${parts.join('; ')}`;
}

export function markdownTable(r: BenchResult): string {
  const tools = r.tools;
  const names = r.cluster.members.map((m) => m.name);
  const rows: [string, (t: ToolFigures) => string][] = [
    ['Start: dbSize / in use per member', (t) => startState(t.sizesBefore)],
    [
      'Order of members (⚑ = was leader during its defrag)',
      (t) => t.members.map((m) => `${m.name}${m.ledWhileDefragmented ? ' ⚑' : ''}`).join(', '),
    ],
    ...names.map((n): [string, (t: ToolFigures) => string] => [
      `Stall on ${n}'s clients / ${n}'s own defrag`,
      (t) => {
        const m = t.members.find((x) => x.name === n);
        return m ? `${fmtMs(m.ownMaxMs)} / ${fmtMs(m.defragMs)}` : 'not defragmented';
      },
    ]),
    [
      `Collateral stall: longest latency on the other members' clients (baseline p99 ${fmtMs(r.baseline.p99Ms)}, max ${fmtMs(r.baseline.maxMs)})`,
      (t) => fmtMs(t.collateral.maxMs),
    ],
    ["Collateral p99: latency on the other members' clients during a defrag", (t) => fmtMs(t.collateral.p99Ms)],
    ['Longest latency between defrags (leader moves, waits, start-up)', (t) => fmtMs(t.outside.maxMs)],
    [
      `Longest stall of the measuring process itself (event-loop delay; baseline ${fmtMs(r.baseline.eventLoopMaxMs)})`,
      (t) => fmtMs(t.eventLoopMaxMs),
    ],
    ['Failed requests', (t) => failures(t.failed)],
    [
      "Failed requests of the plain clients: ones etcd's Go client retries by itself (reads, UNAVAILABLE) / ones it does not",
      (t) => `${t.failedSplit.goWouldRetry} / ${t.failedSplit.goWouldNotRetry}`,
    ],
    [
      'Failed requests as a client retrying like the Go client sees them (its retries)',
      (t) =>
        `${t.failedSplit.goClientFailed > 0 ? `**${t.failedSplit.goClientFailed}**: ${byError(t.failedSplit.goClientByError)}` : '0'} (${t.failedSplit.goClientRetries} retries)`,
    ],
    [
      `Lease keep-alives (one lease per member, TTL ${r.config.leaseTtlSec} s, every ${r.config.keepAliveEveryMs} ms through it): longest wait through members not being defragmented`,
      (t) => fmtMs(t.keepAlive.maxOtherMs),
    ],
    ['Lease keep-alives: longest wait through the member being defragmented', (t) => fmtMs(t.keepAlive.maxOwnMs)],
    [
      'Failed lease keep-alives (errors, expired leases)',
      (t) => (t.keepAlive.failed > 0 ? `**${t.keepAlive.failed}**: ${byError(t.keepAlive.byError)}` : `0 of ${t.keepAlive.requests}`),
    ],
    [
      'Leader elections (etcd_server_leader_changes_seen_total): total = asked for by the tool (MoveLeader) + other',
      (t) => {
        const e = t.elections;
        if (e.total === null) return '–';
        return `${e.total} = ${e.askedFor} + ${e.other !== null && e.other > 0 ? `**${e.other}**` : String(e.other)}`;
      },
    ],
    ...goRowsOf(r),
    [
      'Leader defragmented while leading',
      (t) => {
        const led = t.members.filter((m) => m.ledWhileDefragmented).map((m) => m.name);
        return led.length > 0 ? `**yes** (${led.join(', ')})` : 'no';
      },
    ],
    [
      'Compacted before the first defrag (etcd-defrag does by default; the others only when asked)',
      (t) => (t.compactedRevision === null || t.compactedRevision === undefined ? 'no' : `**yes**, to revision ${t.compactedRevision}`),
    ],
    ['Wall time of the run', (t) => fmtMs(t.wallMs)],
    [
      'Sum of member defrag durations (server-side, etcd metric)',
      (t) => {
        const server = t.members.map((m) => m.serverDefragMs);
        const s = server.every((x) => x !== null) ? server.reduce<number>((a, b) => a + (b ?? 0), 0) : null;
        return `${fmtMs(t.defragSumMs)} (${fmtMs(s)})`;
      },
    ],
    ['Start-up: process start to its first connection (goal ≤ 250 ms)', (t) => (t.breakdown ? fmtMs(t.breakdown.startupMs) : '–')],
    ...(r.startupFloor
      ? [
          [
            `Start-up floor, same load, median of ${r.startupFloor.grpcMs.length}: a Node process that only connects / that loads \`@grpc/grpc-js\` and connects`,
            (t: ToolFigures) =>
              t.tool === 'defragd' && r.startupFloor
                ? `${fmtMs(median(r.startupFloor.bareMs))} / ${fmtMs(median(r.startupFloor.grpcMs))}`
                : '–',
          ] as [string, (t: ToolFigures) => string],
          ...(r.startupFloor.defragdMs?.length
            ? [
                [
                  `Start-up, same load, median of ${r.startupFloor.defragdMs.length} starts of \`defragd defrag --dry-run\` interleaved with the floor's`,
                  (t: ToolFigures) => (t.tool === 'defragd' && r.startupFloor?.defragdMs ? fmtMs(median(r.startupFloor.defragdMs)) : '–'),
                ] as [string, (t: ToolFigures) => string],
              ]
            : []),
        ]
      : []),
    ['Leader moves (MoveLeader until the new leader is seen)', (t) => (t.breakdown ? fmtMs(t.breakdown.leaderMovesMs) : '–')],
    [
      'Orchestration: wall − start-up − defrags − leader moves − configured waits (goal ≤ 5 % of defrags + 300 ms)',
      (t) => {
        if (t.tool === 'etcdctl') return `${fmtMs(t.overheadMs)} ¹`;
        if (!t.breakdown) return fmtMs(t.overheadMs);
        const b = t.breakdown;
        return `${fmtMs(b.overheadMs)} (goal ≤ ${fmtMs(b.goalMs)})`;
      },
    ],
    [
      'After: dbSize / dbSizeInUse per member (1.00 is the limit)',
      (t) => names.map((n) => (t.ratioAfter[n] ?? NaN).toFixed(2)).join(' / '),
    ],
    ['Space reclaimed (all members)', (t) => fmtMiB(t.reclaimedBytes)],
    ['Latency p50 / p99 over the run', (t) => `${fmtMs(t.latency.p50Ms)} / ${fmtMs(t.latency.p99Ms)}`],
    ['Requests during the run', (t) => String(t.latency.requests)],
  ];
  const seen = new Map<ToolName, number>();
  const titles = tools.map((t) => {
    const n = (seen.get(t.tool) ?? 0) + 1;
    seen.set(t.tool, n);
    return tools.filter((x) => x.tool === t.tool).length > 1 ? `${TITLES[t.tool]} #${n}` : TITLES[t.tool];
  });
  const header = `| | ${titles.join(' | ')} |`;
  const sep = `|---|${tools.map(() => '---').join('|')}|`;
  const body = rows.map(([label, f]) => `| ${label} | ${tools.map(f).join(' | ')} |`);
  return [header, sep, ...body].join('\n');
}

function byError(m: Record<string, number>): string {
  return Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([e, n]) => `${n}× ${e.replace(/\|/g, '\\|')}`)
    .join('; ');
}

function goRowsOf(r: BenchResult): [string, (t: ToolFigures) => string][] {
  const withGo = r.tools.find((t) => t.go !== null);
  if (!withGo?.go) return [];
  const kinds = Object.keys(withGo.go.clientsPerKind);
  return goRows(kinds, withGo.go.latencyOf);
}

/** "StopGRPCServiceOnDefrag on (`--feature-gates=…`)" or "off". */
export function gateLine(r: BenchResult): string {
  return r.stopGrpcOnDefrag ? `StopGRPCServiceOnDefrag on (\`${r.stopGrpcOnDefrag.join(' ')}\`)` : 'StopGRPCServiceOnDefrag off';
}

/** "start-up 180 ms · observe 40 ms · lock 12 ms · m1 [checks 30 ms · Defragment 2.1 s · catch-up 25 ms] · ...". */
export function breakdownLine(b: Breakdown): string {
  const parts = [
    `start-up ${fmtMs(b.startupMs)}`,
    `first observation (from the first connection) ${fmtMs(b.observeMs)}`,
    `lock ${fmtMs(b.lockMs)}`,
    `plan to the first turn ${fmtMs(b.toFirstTurnMs)}`,
  ];
  for (const m of b.members) {
    const inner = [
      ...(m.gapBeforeMs >= 1 ? [`before its turn ${fmtMs(m.gapBeforeMs)}`] : []),
      `re-observation ${fmtMs(m.checksMs)}`,
      ...(m.leaderMoveMs > 0 ? [`leader move ${fmtMs(m.leaderMoveMs)}`] : []),
      `Defragment ${fmtMs(m.defragmentMs)}`,
      `catch-up ${fmtMs(m.catchUpMs)}`,
    ];
    parts.push(`${m.name} [${inner.join(' · ')}]`);
  }
  parts.push(
    `end [record, final observation, disarm ${fmtMs(b.endMs)} · lock release ${fmtMs(b.releaseMs)} · report and exit ${fmtMs(b.exitMs)}]`,
  );
  return parts.join(' · ');
}

export function notes(r: BenchResult): string {
  const c = r.config;
  const b = r.baseline;
  const lines = [
    `Load: ${r.load.clients} clients (${c.clientsPerMember} pinned to each member), each a closed loop of ${c.readPct}% linearizable reads / ${100 - c.readPct}% 128-byte puts, ${c.sleepMs} ms apart, ${fmtMs(c.deadlineMs)} deadline; it runs from before the first tool until after the last.`,
    `Baseline (${b.seconds} s of load before any defrag): p50 ${fmtMs(b.p50Ms)}, p99 ${fmtMs(b.p99Ms)}, max ${fmtMs(b.maxMs)}, ${b.requests} requests, ${b.failed} failed.`,
    `Data: ${c.mb} MiB written per tool (two passes of ${c.valueKiB} KiB values over ${c.mb / 2} MiB of keys, then a physical compaction); before the next tool the keys are deleted, compacted, the then near-empty members defragmented (outside the measured runs) and the same data written again, so every tool starts from the same files. The disk is flushed (sync) right before each tool.`,
    ...(c.big
      ? [
          `--big: the members run with \`--snapshot-count ${BIG_SNAPSHOT_COUNT}\` (etcd 3.6's default; 3.4's 100 000 kept every 64 KiB write of both tools in each member's memory, over 3 GB each, and the first --big run here thrashed the machine), so a raft snapshot can fall inside a run.`,
        ]
      : []),
    `Stall = longest latency of a request overlapping the interval; defrag duration = the Defragment call (defragd's report) or the time between etcdctl's "Finished defragmenting" lines, which includes etcdctl dialling each member.`,
    `Each tool runs in a process of its own, as an operator runs it (defragd: \`node dist/cli/main.js defrag -w json\`, with a probe preloaded that notes its first connection and its exit; its run is measured from the process start); the benchmark process runs only the load. When it is itself stalled (the event-loop delay row: 2 CPUs shared with 3 etcd members and the tool), every request in flight looks slower by as much, so collateral stalls near that figure are the machine's, not the cluster's.`,
    `Longest collateral request of each run: ${r.tools
      .map((t) => {
        const w = t.collateral.worst;
        return w
          ? `${t.tool}: ${w.member} ${w.op} ${fmtMs(t.collateral.maxMs)}, started ${fmtMs(w.startedBeforeEndMs)} before the end of ${w.during}'s defrag`
          : `${t.tool}: none`;
      })
      .join('; ')} (all three members share one disk and two CPUs here).`,
    `The disk is not the bottleneck here; the ${r.machine.cpus} CPUs are shared by 3 etcd members, the load, the tool and anything else running, so defrag durations vary from run to run (${range(
      r.tools.flatMap((t) => t.members.map((m) => m.defragMs)),
      fmtMs,
    )} per member in this one; 1-minute load average before the benchmark started: ${r.machine.loadAvgAtStart.toFixed(1)}); read a member's stall against its own defrag in the same column. \`--tools defragd,etcdctl\` or \`--tools etcdctl,defragd,defragd,etcdctl\` check the order.`,
    ...r.tools.flatMap((t, i) =>
      t.breakdown
        ? [
            `defragd run ${i + 1}, where its time went: ${breakdownLine(t.breakdown)}; orchestration ${fmtMs(t.breakdown.overheadMs)} against a goal of ${fmtMs(t.breakdown.goalMs)}.`,
          ]
        : [],
    ),
    `Keep-alives: one lease per member, each kept alive through its own member by a closed loop (wait for the answer, pause ${r.config.keepAliveEveryMs} ms); a member's keep-alive counts as "not being defragmented" when it overlaps no defrag of that member. etcd serves keep-alives on the leader: a follower forwards them, so a leader's stall shows on every member's keep-alives. Elections: the largest increase over the members of etcd_server_leader_changes_seen_total from before the run to ${r.config.settleSec} s after it; defragd's MoveLeader calls are counted from its report.`,
    'Go client retries: every second load client per member retries as etcd\'s Go client (clientv3 retry interceptor) does by itself: a Range ("repeatable") on UNAVAILABLE such as `leader changed`, after 25 ms ± 10 %, until its deadline; a Put ("non-repeatable") only when it never left the client, which a connected client does not see; never on other codes or deadlines. The other clients do not retry; their failures are split by what the Go client would have done.',
    ...(r.machine.clientv3
      ? [
          `Go clients: go/clients' \`etcd-clients\` on \`go.etcd.io/etcd/client/v3\` ${r.machine.clientv3}, each client its own \`clientv3.Client\` with all 3 endpoints and kube-apiserver's keep-alive settings (30 s / 10 s), every kind in two modes: as clientv3 connects by default (round robin over the endpoints, no health checking), and with gRPC health checking (\`{"loadBalancingPolicy": "round_robin", "healthCheckConfig": {"serviceName": ""}}\`, the service config of etcd's tests/e2e/failover_test.go), which stops sending new requests to a member whose health service says NOT_SERVING, as etcd's does during a defrag with ${gateLine(r)}. Kinds: \`concurrency.Session\` + \`Election.Campaign\` (TTL 5 s and 15 s; a lost session starts a new one), \`Lease.KeepAlive\` (TTL 5 s), a prefix watch with \`WithProgressNotify\`, compare-and-swap \`Txn(If(ModRevision(k) == rev)).Then(Put).Else(Get)\` every 100 ms, and paginated lists (\`WithLimit(50)\`, \`WithRev\`) every 500 ms. Counted from the tool's start to ${c.settleSec} s after it; retries are what clientv3's retry interceptor re-sent by itself (seen by an interceptor chained inside it); a failed request is one whose error reached the client's code. A session or lease lost counts as "not being defragmented" when the member its keep-alive stream went to was not defragmented within a TTL before the loss.`,
        ]
      : []),
    '¹ etcdctl defragments the members back to back and the intervals are taken from its output, so its overhead is ≈0 by construction (what is left is process start-up and exit).',
    `Commands: ${[...new Map(r.tools.map((t) => [t.tool, t.command])).values()].map((c) => `\`${c}\``).join('; ')}.${
      r.tools.some((t) => t.tool.startsWith('etcd-defrag'))
        ? ' etcd-defrag v0.42.0 with its defaults otherwise (compaction to the current revision first, a 30 s command timeout, go on after a failed member); its member intervals run from its "Defragmenting endpoint" line to its "Finished" line. It was built from its v0.42.0 source with Go 1.26 and its go.sum (the Go module proxy refuses github.com/ahrtr/etcd-defrag, so `make bench` cannot build it; set ETCD_DEFRAG to such a binary).'
        : ''
    }`,
    `Machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), Node ${r.machine.node}, etcd ${r.machine.etcd}, 3 members on loopback; benchmark run took ${r.totalSeconds.toFixed(0)} s.`,
  ];
  return lines.map((l) => `- ${l}`).join('\n');
}

export function markdown(r: BenchResult): string {
  return [
    `On etcd ${r.machine.etcd}, ${gateLine(r)}. Command: \`${r.command}\` (${r.startedAt})`,
    '',
    markdownTable(r),
    '',
    notes(r),
    '',
  ].join('\n');
}

/**
 * Writes <outDir>/<timestamp>.json, latest.json, latest.md and latest-<etcd line>.md (e.g. latest-3.7.md, so
 * README keeps one table per etcd version; with --big: big-<timestamp>.json, big-latest.*) and, when given,
 * <timestamp>-requests.json; returns their paths.
 */
export async function writeResults(r: BenchResult, outDir: string, requests?: object): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  // --big runs keep their own latest files, so that README's two tables each come from their own run.
  const prefix = r.config.big ? 'big-' : '';
  const stamp = prefix + r.startedAt.replace(/[:.]/g, '-');
  const json = JSON.stringify(r, null, 2) + '\n';
  const files = [path.join(outDir, `${stamp}.json`), path.join(outDir, `${prefix}latest.json`), path.join(outDir, `${prefix}latest.md`)];
  await writeFile(files[0] as string, json);
  await writeFile(files[1] as string, json);
  const md = `# defragd benchmark\n\n${markdown(r)}`;
  await writeFile(files[2] as string, md);
  const line = /^(\d+\.\d+)\./.exec(r.machine.etcd)?.[1];
  if (line) {
    // With StopGRPCServiceOnDefrag on, a table of its own beside the gate-off one: latest-3.6-gate.md.
    files.push(path.join(outDir, `${prefix}latest-${line}${r.stopGrpcOnDefrag ? '-gate' : ''}.md`));
    await writeFile(files[files.length - 1] as string, md);
  }
  if (requests) {
    const f = path.join(outDir, `${stamp}-requests.json`);
    await writeFile(f, JSON.stringify(requests) + '\n');
    files.push(f);
  }
  return files;
}
