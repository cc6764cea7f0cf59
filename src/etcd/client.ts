/**
 * defragd's etcd wire client: one gRPC channel per member endpoint, every call
 * with its own deadline, and no automatic retries. A call goes to exactly the
 * member it is made on, which per-member maintenance (Status, Defragment,
 * MoveLeader) requires; the only repeat is one re-authentication when etcd
 * says the token is invalid, which it says before doing anything.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { AbortedError, ConnectionError, etcdReason, UsageError } from '../domain/errors.js';
import { type Endpoint, parseEndpoint } from './endpoint.js';
import { isInvalidToken, mapGrpcError } from './errors.js';
import { formatDuration } from '../domain/format.js';
import type { HttpTls } from './metrics.js';
import { toDecimalId, toHexId } from './ids.js';
import {
  type AuthOptions,
  type CallOptions,
  type ConnectionOptions,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_DIAL_TIMEOUT_MS,
  type TlsOptions,
} from './options.js';
import { loadServices, type ServiceCtor, type ServiceName } from './proto.js';

export interface ResponseHeader {
  clusterId: string;
  memberId: string;
  revision: number;
  raftTerm: number;
}

export interface StatusReply {
  header: ResponseHeader;
  version: string;
  dbSize: number;
  dbSizeInUse: number;
  /** Hex leader ID; null when the member knows no leader (0 on the wire). */
  leader: string | null;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  errors: string[];
  isLearner: boolean;
  /** etcd 3.6+; null when absent (empty on the wire). */
  storageVersion: string | null;
  /** etcd 3.6+; null when absent (0 on the wire). */
  dbSizeQuota: number | null;
}

export interface MemberEntry {
  memberId: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface AlarmEntry {
  memberId: string;
  alarm: string;
}

export interface KeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: string;
}

interface RawHeader {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}

const header = (h: RawHeader | null | undefined): ResponseHeader => ({
  clusterId: h ? toHexId(h.cluster_id) : '0',
  memberId: h ? toHexId(h.member_id) : '0',
  revision: h ? Number(h.revision) : 0,
  raftTerm: h ? Number(h.raft_term) : 0,
});

type Services = Readonly<Record<ServiceName, ServiceCtor>>;

export interface ClientContext {
  services: Services;
  /** For https endpoints (system roots unless --cacert); built on first use when no TLS is configured. */
  readonly credentials: grpc.ChannelCredentials;
  /** The same TLS material for /metrics, read from disk once. */
  httpTls: HttpTls;
  channelOptions: grpc.ChannelOptions;
  auth: AuthOptions | null;
  dialTimeoutMs: number;
  commandTimeoutMs: number;
  tlsByDefault: boolean;
}

/** Builds what every member client of one cluster shares; reads cert files once. */
export function createClientContext(options: ConnectionOptions): ClientContext {
  const tls = options.tls ?? null;
  const anyHttps = options.endpoints.some((e) => /^https:\/\//i.test(e.trim()));
  const wantsTls = tls !== null && (tls.caFile !== undefined || tls.certFile !== undefined || tls.insecureSkipVerify === true || anyHttps);
  const httpTls = readTls(tls ?? {});
  // Building TLS credentials loads every system root CA (tens of ms and a few MB per client): only
  // when TLS is configured or an endpoint is https now, else when a discovered https member first needs them.
  let credentials = wantsTls || anyHttps ? sslCredentials(httpTls) : null;
  const channelOptions: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 2_000,
    'grpc.enable_retries': 0,
    // channelz (gRPC's introspection service) keeps per-call counters and traces; nothing here serves it.
    'grpc.enable_channelz': 0,
  };
  if (tls?.serverName) channelOptions['grpc.ssl_target_name_override'] = tls.serverName;
  return {
    services: loadServices(),
    get credentials() {
      credentials ??= sslCredentials(httpTls);
      return credentials;
    },
    httpTls,
    channelOptions,
    auth: options.auth ?? null,
    dialTimeoutMs: options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
    commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    tlsByDefault: wantsTls,
  };
}

function readPem(path: string | undefined, flag: string): Buffer | null {
  if (path === undefined || path === '') return null;
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
}

/** Reads the TLS files once; a missing file or a lone --cert/--key is a usage error. */
function readTls(tls: TlsOptions): HttpTls {
  const ca = readPem(tls.caFile, '--cacert');
  const cert = readPem(tls.certFile, '--cert');
  const key = readPem(tls.keyFile, '--key');
  if ((cert === null) !== (key === null)) throw new UsageError('--cert and --key must be given together');
  return {
    ca: ca ?? undefined,
    cert: cert ?? undefined,
    key: key ?? undefined,
    rejectUnauthorized: !tls.insecureSkipVerify,
    serverName: tls.serverName,
  };
}

function sslCredentials(tls: HttpTls): grpc.ChannelCredentials {
  const verify: grpc.VerifyOptions = tls.rejectUnauthorized ? {} : { rejectUnauthorized: false, checkServerIdentity: () => undefined };
  try {
    return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, verify);
  } catch (err) {
    throw new UsageError(`invalid TLS files: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A client bound to one member. Create through EtcdClient.member() so that
 * channels are shared and closed together.
 */
export class MemberClient {
  readonly endpoint: Endpoint;
  private readonly ctx: ClientContext;
  private readonly channel: grpc.Channel;
  private readonly stubs = new Map<ServiceName, grpc.Client>();
  private token: string | null = null;
  private authenticating: Promise<string> | null = null;

  constructor(endpoint: string | Endpoint, ctx: ClientContext) {
    this.endpoint = typeof endpoint === 'string' ? parseEndpoint(endpoint, ctx.tlsByDefault) : endpoint;
    this.ctx = ctx;
    const creds = this.endpoint.secure ? ctx.credentials : grpc.credentials.createInsecure();
    this.channel = new grpc.Channel(this.endpoint.target, creds, ctx.channelOptions);
  }

  get url(): string {
    return this.endpoint.url;
  }

  private stub(service: ServiceName): grpc.Client {
    let s = this.stubs.get(service);
    if (!s) {
      const Ctor = this.ctx.services[service];
      s = new Ctor(this.endpoint.target, grpc.credentials.createInsecure(), { channelOverride: this.channel });
      this.stubs.set(service, s);
    }
    return s;
  }

  /** One unary call with a deadline and abort; re-authenticates once on "invalid auth token". */
  private async call<T>(service: ServiceName, method: string, request: object, opts: CallOptions = {}, authRetry = true): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.ctx.commandTimeoutMs;
    if (opts.signal?.aborted) throw new AbortedError(`${this.url}: ${method} not sent: aborted`);
    // Authenticate itself goes without a token; every other call (UserGet too) carries it.
    const metadata = await this.prepare(opts, method !== 'Authenticate');
    const deadlineAt = Date.now() + timeoutMs;
    try {
      return await this.rawCall<T>(service, method, request, metadata, deadlineAt, opts.signal);
    } catch (err) {
      const mapped = mapGrpcError(this.url, method, err, timeoutMs, {
        abortedByUs: opts.signal?.aborted === true,
        deadlinePassed: Date.now() >= deadlineAt,
      });
      if (authRetry && this.ctx.auth && isInvalidToken(mapped)) {
        this.token = null;
        return this.call<T>(service, method, request, opts, false);
      }
      throw mapped;
    }
  }

  /** Before any call or stream: the connection within the dial timeout, and the auth token when there is one. */
  private async prepare(opts: CallOptions, withToken = true): Promise<grpc.Metadata> {
    if (this.channel.getConnectivityState(false) !== grpc.connectivityState.READY) await this.connect({ signal: opts.signal });
    const metadata = new grpc.Metadata();
    if (this.ctx.auth && withToken) {
      const token = await this.tokenOrNone(opts);
      if (token !== null) metadata.set('token', token);
    }
    return metadata;
  }

  private rawCall<T>(
    service: ServiceName,
    method: string,
    request: object,
    metadata: grpc.Metadata,
    deadlineAt: number,
    signal?: AbortSignal,
  ): Promise<T> {
    const stub = this.stub(service) as unknown as Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>;
    const fn = stub[method];
    if (typeof fn !== 'function') throw new Error(`no method ${service}.${method} in proto`);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = fn.call(stub, request, metadata, { deadline: deadlineAt }, (err: grpc.ServiceError | null, res: T) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      // Aborted while the connection or the auth token was being prepared: the event has passed already.
      if (signal?.aborted) call.cancel();
    });
  }

  /**
   * The auth token, or null on a learner: learners refuse Authenticate, and
   * the only calls they serve (Status, serializable reads) need no token.
   */
  private async tokenOrNone(opts: CallOptions): Promise<string | null> {
    try {
      return await this.getToken(opts);
    } catch (err) {
      if (etcdReason(err) === 'learner') return null;
      throw err;
    }
  }

  private async getToken(opts: CallOptions): Promise<string> {
    if (this.token) return this.token;
    if (!this.authenticating) {
      const auth = this.ctx.auth as AuthOptions;
      this.authenticating = this.call<{ token: string }>(
        'Auth',
        'Authenticate',
        { name: auth.user, password: auth.password },
        { timeoutMs: opts.timeoutMs ?? this.ctx.commandTimeoutMs, signal: opts.signal },
      )
        .then((r) => {
          this.token = r.token;
          return r.token;
        })
        .finally(() => {
          this.authenticating = null;
        });
    }
    return this.authenticating;
  }

  /**
   * Waits for the connection, within the dial timeout (etcdctl's --dial-timeout).
   * A connection that fails outright (refused, TLS) returns at once and lets
   * the call that follows report why; only one that hangs (a black-holed
   * address) becomes a ConnectionError here.
   */
  async connect(opts: CallOptions = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? this.ctx.dialTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        const state = this.channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY || state === grpc.connectivityState.TRANSIENT_FAILURE) return resolve();
        if (opts.signal?.aborted) return reject(new AbortedError(`${this.url}: connect aborted`));
        if (Date.now() >= deadline)
          return reject(
            new ConnectionError(this.url, `${this.url}: could not connect within ${formatDuration(timeoutMs)} (--dial-timeout)`),
          );
        this.channel.watchConnectivityState(state, deadline, () => check());
      };
      check();
    });
  }

  async status(opts?: CallOptions): Promise<StatusReply> {
    const r = await this.call<{
      header: RawHeader;
      version: string;
      dbSize: string;
      leader: string;
      raftIndex: string;
      raftTerm: string;
      raftAppliedIndex: string;
      errors: string[];
      dbSizeInUse: string;
      isLearner: boolean;
      storageVersion: string;
      dbSizeQuota: string;
    }>('Maintenance', 'Status', {}, opts);
    const quota = Number(r.dbSizeQuota);
    return {
      header: header(r.header),
      version: r.version,
      dbSize: Number(r.dbSize),
      dbSizeInUse: Number(r.dbSizeInUse),
      leader: r.leader === '0' ? null : toHexId(r.leader),
      raftIndex: Number(r.raftIndex),
      raftTerm: Number(r.raftTerm),
      raftAppliedIndex: Number(r.raftAppliedIndex),
      errors: r.errors ?? [],
      isLearner: r.isLearner,
      storageVersion: r.storageVersion === '' ? null : r.storageVersion,
      dbSizeQuota: quota > 0 ? quota : null,
    };
  }

  /**
   * Defragments this member. Never retried: when the deadline passes, etcd
   * goes on defragmenting, so the caller must wait for the member instead.
   */
  async defragment(opts: CallOptions & { timeoutMs: number }): Promise<ResponseHeader> {
    const r = await this.call<{ header: RawHeader }>('Maintenance', 'Defragment', {}, opts);
    return header(r.header);
  }

  /**
   * The roles of a user. etcd lets any user read its own (other users need the
   * root role), so this is how a run learns, before touching anything, whether
   * it may Defragment (which needs root).
   */
  async userGet(name: string, opts?: CallOptions): Promise<{ roles: string[] }> {
    const r = await this.call<{ roles: string[] }>('Auth', 'UserGet', { name }, opts);
    return { roles: r.roles ?? [] };
  }

  async alarmList(opts?: CallOptions): Promise<AlarmEntry[]> {
    const r = await this.call<{ alarms: { memberID: string; alarm: string }[] }>(
      'Maintenance',
      'Alarm',
      { action: 'GET', memberID: '0', alarm: 'NONE' },
      opts,
    );
    return r.alarms.map((a) => ({ memberId: toHexId(a.memberID), alarm: a.alarm }));
  }

  /** Deactivates one alarm for one member (memberId hex). Returns the alarms still active. */
  async alarmDisarm(memberId: string, alarm: string, opts?: CallOptions): Promise<AlarmEntry[]> {
    const r = await this.call<{ alarms: { memberID: string; alarm: string }[] }>(
      'Maintenance',
      'Alarm',
      { action: 'DEACTIVATE', memberID: toDecimalId(memberId), alarm },
      opts,
    );
    return r.alarms.map((a) => ({ memberId: toHexId(a.memberID), alarm: a.alarm }));
  }

  /** Asks this member (which must be the leader) to hand leadership to targetId (hex). */
  async moveLeader(targetId: string, opts?: CallOptions): Promise<ResponseHeader> {
    const r = await this.call<{ header: RawHeader }>('Maintenance', 'MoveLeader', { targetID: toDecimalId(targetId) }, opts);
    return header(r.header);
  }

  async hashKV(revision: number, opts?: CallOptions): Promise<{ header: ResponseHeader; hash: number; compactRevision: number }> {
    const r = await this.call<{ header: RawHeader; hash: number; compact_revision: string }>(
      'Maintenance',
      'HashKV',
      { revision: String(revision) },
      opts,
    );
    return { header: header(r.header), hash: r.hash, compactRevision: Number(r.compact_revision) };
  }

  async memberList(opts?: CallOptions): Promise<{ header: ResponseHeader; members: MemberEntry[] }> {
    const r = await this.call<{
      header: RawHeader;
      members: { ID: string; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean }[];
    }>('Cluster', 'MemberList', { linearizable: true }, opts);
    return {
      header: header(r.header),
      members: r.members.map((m) => ({
        memberId: toHexId(m.ID),
        name: m.name,
        peerUrls: m.peerURLs,
        clientUrls: m.clientURLs,
        isLearner: m.isLearner,
      })),
    };
  }

  async range(
    key: string | Buffer,
    opts: CallOptions & {
      rangeEnd?: string | Buffer;
      limit?: number;
      serializable?: boolean;
      countOnly?: boolean;
      keysOnly?: boolean;
      revision?: number;
    } = {},
  ): Promise<{ header: ResponseHeader; kvs: KeyValue[]; count: number; more: boolean }> {
    // Fields are left out rather than sent empty: protobufjs encodes an empty bytes
    // field, and etcd reads a present-but-empty range_end as "to the end of the keyspace".
    const r = await this.call<{ header: RawHeader; kvs: RawKv[]; count: string; more: boolean }>(
      'KV',
      'Range',
      {
        key: Buffer.from(key),
        ...(opts.rangeEnd !== undefined && { range_end: Buffer.from(opts.rangeEnd) }),
        ...(opts.limit && { limit: String(opts.limit) }),
        ...(opts.revision && { revision: String(opts.revision) }),
        ...(opts.serializable && { serializable: true }),
        ...(opts.countOnly && { count_only: true }),
        ...(opts.keysOnly && { keys_only: true }),
      },
      opts,
    );
    return { header: header(r.header), kvs: r.kvs.map(kv), count: Number(r.count), more: r.more };
  }

  async put(key: string | Buffer, value: string | Buffer, opts: CallOptions & { lease?: string } = {}): Promise<ResponseHeader> {
    const r = await this.call<{ header: RawHeader }>(
      'KV',
      'Put',
      { key: Buffer.from(key), value: Buffer.from(value), ...(opts.lease && { lease: opts.lease }) },
      opts,
    );
    return header(r.header);
  }

  async deleteRange(
    key: string | Buffer,
    opts: CallOptions & { rangeEnd?: string | Buffer } = {},
  ): Promise<{ header: ResponseHeader; deleted: number }> {
    const r = await this.call<{ header: RawHeader; deleted: string }>(
      'KV',
      'DeleteRange',
      {
        key: Buffer.from(key),
        ...(opts.rangeEnd !== undefined && { range_end: Buffer.from(opts.rangeEnd) }),
      },
      opts,
    );
    return { header: header(r.header), deleted: Number(r.deleted) };
  }

  /**
   * A transaction in etcd's wire shape (snake_case fields, 64-bit values as
   * strings). Used by the cluster lock; kept raw to avoid a second schema.
   */
  async txn(
    request: { compare: object[]; success: object[]; failure: object[] },
    opts?: CallOptions,
  ): Promise<{ header: ResponseHeader; succeeded: boolean; responses: unknown[] }> {
    const r = await this.call<{ header: RawHeader; succeeded: boolean; responses: unknown[] }>('KV', 'Txn', request, opts);
    return { header: header(r.header), succeeded: r.succeeded, responses: r.responses };
  }

  /** Compacts the key-value history up to revision; physical waits until it is applied on disk. */
  async compact(revision: number, opts: CallOptions & { physical?: boolean } = {}): Promise<ResponseHeader> {
    const r = await this.call<{ header: RawHeader }>(
      'KV',
      'Compact',
      { revision: String(revision), physical: opts.physical ?? true },
      opts,
    );
    return header(r.header);
  }

  /**
   * Streams this member's backend snapshot (for a backup before maintenance).
   * Needs the root role when auth is on. The deadline covers the whole stream.
   *
   * @example
   * const out = createWriteStream('etcd.db');
   * for await (const chunk of client.member(ep).snapshot({ timeoutMs: 600_000 })) out.write(chunk);
   */
  async *snapshot(opts: CallOptions = {}): AsyncGenerator<Buffer, { bytes: number }> {
    const timeoutMs = opts.timeoutMs ?? this.ctx.commandTimeoutMs;
    const metadata = await this.prepare(opts);
    const stub = this.stub('Maintenance') as unknown as {
      Snapshot: (req: object, md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<{ blob: Buffer }>;
    };
    const stream = stub.Snapshot({}, metadata, { deadline: Date.now() + timeoutMs });
    const onAbort = () => stream.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let bytes = 0;
    try {
      for await (const msg of stream as AsyncIterable<{ blob: Buffer }>) {
        bytes += msg.blob.length;
        yield msg.blob;
      }
      return { bytes };
    } catch (err) {
      throw mapGrpcError(this.url, 'Snapshot', err, timeoutMs, { abortedByUs: opts.signal?.aborted === true });
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      stream.cancel();
    }
  }

  async leaseGrant(ttlSeconds: number, opts?: CallOptions): Promise<{ id: string; ttl: number }> {
    const r = await this.call<{ ID: string; TTL: string; error: string }>(
      'Lease',
      'LeaseGrant',
      { TTL: String(ttlSeconds), ID: '0' },
      opts,
    );
    return { id: r.ID, ttl: Number(r.TTL) };
  }

  async leaseRevoke(id: string, opts?: CallOptions): Promise<void> {
    await this.call('Lease', 'LeaseRevoke', { ID: id }, opts);
  }

  /** Sends one keep-alive on a short-lived stream; returns the new TTL (0: the lease is gone). */
  async leaseKeepAliveOnce(id: string, opts: CallOptions = {}): Promise<number> {
    const timeoutMs = opts.timeoutMs ?? this.ctx.commandTimeoutMs;
    const metadata = await this.prepare(opts);
    const stub = this.stub('Lease') as unknown as {
      LeaseKeepAlive: (md: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientDuplexStream<object, { TTL: string }>;
    };
    return new Promise<number>((resolve, reject) => {
      const stream = stub.LeaseKeepAlive(metadata, { deadline: Date.now() + timeoutMs });
      const onAbort = () => stream.cancel();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const done = (fn: () => void) => {
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      stream.once('data', (res: { TTL: string }) => {
        done(() => resolve(Number(res.TTL)));
        stream.cancel();
      });
      // Every way the stream can end settles the promise; after the answer it is settled already, and
      // the CANCELLED of the stream.cancel() above changes nothing. A CANCELLED or an end from the member
      // before any answer must fail the call, not leave it pending: a pending keep-alive has no timer
      // left to keep the process alive, and Node would end the CLI mid-run (exit 13, no report).
      stream.once('error', (err: unknown) => {
        done(() => reject(mapGrpcError(this.url, 'LeaseKeepAlive', err, timeoutMs, { abortedByUs: opts.signal?.aborted === true })));
      });
      stream.once('status', (st: grpc.StatusObject) => {
        if (st.code !== grpc.status.OK) return; // the 'error' event tells it
        done(() => reject(mapGrpcError(this.url, 'LeaseKeepAlive', new Error('the stream ended without an answer'), timeoutMs)));
      });
      stream.write({ ID: id });
    });
  }

  close(): void {
    for (const s of this.stubs.values()) s.close();
    this.stubs.clear();
    this.channel.close();
  }
}

interface RawKv {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  lease: string;
}

const kv = (k: RawKv): KeyValue => ({
  key: k.key,
  value: k.value,
  createRevision: Number(k.create_revision),
  modRevision: Number(k.mod_revision),
  version: Number(k.version),
  lease: k.lease,
});

/**
 * The cluster-level handle: a MemberClient per endpoint (created on first
 * use, shared after), closed together. The library's `connect()` returns one.
 */
export class EtcdClient {
  readonly options: ConnectionOptions;
  readonly context: ClientContext;
  private readonly members = new Map<string, MemberClient>();
  private closed = false;

  constructor(options: ConnectionOptions) {
    this.options = options;
    this.context = createClientContext(options);
    // Validate every seed endpoint now, so a malformed one is a usage error before any I/O.
    for (const e of options.endpoints) parseEndpoint(e, this.context.tlsByDefault);
  }

  /** The seed endpoints, normalised and deduplicated. */
  get seeds(): string[] {
    return [
      ...new Set(
        this.options.endpoints
          .flatMap((e) => e.split(','))
          .map((e) => e.trim())
          .filter(Boolean)
          .map((e) => parseEndpoint(e, this.context.tlsByDefault).url),
      ),
    ];
  }

  /** The client for one member endpoint (URL or host:port). */
  member(endpoint: string): MemberClient {
    if (this.closed) throw new Error('EtcdClient is closed');
    const url = parseEndpoint(endpoint, this.context.tlsByDefault).url;
    let m = this.members.get(url);
    if (!m) {
      m = new MemberClient(url, this.context);
      this.members.set(url, m);
    }
    return m;
  }

  close(): void {
    this.closed = true;
    for (const m of this.members.values()) m.close();
    this.members.clear();
  }
}
