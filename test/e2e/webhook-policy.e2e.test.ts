import type { AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { KubeEndpoint } from '../../kube/api.js';
import { loadKubeEndpoint } from '../../kube/endpoint.js';
import { afterAll, describe, expect, it } from 'vitest';
import { confirmServedBy, tlsCertificateFetcher } from '../../certs/endpoints.js';
import { issueCertificateAuthority, issueServingCertificate } from '../../certs/issue.js';
import { KubeCertStore } from '../../certs/kube-store.js';
import { findKustomize, KUSTOMIZE_HINT, render } from '../manifests/kustomize.js';
import { needs } from '../support/prereq.js';
import { findControlPlaneBinaries } from './binaries.js';
import { KubeApiError, waitFor, writeServiceAccountKubeconfig, type KubeObject } from './harness.js';
import { useControlPlane } from './use-control-plane.js';

// The webhook's ServiceAccount against a real kube-apiserver, with the RBAC and the policy of
// manifests/overlays/default: the ValidatingAdmissionPolicy lets it patch the caBundle of its
// MutatingWebhookConfiguration (RBAC allows it to patch all of it) and nothing else, an
// administrator is not affected; and it can read the ready endpoints of its Service from
// EndpointSlices, which a CA rotation checks over TLS before dropping the previous CA.

const binaries = findControlPlaneBinaries();
const kustomize = findKustomize();
const available =
  needs('a loopback Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)', binaries.available, binaries.hint) &&
  needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT);

const MWC_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/dfs-injector';
// Impersonation by the admin: the request is authorized and admitted as the webhook pod's token
// would be (the same user name and groups).
const AS_WEBHOOK = {
  'Impersonate-User': 'system:serviceaccount:dfs-system:dfs-injector',
  'Impersonate-Group': 'system:serviceaccounts',
};

describe.skipIf(!available)('the webhook may change only caBundle (ValidatingAdmissionPolicy)', () => {
  const plane = useControlPlane({ controllerManager: false });

  async function patch(ops: object[], headers: Record<string, string> = AS_WEBHOOK, dryRun = false): Promise<{ status: number; message: string }> {
    try {
      const path = dryRun ? `${MWC_PATH}?dryRun=All` : MWC_PATH;
      await plane().client.call({ method: 'PATCH', path, body: ops, contentType: 'application/json-patch+json', headers });
      return { status: 200, message: '' };
    } catch (error) {
      if (error instanceof KubeApiError) return { status: error.status, message: error.message };
      throw error;
    }
  }

  it('lets the ServiceAccount patch caBundle and refuses a selector change, a new entry and a new URL', async () => {
    const { client } = plane();
    const wanted = new Set(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
    const objects = render(kustomize!, 'overlays/default').filter((o) => wanted.has(o.kind));
    expect(objects.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy'))).toHaveLength(2);
    for (const kind of wanted) {
      for (const object of objects.filter((o) => o.kind === kind)) await client.apply(object);
    }
    const bundle = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

    // A policy reaches the admission chain a moment after it is created: wait (with dry runs,
    // which are admitted like real writes but change nothing) until it refuses.
    const selectorChange = [{ op: 'replace', path: '/webhooks/0/namespaceSelector', value: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }];
    const refused = await waitFor(
      'the policy to refuse a selector change by the webhook ServiceAccount',
      async () => {
        const result = await patch(selectorChange, AS_WEBHOOK, true);
        if (result.status === 200) {
          const policy = await client.get('admissionregistration.k8s.io/v1', 'ValidatingAdmissionPolicy', 'dfs-injector-cabundle-only');
          throw new Error(`a selector change went through (dry run); policy status: ${JSON.stringify(policy?.status)}`);
        }
        return result.status === 403 ? result : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const real = await patch(selectorChange);
    expect(real.status, real.message).toBe(403);
    expect(refused.message).toContain('may change only clientConfig.caBundle');
    expect(refused.message).toContain('dfs-injector-cabundle-only');

    // What the certificate lifecycle does: test the current value, then set it, on every entry.
    const current = await client.get<KubeObject & { webhooks: { clientConfig: { caBundle?: string } }[] }>('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', 'dfs-injector');
    const ops = current!.webhooks.flatMap((_, i) => [{ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle }]);
    expect(await patch(ops)).toEqual({ status: 200, message: '' });

    for (const other of [
      [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }],
      [{ op: 'replace', path: '/webhooks/0/clientConfig/service/namespace', value: 'elsewhere' }],
      [{ op: 'remove', path: '/webhooks/1' }],
      [{ op: 'add', path: '/metadata/labels/extra', value: 'x' }],
      // caBundle together with a change elsewhere: the whole patch is refused.
      [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: bundle }, { op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 30 }],
    ]) {
      const result = await patch(other);
      expect(result.status, `${JSON.stringify(other)}: ${result.message}`).toBe(403);
      expect(result.message).toContain('dfs-injector-cabundle-only');
    }

    // The administrator (no impersonation) is not bound by it.
    expect(await patch([{ op: 'replace', path: '/webhooks/0/timeoutSeconds', value: 7 }], {})).toEqual({ status: 200, message: '' });
  }, 240_000);

  const listeners: TlsServer[] = [];
  afterAll(async () => {
    await Promise.all(listeners.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /** The kubeconfig the webhook pod would have: the dfs-injector ServiceAccount's token. */
  async function serviceAccountConfig(): Promise<KubeEndpoint> {
    const { client, server, credentials, dir } = plane();
    const path = join(dir, 'dfs-injector-sa.kubeconfig');
    await writeServiceAccountKubeconfig(client, { server, caPem: credentials.caPem }, { namespace: 'dfs-system', name: 'dfs-injector', path });
    return loadKubeEndpoint({ kubeconfig: path });
  }

  it('reads the ready endpoints of the webhook Service from EndpointSlices as the ServiceAccount, and finds the one serving the old CA', async () => {
    const { client } = plane();
    await waitFor('ServiceAccount dfs-injector', () => client.get('v1', 'ServiceAccount', 'dfs-injector', 'dfs-system'));
    const slice = (name: string, service: string, endpoints: object[]): KubeObject =>
      ({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name, namespace: 'dfs-system', labels: { 'kubernetes.io/service-name': service } },
        addressType: 'IPv4',
        ports: [{ name: 'https', port: 8443, protocol: 'TCP' }],
        endpoints,
      });
    // Addresses from the Service CIDR's neighbourhood: the API server refuses loopback ones.
    const pod = (name: string) => ({ kind: 'Pod', name, namespace: 'dfs-system' });
    await client.apply(
      slice('dfs-injector-abc', 'dfs-injector', [
        { addresses: ['10.0.0.11'], conditions: { ready: true }, targetRef: pod('dfs-injector-a') },
        { addresses: ['10.0.0.12'], conditions: { ready: false }, targetRef: pod('dfs-injector-starting') },
      ]),
    );
    await client.apply(
      slice('dfs-injector-def', 'dfs-injector', [
        { addresses: ['10.0.0.14'], targetRef: pod('dfs-injector-b') },
        { addresses: ['10.0.0.15'], conditions: { ready: false, serving: true, terminating: true }, targetRef: pod('dfs-injector-old') },
      ]),
    );
    await client.apply(slice('other-xyz', 'other', [{ addresses: ['10.0.0.13'], conditions: { ready: true } }]));

    const store = new KubeCertStore(await serviceAccountConfig(), {
      namespace: 'dfs-system',
      secretName: 'dfs-injector-tls',
      webhookConfigName: 'dfs-injector',
      service: 'dfs-injector',
    });
    const endpoints = await store.readyEndpoints();
    expect([...endpoints].sort((x, y) => x.address.localeCompare(y.address))).toEqual([
      { address: '10.0.0.11', port: 8443, pod: 'dfs-injector-a' },
      { address: '10.0.0.14', port: 8443, pod: 'dfs-injector-b' },
      { address: '10.0.0.15', port: 8443, pod: 'dfs-injector-old' },
    ]);

    // Real TLS listeners stand in for the three pods (their addresses route nowhere here): two
    // serve a leaf of the new CA, the terminating one a leaf of the old CA.
    const now = Date.now();
    const issue = { service: 'dfs-injector', namespace: 'dfs-system', lifetimeMs: 86_400_000, now };
    const [oldCa, newCa] = await Promise.all([issueCertificateAuthority(issue), issueCertificateAuthority(issue)]);
    const ports = new Map<string, number>();
    for (const [address, ca] of [['10.0.0.11', newCa], ['10.0.0.14', newCa], ['10.0.0.15', oldCa]] as const) {
      const leaf = await issueServingCertificate(ca, issue);
      const server = createTlsServer({ cert: leaf.cert, key: leaf.key });
      listeners.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      ports.set(address, (server.address() as AddressInfo).port);
    }
    const fetcher = tlsCertificateFetcher({
      servername: 'dfs-injector.dfs-system.svc',
      dial: (endpoint) => ({ host: '127.0.0.1', port: ports.get(endpoint.address)! }),
    });
    const confirmation = await confirmServedBy(newCa.cert, store, fetcher, 5000);
    expect(confirmation.confirmed).toBe(false);
    expect(confirmation.endpoints).toBe(3);
    expect(confirmation.pending).toEqual([{ endpoint: '10.0.0.15:8443 (dfs-injector-old)', reason: expect.stringContaining('presents a certificate issued by') }]);

    await client.delete('discovery.k8s.io/v1', 'EndpointSlice', 'dfs-injector-def', 'dfs-system');
    expect((await confirmServedBy(newCa.cert, store, fetcher, 5000)).confirmed).toBe(true);
  }, 120_000);

  it('in a pod: the ServiceAccount token and CA files and the kubelet-set environment reach the API server', async () => {
    const { client, credentials, dir, ports } = plane();
    await waitFor('ServiceAccount dfs-injector', () => client.get('v1', 'ServiceAccount', 'dfs-injector', 'dfs-system'));
    // What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount.
    const saDir = join(dir, 'serviceaccount');
    await mkdir(saDir, { recursive: true });
    const kubeconfig = await writeServiceAccountKubeconfig(client, { server: plane().server, caPem: credentials.caPem }, {
      namespace: 'dfs-system',
      name: 'dfs-injector',
      path: join(dir, 'in-pod.kubeconfig'),
    });
    const token = (JSON.parse(await readFile(kubeconfig, 'utf8')) as { users: { user: { token: string } }[] }).users[0]!.user.token;
    await writeFile(join(saDir, 'token'), token);
    await writeFile(join(saDir, 'ca.crt'), credentials.caPem);
    const endpoint = await loadKubeEndpoint({
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(ports.apiserver) },
      home: join(dir, 'no-home'),
      serviceAccountDir: saDir,
    });
    const store = new KubeCertStore(endpoint, { namespace: 'dfs-system', secretName: 'dfs-injector-tls', webhookConfigName: 'dfs-injector' });
    const elsewhere = new KubeCertStore(endpoint, { namespace: 'dfs-system', secretName: 'not-ours', webhookConfigName: 'dfs-injector' });
    await client.delete('v1', 'Secret', 'dfs-injector-tls', 'dfs-system');
    try {
      // The Role grants one Secret by name: the API server's refusal comes back with the hint.
      const refused = await elsewhere.readSecret().catch((error: unknown) => error);
      expect(refused).toMatchObject({ status: 403, message: expect.stringContaining('check the RBAC rules') });
      await expect(store.readSecret()).resolves.toBeUndefined();
      const created = await store.createSecret({ 'tls.crt': 'a', 'tls.key': 'b' });
      expect(created).not.toBe('conflict');
      expect((await store.readSecret())?.data).toEqual({ 'tls.crt': 'a', 'tls.key': 'b' });
      expect((await store.readWebhookCaBundles()).webhooks.length).toBeGreaterThan(0);
    } finally {
      store.close();
      elsewhere.close();
      await client.delete('v1', 'Secret', 'dfs-injector-tls', 'dfs-system');
    }
  }, 60_000);
});
