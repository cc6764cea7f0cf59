/**
 * Cluster observation: turns a handful of seed endpoints into a
 * ClusterSnapshot. Every member is asked concurrently for Status, a health
 * read and its quota; alarms are cluster-wide and read once. A member that
 * does not answer still gets a row, with the error, so callers see it.
 *
 * Every answer's header names its cluster: endpoints of two clusters are
 * refused (MixedClustersError) rather than merged, and one member reached
 * under two names (127.0.0.1 and localhost) is shown once.
 */
import { agreedLeader } from '../domain/leader.js';
import { statfs } from 'node:fs/promises';
import type { ClusterAlarm, ClusterSnapshot, DiskView, MemberSnapshot, MemberStatus, QuotaSource, UserView } from '../domain/snapshot.js';
import { DEFAULT_QUOTA_BYTES } from '../domain/snapshot.js';
import { AbortedError, ConnectionError, DefragdError, etcdReason, EtcdError, MixedClustersError, messageOf } from '../domain/errors.js';
import type { EtcdClient, MemberClient, MemberEntry, ResponseHeader, StatusReply } from '../etcd/client.js';
import { parseEndpoint } from '../etcd/endpoint.js';
import { fetchGauges, METRIC_QUOTA, METRIC_STOP_GRPC_ON_DEFRAG } from '../etcd/metrics.js';

export interface ObserveOptions {
  /** Discover every member from MemberList (etcdctl --cluster); otherwise only the given endpoints. */
  cluster?: boolean | undefined;
  /** Quota to assume when the member tells none (etcd < 3.6 and /metrics unreachable); default 2 GiB. */
  quotaBytes?: number | null | undefined;
  /** Read the quota from /metrics when Status lacks it (default true). */
  metrics?: boolean | undefined;
  /**
   * More gauges to read from each answering member's /metrics in the same read
   * as its quota (one request per member per observation, not one per
   * consumer): each member's endpoint → what was found (null: /metrics did not
   * answer) is put into `found`. Read even when Status tells the quota.
   */
  gauges?:
    | {
        names: readonly string[];
        found: Map<string, ReadonlyMap<string, number> | null>;
        /** Which answering members to read them from (its Status in hand); default every one. */
        only?: ((memberId: string, status: StatusReply) => boolean) | undefined;
      }
    | undefined;
  /**
   * Quotas already read from members' /metrics (member ID → bytes), used
   * instead of reading again for members whose Status tells none: a quota
   * changes only when the member restarts with another flag, so a caller that
   * observes often reads it now and then, not every time.
   */
  knownQuotas?: ReadonlyMap<string, number> | undefined;
  /**
   * Read each answering member's StopGRPCServiceOnDefrag gate from its /metrics (`stopGrpcServiceOnDefrag`),
   * in the same request as its quota when that is read; default false (a /metrics read per member).
   */
  features?: boolean | undefined;
  /** Read the alarm list (default true); false leaves `alarms` empty, for cheap polling. */
  alarms?: boolean | undefined;
  /** Deadline of each call; the client's command timeout when absent. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Data dirs of members whose disk this process can see (member name or hex ID → path): their free
   * space is read, for the free-disk check a defrag needs (it writes a copy of the db beside it).
   */
  dataDirs?: Readonly<Record<string, string>> | undefined;
  /** With auth, read the user's own roles (one request), so a plan can tell a missing root role before anything is touched. */
  userRoles?: boolean | undefined;
  /** Clock, for tests. */
  now?: () => Date;
}

/** The key a health read asks for; it need not exist (etcdctl reads "health" too). */
const HEALTH_KEY = 'health';

interface Target {
  endpoint: string;
  info: MemberEntry | null;
}

/**
 * Observes the cluster once.
 *
 * @example
 * const client = connect({ endpoints: ['127.0.0.1:2379'] });
 * const snap = await observeCluster(client, { cluster: true });
 * for (const m of snap.members) console.log(m.name, m.status?.dbSize);
 */
export async function observeCluster(client: EtcdClient, opts: ObserveOptions = {}): Promise<ClusterSnapshot> {
  const call = { timeoutMs: opts.timeoutMs, signal: opts.signal };
  const seeds = client.seeds;
  const listed = await firstMemberList(client, seeds, call, opts.cluster === true);
  const list = listed.reply;
  const targets = opts.cluster ? clusterTargets(list?.members ?? null, seeds, client) : seeds.map((endpoint) => ({ endpoint, info: null }));
  const others = opts.cluster && list ? unlistedSeeds(seeds, list.members, listed, client) : [];

  const [alarms, observed, otherIds, auth] = await Promise.all([
    opts.alarms === false ? Promise.resolve({ ok: true as const, value: [] }) : readAlarms(client, targets, list?.members ?? [], call),
    Promise.all(targets.map((t) => observeMember(client, t, list?.members ?? [], opts))),
    Promise.all(others.map((endpoint) => clusterIdOf(client, endpoint, call))),
    opts.userRoles ? readUserRoles(client, listed.seed ?? seeds[0], call) : Promise.resolve(undefined),
  ]);
  if (opts.signal?.aborted) throw new AbortedError('observation aborted');

  const answers: ClusterAnswer[] = [
    ...(listed.seed !== null && list ? [{ endpoint: listed.seed, clusterId: list.header.clusterId }] : []),
    ...observed.map((o, i) => ({ endpoint: targets[i]?.endpoint ?? '', clusterId: o.clusterId })),
    ...others.map((endpoint, i) => ({ endpoint, clusterId: otherIds[i] ?? null })),
  ];
  const clusterId = checkOneCluster(answers, seeds);
  const members = firstPerMember(observed.map((o) => o.member));

  const clusterAlarms = alarms.ok ? alarms.value : [];
  for (const m of members) m.alarms = clusterAlarms.filter((a) => a.memberId === m.memberId).map((a) => a.alarm);
  if (opts.dataDirs) {
    const dirs = opts.dataDirs;
    await Promise.all(
      members.map(async (m) => {
        const path = (m.name && dirs[m.name]) || dirs[m.memberId];
        if (path !== undefined) m.disk = await readDisk(path);
      }),
    );
  }
  return {
    observedAt: (opts.now?.() ?? new Date()).toISOString(),
    clusterId,
    leaderId: agreedLeader(members),
    members,
    alarms: clusterAlarms,
    alarmsError: alarms.ok ? null : messageOf(alarms.error),
    ...(auth !== undefined && { auth }),
  };
}

/** Free bytes (for unprivileged writers, as etcd runs) on the filesystem holding `path`. */
async function readDisk(path: string): Promise<DiskView> {
  try {
    const st = await statfs(path);
    return { path, freeBytes: st.bavail * st.bsize, error: null };
  } catch (err) {
    return { path, freeBytes: null, error: messageOf(err) };
  }
}

/** The configured user's own roles, through one member; null without auth. */
async function readUserRoles(client: EtcdClient, endpoint: string | undefined, call: Call): Promise<UserView | null> {
  const auth = client.context.auth;
  if (auth === null || endpoint === undefined) return null;
  try {
    return { user: auth.user, roles: (await client.member(endpoint).userGet(auth.user, call)).roles, error: null };
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    return { user: auth.user, roles: null, error: messageOf(err) };
  }
}

type Call = { timeoutMs?: number | undefined; signal?: AbortSignal | undefined };

interface Listed {
  reply: { header: ResponseHeader; members: MemberEntry[] } | null;
  /** The seed that answered MemberList. */
  seed: string | null;
  /** Seeds that were asked before it and did not answer at all (refused, unreachable, deadline). */
  silent: Set<string>;
}

/** MemberList from the first seed that answers; with --cluster a total failure is an error. */
async function firstMemberList(client: EtcdClient, seeds: string[], call: Call, required: boolean): Promise<Listed> {
  const errors: DefragdError[] = [];
  const silent = new Set<string>();
  for (const seed of seeds) {
    try {
      return { reply: await client.member(seed).memberList(call), seed, silent };
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      if (!(err instanceof DefragdError)) throw err;
      errors.push(err);
      if (!(err instanceof EtcdError)) silent.add(seed);
      // Bad credentials or a refused request are the same on every seed: say so now.
      if (etcdReason(err) === 'auth-failed' || etcdReason(err) === 'permission-denied') break;
    }
  }
  if (!required) return { reply: null, seed: null, silent };
  const first = errors[0];
  throw new ConnectionError(seeds.join(','), `cannot list the cluster's members: ${first?.message ?? 'no endpoint answered'}`, {
    cause: first,
  });
}

/**
 * Seeds that are none of the listed members' client URLs and whose cluster is
 * not known yet: they may belong to another cluster, which only their own
 * answer tells. A seed that already failed to answer is not asked again.
 */
function unlistedSeeds(seeds: string[], members: MemberEntry[], listed: Listed, client: EtcdClient): string[] {
  const listedUrls = new Set(members.flatMap((m) => m.clientUrls.map((u) => parseEndpoint(u, client.context.tlsByDefault).url)));
  return seeds.filter((s) => !listedUrls.has(s) && s !== listed.seed && !listed.silent.has(s));
}

/** The cluster ID one endpoint answers Status with; null when it does not answer. */
async function clusterIdOf(client: EtcdClient, endpoint: string, call: Call): Promise<string | null> {
  const status = await settle(client.member(endpoint).status(call));
  if (status.ok) return status.value.header.clusterId;
  if (status.error instanceof AbortedError) throw status.error;
  return null;
}

interface ClusterAnswer {
  endpoint: string;
  /** Null when the endpoint did not answer. */
  clusterId: string | null;
}

/**
 * The one cluster ID every answer agrees on (null when none answered);
 * throws MixedClustersError naming each endpoint's cluster when they differ.
 * An endpoint that did not answer is no evidence of another cluster.
 */
function checkOneCluster(answers: ClusterAnswer[], seeds: string[]): string | null {
  const known = new Map<string, string>();
  for (const a of answers) {
    // etcd fills every header; an absent one (cluster ID 0) identifies nothing.
    if (a.endpoint === '' || a.clusterId === null || a.clusterId === '0' || known.has(a.endpoint)) continue;
    known.set(a.endpoint, a.clusterId);
  }
  const ids = [...new Set(known.values())];
  if (ids.length <= 1) return ids[0] ?? null;

  // Name the endpoints the operator gave, in their order; a discovered member only when it is the one
  // answering for another cluster (its advertised URL reaches a different cluster's member).
  const given = seeds.filter((e) => known.has(e)).map((endpoint) => ({ endpoint, clusterId: known.get(endpoint) as string }));
  const givenIds = new Set(given.map((e) => e.clusterId));
  const discovered = [...known]
    .filter(([e, id]) => !seeds.includes(e) && !givenIds.has(id))
    .map(([endpoint, clusterId]) => ({ endpoint, clusterId }));
  const entries = [...given, ...discovered];
  const byCluster = new Map<string, string[]>();
  for (const e of entries) byCluster.set(e.clusterId, [...(byCluster.get(e.clusterId) ?? []), e.endpoint]);
  const groups = [...byCluster].map(([id, eps]) => `${eps.join(', ')} ${eps.length === 1 ? 'is' : 'are'} cluster ${id}`);
  const subject = discovered.length === 0 ? '--endpoints name' : 'the endpoints reach';
  throw new MixedClustersError(
    `${subject} members of more than one cluster: ${groups.join('; ')}; give the endpoints of one cluster`,
    entries,
  );
}

/**
 * One row per member: the same member reached under two endpoints (e.g.
 * 127.0.0.1 and localhost) keeps the first one given. Rows without a member
 * ID (no answer) cannot be matched and are all kept.
 */
function firstPerMember(members: MemberSnapshot[]): MemberSnapshot[] {
  const seen = new Set<string>();
  return members.filter((m) => {
    if (m.memberId === '') return true;
    if (seen.has(m.memberId)) return false;
    seen.add(m.memberId);
    return true;
  });
}

function clusterTargets(members: MemberEntry[] | null, seeds: string[], client: EtcdClient): Target[] {
  if (!members) return seeds.map((endpoint) => ({ endpoint, info: null }));
  const seen = new Set<string>();
  const out: Target[] = [];
  for (const m of members) {
    const urls = m.clientUrls.map((u) => parseEndpoint(u, client.context.tlsByDefault).url);
    // Prefer a URL the operator gave us (it is known to be reachable from here).
    const url = urls.find((u) => seeds.includes(u)) ?? urls[0];
    if (url === undefined) {
      out.push({ endpoint: '', info: m });
      continue;
    }
    if (seen.has(url)) continue;
    seen.add(url);
    out.push({ endpoint: url, info: m });
  }
  return out;
}

/** The cluster's alarms from the first voter that answers, or why none did. */
async function readAlarms(client: EtcdClient, targets: Target[], members: MemberEntry[], call: Call): Promise<Settled<ClusterAlarm[]>> {
  // Alarm requests go through raft; learners refuse them, so ask voters first.
  const learnerIds = new Set(members.filter((m) => m.isLearner).map((m) => m.memberId));
  const ordered = [
    ...targets.filter((t) => t.endpoint && !(t.info && learnerIds.has(t.info.memberId))),
    ...targets.filter((t) => t.endpoint && t.info && learnerIds.has(t.info.memberId)),
  ];
  let last: unknown = new Error('no member to ask');
  for (const t of ordered) {
    try {
      return { ok: true, value: await client.member(t.endpoint).alarmList(call) };
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      last = err;
    }
  }
  return { ok: false, error: last };
}

async function observeMember(
  client: EtcdClient,
  target: Target,
  members: MemberEntry[],
  opts: ObserveOptions,
): Promise<{ member: MemberSnapshot; clusterId: string | null }> {
  const info = target.info;
  const base: MemberSnapshot = {
    memberId: info?.memberId ?? '',
    name: info?.name ?? '',
    peerUrls: info?.peerUrls ?? [],
    clientUrls: info?.clientUrls ?? [],
    isLearner: info?.isLearner ?? false,
    endpoint: target.endpoint,
    reachable: false,
    healthy: false,
    alarms: [],
    status: null,
    error: null,
  };
  if (target.endpoint === '') return { member: { ...base, error: 'member has not started (no client URLs)' }, clusterId: null };

  const mc = client.member(target.endpoint);
  const call = { timeoutMs: opts.timeoutMs, signal: opts.signal };
  const [status, health] = await Promise.all([settle(mc.status(call)), settle(healthRead(mc, call))]);
  if (!status.ok) {
    if (status.error instanceof AbortedError) throw status.error;
    return { member: { ...base, error: messageOf(status.error) }, clusterId: null };
  }
  const s = status.value;
  // Only members that do not report their quota (etcd < 3.6) are scraped, and only once they have answered.
  const knownQuota = s.dbSizeQuota === null ? (opts.knownQuotas?.get(s.header.memberId) ?? null) : null;
  const wantQuota = s.dbSizeQuota === null && opts.metrics !== false && knownQuota === null;
  const wantGauges = opts.gauges !== undefined && (opts.gauges.only?.(s.header.memberId, s) ?? true);
  const wantFeatures = opts.features === true;
  let metricsQuota: number | null = knownQuota;
  let stopGrpc: boolean | null = null;
  if (wantQuota || wantGauges || wantFeatures) {
    const names = [
      ...(wantQuota ? [METRIC_QUOTA] : []),
      ...(wantGauges ? (opts.gauges?.names ?? []) : []),
      ...(wantFeatures ? [METRIC_STOP_GRPC_ON_DEFRAG] : []),
    ];
    const gauges = await fetchGauges(target.endpoint, names, client.context.httpTls, call);
    if (wantQuota) metricsQuota = gauges?.get(METRIC_QUOTA) ?? null;
    if (wantGauges) opts.gauges?.found.set(target.endpoint, gauges);
    const gate = gauges?.get(METRIC_STOP_GRPC_ON_DEFRAG);
    stopGrpc = gate === undefined ? null : gate === 1;
  }
  // Without --cluster, identify the member from the Status header.
  const known = info ?? members.find((m) => m.memberId === s.header.memberId) ?? null;
  const isLearner = known?.isLearner ?? s.isLearner;
  let healthy = health.ok;
  let error: string | null = health.ok ? null : `unhealthy: ${messageOf(health.error)}`;
  if (!health.ok && isLearner && etcdReason(health.error) === 'learner') {
    // Learners refuse linearizable reads by design; answering Status is their health.
    healthy = true;
    error = null;
  }
  const member: MemberSnapshot = {
    ...base,
    memberId: s.header.memberId,
    name: known?.name ?? base.name,
    peerUrls: known?.peerUrls ?? base.peerUrls,
    clientUrls: known?.clientUrls ?? base.clientUrls,
    isLearner,
    reachable: true,
    healthy,
    status: toMemberStatus(s, metricsQuota, opts.quotaBytes ?? null, isLearner),
    error,
    ...(wantFeatures && { stopGrpcServiceOnDefrag: stopGrpc }),
  };
  return { member, clusterId: s.header.clusterId };
}

async function healthRead(mc: MemberClient, call: Call): Promise<void> {
  try {
    await mc.range(HEALTH_KEY, { ...call, limit: 1, keysOnly: true });
  } catch (err) {
    // A user without read permission on "health" still proves the member serves linearizable reads.
    if (etcdReason(err) === 'permission-denied') return;
    throw err;
  }
}

/** Notes the quotas a snapshot read from members' /metrics (member ID → bytes), as `knownQuotas` for the observations after it. */
export function rememberQuotas(quotas: Map<string, number>, snapshot: ClusterSnapshot): void {
  for (const m of snapshot.members) if (m.status?.quotaSource === 'metrics') quotas.set(m.memberId, m.status.quota);
}

/** Derives sizes, fragmentation and quota for one Status reply. Pure. */
export function toMemberStatus(
  s: StatusReply,
  metricsQuota: number | null,
  flagQuota: number | null,
  isLearner = s.isLearner,
): MemberStatus {
  let quota: number;
  let quotaSource: QuotaSource;
  if (s.dbSizeQuota !== null) {
    quota = s.dbSizeQuota;
    quotaSource = 'status';
  } else if (metricsQuota !== null && metricsQuota > 0) {
    quota = metricsQuota;
    quotaSource = 'metrics';
  } else if (flagQuota !== null) {
    quota = flagQuota;
    quotaSource = 'flag';
  } else {
    quota = DEFAULT_QUOTA_BYTES;
    quotaSource = 'default';
  }
  const dbSizeFree = Math.max(0, s.dbSize - s.dbSizeInUse);
  return {
    version: s.version,
    storageVersion: s.storageVersion,
    dbSize: s.dbSize,
    dbSizeInUse: s.dbSizeInUse,
    dbSizeFree,
    fragmentation: s.dbSize > 0 ? dbSizeFree / s.dbSize : 0,
    quota,
    quotaSource,
    quotaUsage: quota > 0 ? s.dbSize / quota : 0,
    revision: s.header.revision,
    raftTerm: s.raftTerm,
    raftIndex: s.raftIndex,
    raftAppliedIndex: s.raftAppliedIndex,
    leaderId: s.leader,
    isLeader: s.leader !== null && s.leader === s.header.memberId,
    isLearner,
    errors: s.errors,
  };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}
