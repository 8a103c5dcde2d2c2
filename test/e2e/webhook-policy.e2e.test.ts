import { describe, expect, it } from 'vitest';
import { findKustomize, KUSTOMIZE_HINT, render } from '../manifests/kustomize.js';
import { needs } from '../support/prereq.js';
import { findControlPlaneBinaries } from './binaries.js';
import { KubeApiError, waitFor, type KubeObject } from './harness.js';
import { useControlPlane } from './use-control-plane.js';

// The ValidatingAdmissionPolicy of manifests/base, pinned against a real kube-apiserver: the
// webhook's ServiceAccount may patch the caBundle of its MutatingWebhookConfiguration (RBAC
// allows it to patch all of it) and nothing else; an administrator is not affected.

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
    const wanted = new Set(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
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
});
