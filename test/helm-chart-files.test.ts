/**
 * The Helm chart's files that copy or describe something else in the repository, kept in step
 * with it (no helm needed; test/helm.test.ts renders the chart):
 * - files/prometheus-alerts.yaml is examples/prometheus-alerts.yaml's rules (a chart reaches only
 *   files inside its own directory, so it carries a copy);
 * - README.md's values table lists every key of values.yaml, and nothing values.yaml lacks;
 * - values.schema.json's `config` knows every key of the daemon's config file that the chart does
 *   not set itself (examples/defragd.yaml sets every key, a test in src/serve checks that).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHART = `${ROOT}deploy/helm/defragd/`;
const read = (path: string) => readFileSync(path, 'utf8');

/** Keys the chart sets in the daemon's config from the pod's layout; values cannot give them. */
const CHART_SETS = ['listen', 'store', 'apiTokenFile'];

/**
 * Values whose inside is free-form Kubernetes (or defragd) YAML, documented as a whole in the README's
 * table rather than key by key.
 */
const WHOLE = [
  'config.clusters',
  'livenessProbe',
  'readinessProbe',
  'cronjob.kubeadm.nodeSelector',
  'cronjob.kubeadm.tolerations',
  'podSecurityContext',
  'securityContext',
  'resources',
];

/**
 * The key paths of a values tree: `all` of them, and those the table must have (`leaves`): a value that is
 * not a mapping, an empty mapping, or one documented whole. A mapping's own row is optional.
 */
function keyPaths(tree: Record<string, unknown>, prefix = ''): { all: string[]; leaves: string[] } {
  const all: string[] = [];
  const leaves: string[] = [];
  for (const [k, v] of Object.entries(tree)) {
    const path = prefix + k;
    all.push(path);
    const mapping = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
    if (mapping === null || Object.keys(mapping).length === 0 || WHOLE.includes(path)) {
      leaves.push(path);
      continue;
    }
    const inside = keyPaths(mapping, `${path}.`);
    all.push(...inside.all);
    leaves.push(...inside.leaves);
  }
  return { all, leaves };
}

describe('deploy/helm/defragd', () => {
  it("carries examples/prometheus-alerts.yaml's rules unchanged", () => {
    const example = parse(read(`${ROOT}examples/prometheus-alerts.yaml`)) as { groups: unknown[] };
    const copy = parse(read(`${CHART}files/prometheus-alerts.yaml`)) as { groups: unknown[] };
    expect(copy.groups).toEqual(example.groups);
  });

  it("README.md's values table lists every key of values.yaml, and only those", () => {
    const values = parse(read(`${CHART}values.yaml`)) as Record<string, unknown>;
    const readme = read(`${CHART}README.md`);
    const table = [...readme.matchAll(/^\| `([A-Za-z0-9.]+)` \|/gm)].map((m) => m[1] as string);
    const { all, leaves } = keyPaths(values);
    expect(leaves.filter((k) => !table.includes(k))).toEqual([]);
    expect(table.filter((k) => !all.includes(k))).toEqual([]);
  });

  it("values.schema.json's config knows every key of the daemon's config file but those the chart sets", () => {
    const schema = JSON.parse(read(`${CHART}values.schema.json`)) as {
      properties: { config: { properties: Record<string, { items?: { properties: Record<string, unknown> } }> } };
    };
    const config = schema.properties.config.properties;
    const example = parse(read(`${ROOT}examples/defragd.yaml`)) as { clusters: Record<string, unknown>[] };
    const topKeys = Object.keys(example).filter((k) => !CHART_SETS.includes(k));
    expect(Object.keys(config).sort()).toEqual(topKeys.sort());
    // The example's clusters between them set every cluster key (a password only as ${ENV_VAR}).
    const clusterKeys = [...new Set(example.clusters.flatMap((c) => Object.keys(c)))].sort();
    expect(Object.keys(config['clusters']?.items?.properties ?? {}).sort()).toEqual(clusterKeys);
  });
});
