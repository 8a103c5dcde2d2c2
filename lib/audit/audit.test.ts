import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadPod, POD_FIXTURES } from '../../test/support/fixtures.js';
import { configSchema, defaultConfig, type Config } from '../config.js';
import { injectDocument } from '../inject.js';
import { auditInventory, type AuditOptions } from './auditor.js';
import { auditCluster, type ClusterReader } from './cluster.js';
import { inventoryFromDocuments } from './manifests.js';
import { failsAt } from './report.js';
import type { Finding, Inventory, InventoryNamespace, InventoryPod, MounterPod } from './types.js';

const OPTED_IN: InventoryNamespace = { name: 'media', labels: { 'dfs-injector.io/injection': 'enabled' } };
const options = (config: Config = defaultConfig, extra: Partial<AuditOptions> = {}): AuditOptions => ({ config, configSource: 'test', ...extra });

function podOf(doc: Record<string, any>, extra: Partial<InventoryPod> = {}): InventoryPod {
  return {
    kind: 'Pod',
    namespace: doc.metadata.namespace ?? 'media',
    name: doc.metadata.name ?? doc.metadata.generateName,
    labels: doc.metadata.labels ?? {},
    annotations: doc.metadata.annotations ?? {},
    spec: doc.spec,
    ...extra,
  };
}

function audit(inventory: Partial<Inventory>, opts: AuditOptions = options()): Finding[] {
  return auditInventory({ namespaces: [OPTED_IN], pods: [], ...inventory }, opts).findings;
}

const rules = (findings: Finding[]): string[] => findings.map((f) => f.rule);

function injected(name: (typeof POD_FIXTURES)[number], config: Config = defaultConfig): Record<string, any> {
  const result = injectDocument(loadPod(name), config);
  expect(result.errors).toEqual([]);
  return result.object as Record<string, any>;
}

async function* from<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield await Promise.resolve(item);
}

const MOUNTER_READY: MounterPod = { nodeName: 'node-a', ready: true, name: 'dfs-mounter-a' };

describe('audit rules on pods the webhook injected', () => {
  it.each(POD_FIXTURES)('finds nothing wrong with the %s fixture after injection', (name) => {
    const pod = podOf(injected(name), { nodeName: 'node-a', phase: 'Running' });
    expect(audit({ pods: [pod], mounterPods: [MOUNTER_READY] })).toEqual([]);
  });

  it('reports a pod injected under another config as drift, and only that', () => {
    const old = configSchema.parse({ consumer: { waitForMount: { enabled: true } } });
    const findings = audit({ pods: [podOf(injected('sonarr', old))] });
    expect(findings).toEqual([expect.objectContaining({ rule: 'DFS005', severity: 'low' })]);
    expect(findings[0]?.message).toMatch(/^injected under config [0-9a-f]{16} by dfs-injector 0\.1\.0; the current config is [0-9a-f]{16}$/);
  });

  it('does not measure drift when the webhook config is not known', () => {
    const old = configSchema.parse({ consumer: { waitForMount: { enabled: true } } });
    const result = auditInventory({ namespaces: [OPTED_IN], pods: [podOf(injected('sonarr', old))] }, options(defaultConfig, { driftUnavailable: 'no config' }));
    expect(result.findings).toEqual([]);
    expect(result.skipped).toContainEqual({ rules: ['DFS005'], reason: 'no config' });
  });

  // This test used to expect DFS003 here. A pod the webhook admits must pass the audit (issue 14,
  // defect 5): the webhook now takes over the hand-written volume it reuses, makes its mounts safe
  // and lists it in its status.
  it('finds nothing wrong with a hostPath volume that the webhook reused, which its status lists', () => {
    const pod = loadPod('sonarr');
    pod.spec.volumes.push({ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs/' } });
    const after = injectDocument(pod, defaultConfig).object as Record<string, any>;
    expect(JSON.parse(after.metadata.annotations['dfs-injector.io/status']).volumes).toEqual(['dfs']);
    expect(audit({ pods: [podOf(after)] })).toEqual([]);
  });
});

describe('audit rules on hand-made pods', () => {
  const handMade = (mount: Record<string, unknown>, where: 'containers' | 'initContainers' = 'containers'): InventoryPod => {
    const pod = loadPod('radarr-native-sidecar');
    delete pod.metadata.labels['dfs-injector.io/role'];
    pod.spec.volumes.push({ name: 'movies', hostPath: { path: '/mnt/decypharr-dfs/movies' } });
    pod.spec[where][0].volumeMounts.push({ name: 'movies', mountPath: '/movies', ...mount });
    return podOf(pod);
  };

  it('sees a hostPath of a directory under the DFS host path, in a native sidecar too', () => {
    const findings = audit({ pods: [handMade({}, 'initContainers')] });
    expect(rules(findings)).toEqual(['DFS001', 'DFS002', 'DFS003']);
    expect(findings[0]?.message).toBe('init container "log-shipper" mounts volume "movies" at /movies writable (readOnly is not true)');
    expect(findings[2]?.message).toContain('volume "movies" is a hostPath of /mnt/decypharr-dfs/movies, under the DFS host path /mnt/decypharr-dfs, written by hand');
  });

  it('names a Bidirectional consumer mount', () => {
    const findings = audit({ pods: [handMade({ readOnly: true, mountPropagation: 'Bidirectional' })] });
    expect(findings.find((f) => f.rule === 'DFS002')?.message).toBe('container "radarr" mounts volume "movies" at /movies with mountPropagation Bidirectional');
  });

  it('leaves other hostPath volumes alone', () => {
    const pod = loadPod('sonarr');
    delete pod.metadata.labels['dfs-injector.io/role'];
    pod.spec.volumes.push({ name: 'dfs2', hostPath: { path: '/mnt/decypharr-dfs2' } });
    pod.spec.containers[0].volumeMounts.push({ name: 'dfs2', mountPath: '/x' });
    expect(audit({ pods: [podOf(pod)] })).toEqual([]);
  });

  it('follows the configured host path', () => {
    const config = configSchema.parse({ hostPath: '/srv/dfs' });
    expect(rules(audit({ pods: [handMade({})] }, options(config)))).toEqual([]);
  });

  it('never reports the mounter pods, whose writable Bidirectional hostPath is how they work', () => {
    const mounter = podOf(
      {
        metadata: { name: 'dfs-mounter-x', namespace: 'dfs-system', labels: { 'app.kubernetes.io/name': 'dfs-mounter' } },
        spec: { containers: [{ name: 'mounter', volumeMounts: [{ name: 'dfs', mountPath: '/mnt/decypharr-dfs', mountPropagation: 'Bidirectional' }] }], volumes: [{ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } }] },
      },
      { nodeName: 'node-a', owner: { kind: 'DaemonSet', name: 'dfs-mounter' } },
    );
    const result = auditInventory({ namespaces: [], pods: [mounter], mounterPods: [MOUNTER_READY] }, options());
    expect(result.findings).toEqual([]);
    expect(result.checked.pods).toBe(0);
  });

  // Anyone who may create a pod may label it; only the dfs-mounter DaemonSet in the mounter's
  // namespace may mount the DFS writable.
  it.each([
    ['labelled like the mounter, owned by a DaemonSet of that name, in another namespace', 'media', { kind: 'DaemonSet', name: 'dfs-mounter' }, 'Pod'],
    ['labelled like the mounter in its namespace, owned by another DaemonSet', 'dfs-system', { kind: 'DaemonSet', name: 'evil' }, 'Pod'],
    ['labelled like the mounter in its namespace, owned by nothing', 'dfs-system', undefined, 'Pod'],
    ['a DaemonSet template labelled like the mounter in another namespace', 'media', undefined, 'DaemonSet'],
  ] as const)('reports a writable DFS mount of a pod %s', (_, namespace, owner, kind) => {
    const pod = podOf(
      {
        metadata: { name: kind === 'DaemonSet' ? 'dfs-mounter' : 'dfs-mounter-x', namespace, labels: { 'app.kubernetes.io/name': 'dfs-mounter' } },
        spec: { containers: [{ name: 'mounter', volumeMounts: [{ name: 'dfs', mountPath: '/mnt/decypharr-dfs', mountPropagation: 'Bidirectional' }] }], volumes: [{ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } }] },
      },
      { kind, ...(owner === undefined ? {} : { owner }) },
    );
    expect(rules(auditInventory({ namespaces: [], pods: [pod] }, options()).findings)).toEqual(['DFS001', 'DFS002', 'DFS003']);
  });

  it('takes the mounter namespace from the options', () => {
    const pod = podOf(
      {
        metadata: { name: 'dfs-mounter-x', namespace: 'storage', labels: {} },
        spec: { containers: [{ name: 'mounter', volumeMounts: [{ name: 'dfs', mountPath: '/mnt/decypharr-dfs', mountPropagation: 'Bidirectional' }] }], volumes: [{ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } }] },
      },
      { owner: { kind: 'DaemonSet', name: 'dfs-mounter' } },
    );
    expect(auditInventory({ namespaces: [], pods: [pod] }, options(defaultConfig, { mounterNamespace: 'storage' })).findings).toEqual([]);
    expect(auditInventory({ namespaces: [], pods: [pod] }, options()).findings).not.toEqual([]);
  });
});

describe('audit rules that read namespace labels', () => {
  const unlabelled = (): Record<string, any> => {
    const pod = loadPod('sonarr');
    delete pod.metadata.labels['dfs-injector.io/role'];
    return pod;
  };

  it('reports an unlabelled pod in a default-role=consumer namespace that was not injected', () => {
    const ns: InventoryNamespace = { name: 'media', labels: { 'dfs-injector.io/injection': 'enabled', 'dfs-injector.io/default-role': 'consumer' } };
    const findings = audit({ namespaces: [ns], pods: [podOf(unlabelled())] });
    expect(rules(findings)).toEqual(['DFS004']);
    expect(findings[0]?.message).toContain('selected as consumer by the namespace default-role');
  });

  it('respects role none in a default-role=consumer namespace', () => {
    const ns: InventoryNamespace = { name: 'media', labels: { 'dfs-injector.io/injection': 'enabled', 'dfs-injector.io/default-role': 'consumer' } };
    const pod = unlabelled();
    pod.metadata.labels['dfs-injector.io/role'] = 'none';
    expect(audit({ namespaces: [ns], pods: [podOf(pod)] })).toEqual([]);
  });

  it('does not expect a workload template to carry the status annotation', () => {
    expect(audit({ pods: [podOf(loadPod('sonarr'), { kind: 'Deployment', apiVersion: 'apps/v1' })] })).toEqual([]);
  });

  it.each([
    ['disabled', { 'dfs-injector.io/injection': 'disabled' }, 'media', 'is not opted in (dfs-injector.io/injection is "disabled")'],
    ['excluded', { 'dfs-injector.io/injection': 'enabled' }, 'kube-system', 'namespace kube-system is excluded from injection'],
  ])('reports a role label in a %s namespace', (_what, labels, name, message) => {
    const pod = podOf(loadPod('sonarr'), { namespace: name });
    const findings = audit({ namespaces: [{ name, labels }], pods: [pod] });
    expect(rules(findings)).toEqual(['DFS010']);
    expect(findings[0]?.message).toContain(message);
  });

  it('reports a labelled source in a restricted namespace both as not injected and as blocked by Pod Security', () => {
    const ns: InventoryNamespace = { name: 'media', labels: { 'dfs-injector.io/injection': 'enabled', 'pod-security.kubernetes.io/enforce': 'restricted' } };
    const findings = audit({ namespaces: [ns], pods: [podOf(loadPod('decypharr-source'))] });
    expect(rules(findings)).toEqual(['DFS004', 'DFS008']);
    expect(findings[1]?.message).toContain('restricted forbids a privileged source container');
  });

  it('reports a hand-written consumer in a baseline namespace even when the namespace is not opted in', () => {
    const pod = unlabelled();
    pod.spec.volumes.push({ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } });
    const findings = audit({ namespaces: [{ name: 'media', labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } }], pods: [podOf(pod)] });
    expect(rules(findings)).toEqual(['DFS008', 'DFS003']);
  });

  it('skips the namespace rules for pods whose namespace is unknown, and counts them', () => {
    const result = auditInventory({ namespaces: [], pods: [podOf(loadPod('sonarr')), podOf(loadPod('plex-multi-container'), { namespace: 'tv' })] }, options());
    expect(result.findings).toEqual([]);
    expect(result.skipped[0]).toEqual({ rules: ['DFS004', 'DFS008', 'DFS010'], reason: expect.stringContaining('not checked for 2 pods: the labels of namespaces media, tv are not known') });
  });
});

describe('the node rule', () => {
  const consumer = (node: string, phase = 'Running', name = 'sonarr'): InventoryPod => ({ ...podOf(injected('sonarr')), name, nodeName: node, phase });

  it('passes a node whose mounter is Ready even when another mounter pod there is not', () => {
    expect(audit({ pods: [consumer('node-a')], mounterPods: [{ nodeName: 'node-a', ready: false, name: 'old' }, MOUNTER_READY] })).toEqual([]);
  });

  it('reports a node without a mounter pod, listing a few of its consumers', () => {
    const pods = ['a', 'b', 'c', 'd', 'e'].map((n) => consumer('node-c', 'Running', `sonarr-${n}`));
    const findings = audit({ pods, mounterPods: [MOUNTER_READY] });
    expect(findings).toEqual([
      {
        rule: 'DFS009',
        severity: 'critical',
        resource: { apiVersion: 'v1', kind: 'Node', name: 'node-c' },
        message: 'node node-c runs 5 DFS consumer pods (media/sonarr-a, media/sonarr-b, media/sonarr-c and 2 more) but no dfs-mounter pod runs there',
      },
    ]);
  });

  it('ignores finished pods and pods not yet scheduled', () => {
    expect(audit({ pods: [consumer('node-c', 'Succeeded'), consumer('node-c', 'Failed'), consumer('')], mounterPods: [] })).toEqual([]);
  });

  it('is skipped, and says why, when node state is unknown', () => {
    const result = auditInventory({ namespaces: [OPTED_IN], pods: [consumer('node-c')] }, options(defaultConfig, { nodesUnavailable: 'no nodes here' }));
    expect(result.findings).toEqual([]);
    expect(result.skipped).toEqual([{ rules: ['DFS009'], reason: 'no nodes here' }]);
  });
});

describe('the source rules', () => {
  it('does not ask for the shim when shim mode is off', () => {
    const config = configSchema.parse({ source: { shim: { mode: 'off' } } });
    expect(audit({ pods: [podOf(injected('decypharr-source', config))] }, options(config))).toEqual([]);
  });

  it('asks for the shim when the sidecar was injected without it and the config now wants it', () => {
    const off = configSchema.parse({ source: { shim: { mode: 'off' } } });
    const findings = audit({ pods: [podOf(injected('decypharr-source', off))] }, options(defaultConfig, { driftUnavailable: 'unknown' }));
    expect(rules(findings)).toEqual(['DFS006']);
  });

  it('finds the sidecar by the name the status recorded, after the config renamed it', () => {
    const pod = injected('decypharr-source');
    pod.spec.containers[1].volumeMounts[0].readOnly = false;
    const renamed = configSchema.parse({ source: { sidecar: { name: 'samba' } } });
    const findings = audit({ pods: [podOf(pod)] }, options(renamed, { driftUnavailable: 'unknown' }));
    expect(rules(findings)).toEqual(['DFS007']);
    expect(findings[0]?.message).toBe('smbd sidecar "dfs-smbd" mounts volume "dfs-injector-source" at the share path /mnt/dfs writable (readOnly is not true)');
  });
});

describe('auditing manifests', () => {
  it('audits the template of every workload kind and List items, with the namespace of the object', () => {
    const template = { metadata: { labels: {} }, spec: { containers: [{ name: 'c', volumeMounts: [{ name: 'd', mountPath: '/d', readOnly: true, mountPropagation: 'HostToContainer' }] }], volumes: [{ name: 'd', hostPath: { path: '/mnt/decypharr-dfs' } }] } };
    const docs = [
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'scan', namespace: 'jobs' }, spec: { jobTemplate: { spec: { template } } } },
      { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' }, spec: { template } }] },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } },
    ];
    const inventory = inventoryFromDocuments(docs, { defaultNamespace: 'media' });
    expect(inventory.mounterPods).toBeUndefined();
    const findings = auditInventory(inventory, options()).findings;
    expect(findings.map((f) => `${f.rule} ${f.resource.apiVersion} ${f.resource.kind} ${f.resource.namespace}/${f.resource.name}`)).toEqual([
      'DFS003 batch/v1 CronJob jobs/scan',
      'DFS003 apps/v1 StatefulSet media/db',
    ]);
  });
});

describe('failsAt', () => {
  it('compares the worst finding with the threshold', () => {
    const pod = injected('sonarr');
    delete pod.spec.containers[0].volumeMounts.at(-1).mountPropagation;
    const result = auditInventory({ namespaces: [OPTED_IN], pods: [podOf(pod)] }, options());
    expect(rules(result.findings)).toEqual(['DFS002']);
    expect(failsAt(result, 'high')).toBe(false);
    expect(failsAt(result, 'medium')).toBe(true);
    expect(failsAt(result, 'none')).toBe(false);
  });
});

describe('auditCluster', () => {
  it('reads namespaces before pods and skips the node rule when the mounter pods cannot be read', async () => {
    const calls: string[] = [];
    const reader: ClusterReader = {
      listNamespaces() {
        calls.push('namespaces');
        return from([OPTED_IN]);
      },
      readNamespace: () => Promise.reject(new Error('not used')),
      listPods(namespace) {
        calls.push(`pods ${namespace ?? '*'}`);
        return from([podOf(loadPod('sonarr'))]);
      },
      listMounterPods: () => {
        calls.push('mounters');
        return Promise.reject(new Error('forbidden'));
      },
    };
    const result = await auditCluster(reader, options(), (e) => (e instanceof Error ? `nope: ${e.message}` : undefined));
    expect(calls).toEqual(['namespaces', 'mounters', 'pods *']);
    expect(rules(result.findings)).toEqual(['DFS004']);
    expect(result.skipped).toEqual([{ rules: ['DFS009'], reason: 'nope: forbidden' }]);
  });
});

describe('the project manifests', () => {
  it('raise no finding for the mounter DaemonSet, even without the namespace kustomize adds', () => {
    const text = readFileSync(new URL('../../manifests/mounter/daemonset.yaml', import.meta.url), 'utf8');
    // Applied with -n dfs-system: a DaemonSet named dfs-mounter elsewhere is not the mounter.
    const inventory = inventoryFromDocuments(parseAllDocuments(text).map((d) => d.toJS()), { defaultNamespace: 'dfs-system' });
    expect(inventory.pods).toHaveLength(1);
    const result = auditInventory(inventory, options());
    expect(result.findings).toEqual([]);
    expect(result.checked.pods).toBe(0);
  });
});
