/**
 * `make bench-reads`: does a defragmented etcd member serve reads faster than
 * a fragmented one holding the same data?
 *
 * 1. Start one etcd member (ETCD_VERSION, default the newest pinned 3.6; data dir under os.tmpdir(): on this
 *    machine an ext4 disk, not a tmpfs, so dropping the page cache really
 *    sends reads to the disk). Write `keys` keys of 1–8 KiB, churn them
 *    (overwrites, deletes, temporary keys), compact physically.
 * 2. Stop it and keep a copy of its data dir: the *fragmented* file. Start it,
 *    defragment, stop: the *defragmented* file. Both hold the same keys,
 *    values and revisions (checked: HashKV and a sha256 over a full range at
 *    one revision must be equal, and HashKV is checked again in every pass).
 * 3. Each run measures both files, alternating which goes first: the member
 *    is stopped, the file's data dir renamed into place and, where
 *    /proc/sys/vm/drop_caches is writable, the page cache dropped; then etcd
 *    starts and a *cold* pass of reads runs at once, then a *warm* pass.
 * 4. Per run, the ratio fragmented / defragmented of each figure; the table
 *    shows each ratio's median and min–max over the runs, and is written to
 *    bench/results/reads-latest.md (pasted into README by `make bench-reads-readme`).
 *
 * The member, its dirs and any child process are removed at the end, on error and on Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { EtcdClient, type MemberClient } from '../../src/etcd/client.js';
import { etcdUnderTest, startCluster, type EtcdCluster, type HarnessMember } from '../../dev/harness/etcd.js';
import { loadReadsConfig, USAGE, type ReadsConfig } from './config.js';
import { settingsOrExit } from '../settings.js';
import { logicalDigest, writeFragmented, type ChurnResult, type LogicalDigest } from './data.js';
import { measurePass } from './measure.js';
import { percentile } from '../util.js';
import { summarise, table, VARIANTS, type CacheState, type FileFacts, type PassRecord, type Variant } from './report.js';

const cfg: ReadsConfig = settingsOrExit('bench-reads', USAGE, () => loadReadsConfig(process.argv.slice(2), process.env));

const t0 = Date.now();
const log = (msg: string): void => console.error(`[bench-reads +${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);
const MiB = 1024 * 1024;
const DROP_CACHES = '/proc/sys/vm/drop_caches';

let cluster: EtcdCluster | undefined;
const clients = new Set<EtcdClient>();

async function cleanup(): Promise<void> {
  for (const c of clients) c.close();
  await cluster?.close();
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping etcd and removing its files ...`);
    setTimeout(() => process.exit(130), 10_000).unref();
    void cleanup().finally(() => process.exit(130));
  });
}

function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('DEFRAGD_BENCH_'))
    .map(([k, v]) => `${k}=${v}`);
  const cmd = process.env.MAKELEVEL ? ['make', 'bench-reads'] : ['npx', 'tsx', 'bench/reads/run.mts', ...process.argv.slice(2)];
  return [...env, ...cmd].join(' ');
}

/** A fresh client per start: a channel that saw the member go away would wait out its reconnect backoff. */
function connect(m: HarnessMember): { client: EtcdClient; mc: MemberClient } {
  const client = new EtcdClient({ endpoints: [m.clientUrl], commandTimeoutMs: 60_000 });
  clients.add(client);
  return { client, mc: client.member(m.clientUrl) };
}

function release(client: EtcdClient): void {
  client.close();
  clients.delete(client);
}

/** Whether this process may drop the page cache; tried once, for real. */
function tryDropCaches(): { ok: boolean; why: string } {
  try {
    spawnSync('sync');
    writeFileSync(DROP_CACHES, '1');
    return { ok: true, why: `${DROP_CACHES} is writable` };
  } catch (err) {
    return { ok: false, why: `${DROP_CACHES} is not writable here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
}

/** Bytes of `file` in the page cache (util-linux fincore), or null when fincore is missing. */
function resident(file: string): number | null {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const n = Number(r.stdout.trim());
  return Number.isFinite(n) ? n : null;
}

/** The filesystem holding `dir`, e.g. "ext4 on /dev/vda". */
function filesystemOf(dir: string): string {
  const r = spawnSync('findmnt', ['--noheadings', '--output', 'FSTYPE,SOURCE', '--target', dir], { encoding: 'utf8' });
  const [fstype, source] = r.stdout.trim().split(/\s+/);
  return r.status === 0 && fstype ? `${fstype} on ${source}` : 'unknown filesystem';
}

/** Polls the member's /version every 5 ms until it answers (etcd serves clients only once it is ready). */
async function waitVersion(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(`${url}/version`, { timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`etcd at ${url} did not answer /version within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** etcd's own "opened backend db … took" of its latest start, from its log (info level), ms. */
async function backendOpenMs(logFile: string): Promise<number | null> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const lines = text.split('\n').filter((l) => l.includes('opened backend db'));
  const m = /"took":\s*"([\d.]+)(ms|s|µs)"/.exec(lines.at(-1) ?? '');
  if (!m) return null;
  const v = Number(m[1]);
  return m[2] === 's' ? v * 1000 : m[2] === 'µs' ? v / 1000 : v;
}

async function factsOf(mc: MemberClient): Promise<FileFacts> {
  const s = await mc.status({ timeoutMs: 30_000 });
  const h = await mc.hashKV(s.header.revision, { timeoutMs: 120_000 });
  return { dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse, revision: s.header.revision, compactRevision: h.compactRevision, hashKV: h.hash };
}

const sameData = (a: FileFacts, b: FileFacts): boolean =>
  a.revision === b.revision && a.compactRevision === b.compactRevision && a.hashKV === b.hashKV;

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const load1 = os.loadavg()[0] ?? 0;
  const drop = cfg.cold ? tryDropCaches() : { ok: false, why: 'cold passes skipped (--no-cold)' };
  log(`${cfg.keys} keys, ${cfg.churnRounds} churn rounds, ${cfg.runs} runs; cold cache: ${drop.why}`);

  // The default logger level of the harness is error; info gives etcd's own "opened backend db … took".
  cluster = await startCluster({
    members: 1,
    quotaBackendBytes: 8 * 1024 * MiB,
    extraArgs: ['--log-level', 'info'],
    startTimeoutMs: 300_000,
  });
  const member = cluster.members[0] as HarnessMember;
  const fs = filesystemOf(cluster.dir);
  log(`etcd ${member.clientUrl}, data dir ${member.dataDir} (${fs})`);
  const dbFile = path.join(member.dataDir, 'member', 'snap', 'db');
  const dirOf = (v: Variant): string => path.join(cluster!.dir, `${v}.etcd`);

  // 1. The fragmented file.
  let { client, mc } = connect(member);
  const writeStart = Date.now();
  const churn: ChurnResult = await writeFragmented(mc, cfg.keys, cfg.churnRounds, log);
  const writeMs = Date.now() - writeStart;
  const fragFacts = await factsOf(mc);
  const fragDigest: LogicalDigest = await logicalDigest(mc, fragFacts.revision);
  log(
    `fragmented: dbSize ${(fragFacts.dbSize / MiB).toFixed(1)} MiB, in use ${(fragFacts.dbSizeInUse / MiB).toFixed(1)} MiB, revision ${fragFacts.revision}, ${fragDigest.count} keys`,
  );
  release(client);
  await cluster.stopMember(member.name);
  await cp(member.dataDir, dirOf('fragmented'), { recursive: true });

  // 2. The defragmented file, from the same one.
  await cluster.startMember(member.name);
  ({ client, mc } = connect(member));
  const defragStart = Date.now();
  await mc.defragment({ timeoutMs: 600_000 });
  const defragMs = Date.now() - defragStart;
  const defragFacts = await factsOf(mc);
  const defragDigest = await logicalDigest(mc, fragFacts.revision);
  log(
    `defragmented in ${defragMs} ms: dbSize ${(defragFacts.dbSize / MiB).toFixed(1)} MiB, in use ${(defragFacts.dbSizeInUse / MiB).toFixed(1)} MiB`,
  );
  if (!sameData(fragFacts, defragFacts) || fragDigest.sha256 !== defragDigest.sha256 || fragDigest.count !== defragDigest.count) {
    throw new Error(`the two files do not hold the same data: ${JSON.stringify({ fragFacts, defragFacts, fragDigest, defragDigest })}`);
  }
  release(client);
  await cluster.stopMember(member.name);
  await rename(member.dataDir, dirOf('defragmented'));
  let mounted: Variant | null = null;

  const passes: PassRecord[] = [];

  // 4. The report: rewritten after every run, so an interrupted benchmark still leaves the runs it finished.
  async function writeReport(done: boolean): Promise<string> {
    const result = {
      startedAt,
      command: commandLine(),
      config: cfg,
      runsDone: new Set(passes.map((p) => p.run)).size,
      machine: {
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? '',
        node: process.version,
        load1,
        memGiB: os.totalmem() / 1024 ** 3,
        etcd: etcdUnderTest().version,
      },
      dataDirFilesystem: fs,
      coldCache: drop,
      churn,
      writeMs,
      defragMs,
      files: { fragmented: fragFacts, defragmented: defragFacts },
      digest: fragDigest,
      passes,
      durationSec: (Date.now() - t0) / 1000,
    };
    await mkdir(cfg.outDir, { recursive: true });
    const stamp = startedAt.replace(/[:.]/g, '-');
    const json = JSON.stringify(result, null, 1) + '\n';
    await writeFile(path.join(cfg.outDir, `reads-${stamp}.json`), json);
    await writeFile(path.join(cfg.outDir, 'reads-latest.json'), json);
    const md = `# defragd read benchmark\n\n${markdownOf(result)}\n`;
    await writeFile(path.join(cfg.outDir, 'reads-latest.md'), md);
    if (done) {
      console.log(md);
      log(`results in ${path.relative(process.cwd(), cfg.outDir) || '.'}/reads-${stamp}.json and reads-latest.md`);
    }
    return md;
  }

  // 3. The runs.
  for (let run = 1; run <= cfg.runs; run++) {
    const order: Variant[] = run % 2 === 1 ? [...VARIANTS] : [...VARIANTS].reverse();
    for (const [pos, variant] of order.entries()) {
      if (cluster.members[0]?.running()) await cluster.stopMember(member.name);
      if (mounted !== null) await rename(member.dataDir, dirOf(mounted));
      await rename(dirOf(variant), member.dataDir);
      mounted = variant;
      let residentBeforeStart: number | null = null;
      if (drop.ok) {
        spawnSync('sync');
        writeFileSync(DROP_CACHES, '1');
        residentBeforeStart = resident(dbFile);
      }
      const spawnedAt = process.hrtime.bigint();
      const started = cluster.startMember(member.name);
      await waitVersion(member.clientUrl, 300_000);
      const startMs = Number(process.hrtime.bigint() - spawnedAt) / 1e6;
      await started;
      const residentAfterStart = resident(dbFile);
      const openMs = await backendOpenMs(path.join(cluster.dir, `${member.name}.log`));
      ({ client, mc } = connect(member));
      await mc.status({ timeoutMs: 30_000 }); // connects; reads nothing from the backend
      const seed = 1000 + run;
      const record = async (cache: CacheState, facts: FileFacts, withEtcdctl: boolean): Promise<void> => {
        const etcdctl = { bin: etcdUnderTest().etcdctl, endpoint: member.clientUrl, snapshotFile: path.join(cluster!.dir, 'snapshot.db') };
        // The cold pass takes no snapshot: it would only repeat the warm one (the file is in memory by then).
        const result = await measurePass(mc, cfg, seed, { snapshot: cache === 'warm', ...(withEtcdctl && { etcdctl }) });
        passes.push({
          run,
          order: pos,
          variant,
          cache,
          facts,
          result,
          startMs: cache === 'cold' ? startMs : null,
          backendOpenMs: cache === 'cold' ? openMs : null,
          residentBeforeStart: cache === 'cold' ? residentBeforeStart : null,
          residentAfterStart: cache === 'cold' ? residentAfterStart : null,
        });
        const get = result.latencies.get;
        log(
          `run ${run} ${variant.padEnd(12)} ${cache}: get p50 ${(percentile(get, 50) ?? 0).toFixed(2)} ms, scan ${Math.round(result.latencies.scanKeysOnly[0] ?? 0)} ms, snapshot ${result.snapshotMs === null ? '–' : `${Math.round(result.snapshotMs)} ms`}`,
        );
      };
      if (drop.ok) {
        // Nothing may read the file before the cold pass: its facts (HashKV reads every page) come after.
        await record('cold', { dbSize: 0, dbSizeInUse: 0, revision: 0, compactRevision: 0, hashKV: 0 }, false);
      }
      const facts = await factsOf(mc);
      const want = variant === 'fragmented' ? fragFacts : defragFacts;
      if (!sameData(facts, want)) throw new Error(`run ${run}, ${variant}: data changed: ${JSON.stringify({ facts, want })}`);
      for (const p of passes) if (p.run === run && p.variant === variant && p.cache === 'cold') p.facts = facts;
      // etcdctl's scan and snapshot save only check this client's overhead: the first run is enough.
      await record('warm', facts, run === 1);
      log(
        `run ${run} ${variant}: start ${Math.round(startMs)} ms (backend open ${openMs ?? '?'} ms), db in page cache ${fmtBytes(residentBeforeStart)} before start, ${fmtBytes(residentAfterStart)} after; dbSize ${(facts.dbSize / MiB).toFixed(1)} MiB`,
      );
      release(client);
    }
    if (run < cfg.runs) await writeReport(false);
  }
  await cluster.stopMember(member.name);
  await writeReport(true);
}

function fmtBytes(b: number | null): string {
  return b === null ? '?' : `${(b / MiB).toFixed(1)} MiB`;
}

type Result = {
  startedAt: string;
  command: string;
  config: ReadsConfig;
  runsDone: number;
  dataDirFilesystem: string;
  coldCache: { ok: boolean; why: string };
  machine: { cpus: number; cpu: string; node: string; load1: number; memGiB: number; etcd: string };
  churn: ChurnResult;
  writeMs: number;
  defragMs: number;
  files: Record<Variant, FileFacts>;
  digest: LogicalDigest;
  passes: PassRecord[];
  durationSec: number;
};

function markdownOf(r: Result): string {
  const f = r.files.fragmented;
  const d = r.files.defragmented;
  const runs = r.runsDone;
  const cold = r.passes.filter((p) => p.cache === 'cold');
  const range = (xs: (number | null)[]): string => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? `${fmtBytes(Math.min(...v))}–${fmtBytes(Math.max(...v))}` : '?';
  };
  const out: string[] = [];
  out.push(`Command: \`${r.command}\` (${r.startedAt})`, '');
  out.push(
    `Files: fragmented dbSize ${fmtBytes(f.dbSize)} (in use ${fmtBytes(f.dbSizeInUse)}), defragmented ${fmtBytes(d.dbSize)} (in use ${fmtBytes(d.dbSizeInUse)}); both ${r.digest.count} keys at revision ${f.revision} (compacted at ${f.compactRevision}), equal HashKV (${f.hashKV}) and equal sha256 of a full range.`,
    '',
  );
  out.push('Warm page cache (the second pass after each start; everything had been read once):', '');
  out.push(table(summarise(r.passes, 'warm'), runs), '');
  if (r.coldCache.ok) {
    out.push('Cold page cache (page cache dropped, then etcd started and these reads run at once; no snapshot):', '');
    out.push(table(summarise(r.passes, 'cold'), runs), '');
  } else {
    out.push(`Cold page cache: not measured: ${r.coldCache.why}.`, '');
  }
  const c = r.config;
  out.push(
    `- Data: ${c.keys} keys of 1–8 KiB written, then ${c.churnRounds} churn rounds (each overwrites about half of the keys, deletes and re-creates a sixth, writes and deletes temporary keys beside half of them, shuffled): ${r.churn.puts} puts (${fmtBytes(r.churn.bytesWritten)}) and ${r.churn.deletes} deletes in ${r.churn.txns} transactions of up to 16, in ${(r.writeMs / 1000).toFixed(0)} s, then a physical compaction. The defragmented file is that file after one Defragment (${(r.defragMs / 1000).toFixed(1)} s); each run starts etcd on a copy of each.`,
    `- Reads: one at a time, ${c.serializable ? "serializable (served from the member's own backend; a linearizable read adds a ReadIndex round that has nothing to do with the file)" : 'linearizable'}, through defragd's own client (\`src/etcd\`, @grpc/grpc-js), timed from call to decoded answer; per pass ${c.gets} gets of random keys, ${c.range100} and ${c.range10k} aligned prefix ranges of 100 and 10 000 keys, ${c.scans} full keys-only scans, ${c.counts} \`count_only\`; the same keys for both files within a run. The etcdctl rows (first run only) are one \`etcdctl get --prefix --keys-only\` and one \`etcdctl snapshot save\` (Go client), a check on this client's overhead.`,
    `- Snapshot: Maintenance.Snapshot streamed to its end by defragd's client and counted, not written; etcdctl's row writes and fsyncs the file beside the data dir (then deletes it). Its size is the file's dbSize: bbolt copies every page, free or not.`,
    `- Runs: ${runs}${runs < r.config.runs ? ` of ${r.config.runs} (interrupted)` : ''}, the two files alternating which goes first; ratio = fragmented / defragmented within a run (above 1: the fragmented file is slower), its median and min–max over the runs; the value columns are medians over runs.`,
    `- Where the files live: the harness's temp dir under ${os.tmpdir()} (${r.dataDirFilesystem}), a disk, not a tmpfs: a tmpfs keeps every page in memory, so a dropped cache could not send a read to the disk.`,
  );
  if (r.coldCache.ok) {
    out.push(
      `- Cold: ${r.coldCache.why}; before each start the db file had ${range(cold.map((p) => p.residentBeforeStart))} in the page cache, after etcd answered ${range(cold.map((p) => p.residentAfterStart))} (fincore): etcd opens bbolt with MAP_POPULATE and rebuilds its index from the whole key bucket at start, so the file is read in before the first request. A cold cache costs start-up time, and the "cold" reads are served from memory.`,
    );
  }
  out.push(
    `- Machine: ${r.machine.cpus} CPUs (${r.machine.cpu.trim()}), ${r.machine.memGiB.toFixed(0)} GiB, Node ${r.machine.node}, etcd ${r.machine.etcd}, 1 member on loopback, shared with other work (1-minute load average at the start: ${r.machine.load1.toFixed(1)}); the benchmark took ${(r.durationSec / 60).toFixed(1)} min.`,
  );
  return out.join('\n');
}

main()
  .then(async () => {
    await cleanup();
    process.exit(0);
  })
  .catch(async (err: unknown) => {
    console.error(`bench-reads: ${(err as Error).message}`);
    await cleanup();
    process.exit(1);
  });
