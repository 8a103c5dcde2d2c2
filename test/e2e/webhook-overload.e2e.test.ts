import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../lib/config.js';
import { buildServer, type WebhookServer } from '../../webhook/server.js';
import { needs } from '../support/prereq.js';
import { findControlPlaneBinaries } from './binaries.js';
import { KubeApiError, waitFor, type KubeObject } from './harness.js';
import { useControlPlane } from './use-control-plane.js';

// What the API server makes of the webhook's overload answer (429 with a Status body) under
// failurePolicy Fail: the user sees the webhook's own message at once, after one call, and a
// create after the overload clears goes through. (With a Retry-After header, kube-apiserver
// retried every second until the webhook timeout and answered "context deadline exceeded".)

const binaries = findControlPlaneBinaries();
const available = needs('a loopback Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)', binaries.available, binaries.hint);

async function overloaded(webhook: WebhookServer): Promise<number> {
  const metric = await webhook.metrics.registry.getSingleMetric('dfs_injector_admissions_total')!.get();
  return metric.values.filter((v) => v.labels.outcome === 'overloaded').reduce((sum, v) => sum + v.value, 0);
}

describe.skipIf(!available)('an overloaded webhook, as the API server sees it', () => {
  const plane = useControlPlane();

  it('refuses the pod with the webhook\'s 429 message after one call, and admits the next once there is room', async () => {
    const { client, pki } = plane();
    const cert = await pki.issue({ name: 'overload-webhook', commonName: 'overload-webhook', ipAddresses: ['127.0.0.1'], usage: 'server' });
    const tls = { cert: await readFile(cert.cert, 'utf8'), key: await readFile(cert.key, 'utf8') };
    const webhook = buildServer({ getConfig: () => defaultConfig, tls, logger: false, maxInFlight: 1 });
    await webhook.admission.listen({ port: 0, host: '127.0.0.1' });
    const port = (webhook.admission.server.address() as AddressInfo).port;
    const namespace = 'overload';
    await plane().createNamespace(namespace, { 'dfs-injector.io/injection': 'enabled' });
    await client.apply({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'overload' },
      webhooks: [
        {
          name: 'pods.overload.dfs-injector.io',
          clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(pki.caPem).toString('base64') },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: { 'dfs-injector.io/injection': 'enabled' } },
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 10,
        },
      ],
    });
    const pod = (name: string): KubeObject =>
      ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, labels: { 'dfs-injector.io/role': 'consumer' } },
        spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
      });
    await waitFor('the webhook to be called', async () => {
      const r = await client.createWithResult(pod('probe'), { dryRun: true });
      return (r.object as any).spec?.volumes !== undefined;
    });

    // The one slot is taken by a request whose body never ends, for the rest of the test.
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: pki.caPem });
    session.on('error', () => undefined);
    const held = session.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' }, { endStream: false });
    held.on('error', () => undefined);
    try {
      await waitFor('the held request to fill the slot', async () => (await webhook.metrics.registry.getSingleMetric('dfs_injector_requests_in_flight')!.get()).values[0]?.value === 1);

      const refused = await client.create(pod('refused')).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(KubeApiError);
      const message = (refused as KubeApiError).message;
      process.stderr.write(`API server answer while the webhook is overloaded: ${message}\n`);
      expect(message).toContain('failed calling webhook "pods.overload.dfs-injector.io"');
      expect(message).toContain('dfs-injector is answering 1 requests already, its limit; retry shortly');
      // One call, no retries against a busy replica, and no wait for the timeout.
      expect(await overloaded(webhook)).toBe(1);

      held.close(http2.constants.NGHTTP2_CANCEL);
      await waitFor('the slot to free', async () => (await webhook.metrics.registry.getSingleMetric('dfs_injector_requests_in_flight')!.get()).values[0]?.value === 0);
      const admitted = await client.createWithResult(pod('admitted'));
      expect((admitted.object as any).spec?.volumes).toBeDefined();
    } finally {
      session.destroy();
      await client.delete('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', 'overload');
      await webhook.close();
    }
  }, 120_000);
});
