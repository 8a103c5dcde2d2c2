// What the suites that install the data path on the real node as a user does share
// (data-path.e2e.test.ts, check.e2e.test.ts): their prerequisites, a node booted with the three
// shipped images, and the small readers of what they apply and wait for.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { buildImages, IMAGE_TOOLS_HINT, imageToolsMissing } from '../../images/podman.js';
import { findKustomize, KUSTOMIZE_HINT } from '../../manifests/kustomize.js';
import { needs } from '../../support/prereq.js';
import { findNodeArtifacts, startNode, type NodeArtifacts, type NodeArtifactsResult, type TestNode } from '../node.js';

// Where the shipped images are exported for the node (docker-archives that keep their tags).
const ARCHIVES = join(homedir(), '.cache', 'dfs-injector', 'images', 'node-archives');
const SHIPPED_IMAGES = ['webhook', 'smbd', 'mounter'];

export interface DataPathPrerequisites {
  readonly found: NodeArtifactsResult;
  readonly kustomize: string | undefined;
  /** Every prerequisite there; `needs` has said which is missing otherwise. */
  readonly ready: boolean;
}

/** The test node, kustomize (the shipped manifests) and the image build tools (the shipped images). */
export function dataPathPrerequisites(): DataPathPrerequisites {
  const found = findNodeArtifacts();
  const kustomize = findKustomize();
  const imageTools = imageToolsMissing();
  const ready =
    needs('a test node (QEMU VM with kubelet and containerd)', found.available, found.available ? '' : found.hint) &&
    needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT) &&
    needs(`image build tools (${imageTools.join(', ')})`, imageTools.length === 0, IMAGE_TOOLS_HINT);
  return { found, kustomize, ready };
}

/** Builds the shipped images (cached by podman) and boots the node with them in containerd. */
export async function startDataPathNode(artifacts: NodeArtifacts): Promise<TestNode> {
  const built = await buildImages(SHIPPED_IMAGES, { exportDir: ARCHIVES });
  return startNode(artifacts, { images: [...built.keys()].map((name) => join(ARCHIVES, `${name}.tar`)) });
}

/** Objects as one `kubectl apply -f -` input. */
export const asList = (objects: readonly object[]): string => JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });

export const isReady = (p: { status?: { conditions?: { type: string; status: string }[] } } | undefined): boolean =>
  p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
