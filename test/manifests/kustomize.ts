import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

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

function executable(path: string | undefined): path is string {
  if (path === undefined || path === '') return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The kustomize the tests render with: $DFS_KUSTOMIZE, the install script's cache, then PATH. */
export function findKustomize(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const binDir = env.DFS_TOOLS_BIN_DIR ?? join(homedir(), '.cache', 'dfs-injector', 'bin');
  for (const candidate of [env.DFS_KUSTOMIZE, join(binDir, 'kustomize')]) {
    if (executable(candidate)) return candidate;
  }
  const found = spawnSync('sh', ['-c', 'command -v kustomize'], { encoding: 'utf8' });
  const onPath = found.stdout.trim();
  return found.status === 0 && executable(onPath) ? onPath : undefined;
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
