import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MOUNTER_ENV_NAMES, chartValuesSchema } from '../../lib/chart-values-schema.js';
import { defaultConfig } from '../../lib/config.js';
import { KUSTOMIZE_HINT, find, findKustomize, render, type KubeObject } from '../manifests/kustomize.js';
import { needs } from '../support/prereq.js';
import { CHART, HELM_HINT, NAMESPACE, NON_DEFAULT_VALUES, RELEASE, findTool, helm, parseObjects, setJson, template } from './helm.js';

// The chart must give what `kubectl apply -k` gives. Every difference the two are allowed to have
// is listed here, and removed from the chart's objects before they are compared; anything else
// that differs fails the test, object by object.
const HELM_LABELS = {
  'app.kubernetes.io/managed-by': 'Helm',
  'app.kubernetes.io/instance': 'dfs-injector',
  'app.kubernetes.io/version': '0.1.0',
  'helm.sh/chart': 'dfs-injector-0.1.0',
};

/** The chart's object with the listed differences taken out (and checked to be exactly as listed). */
function withoutListedDifferences(object: KubeObject): KubeObject {
  const o = structuredClone(object);
  // 1. Helm's release labels, on every object's metadata (never on selectors or pod templates).
  for (const [key, value] of Object.entries(HELM_LABELS)) {
    expect(o.metadata.labels?.[key], `${o.kind}/${o.metadata.name} label ${key}`).toBe(value);
    delete o.metadata.labels![key];
  }
  // 2. The Namespace survives `helm uninstall`: it also holds the webhook's own Secret.
  if (o.kind === 'Namespace') {
    expect(o.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    delete o.metadata.annotations;
  }
  // 3. The config file is written from a values block: same content, no comments, another layout.
  if (o.kind === 'ConfigMap' && o.metadata.name === 'dfs-injector-config') o.data['config.yaml'] = parse(o.data['config.yaml'] as string);
  normaliseOrder(o);
  return o;
}

const byName = (a: { name: string }, b: { name: string }): number => a.name.localeCompare(b.name);

/**
 * 4. The mounter's env comes from a map, so the chart sorts it by name (no entry refers to
 * another). 5. Pod volumes are a list keyed by name: kustomize's cert-manager patch moves the
 * patched `tls` volume first, the chart keeps the base's order. Both are compared sorted by name.
 */
function normaliseOrder(o: KubeObject): void {
  const pod = o.spec?.template?.spec as { containers: { env?: { name: string }[] }[]; volumes?: { name: string }[] } | undefined;
  if (pod === undefined) return;
  if (o.kind === 'DaemonSet') for (const c of pod.containers) c.env?.sort(byName);
  pod.volumes?.sort(byName);
}

function fromKustomize(object: KubeObject): KubeObject {
  const o = structuredClone(object);
  if (o.kind === 'ConfigMap' && o.metadata.name === 'dfs-injector-config') o.data['config.yaml'] = parse(o.data['config.yaml'] as string);
  normaliseOrder(o);
  return o;
}

const key = (o: KubeObject): string => `${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`;

function expectEquivalent(chart: KubeObject[], kustomized: KubeObject[]): void {
  expect(chart.map(key).sort()).toEqual(kustomized.map(key).sort());
  const byKey = new Map(kustomized.map((o) => [key(o), fromKustomize(o)]));
  for (const object of chart) expect(withoutListedDifferences(object), key(object)).toEqual(byKey.get(key(object)));
}

describe('values.schema.json', () => {
  it('is the schema lib/chart-values-schema.ts generates (npm run chart:schema)', () => {
    const committed: unknown = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    expect(committed).toEqual(chartValuesSchema());
  });

  it("allows in mounter.env exactly the DFS_* variables dfs-mounter.sh documents, less DFS_HOST_PATH", () => {
    const script = readFileSync(join(CHART, '..', '..', 'manifests', 'mounter', 'dfs-mounter.sh'), 'utf8');
    // The script's header: "# Environment ...:" then one "#   DFS_NAME  meaning" line per variable.
    const header = script.slice(script.indexOf('# Environment'), script.indexOf('\nset -u'));
    const documented = [...header.matchAll(/^#\s{3}(DFS_[A-Z_]+)\s/gm)].map((m) => m[1]);
    expect(documented).toContain('DFS_HOST_PATH');
    expect([...MOUNTER_ENV_NAMES].sort()).toEqual(documented.filter((n) => n !== 'DFS_HOST_PATH').sort());
  });

  it("defaults the chart's config block to exactly the webhook's embedded defaults", () => {
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { config: unknown };
    expect(values.config).toEqual(JSON.parse(JSON.stringify(defaultConfig)));
  });
});

const helmBin = findTool('helm');
const kustomize = findKustomize();
const available = needs('helm', helmBin !== undefined, HELM_HINT) && needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT);

describe.skipIf(!available)('the Helm chart', () => {
  const bin = helmBin!;

  it.each([
    ['default values', {}],
    ['every option on', { certificates: { mode: 'cert-manager' }, auditor: { enabled: true, check: true }, smbService: { enabled: true, networkPolicy: { enabled: true } }, metrics: { podMonitor: { enabled: true }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } } }],
  ])('passes helm lint --strict with %s', (_name, values) => {
    const result = helm(bin, ['lint', '--strict', CHART, ...setJson(values)]);
    expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.status).toBe(0);
  });

  it('packages into an archive that holds the linked files and renders exactly what the directory renders', () => {
    const out = mkdtempSync(join(tmpdir(), 'dfs-chart-'));
    try {
      const packaged = helm(bin, ['package', CHART, '--destination', out]);
      expect(packaged.status, packaged.stderr).toBe(0);
      const archives = readdirSync(out).filter((f) => f.endsWith('.tgz'));
      expect(archives).toHaveLength(1);
      const archive = join(out, archives[0]!);
      const all = { certificates: { mode: 'cert-manager' }, auditor: { enabled: true, check: true }, metrics: { podMonitor: { enabled: true }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } } };
      const fromArchive = helm(bin, ['template', RELEASE, archive, '--namespace', NAMESPACE, ...setJson(all)]);
      expect(fromArchive.status, fromArchive.stderr).toBe(0);
      expect(parseObjects(fromArchive.stdout, 'helm template of the archive')).toEqual(template(bin, all));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('renders with default values the objects of manifests/overlays/default, with only the listed differences', () => {
    expectEquivalent(template(bin), render(kustomize!, 'overlays/default'));
  });

  it('renders in cert-manager mode the objects of manifests/overlays/cert-manager, with only the listed differences', () => {
    expectEquivalent(template(bin, { certificates: { mode: 'cert-manager' } }), render(kustomize!, 'overlays/cert-manager'));
  });

  it('renders with the metrics values the objects of manifests/overlays/monitoring, with only the listed differences', () => {
    const metrics = { podMonitor: { enabled: true }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } };
    expectEquivalent(template(bin, { metrics }), render(kustomize!, 'overlays/monitoring'));
  });

  it('renders the SMB Service as components/smb-service gives it to the examples', () => {
    const chart = template(bin, { smbService: { enabled: true } });
    const service = find(render(kustomize!, 'overlays/examples'), 'Service', 'dfs-smb');
    expect(withoutListedDifferences(find(chart, 'Service', 'dfs-smb'))).toEqual(service);
  });

  it('renders the ClusterRoles of manifests/auditor and manifests/auditor-check when asked, with only the listed differences', () => {
    const roles = (values: Record<string, unknown>): KubeObject[] => template(bin, { auditor: values }).filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'auditor');
    expect(roles({})).toEqual([]);
    expectEquivalent(roles({ enabled: true }), render(kustomize!, 'auditor'));
    expectEquivalent(roles({ check: true }), render(kustomize!, 'auditor-check'));
    expectEquivalent(roles({ enabled: true, check: true }), [...render(kustomize!, 'auditor'), ...render(kustomize!, 'auditor-check')]);
  });

  it('renders the NetworkPolicy as components/smb-network-policy gives it to the examples', () => {
    const chart = template(bin, { smbService: { networkPolicy: { enabled: true } } });
    const policy = find(render(kustomize!, 'overlays/examples'), 'NetworkPolicy', 'dfs-smb');
    expect(withoutListedDifferences(find(chart, 'NetworkPolicy', 'dfs-smb'))).toEqual(policy);
  });

  it("admits the smbd sidecar's configured port from every node network, and leaves every other port open", () => {
    const ingressOf = (port: number): any[] =>
      find(template(bin, { config: { source: { sidecar: { port } } }, smbService: { networkPolicy: { enabled: true, nodeCIDRs: ['192.168.10.0/24', 'fd00:10::/64'] } } }), 'NetworkPolicy', 'dfs-smb').spec.ingress;
    const [smb, rest] = ingressOf(1445);
    expect(smb).toEqual({ from: [{ ipBlock: { cidr: '192.168.10.0/24' } }, { ipBlock: { cidr: 'fd00:10::/64' } }], ports: [{ protocol: 'TCP', port: 1445 }] });
    expect(rest.ports.filter((p: { protocol: string }) => p.protocol === 'TCP')).toEqual([
      { protocol: 'TCP', port: 1, endPort: 1444 },
      { protocol: 'TCP', port: 1446, endPort: 65535 },
    ]);
    // At either end of the range there is no empty range on that side.
    expect(ingressOf(1)[1].ports.filter((p: { protocol: string }) => p.protocol === 'TCP')).toEqual([{ protocol: 'TCP', port: 2, endPort: 65535 }]);
    expect(ingressOf(65535)[1].ports.filter((p: { protocol: string }) => p.protocol === 'TCP')).toEqual([{ protocol: 'TCP', port: 1, endPort: 65534 }]);
  });

  it.each([
    ['webhook.replica', { webhook: { replica: 3 } }, "additional properties 'replica' not allowed"],
    ['config.consumer.mountPaht', { config: { consumer: { mountPaht: '/data' } } }, "additional properties 'mountPaht' not allowed"],
    ['certificates.mode', { certificates: { mode: 'vault' } }, "at '/certificates/mode': value must be one of"],
    ['mounter.env.DFS_HOST_PATH', { mounter: { env: { DFS_HOST_PATH: '/x' } } }, "invalid propertyName 'DFS_HOST_PATH'"],
    ['mounter.env.DFS_SHARE_NAM', { mounter: { env: { DFS_SHARE_NAM: 'dfs' } } }, "invalid propertyName 'DFS_SHARE_NAM'\n  - at '': value must be one of 'DFS_SMB_SERVICE'"],
    ['smbService.networkPolicy.nodeCIDR', { smbService: { networkPolicy: { nodeCIDR: '192.168.10.0/24' } } }, "additional properties 'nodeCIDR' not allowed"],
    ['smbService.networkPolicy.nodeCIDRs', { smbService: { networkPolicy: { nodeCIDRs: ['192.168.10.0'] } } }, "at '/smbService/networkPolicy/nodeCIDRs/0': '192.168.10.0' does not match pattern"],
  ])('refuses a misspelt or invalid value (%s) with a message that names it', (_name, values, message) => {
    expect(() => template(bin, values)).toThrow(message);
  });

  it('passes an environment variable of the mounter through, whether dfs-mounter.sh reads it or not a DFS_* name', () => {
    const env = find(template(bin, { mounter: { env: { DFS_MOUNT_TIMEOUT: '45', TZ: 'Europe/Berlin' } } }), 'DaemonSet', 'dfs-mounter').spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: 'DFS_MOUNT_TIMEOUT', value: '45' });
    expect(env).toContainEqual({ name: 'TZ', value: 'Europe/Berlin' });
  });

  it('puts every non-default value in the field of the base it stands for', () => {
    const objects = template(bin, NON_DEFAULT_VALUES);
    const { webhook: w, mounter: m } = NON_DEFAULT_VALUES;
    expect(objects.filter((o) => o.kind === 'Namespace')).toEqual([]);
    const deployment = find(objects, 'Deployment', 'dfs-injector');
    expect(deployment.spec).toMatchObject({ replicas: w.replicas, revisionHistoryLimit: w.revisionHistoryLimit });
    const pod = deployment.spec.template.spec;
    expect(pod).toMatchObject({ nodeSelector: w.nodeSelector, tolerations: w.tolerations, terminationGracePeriodSeconds: w.terminationGracePeriodSeconds });
    expect(pod.containers[0]).toMatchObject({ image: 'registry.example/dfs-injector:9.9.9', imagePullPolicy: 'Always', resources: w.resources });
    expect(pod.containers[0].lifecycle).toBeUndefined();
    expect(find(objects, 'PodDisruptionBudget', 'dfs-injector').spec.minAvailable).toBe(2);
    const entries = find(objects, 'MutatingWebhookConfiguration', 'dfs-injector').webhooks;
    expect(entries).toHaveLength(4);
    for (const entry of entries) {
      expect(entry).toMatchObject({ failurePolicy: 'Ignore', timeoutSeconds: 10 });
      expect(entry.namespaceSelector.matchExpressions).toContainEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'flux-system', NAMESPACE] });
      expect(entry.namespaceSelector.matchExpressions.at(-1)).toEqual(w.namespaceSelectorExtra[0]);
    }
    const daemonSet = find(objects, 'DaemonSet', 'dfs-mounter');
    expect(daemonSet.spec.updateStrategy.rollingUpdate.maxUnavailable).toBe('20%');
    const mounterPod = daemonSet.spec.template.spec;
    expect(mounterPod).toMatchObject({ nodeSelector: m.nodeSelector, terminationGracePeriodSeconds: 20 });
    expect(mounterPod.tolerations).toBeUndefined();
    expect(mounterPod.priorityClassName).toBeUndefined();
    expect(mounterPod.containers[0]).toMatchObject({ image: 'registry.example/dfs-mounter:9.9.9', imagePullPolicy: 'Always', resources: m.resources });
    expect(mounterPod.containers[0].env).toEqual(expect.arrayContaining([{ name: 'DFS_SHARE_NAME', value: 'media' }, { name: 'DFS_CHECK_INTERVAL', value: '20' }]));
  });

  it('leaves out the PodDisruptionBudget and the mounter when they are turned off', () => {
    const objects = template(bin, { webhook: { podDisruptionBudget: { enabled: false } }, mounter: { enabled: false } });
    expect(objects.filter((o) => o.kind === 'PodDisruptionBudget' || o.metadata.name.startsWith('dfs-mounter'))).toEqual([]);
    expect(find(objects, 'Deployment', 'dfs-injector')).toBeDefined();
  });

  it('keeps the host path in one value: the config, the mounter env, its volume and its mount', () => {
    const objects = template(bin, { config: { hostPath: '/srv/dfs' } });
    const config = parse(find(objects, 'ConfigMap', 'dfs-injector-config').data['config.yaml']) as { hostPath: string };
    const pod = find(objects, 'DaemonSet', 'dfs-mounter').spec.template.spec;
    expect(config.hostPath).toBe('/srv/dfs');
    expect(pod.containers[0].env).toContainEqual({ name: 'DFS_HOST_PATH', value: '/srv/dfs' });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'dfs', mountPath: '/srv/dfs', mountPropagation: 'Bidirectional' });
    expect(pod.volumes).toContainEqual({ name: 'dfs', hostPath: { path: '/srv/dfs', type: 'DirectoryOrCreate' } });
  });

  it('points the mounter at the SMB Service of smbService.namespace', () => {
    const env = find(template(bin, { smbService: { namespace: 'arr' } }), 'DaemonSet', 'dfs-mounter').spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: 'DFS_SMB_SERVICE', value: 'dfs-smb.arr.svc.cluster.local' });
  });

  it('leaves both pod templates unchanged when only the config, replicas or failure policy change (an upgrade restarts nothing)', () => {
    const before = template(bin);
    const after = template(bin, { config: { consumer: { waitForMount: { enabled: true } } }, webhook: { replicas: 3, failurePolicy: 'Ignore' } });
    expect(find(after, 'DaemonSet', 'dfs-mounter').spec.template).toEqual(find(before, 'DaemonSet', 'dfs-mounter').spec.template);
    // The webhook reloads its config file by itself, so its pods are not rolled either.
    expect(find(after, 'Deployment', 'dfs-injector').spec.template).toEqual(find(before, 'Deployment', 'dfs-injector').spec.template);
    expect(find(after, 'ConfigMap', 'dfs-injector-config')).not.toEqual(find(before, 'ConfigMap', 'dfs-injector-config'));
  });

  it('never renders the Secret the webhook keeps its certificates in, so Helm never owns or overwrites it', () => {
    for (const mode of ['self-managed', 'cert-manager']) {
      const secrets = template(bin, { certificates: { mode } }).filter((o) => o.kind === 'Secret');
      expect(secrets, mode).toEqual([]);
    }
  });

  it('renders the mounter script ConfigMap from manifests/mounter/dfs-mounter.sh, under the name kustomize gives it', () => {
    const script = template(bin).find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('dfs-mounter-script-'))!;
    expect(script.data['dfs-mounter.sh']).toBe(readFileSync(join(CHART, '..', '..', 'manifests', 'mounter', 'dfs-mounter.sh'), 'utf8'));
    expect(script.metadata.name).toBe(find(render(kustomize!, 'overlays/default'), 'DaemonSet', 'dfs-mounter').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'script').configMap.name);
  });

  it('uses the release namespace everywhere the base says dfs-system', () => {
    const objects = template(bin, {}, ['--namespace', 'media-system']);
    expect(objects.filter((o) => o.metadata.namespace !== undefined).every((o) => o.metadata.namespace === 'media-system')).toBe(true);
    expect(JSON.stringify(objects)).not.toContain(NAMESPACE);
  });
});
