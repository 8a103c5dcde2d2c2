import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { waitFor, type KubeClient, type KubeObject } from './kube-client.js';

/** A CRD fixture from test/fixtures/crds (their sources and licences: README.md there), or a CRD file by absolute path. */
export function crdFixture(file: string): KubeObject {
  const url = isAbsolute(file) ? file : new URL(`../fixtures/crds/${file}`, import.meta.url);
  return parse(readFileSync(url, 'utf8')) as KubeObject;
}

export const CERT_MANAGER_CRDS_HINT =
  "Install them with: bash test/tools/install-cert-manager-crds.sh (takes them from cert-manager's Go module on the Go module proxy into ~/.cache/dfs-injector/crds/cert-manager), or set DFS_CERT_MANAGER_CRDS to their directory.";

/** cert-manager's Issuer and Certificate CRDs, as test/tools/install-cert-manager-crds.sh leaves them; undefined when missing. */
export function certManagerCrds(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const dir = env.DFS_CERT_MANAGER_CRDS ?? join(homedir(), '.cache', 'dfs-injector', 'crds', 'cert-manager');
  const files = ['cert-manager.io_issuers.yaml', 'cert-manager.io_certificates.yaml'].map((f) => join(dir, f));
  return files.every((f) => existsSync(f)) ? files : undefined;
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
