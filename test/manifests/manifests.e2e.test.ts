import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../lib/config.js';
import { injectDocument } from '../../lib/inject.js';
import { CERT_MANAGER_CRDS_HINT, certManagerCrds, installCrds } from '../e2e/crds.js';
import { findControlPlaneBinaries, KubeApiError } from '../e2e/harness.js';
import { useControlPlane } from '../e2e/use-control-plane.js';
import { needs } from '../support/prereq.js';
import { KUSTOMIZE_HINT, find, findKustomize, render, type KubeObject } from './kustomize.js';

// What the schema models cannot tell: the real API server (the e2e control plane, pinned in
// test/e2e/control-plane/versions.env) rejects unknown or misplaced fields under
// fieldValidation=Strict, runs its own validation of every kind, and PodSecurity admission
// decides whether the pod templates are admitted where they are meant to run.

const binaries = findControlPlaneBinaries();
const kustomize = findKustomize();
const certManager = certManagerCrds();
const available =
  needs('a loopback Kubernetes control plane (etcd, kube-apiserver)', binaries.available, binaries.hint) &&
  needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT) &&
  needs("cert-manager's CRDs", certManager !== undefined, CERT_MANAGER_CRDS_HINT);

describe.skipIf(!available)('rendered manifests on a real API server', () => {
  // No controller manager: nothing here should run, only be admitted.
  const plane = useControlPlane({ controllerManager: false });

  /** Server-side apply with strict field validation; returns the API server's warnings. */
  async function apply(object: KubeObject): Promise<string[]> {
    const { client } = plane();
    const path = await client.resourcePath(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
    const res = await client.call({
      method: 'PATCH',
      path: `${path}?fieldManager=dfs-injector-manifests-test&force=true&fieldValidation=Strict`,
      body: object,
      contentType: 'application/apply-patch+yaml',
    });
    return res.warnings.map((w) => `${object.kind}/${object.metadata.name}: ${w}`);
  }

  /** A dry-run create of a bare Pod with `spec`: what PodSecurity admission says about it. */
  async function admitPod(namespace: string, name: string, spec: unknown): Promise<{ admitted: boolean; message: string; warnings: string[] }> {
    const { client } = plane();
    const res = await client.request({
      method: 'POST',
      path: `/api/v1/namespaces/${namespace}/pods?dryRun=All&fieldValidation=Strict`,
      body: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace }, spec },
    });
    const message = res.status < 300 ? '' : (res.json<{ message?: string }>().message ?? res.body);
    return { admitted: res.status < 300, message, warnings: res.warnings };
  }

  async function namespace(name: string, labels: Record<string, string>, serviceAccounts: string[] = []): Promise<void> {
    await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    // The ServiceAccount admission plugin refuses a pod whose account does not exist.
    for (const account of serviceAccounts) await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: account, namespace: name } });
  }

  async function applyAll(objects: KubeObject[]): Promise<string[]> {
    const warnings: string[] = [];
    const ordered = [...objects.filter((o) => o.kind === 'Namespace'), ...objects.filter((o) => o.kind !== 'Namespace')];
    for (const object of ordered) {
      try {
        warnings.push(...(await apply(object)));
      } catch (error) {
        if (error instanceof KubeApiError) throw new Error(`${object.kind}/${object.metadata.name}: ${error.message}`);
        throw error;
      }
    }
    return warnings;
  }

  it.each(['overlays/default', 'overlays/examples'])('accepts every object of manifests/%s under strict field validation, without warnings', async (dir) => {
    expect(await applyAll(render(kustomize!, dir))).toEqual([]);
  });

  it("accepts every object of manifests/overlays/cert-manager, its Issuers and Certificates through cert-manager's own CRDs", async () => {
    await installCrds(plane().client, certManager!);
    const objects = render(kustomize!, 'overlays/cert-manager');
    expect(objects.filter((o) => o.apiVersion === 'cert-manager.io/v1').map((o) => o.kind).sort()).toEqual(['Certificate', 'Certificate', 'Issuer', 'Issuer']);
    expect(await applyAll(objects)).toEqual([]);
  });

  it('admits the webhook pod in a namespace that enforces Pod Security restricted', async () => {
    await namespace('psa-restricted', { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' }, ['dfs-injector']);
    const deployment = find(render(kustomize!, 'overlays/default'), 'Deployment', 'dfs-injector');
    const result = await admitPod('psa-restricted', 'webhook', deployment.spec.template.spec);
    expect(result).toEqual({ admitted: true, message: '', warnings: [] });
  });

  it('admits the mounter pod in dfs-system and nowhere that enforces baseline', async () => {
    const objects = render(kustomize!, 'overlays/default');
    await applyAll(objects.filter((o) => o.kind === 'Namespace' || o.kind === 'ServiceAccount'));
    const spec = find(objects, 'DaemonSet', 'dfs-mounter').spec.template.spec;
    expect(await admitPod('dfs-system', 'mounter', spec)).toMatchObject({ admitted: true });
    await namespace('psa-baseline', { 'pod-security.kubernetes.io/enforce': 'baseline' }, ['dfs-mounter']);
    const denied = await admitPod('psa-baseline', 'mounter', spec);
    expect(denied.admitted).toBe(false);
    expect(denied.message).toMatch(/violates PodSecurity "baseline:latest"/);
    for (const rule of ['host namespaces', 'hostPath volumes', 'privileged']) expect(denied.message).toContain(rule);
  });

  it('admits the injected example pods in a namespace labelled like media, and refuses the consumer under baseline', async () => {
    const examples = render(kustomize!, 'overlays/examples');
    const media = find(examples, 'Namespace', 'media').metadata.labels!;
    // The same Pod Security label as media, but not opted in: no webhook is running to call.
    await namespace('media-like', { 'pod-security.kubernetes.io/enforce': media['pod-security.kubernetes.io/enforce']! }, ['default']);
    for (const [kind, name] of [['Deployment', 'sonarr'], ['StatefulSet', 'decypharr']] as const) {
      const injected = injectDocument(find(examples, kind, name), defaultConfig);
      expect(injected.errors).toEqual([]);
      const workload = injected.object as KubeObject;
      const spec = workload.spec.template.spec;
      // The StatefulSet controller turns each claim template into a pod volume.
      for (const claim of workload.spec.volumeClaimTemplates ?? []) {
        spec.volumes = [...(spec.volumes ?? []), { name: claim.metadata.name, persistentVolumeClaim: { claimName: `${claim.metadata.name}-${name}-0` } }];
      }
      expect(await admitPod('media-like', name, spec), name).toMatchObject({ admitted: true, message: '' });
    }
    await namespace('consumer-baseline', { 'pod-security.kubernetes.io/enforce': 'baseline' }, ['default']);
    const sonarr = injectDocument(find(examples, 'Deployment', 'sonarr'), defaultConfig).object as KubeObject;
    const denied = await admitPod('consumer-baseline', 'sonarr', sonarr.spec.template.spec);
    expect(denied.admitted).toBe(false);
    expect(denied.message).toContain('hostPath volumes');
  });
});
