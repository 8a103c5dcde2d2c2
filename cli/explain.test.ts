import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { defaultConfig } from '../lib/config.js';
import { injectDocument } from '../lib/inject.js';
import { captureIo } from '../test/support/cli-io.js';
import { startFakeApiServer, type FakeApiServer, type KubeObject } from '../test/support/fake-apiserver.js';
import { loadPod } from '../test/support/fixtures.js';
import { expectGolden } from '../test/support/golden.js';
import { KubeClusterReader } from './kube-reader.js';
import { run, type ExplainReaderFactory } from './explain.js';

const GOLDEN = new URL('../test/golden/explain/', import.meta.url);
const OPTED_IN = 'dfs-injector.io/injection=enabled';

const noCluster: ExplainReaderFactory = () => {
  throw new Error('this test explains manifests; it must not read a cluster');
};

async function explain(argv: string[], stdin?: unknown, factory: ExplainReaderFactory = noCluster): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(stdin === undefined ? {} : { stdin: typeof stdin === 'string' ? stdin : JSON.stringify(stdin) });
  const code = await run(argv, io, factory);
  return { code, out: io.out(), err: io.err() };
}

describe('explain on fixtures', () => {
  it('explains a consumer in an opted-in namespace, ending with the diff of the injection', async () => {
    const { code, out, err } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], loadPod('sonarr'));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('1. Namespace media against each webhook entry\'s namespaceSelector: ok');
    expect(out).toContain('→ the API server calls /mutate (pods.dfs-injector.io) for this pod');
    expect(out).toContain('consumer, from the pod label dfs-injector.io/role=consumer');
    expect(out).toContain('Result: INJECTED by /mutate as a consumer');
    expect(out).toContain('auditAnnotation injected: volumes=dfs-injector-dfs mounts=sonarr:/mnt/dfs');
    expect(out).toMatch(/^\+ {4}- name: dfs-injector-dfs\n\+ {6}hostPath:\n\+ {8}path: \/mnt\/decypharr-dfs$/m);
    expectGolden(out, new URL('consumer-opted-in.txt', GOLDEN));
  });

  it('explains that a pod with role none is not sent, so it does not wait on the webhook', async () => {
    const pod = loadPod('sonarr');
    pod.metadata.labels['dfs-injector.io/role'] = 'none';
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], pod);
    expect(out).toContain('[no]   pods.dfs-injector.io: dfs-injector.io/role (the label is "none"); dfs-injector.io/role notin (none) (the label is "none")');
    expect(out).toContain('→ dfs-injector.io/role=none: the pod opted out, so no entry selects it and the API server creates it without calling the webhook (even while the webhook is down)');
    expect(out).toContain('Result: not sent to the webhook: the pod is created as written');
  });

  it('explains why an unlabelled pod is not sent to the webhook', async () => {
    const pod = loadPod('sonarr');
    delete pod.metadata.labels['dfs-injector.io/role'];
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], pod);
    expect(out).toContain('[no]   pods.dfs-injector.io: dfs-injector.io/role (the label is not set); dfs-injector.io/role notin (none) (the label is not set)');
    expect(out).toContain('→ no entry selects this pod, so the API server creates it without calling the webhook');
    expect(out).toContain('Result: not sent to the webhook: the pod is created as written');
    expect(out).not.toContain('Webhook response');
    expect(out).toMatch(/No change\.\n$/);
    expectGolden(out, new URL('unselected.txt', GOLDEN));
  });

  it('explains that kube-system is never injected, even when it is labelled opted in', async () => {
    const pod = loadPod('sonarr');
    pod.metadata.namespace = 'kube-system';
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], pod);
    expect(out).toContain('kubernetes.io/metadata.name notin (kube-system,dfs-system) is false: the label is "kube-system"');
    expect(out).toContain('→ no entry serves this namespace: kube-system is excluded');
    expect(out).not.toContain('2. Pod labels');
    expectGolden(out, new URL('kube-system.txt', GOLDEN));
  });

  it('explains the denial of an invalid annotation, naming it, its value and the rule', async () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/mount-path'] = 'media/dfs';
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], pod);
    expect(out).toContain('5. Override annotations: no');
    expect(out).toContain('[no]   annotation dfs-injector.io/mount-path="media/dfs" is invalid: the path must be an absolute path');
    expect(out).toContain('Result: DENIED by /mutate (HTTP 400)');
    expect(out).toContain('status: 400 BadRequest');
    expect(out).toContain('auditAnnotation denied: invalid-annotation');
    expectGolden(out, new URL('invalid-annotation.txt', GOLDEN));
  });

  it('explains the refusal of a consumer in a namespace that enforces baseline', async () => {
    const { out } = await explain(['-f', '-', '--namespace-labels', `${OPTED_IN},pod-security.kubernetes.io/enforce=baseline`], loadPod('sonarr'));
    expect(out).toContain('→ the API server calls /mutate/pod-security-enforced (pods-pod-security.dfs-injector.io) for this pod');
    expect(out).toContain('4. Pod Security: no');
    expect(out).toContain('the namespace enforces Pod Security baseline, which forbids hostPath volumes');
    expect(out).toContain('Result: DENIED by /mutate/pod-security-enforced (HTTP 403)');
    expect(out).not.toContain('Override annotations');
    expectGolden(out, new URL('baseline.txt', GOLDEN));
  });

  it('says what it assumed when no namespace labels were given', async () => {
    const { out } = await explain(['-f', '-'], loadPod('sonarr'));
    expect(out).toContain('labels (assumed, since neither --namespace-labels nor a cluster was given): dfs-injector.io/injection=enabled, kubernetes.io/metadata.name=media');
  });

  it('explains an unlabelled pod in a namespace of consumers as a consumer', async () => {
    const pod = loadPod('radarr-native-sidecar');
    delete pod.metadata.labels['dfs-injector.io/role'];
    const { out } = await explain(['-f', '-', '--namespace-labels', `${OPTED_IN},dfs-injector.io/default-role=consumer`], pod);
    expect(out).toContain('→ the API server calls /mutate/namespace-consumer (namespace-consumers.dfs-injector.io) for this pod');
    expect(out).toContain('consumer, from the namespace label dfs-injector.io/default-role=consumer (the pod has no dfs-injector.io/role label)');
  });

  it('explains a pod that is already injected as unchanged', async () => {
    const injected = injectDocument(loadPod('decypharr-source'), defaultConfig).object;
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], injected);
    expect(out).toContain('already injected (already-injected): nothing to add');
    expect(out).toContain('Result: sent to /mutate; already injected, so nothing changes');
  });

  it('shows the warnings the webhook returns', async () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/share-name'] = 'media';
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], pod);
    expect(out).toContain('[warn] annotation dfs-injector.io/share-name applies to source pods and was ignored on this consumer pod');
    expect(out).toContain('warning: annotation dfs-injector.io/share-name applies to source pods and was ignored on this consumer pod');
  });
});

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: radarr
  namespace: media
spec:
  selector:
    matchLabels: { app: radarr }
  template:
    metadata:
      labels: { app: radarr, dfs-injector.io/role: consumer }
    spec:
      containers:
        - name: radarr
          image: lscr.io/linuxserver/radarr:5.14.0
---
apiVersion: v1
kind: Pod
metadata:
  name: other
  namespace: tools
spec:
  containers: [{ name: c, image: busybox:1.37 }]
`;

describe('explain on workloads and streams', () => {
  it('explains the pod template of a workload, with the diff on the template', async () => {
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], deployment);
    expect(out.startsWith('Deployment media/radarr (pod template)\n')).toBe(true);
    expect(out).toContain('the webhook does this to every pod created from the template');
    expect(out).toContain('+++ <stdin> (as admitted)');
    expect(out).toMatch(/^\+ {8}- name: dfs-injector-dfs$/m);
    expect(out).not.toContain('Pod tools/other');
  });

  it('explains every document with --all, as JSON on request', async () => {
    const { out } = await explain(['-f', '-', '--all', '--namespace-labels', OPTED_IN, '-o', 'json'], deployment);
    const explanations = JSON.parse(out);
    expect(explanations.map((e: any) => [e.subject, e.verdict, e.entry?.path ?? null])).toEqual([
      ['Deployment media/radarr (pod template)', 'injected', '/mutate'],
      ['Pod tools/other', 'not-sent', null],
    ]);
    expect(explanations[0].steps.map((s: any) => `${s.title}: ${s.status}`)).toEqual([
      "Namespace media against each webhook entry's namespaceSelector: ok",
      'Pod labels against the objectSelector: ok',
      'Role: ok',
      'Pod Security: ok',
      'Override annotations: ok',
      'Injection plan: ok',
    ]);
  });

  it('patches the right item of a List', async () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }, loadPod('sonarr')] };
    const { out } = await explain(['-f', '-', '--namespace-labels', OPTED_IN], list);
    const added = out.split('\n').filter((l) => l.startsWith('+ ') || l.startsWith('+  '));
    expect(added.length).toBeGreaterThan(0);
    expect(out).toContain('Result: INJECTED');
  });
});

describe('explain usage', () => {
  it.each([
    [[], 'give either a pod or workload (NAMESPACE/NAME, KIND/NAME) or manifests with -f'],
    [['a/b', '-f', 'x'], 'give either a pod or workload (NAMESPACE/NAME, KIND/NAME) or manifests with -f'],
    [['a/b/c'], '"b" in "a/b/c" is not a kind explain reads'],
    [['a/b', 'c/d'], 'explain takes one pod or workload, got 2'],
    [['--all', 'a/b'], '--all applies to -f'],
    [['-f', '-', '--namespace-labels', 'oops'], '--namespace-labels "oops" is not key=value (write labels as k=v,k2=v2)'],
    [['-f', '-', '-o', 'yaml'], '--output "yaml" must be "text" or "json"'],
  ])('exits 2 on %j', async (argv, message) => {
    const { code, err } = await explain([...argv]);
    expect(code).toBe(2);
    expect(err).toMatch(new RegExp(`^error: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*; see "dfs-injector explain --help"\n$`));
  });
});

describe('explain against an API server', () => {
  let fake: FakeApiServer;
  const factory: ExplainReaderFactory = () => KubeClusterReader.fromKubeConfig(fake.kubeConfig());

  beforeAll(async () => {
    fake = await startFakeApiServer();
    fake.put('/api/v1/namespaces/media', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media', labels: { 'dfs-injector.io/injection': 'enabled' } } });
    const pod = loadPod('sonarr');
    pod.metadata.name = 'sonarr-0';
    pod.metadata.managedFields = [{ manager: 'kube-controller-manager', operation: 'Update' }];
    pod.status = { phase: 'Pending' };
    fake.put('/api/v1/namespaces/media/pods/sonarr-0', pod as KubeObject);
    const [radarr] = parseAllDocuments(deployment).map((d) => d.toJS() as KubeObject);
    fake.put('/apis/apps/v1/namespaces/media/deployments/radarr', { ...radarr!, status: { replicas: 1 } });
    fake.put('/apis/batch/v1/namespaces/media/cronjobs/scan', {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'scan', namespace: 'media' },
      spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { metadata: { labels: { 'dfs-injector.io/role': 'consumer' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'scan', image: 'busybox:1.37' }] } } } } },
    });
  });

  afterAll(async () => {
    await fake.close();
  });

  it('reads the pod and its namespace labels, and leaves status and managedFields out of the diff', async () => {
    const { code, out, err } = await explain(['media/sonarr-0'], undefined, factory);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('labels (from the cluster): dfs-injector.io/injection=enabled, kubernetes.io/metadata.name=media');
    expect(out).toContain('--- pod media/sonarr-0 (as written)');
    expect(out).not.toContain('managedFields');
    expect(out).not.toContain('phase: Pending');
    expect(out).toContain('Result: INJECTED by /mutate as a consumer');
  });

  it('accepts NAME with -n', async () => {
    const { out } = await explain(['sonarr-0', '-n', 'media'], undefined, factory);
    expect(out.startsWith('Pod media/sonarr-0\n')).toBe(true);
  });

  it('prefers --namespace-labels to the cluster', async () => {
    const { out } = await explain(['media/sonarr-0', '--namespace-labels', ''], undefined, factory);
    expect(out).toContain('labels (from --namespace-labels): kubernetes.io/metadata.name=media');
    expect(out).toContain('Result: not sent to the webhook');
  });

  it('exits 3 for a pod that does not exist', async () => {
    const { code, err } = await explain(['media/nope'], undefined, factory);
    expect(code).toBe(3);
    expect(err).toBe('error: pod media/nope not found\n');
  });

  it('reads a workload as KIND/NAME with -n and explains its pod template', async () => {
    const { code, out, err } = await explain(['deploy/radarr', '-n', 'media'], undefined, factory);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out.startsWith('Deployment media/radarr (pod template)\n')).toBe(true);
    expect(out).toContain('labels (from the cluster): dfs-injector.io/injection=enabled');
    expect(out).toContain('--- deployment media/radarr (as written)');
    expect(out).toMatch(/^\+ {8}- name: dfs-injector-dfs$/m);
    // The status follows the template, inside the diff's context: it is left out, as the webhook never sees it.
    expect(out).not.toMatch(/^ status:/m);
    expect(out).toContain('Result: INJECTED by /mutate as a consumer');
  });

  it('reads a workload as NAMESPACE/KIND/NAME', async () => {
    const { code, out } = await explain(['media/cronjobs/scan'], undefined, factory);
    expect(code).toBe(0);
    expect(out.startsWith('CronJob media/scan (pod template)\n')).toBe(true);
    expect(out).toContain('Result: INJECTED by /mutate as a consumer');
    expect(fake.requests.some((r) => r.method === 'GET' && r.path === '/apis/batch/v1/namespaces/media/cronjobs/scan')).toBe(true);
  });

  it('exits 3 for a workload that does not exist, naming its kind', async () => {
    const { code, err } = await explain(['media/sts/nope'], undefined, factory);
    expect(code).toBe(3);
    expect(err).toBe('error: statefulset media/nope not found\n');
  });

  it('reads namespace labels for manifests from the cluster when a context is given', async () => {
    const pod = loadPod('sonarr');
    const { out } = await explain(['-f', '-', '--context', 'fake'], pod, factory);
    expect(out).toContain('labels (from the cluster)');
    // The fake holds no namespace "tools".
    const other = parseAllDocuments(deployment)[1]?.toJS();
    const missing = await explain(['-f', '-', '--context', 'fake'], other, factory);
    expect(missing.code).toBe(3);
    expect(missing.err).toContain('namespace "tools" does not exist (pass its labels with --namespace-labels to explain anyway)');
  });
});
