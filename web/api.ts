/**
 * The daemon's JSON API as the page uses it. Paths are relative to the page,
 * so the dashboard also works behind a reverse proxy under a path prefix.
 * The shapes are the daemon's own types (type-only imports: nothing of src/
 * but the formatting is bundled).
 */
import type { MemberDefragStatus } from '../src/domain/record.js';
import type { RunReport } from '../src/domain/run.js';
import type { ClusterJson } from '../src/serve/cluster-json.js';
import type { MemberSeries, SampleRange } from '../src/serve/samples.js';
import type { ActionsJson, DaemonEvent } from '../src/serve/types.js';
import type { StoredRun, StoredRunDetail } from '../src/store/types.js';

export type { ClusterJson, MemberSeries, SampleRange, ActionsJson, DaemonEvent, StoredRun, StoredRunDetail, MemberDefragStatus, RunReport };

export interface ClustersAnswer {
  clusters: ClusterJson[];
  actions: ActionsJson;
}

export interface SamplesAnswer {
  cluster: string;
  range: SampleRange;
  from: string;
  to: string;
  members: MemberSeries[];
  runs: StoredRun[];
}

export interface StatusAnswer {
  cluster: string;
  members: MemberDefragStatus[];
}

/** runId null: the daemon's store could not record the run; it goes on unrecorded. */
export type StartRunAnswer = { runId: number | null; dryRun: false } | { runId: number; dryRun: true; report: RunReport | null };

/** An answer other than 2xx, with the API's own message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const url = (path: string) => new URL(path, document.baseURI).toString();

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url(path), { cache: 'no-store', ...init });
  } catch {
    throw new ApiError(0, 'the daemon cannot be reached');
  }
  const body = (await res.json().catch(() => null)) as ({ error?: string } & T) | null;
  if (!res.ok) throw new ApiError(res.status, body?.error ?? `${res.status} ${res.statusText}`);
  return body as T;
}

const enc = encodeURIComponent;

export const api = {
  clusters: () => request<ClustersAnswer>('api/v1/clusters'),
  samples: (name: string, range: SampleRange) => request<SamplesAnswer>(`api/v1/clusters/${enc(name)}/samples?range=${enc(range)}`),
  history: (name: string, limit = 50) =>
    request<{ cluster: string; runs: StoredRun[] }>(`api/v1/clusters/${enc(name)}/history?limit=${limit}`),
  status: (name: string) => request<StatusAnswer>(`api/v1/clusters/${enc(name)}/status`),
  run: (id: number) => request<StoredRunDetail>(`api/v1/runs/${id}`),
  startRun: (name: string, dryRun: boolean, token: string) =>
    request<StartRunAnswer>(`api/v1/clusters/${enc(name)}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ dryRun }),
    }),
  eventsUrl: () => url('api/v1/events'),
};
