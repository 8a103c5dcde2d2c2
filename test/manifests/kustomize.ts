import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { findTool } from '../support/tools.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MANIFESTS = join(REPO_ROOT, 'manifests');

export const KUSTOMIZE_HINT =
  'Install it with: bash test/tools/install-kustomize.sh (builds it from the Go module proxy into ~/.cache/dfs-injector/bin), or put kustomize on PATH, or set DFS_KUSTOMIZE to its path.';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: any;
}

/** The kustomize the tests render with: $DFS_KUSTOMIZE, the install script's cache, then PATH. */
export function findKustomize(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findTool('kustomize', { onPath: true, env });
}

const rendered = new Map<string, KubeObject[]>();

/** `kustomize build` of a directory under manifests/, parsed; cached, callers get deep copies. */
export function render(kustomize: string, dir: string): KubeObject[] {
  let objects = rendered.get(dir);
  if (objects === undefined) {
    const result = spawnSync(kustomize, ['build', join(MANIFESTS, dir)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    if (result.status !== 0) throw new Error(`kustomize build manifests/${dir} failed (${result.status ?? result.signal}):\n${result.stderr}`);
    objects = parseAllDocuments(result.stdout).map((doc, i) => {
      if (doc.errors.length > 0) throw new Error(`kustomize build manifests/${dir}: document ${i}: ${doc.errors[0]!.message}`);
      return doc.toJS() as KubeObject;
    });
    rendered.set(dir, objects);
  }
  return structuredClone(objects);
}

export function find(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) {
    const have = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ');
    throw new Error(`expected exactly one ${kind}/${name}, found ${found.length} (have: ${have})`);
  }
  return found[0]!;
}
