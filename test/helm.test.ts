/**
 * The Helm chart (deploy/helm/defragd) as a platform engineer meets it, through the pinned helm
 * (scripts/helm, built from go/helm): `helm lint --strict` and `helm template` of each mode with the
 * default values and of every values file in its examples/, and what comes out: the kinds per mode,
 * the restricted security context, the CronJob's knobs, the probes, the daemon's config (accepted by
 * the daemon's own parser, with every file it names mounted where it says) and the job's flags
 * (accepted by the CLI's own flag parsers). A values file the schema refuses fails `helm template`,
 * and deploy/manifests/ is what the chart renders today. No etcd and no Kubernetes are needed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { addDefragFlags, defragConfig } from '../src/cli/config/defrag-flags.js';
import { addClusterFlags, clusterConfig, withEnv } from '../src/cli/config/flags.js';
import { compileRule } from '../src/policy/index.js';
import { parseConfig } from '../src/serve/config.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHART = join(ROOT, 'deploy/helm/defragd');
const HELM = join(ROOT, 'scripts/helm');
const EXAMPLES = readdirSync(join(CHART, 'examples'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
/** The time a first build of helm may take on a 2-core machine, Go's caches empty. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

// Loose shapes of what helm renders; the tests look at the fields they name.
type Obj = Record<string, any>;

function helm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(HELM, args, { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` of the chart with these values files and --set pairs; its objects, in order. */
function template(files: string[] = [], set: string[] = []): Obj[] {
  const r = helm([
    'template',
    'defragd',
    CHART,
    '--namespace',
    'defragd',
    ...files.flatMap((f) => ['-f', f]),
    ...set.flatMap((s) => ['--set', s]),
  ]);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}):\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

const byKind = (objs: Obj[], kind: string): Obj[] => objs.filter((o) => o.kind === kind);
const one = (objs: Obj[], kind: string): Obj => {
  const found = byKind(objs, kind);
  expect(found, kind).toHaveLength(1);
  return found[0] as Obj;
};

/** The pod spec of a Deployment or a CronJob. */
function podSpec(objs: Obj[]): Obj {
  const d = byKind(objs, 'Deployment')[0];
  if (d) return d.spec.template.spec;
  return one(objs, 'CronJob').spec.jobTemplate.spec.template.spec;
}

/** Every (mode, values file) the chart is rendered with: the defaults of each mode, and each example. */
const CASES: { name: string; files: string[]; set: string[]; mode: 'daemon' | 'cronjob' }[] = [
  { name: 'default values, mode daemon', files: [], set: [], mode: 'daemon' },
  { name: 'default values, mode cronjob', files: [], set: ['mode=cronjob'], mode: 'cronjob' },
  ...EXAMPLES.map((f) => {
    const path = join(CHART, 'examples', f);
    const mode = (parse(readFileSync(path, 'utf8')) as { mode?: 'daemon' | 'cronjob' }).mode ?? 'daemon';
    return { name: `examples/${f}`, files: [path], set: [], mode };
  }),
];

let scratch = '';

beforeAll(() => {
  // Builds helm when this machine has not yet (make test builds it first, as make helm).
  const r = spawnSync(HELM, ['--path'], { encoding: 'utf8', timeout: BUILD_TIMEOUT_MS });
  if (r.status !== 0) throw new Error(`scripts/helm could not be built:\n${r.stderr}`);
  scratch = mkdtempSync(join(tmpdir(), 'defragd-helm-test-'));
}, BUILD_TIMEOUT_MS);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('helm lint --strict', () => {
  it.each(CASES)('$name: passes, with no warning; the only INFO is the missing icon', ({ files, set }) => {
    const r = helm(['lint', '--strict', CHART, ...files.flatMap((f) => ['-f', f]), ...set.flatMap((s) => ['--set', s])]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const findings = (r.stdout + r.stderr).split('\n').filter((l) => /^\[(INFO|WARNING|ERROR)\]/.test(l));
    // No icon: the project has none to point at, and a chart needs none to install.
    expect(findings).toEqual(['[INFO] Chart.yaml: icon is recommended']);
  });
});

describe('helm template', () => {
  it.each(CASES)('$name: the kinds of its mode, and no other', ({ files, set, mode }) => {
    const kinds = new Set(template(files, set).map((o) => o.kind));
    if (mode === 'daemon') {
      for (const k of ['ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget']) expect(kinds).toContain(k);
      expect(kinds).not.toContain('CronJob');
    } else {
      expect([...kinds].sort()).toEqual(['CronJob', 'ServiceAccount']);
    }
  });

  it.each(CASES)('$name: a restricted pod: no token, no host PID or IPC, never privileged', ({ files, set }) => {
    const objs = template(files, set);
    const pod = podSpec(objs);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(one(objs, 'ServiceAccount').automountServiceAccountToken).toBe(false);
    expect(pod.hostPID).toBeUndefined();
    expect(pod.hostIPC).toBeUndefined();
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    for (const c of pod.containers as Obj[]) {
      expect(c.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        privileged: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    }
    for (const v of pod.volumes as Obj[]) {
      if (v.hostPath) {
        // Only kubeadm's certificates, mounted read-only.
        const mount = (pod.containers[0].volumeMounts as Obj[]).find((m) => m.name === v.name);
        expect(mount?.readOnly).toBe(true);
      }
    }
  });

  it('a non-root pod (uid 65532) unless kubeadm, which runs as uid 0 on the host network of a control-plane node', () => {
    for (const c of CASES) {
      const pod = podSpec(template(c.files, c.set));
      const kubeadm = c.name.includes('kubeadm');
      expect(pod.securityContext, c.name).toMatchObject(
        kubeadm ? { runAsNonRoot: false, runAsUser: 0 } : { runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532 },
      );
      expect(pod.hostNetwork === true, c.name).toBe(kubeadm);
    }
    const pod = podSpec(template([join(CHART, 'examples/kubeadm-cronjob.yaml')]));
    // The three files the client needs, each on its own: the directory also holds etcd's CA key; and, for
    // --wait-for-url, the Kubernetes CA's certificate alone (never its key beside it).
    expect((pod.volumes as Obj[]).filter((v) => v.hostPath).map((v) => v.hostPath)).toEqual([
      { path: '/etc/kubernetes/pki/etcd/ca.crt', type: 'File' },
      { path: '/etc/kubernetes/pki/etcd/healthcheck-client.crt', type: 'File' },
      { path: '/etc/kubernetes/pki/etcd/healthcheck-client.key', type: 'File' },
      { path: '/etc/kubernetes/pki/ca.crt', type: 'File' },
    ]);
    const args = pod.containers[0].args as string[];
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--wait-for-url')).toBe('https://127.0.0.1:6443/readyz');
    expect(flag('--wait-for-url-cacert')).toBe('/var/run/secrets/defragd/kubernetes-ca.crt');
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: 'kubernetes-ca',
      mountPath: '/var/run/secrets/defragd/kubernetes-ca.crt',
      readOnly: true,
    });
    // Without waitForUrls nothing of it is there; with a CA of one's own, the host's is not mounted.
    const plain = podSpec(template([join(CHART, 'examples/kubeadm-cronjob.yaml')], ['cronjob.waitForUrls=null']));
    expect((plain.volumes as Obj[]).map((v) => v.name)).not.toContain('kubernetes-ca');
    expect(plain.containers[0].args).not.toContain('--wait-for-url-cacert');
    const own = podSpec(template([join(CHART, 'examples/kubeadm-cronjob.yaml')], ['cronjob.waitForUrlCacert=/etc/ca/ca.crt']));
    expect((own.volumes as Obj[]).map((v) => v.name)).not.toContain('kubernetes-ca');
    expect(own.containers[0].args).toContain('/etc/ca/ca.crt');
    expect(pod.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' });
    expect(pod.tolerations).toContainEqual({ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' });
  });

  it('daemon: 2 replicas, port 9479, probes on /healthz and /readyz, a PodDisruptionBudget of 1, a grace period for a defrag', () => {
    const objs = template();
    const deployment = one(objs, 'Deployment');
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    const c = pod.containers[0];
    expect(c.command).toEqual(['defragd']);
    expect(c.args.slice(0, 3)).toEqual(['serve', '--config', '/etc/defragd/defragd.yaml']);
    expect(c.ports).toEqual([{ name: 'http', containerPort: 9479, protocol: 'TCP' }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(300);
    expect(pod.volumes).toContainEqual({ name: 'store', emptyDir: { sizeLimit: '1Gi' } });
    expect(one(objs, 'Service').spec.ports).toEqual([{ name: 'http', port: 9479, targetPort: 'http', protocol: 'TCP' }]);
    const pdb = one(objs, 'PodDisruptionBudget');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  it.each(CASES.filter((c) => c.mode === 'daemon'))(
    '$name: the daemon accepts its config, and every file it names is mounted',
    ({ files, set }) => {
      const objs = template(files, set);
      const text = one(objs, 'ConfigMap').data['defragd.yaml'] as string;
      const pod = podSpec(objs);
      const mounts = pod.containers[0].volumeMounts as Obj[];
      expect(mounts).toContainEqual({ name: 'config', mountPath: '/etc/defragd', readOnly: true });
      const mountOf = (file: string) => mounts.find((m) => file.startsWith(`${m.mountPath}/`));
      const volumeOf = (file: string) => (pod.volumes as Obj[]).find((v) => v.name === mountOf(file)?.name);
      // The file a Secret volume holds: its item's key, as the kubelet writes it.
      const inVolume = (file: string) => {
        const mount = mountOf(file);
        if (mount === undefined) return false;
        const name = file.slice(String(mount.mountPath).length + 1);
        return volumeOf(file)?.secret?.items?.some((i: Obj) => i.path === name) === true;
      };
      // The kubelet writes a Secret's files with the volume's defaultMode, and with fsGroup adds group read.
      const kubeletMode = (file: string) => {
        const mode = volumeOf(file)?.secret?.defaultMode as number | undefined;
        if (mode === undefined) return null;
        return pod.securityContext.fsGroup === undefined ? mode : mode | 0o440;
      };
      const read: string[] = [];
      const config = parseConfig(text, {}, '/etc/defragd', {
        readFile: (file) => {
          read.push(file);
          if (!inVolume(file)) throw Object.assign(new Error(`${file} is in no mounted Secret`), { code: 'ENOENT' });
          return 'a'.repeat(32);
        },
        fileMode: kubeletMode,
      });
      expect(config.listen).toEqual({ host: '0.0.0.0', port: 9479 });
      expect(config.allowedHosts).toEqual(
        expect.arrayContaining(['defragd', 'defragd.defragd', 'defragd.defragd.svc', 'defragd.defragd.svc.cluster.local']),
      );
      expect(mountOf(config.store)).toMatchObject({ name: 'store', mountPath: '/var/lib/defragd' });
      for (const cluster of config.clusters) {
        const tls = cluster.connection.tls;
        for (const file of [tls?.caFile, tls?.certFile, tls?.keyFile].filter((f) => f !== undefined)) {
          expect(inVolume(file as string), file).toBe(true);
          expect(mountOf(file as string)?.readOnly).toBe(true);
        }
      }
      if (config.apiToken !== null) {
        const tokenFile = read.find((f) => f.includes('api-token')) as string;
        expect(volumeOf(tokenFile)?.secret.defaultMode).toBe(0o400);
        // 0440 in the pod: readable by its own group only. defragd starts, and says so once.
        expect(config.warnings.filter((w) => w.startsWith('apiTokenFile:'))).toEqual([
          expect.stringContaining('mode 0440 is group-readable'),
        ]);
      }
      expect(
        config.warnings.filter((w) => !w.startsWith('apiTokenFile:') && !w.startsWith('listen: 0.0.0.0:9479 is beyond loopback')),
      ).toEqual([]);
    },
  );

  it('daemon with Secrets: the etcd password is a file in a read-only Secret volume, no Secret is in the values or the output', () => {
    const objs = template([join(CHART, 'examples/daemon-with-secrets.yaml')]);
    expect(byKind(objs, 'Secret')).toEqual([]);
    const config = parse(one(objs, 'ConfigMap').data['defragd.yaml']) as Obj;
    expect(config.clusters[0]).toMatchObject({
      user: 'defragd',
      passwordFile: '/var/run/secrets/defragd/etcd-password/password',
      cacert: '/var/run/secrets/defragd/etcd-tls/ca.crt',
      cert: '/var/run/secrets/defragd/etcd-tls/tls.crt',
      key: '/var/run/secrets/defragd/etcd-tls/tls.key',
    });
    expect(config.apiTokenFile).toBe('/var/run/secrets/defragd/api-token/token');
    expect(config.allowedHosts).toContain('defragd.example.com');
    const pod = podSpec(objs);
    for (const v of pod.volumes as Obj[]) if (v.secret) expect(v.secret.defaultMode, v.name).toBe(0o400);
  });

  it("the PrometheusRule is examples/prometheus-alerts.yaml's groups, {{ $labels }} untouched; the ServiceMonitor scrapes /metrics", () => {
    const objs = template([join(CHART, 'examples/daemon-with-secrets.yaml')]);
    const example = parse(readFileSync(join(ROOT, 'examples/prometheus-alerts.yaml'), 'utf8')) as Obj;
    const rule = one(objs, 'PrometheusRule');
    expect(rule.spec.groups).toEqual(example.groups);
    expect(rule.metadata.labels.release).toBe('kube-prometheus-stack');
    const monitor = one(objs, 'ServiceMonitor');
    expect(monitor.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
    expect(monitor.spec.selector.matchLabels).toEqual(one(objs, 'Service').spec.selector);
  });

  it.each(CASES.filter((c) => c.mode === 'cronjob'))('$name: a CronJob that never overlaps and never retries', ({ files, set }) => {
    const cron = one(template(files, set), 'CronJob');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    expect(cron.spec.startingDeadlineSeconds).toBe(600);
    const job = cron.spec.jobTemplate.spec;
    expect(job.backoffLimit).toBe(0);
    expect(job.activeDeadlineSeconds).toBe(3600);
    expect(job.ttlSecondsAfterFinished).toBe(604800);
    expect(job.template.spec.restartPolicy).toBe('Never');
  });

  it.each(CASES.filter((c) => c.mode === 'cronjob'))(
    "$name: the job's flags are `defragd defrag`'s, and its parsers accept them",
    ({ files, set }) => {
      const c = podSpec(template(files, set)).containers[0];
      expect(c.command).toEqual(['defragd']);
      expect(c.args[0]).toBe('defrag');
      const cmd = addDefragFlags(addClusterFlags(new Command('defrag')))
        .exitOverride()
        .configureOutput({ writeErr: () => {}, writeOut: () => {} });
      cmd.parse(c.args.slice(1), { from: 'user' });
      const opts = withEnv(cmd, {});
      const cluster = clusterConfig({ ...opts, cluster: true });
      expect(cluster.connection.endpoints.length).toBeGreaterThan(0);
      const defrag = defragConfig(opts);
      if (defrag.policy.rule !== null) compileRule(defrag.policy.rule);
      expect(defrag.lock).not.toBe(false);
    },
  );

  it("kubeadm: the job reaches the local member with etcd's own client certificate, read-only from the host", () => {
    const pod = podSpec(template([join(CHART, 'examples/kubeadm-cronjob.yaml')]));
    const args = pod.containers[0].args as string[];
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--endpoints')).toBe('https://127.0.0.1:2379');
    expect(flag('--cacert')).toBe('/var/run/secrets/defragd/kubeadm-etcd-pki/ca.crt');
    expect(flag('--cert')).toBe('/var/run/secrets/defragd/kubeadm-etcd-pki/healthcheck-client.crt');
    expect(flag('--key')).toBe('/var/run/secrets/defragd/kubeadm-etcd-pki/healthcheck-client.key');
    for (const file of [flag('--cacert'), flag('--cert'), flag('--key')]) {
      expect(pod.containers[0].volumeMounts).toContainEqual(expect.objectContaining({ mountPath: file, readOnly: true }));
    }
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
  });
});

describe('values.schema.json', () => {
  it.each([
    ['an unknown mode', 'mode: sidecar\n'],
    ['a misspelt key', 'replicas: 3\n'],
    ['a privileged container', 'securityContext:\n  privileged: true\n'],
    ['a world-writable token file', 'apiToken:\n  defaultMode: 511\n'],
    [
      'an unknown key in a cluster of the config',
      'config:\n  clusters:\n    - name: a\n      endpoints: [https://e:2379]\n      windowz: []\n',
    ],
    [
      'the store path, which the chart sets',
      'config:\n  store: /data/x.sqlite\n  clusters:\n    - name: a\n      endpoints: [https://e:2379]\n',
    ],
    ['a retried CronJob', 'cronjob:\n  backoffLimit: 3\n'],
  ])('refuses %s: helm template fails and says why', (_what, yaml) => {
    const file = join(scratch, 'bad-values.yaml');
    writeFileSync(file, yaml);
    const r = helm(['template', 'defragd', CHART, '-f', file]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
  });

  it('a user without the Secret of its password fails with what to set', () => {
    const r = helm(['template', 'defragd', CHART, '--set', 'etcd.auth.user=root']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('etcd.auth.user is set without etcd.auth.existingSecret');
  });
});

describe('deploy/manifests', () => {
  it('is what the chart renders with its default values (scripts/render-manifests --check)', () => {
    const r = spawnSync(join(ROOT, 'scripts/render-manifests'), ['--check'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
  });
});
