import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { waitFor, type KubeClient, type KubeObject } from './kube-client.js';

/** A CRD fixture from test/fixtures/crds (their sources and licences: README.md there). */
export function crdFixture(file: string): KubeObject {
  return parse(readFileSync(new URL(`../fixtures/crds/${file}`, import.meta.url), 'utf8')) as KubeObject;
}

/** Applies CRDs and waits until each is Established, so its kinds can be written at once. */
export async function installCrds(client: KubeClient, files: readonly string[]): Promise<void> {
  for (const file of files) {
    const crd = crdFixture(file);
    await client.apply(crd);
    await waitFor(`CRD ${crd.metadata.name} Established`, async () => {
      const got = await client.get<KubeObject>('apiextensions.k8s.io/v1', 'CustomResourceDefinition', crd.metadata.name!);
      const conditions = (got?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? [];
      return conditions.some((c) => c.type === 'Established' && c.status === 'True');
    });
  }
}

/** Server-side apply under strict field validation: an unknown or misplaced field is an error, not pruned. */
export async function applyStrict(client: KubeClient, object: KubeObject, fieldManager: string): Promise<string[]> {
  const path = await client.resourcePath(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
  const res = await client.call({
    method: 'PATCH',
    path: `${path}?fieldManager=${fieldManager}&force=true&fieldValidation=Strict`,
    body: object,
    contentType: 'application/apply-patch+yaml',
  });
  return res.warnings.map((w) => `${object.kind}/${object.metadata.name}: ${w}`);
}
