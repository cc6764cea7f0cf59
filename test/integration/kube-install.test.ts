/**
 * The Helm chart and deploy/manifests against a real kube-apiserver (dev/harness/kube.ts, on the
 * default etcd version): `helm install` of each mode and each example values file is accepted
 * (helm 4 applies server-side, so the apiserver validates every field), every object it names then
 * exists, and `helm uninstall` removes them; each plain manifest passes a server-side dry run with
 * strict field validation; the ServiceMonitor and PrometheusRule against the Prometheus Operator's published
 * CRDs. No pod runs here (no scheduler or kubelet): what is checked is what
 * the apiserver accepts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { useCluster } from '../../dev/harness/etcd.js';
import { kubeSkipReason, startKube, type KubeStack } from '../../dev/harness/kube.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HELM = path.join(ROOT, 'scripts/helm');
const CHART = path.join(ROOT, 'deploy/helm/defragd');
/** The Prometheus Operator's CRD files (downloaded once per machine through the Go module proxy). */
const crds = ((): { dir: string; why: string } => {
  const r = spawnSync(path.join(ROOT, 'scripts/prometheus-crds'), [], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0
    ? { dir: r.stdout.trim(), why: '' }
    : { dir: '', why: (r.stderr || `exit ${r.status}`).trim().split('\n').pop() ?? '' };
})();
const skipWhy = kubeSkipReason() || crds.why;

/** The REST collection of each kind the chart and the manifests hold. */
const COLLECTIONS: Record<string, string> = {
  'v1/ConfigMap': '/api/v1/namespaces/NS/configmaps',
  'v1/Service': '/api/v1/namespaces/NS/services',
  'v1/ServiceAccount': '/api/v1/namespaces/NS/serviceaccounts',
  'v1/Secret': '/api/v1/namespaces/NS/secrets',
  'apps/v1/Deployment': '/apis/apps/v1/namespaces/NS/deployments',
  'batch/v1/CronJob': '/apis/batch/v1/namespaces/NS/cronjobs',
  'policy/v1/PodDisruptionBudget': '/apis/policy/v1/namespaces/NS/poddisruptionbudgets',
  'monitoring.coreos.com/v1/ServiceMonitor': '/apis/monitoring.coreos.com/v1/namespaces/NS/servicemonitors',
  'monitoring.coreos.com/v1/PrometheusRule': '/apis/monitoring.coreos.com/v1/namespaces/NS/prometheusrules',
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}

describe.skipIf(skipWhy !== '')(
  `the chart and the manifests against a real kube-apiserver${skipWhy ? ` (skipped: ${skipWhy})` : ''}`,
  () => {
    const cluster = useCluster({ members: 1 });
    let stack: KubeStack;
    let kubeconfig: string;

    beforeAll(async () => {
      stack = await startKube(cluster());
      kubeconfig = path.join(stack.dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        [
          'apiVersion: v1',
          'kind: Config',
          `clusters: [{ name: t, cluster: { server: "${stack.apiservers[0]?.url}", insecure-skip-tls-verify: true } }]`,
          `users: [{ name: t, user: { token: "${stack.token}" } }]`,
          'contexts: [{ name: t, context: { cluster: t, user: t } }]',
          'current-context: t',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
    }, 300_000);
    afterAll(async () => {
      await stack?.stop();
    });

    /**
     * The Prometheus Operator's published CRDs of the two kinds the chart can make (scripts/prometheus-crds: its
     * Go module's example/prometheus-operator-crd/, pinned and hash-checked), as a cluster with the operator has
     * them: the apiserver then checks the chart's ServiceMonitor and PrometheusRule against their schemas.
     */
    async function monitoringCrds(): Promise<void> {
      for (const file of ['monitoring.coreos.com_servicemonitors.yaml', 'monitoring.coreos.com_prometheusrules.yaml']) {
        const crd = parse(readFileSync(path.join(crds.dir, file), 'utf8')) as K8sObject;
        const r = await api('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
        expect([201, 409], `${file}: ${r.body.slice(0, 300)}`).toContain(r.status);
      }
      // Established: the kinds are served.
      for (let i = 0; i < 100; i++) {
        const r = await api('GET', '/apis/monitoring.coreos.com/v1');
        if (r.status === 200 && r.body.includes('"prometheusrules"') && r.body.includes('"servicemonitors"')) return;
        await new Promise((res) => setTimeout(res, 200));
      }
      throw new Error('the monitoring.coreos.com CRDs were not served within 20 s');
    }

    function helm(args: string[]): { code: number | null; out: string } {
      // helm's own state in the run's dir; the helm binary stays the one built in ~/.cache/defragd.
      const own = { HELM_CONFIG_HOME: stack.dir, HELM_CACHE_HOME: stack.dir, HELM_DATA_HOME: stack.dir };
      const r = spawnSync(HELM, [...args, '--kubeconfig', kubeconfig], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, ...own },
      });
      return { code: r.status, out: `${r.stdout}${r.stderr}` };
    }

    /** One request to the apiserver with the stack's token; resolves status and body. */
    function api(method: string, p: string, body?: unknown): Promise<{ status: number; body: string }> {
      const url = new URL(p, stack.apiservers[0]?.url);
      return new Promise((resolve, reject) => {
        const req = https.request(
          url,
          {
            method,
            rejectUnauthorized: false,
            headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json', accept: 'application/json' },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on('error', reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    }

    const pathOf = (o: K8sObject, ns: string) => {
      const c = COLLECTIONS[`${o.apiVersion}/${o.kind}`];
      if (!c) throw new Error(`no collection known for ${o.apiVersion} ${o.kind}`);
      return c.replace('NS', o.metadata.namespace ?? ns);
    };

    it.each([
      ['daemon mode, default values', 'd1', []],
      ['cronjob mode, default values', 'c1', ['--set', 'mode=cronjob']],
      ['examples/daemon-with-secrets.yaml', 'd2', ['-f', path.join(CHART, 'examples/daemon-with-secrets.yaml')]],
      ['examples/kubeadm-cronjob.yaml', 'c2', ['-f', path.join(CHART, 'examples/kubeadm-cronjob.yaml')]],
    ])(
      'helm install: %s is accepted, its objects exist, and helm uninstall removes them',
      async (_what, release, args) => {
        const ns = `ns-${release}`;
        await monitoringCrds();
        const install = helm(['install', release, CHART, '-n', ns, '--create-namespace', ...args]);
        expect(install.code, install.out).toBe(0);
        const manifest = helm(['get', 'manifest', release, '-n', ns]);
        expect(manifest.code, manifest.out).toBe(0);
        const objects = parseAllDocuments(manifest.out)
          .map((d) => d.toJS() as K8sObject | null)
          .filter((o): o is K8sObject => o !== null);
        expect(objects.length).toBeGreaterThan(0);
        for (const o of objects) {
          const got = await api('GET', `${pathOf(o, ns)}/${o.metadata.name}`);
          expect(got.status, `${o.kind} ${o.metadata.name}: ${got.body.slice(0, 300)}`).toBe(200);
        }
        const uninstall = helm(['uninstall', release, '-n', ns, '--wait']);
        expect(uninstall.code, uninstall.out).toBe(0);
        for (const o of objects)
          expect((await api('GET', `${pathOf(o, ns)}/${o.metadata.name}`)).status, `${o.kind} ${o.metadata.name}`).toBe(404);
      },
      180_000,
    );

    it.each(['daemon.yaml', 'cronjob.yaml'])(
      'deploy/manifests/%s passes a server-side dry run with strict field validation',
      async (file) => {
        const created = await api('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'defragd' } });
        expect([201, 409], created.body).toContain(created.status);
        const objects = parseAllDocuments(readFileSync(path.join(ROOT, 'deploy/manifests', file), 'utf8'))
          .map((d) => d.toJS() as K8sObject | null)
          .filter((o): o is K8sObject => o !== null);
        expect(objects.length).toBeGreaterThan(0);
        for (const o of objects) {
          const r = await api('POST', `${pathOf(o, 'defragd')}?dryRun=All&fieldValidation=Strict`, o);
          expect(r.status, `${o.kind} ${o.metadata.name}: ${r.body.slice(0, 500)}`).toBe(201);
        }
      },
    );
  },
);
