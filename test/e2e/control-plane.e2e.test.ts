import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../support/prereq.js';
import { findControlPlaneBinaries, sumSamples, waitFor, type KubeObject } from './harness.js';
import { useControlPlane } from './use-control-plane.js';

const binaries = findControlPlaneBinaries();
const available = needs('a loopback Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)', binaries.available, binaries.hint);

interface Pod extends KubeObject {
  spec: { serviceAccountName?: string; containers: { name: string; image: string }[] };
  status?: { phase?: string };
}

describe.skipIf(!available)('loopback control plane', () => {
  const plane = useControlPlane({}, 150_000);
  const ns = 'e2e-smoke';

  beforeAll(() => {
    const cp = plane();
    process.stderr.write(`control plane ${cp.versions.kubernetes} ready in ${cp.startupMs} ms at ${cp.server}\n`);
  });

  it('serves the pinned Kubernetes version', async () => {
    const version = (await plane().client.call({ path: '/version' })).json<{ gitVersion: string }>();
    expect(version.gitVersion).toBe(plane().versions.kubernetes);
  });

  it('creates a namespace and its default ServiceAccount', async () => {
    const { client } = plane();
    await plane().createNamespace(ns, { 'dfs-injector.io/injection': 'enabled' });
    const sa = await client.get('v1', 'ServiceAccount', 'default', ns);
    expect(sa?.metadata.name).toBe('default');
    // The same namespace through @kubernetes/client-node, so the kubeconfig is known to work with it.
    const core = plane().kc.makeApiClient(CoreV1Api);
    const read = await core.readNamespace({ name: ns });
    expect(read.metadata?.labels?.['dfs-injector.io/injection']).toBe('enabled');
  }, 90_000);

  it('runs the Deployment and ReplicaSet controllers: a Deployment yields a Pending Pod', async () => {
    const { client } = plane();
    await client.applyManifest(
      `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: smoke
spec:
  replicas: 1
  selector:
    matchLabels: { app: smoke }
  template:
    metadata:
      labels: { app: smoke }
    spec:
      containers:
        - name: app
          image: registry.k8s.io/pause:3.10
`,
      { namespace: ns },
    );
    const rs = await waitFor('a ReplicaSet of Deployment smoke', async () => {
      const items = await client.list('apps/v1', 'ReplicaSet', { namespace: ns, labelSelector: 'app=smoke' });
      return items[0];
    });
    expect(rs.metadata.ownerReferences?.[0]?.kind).toBe('Deployment');
    const pod = await waitFor('a Pod of Deployment smoke', async () => {
      const items = await client.list<Pod>('v1', 'Pod', { namespace: ns, labelSelector: 'app=smoke' });
      return items[0];
    });
    expect(pod.metadata.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
    // No scheduler and no kubelet: the pod exists and stays Pending.
    expect(pod.status?.phase).toBe('Pending');
    expect(pod.spec.serviceAccountName).toBe('default');
  }, 90_000);

  it('exposes the API server metrics and the audit log', async () => {
    const samples = await plane().metrics();
    expect(sumSamples(samples, 'apiserver_request_total', { verb: 'POST', resource: 'namespaces' })).toBeGreaterThan(0);
    const events = await waitFor('an audit event for a pod create', async () =>
      (await plane().auditEvents()).find(
        (e) => e.verb === 'create' && e.objectRef?.resource === 'pods' && e.objectRef.namespace === ns && e.stage === 'ResponseComplete',
      ),
    );
    expect(events.responseStatus?.code).toBe(201);
  });

  // Proves what scenario tests rely on: a webhook registered by URL on loopback is called,
  // and its patch, warnings, auditAnnotations and latency metric all reach the test.
  it('calls a loopback webhook and surfaces its patch, warnings, audit annotations and metrics', async () => {
    const { client, pki } = plane();
    const cert = await pki.issue({ name: 'stub-webhook', commonName: 'stub-webhook', ipAddresses: ['127.0.0.1'], usage: 'server' });
    const server: Server = createServer({ cert: await readFile(cert.cert), key: await readFile(cert.key) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } };
        const patch = [{ op: 'add', path: '/metadata/annotations', value: { 'stub.e2e/seen': 'true' } }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: true,
              patchType: 'JSONPatch',
              patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
              warnings: ['stub webhook was here'],
              auditAnnotations: { injected: 'yes' },
            },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const webhookNs = 'e2e-webhook';
      await plane().createNamespace(webhookNs, { 'e2e-stub': 'enabled' });
      await client.apply({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'e2e-stub' },
        webhooks: [
          {
            name: 'stub.e2e.dfs-injector.io',
            clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(pki.caPem).toString('base64') },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            namespaceSelector: { matchLabels: { 'e2e-stub': 'enabled' } },
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            timeoutSeconds: 5,
          },
        ],
      });
      const pod: Pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'stubbed', namespace: webhookNs },
        spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
      };
      // A new webhook configuration reaches the admission chain through an informer, a moment later.
      await waitFor('the stub webhook to be active', async () => {
        const r = await client.createWithResult(pod, { dryRun: true });
        return r.object.metadata.annotations?.['stub.e2e/seen'] === 'true';
      });
      const created = await client.createWithResult(pod);
      expect(created.object.metadata.annotations?.['stub.e2e/seen']).toBe('true');
      expect(created.warnings).toContain('stub webhook was here');

      const samples = await plane().metrics();
      expect(
        sumSamples(samples, 'apiserver_admission_webhook_admission_duration_seconds_count', {
          name: 'stub.e2e.dfs-injector.io',
          type: 'admit',
          operation: 'CREATE',
        }),
      ).toBeGreaterThanOrEqual(2);

      const event = await waitFor('the audit event of the stubbed pod', async () =>
        (await plane().auditEvents()).find(
          (e) => e.verb === 'create' && e.objectRef?.name === 'stubbed' && e.stage === 'ResponseComplete' && e.responseStatus?.code === 201,
        ),
      );
      expect(event.annotations?.['stub.e2e.dfs-injector.io/injected']).toBe('yes');
    } finally {
      await client.delete('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', 'e2e-stub');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 90_000);

  it('returns API errors with the server message', async () => {
    const err = await plane()
      .client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ status: 409, reason: 'AlreadyExists' });
  });
});
