/** The Go clients' rows of the benchmark's table: each cell "as clientv3 connects by default / with gRPC health checking". */
import type { ToolFigures } from './analyze.js';
import type { GoFigures, ModeFigures } from './goclients.js';
import { fmtMs } from './util.js';

type Row = [string, (t: ToolFigures) => string];

const bold = (n: number): string => (n > 0 ? `**${n}**` : '0');
const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
const esc = (s: string): string => s.replace(/\|/g, '\\|');

/** "a / b" of one figure for the two modes, or – when the run had no Go clients. */
function pair(f: (m: ModeFigures) => string): (t: ToolFigures) => string {
  return (t) => (t.go ? `${f(t.go.modes.default)} / ${f(t.go.modes.health)}` : '–');
}

function failedCell(m: ModeFigures): string {
  const n = sum(m.failed);
  if (n === 0) return '0';
  const codes = Object.entries(m.failed)
    .sort((a, b) => b[1] - a[1])
    .map(([c, k]) => `${k}× ${c}`)
    .join(', ');
  const kinds = Object.entries(m.failedByKind)
    .map(([k, c]) => `${k} ${c}`)
    .join(', ');
  return `**${n}** (${codes}; ${kinds})`;
}

/** The losses and failures of a run, at most `limit`, oldest first: "+5.7 s m2 ⊗ session-5s/default#1: session lost (…)". */
export function lossesCell(go: GoFigures | null, limit = 12): string {
  if (!go) return '–';
  if (go.losses.length === 0) return 'none';
  const parts = go.losses
    .slice(0, limit)
    .map(
      (l) =>
        `+${fmtMs(l.offsetMs)} ${l.member}${l.onDefragmented ? ' ⊗' : ''} ${l.client}: ${l.what}${l.code ? ` ${l.code}` : ''}${l.detail && !l.code ? ` (${l.detail})` : ''}`,
    );
  const more = go.losses.length - parts.length + go.eventsDropped;
  return esc(parts.join('; ') + (more > 0 ? `; and ${more} more` : ''));
}

/** The rows, given the kinds the program reported (their order is the program's). */
export function goRows(kinds: readonly string[], latencyOf: Record<string, string>): Row[] {
  const sessionKinds = kinds.filter((k) => k.startsWith('session'));
  return [
    [
      `Go clients: sessions lost (TTL ${sessionKinds.map((k) => k.replace(/^session-(\d+)s$/, '$1 s')).join(' + ')}), as clientv3 connects by default / with gRPC health checking`,
      pair((m) => sessionKinds.map((k) => bold(m.sessionsLost[k] ?? 0)).join(' + ')),
    ],
    ['Go clients: elections lost (a session lost while leading its election)', pair((m) => bold(m.electionsLost))],
    ['Go clients: leases lost (Lease.KeepAlive clients, TTL 5 s)', pair((m) => bold(m.leasesLost))],
    [
      'Go clients: sessions and leases lost through a member that was **not** being defragmented (within a TTL before the loss)',
      pair((m) => bold(m.lostAwayFromDefrag)),
    ],
    [
      'Go clients: watch interruptions / compacted-watch restarts / streams opened again by clientv3 (Watch, LeaseKeepAlive)',
      pair((m) => `${bold(m.watchInterruptions)}, ${bold(m.watchCompactedRestarts)}, ${m.streamsReopened}`),
    ],
    ['Go clients: failed requests that clientv3 did not retry away, by gRPC code and kind', pair(failedCell)],
    ["Go clients: unary requests (clientv3's own retries)", pair((m) => `${m.calls} (${m.retries})`)],
    [
      "Go clients: sessions' and leases' keep-alive streams per member at the end",
      pair(
        (m) =>
          Object.entries(m.keepAliveStreams)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([name, n]) => `${name} ${n}`)
            .join(', ') || '–',
      ),
    ],
    ...kinds.map(
      (k): Row => [
        `Go clients (${k}), longest ${latencyOf[k] ?? 'latency'}`,
        // 0: nothing of the kind finished in the window (a Campaign runs only after a lost session).
        pair((m) => (m.maxLatencyMs[k] ? fmtMs(m.maxLatencyMs[k]) : '–')),
      ],
    ),
    ['Go clients: what was lost or failed (the member the client talked to; ⊗ = it was being defragmented)', (t) => lossesCell(t.go)],
  ];
}
