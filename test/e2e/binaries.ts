import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The script that builds the binaries; quoted in every "missing" message. */
export const BUILD_SCRIPT = 'test/e2e/control-plane/build.sh';

export interface ControlPlaneVersions {
  readonly kubernetes: string;
  readonly etcd: string;
}

export interface ControlPlaneBinaries {
  readonly versions: ControlPlaneVersions;
  /** Cache root; build.sh writes `k8s-<v>/` and `etcd-<v>/` below it. */
  readonly root: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly etcd: string;
  /** Every control-plane binary (the three above) exists and is executable. */
  readonly available: boolean;
  /** What is missing and how to get it, for `needs()`. */
  readonly hint: string;
  /** The test node's binaries (test/node), built by the same script after the control plane. */
  readonly node: NodeBinaries;
}

export interface NodeBinaries {
  /** Holds kubelet and kube-proxy: the node mounts this directory. */
  readonly dir: string;
  readonly kubeScheduler: string;
  readonly kubelet: string;
  readonly kubeProxy: string;
  readonly kubectl: string;
  readonly available: boolean;
  readonly hint: string;
}

// versions.env is shared with build.sh so the pinned versions live in exactly one place.
export function readVersions(file = join(here, 'control-plane', 'versions.env')): ControlPlaneVersions {
  const values = new Map<string, string>();
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    values.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim().replace(/^["']|["']$/g, ''));
  }
  const kubernetes = values.get('K8S_VERSION');
  const etcd = values.get('ETCD_VERSION');
  if (kubernetes === undefined || etcd === undefined) {
    throw new Error(`${file} must set K8S_VERSION and ETCD_VERSION`);
  }
  return { kubernetes, etcd };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Locates the binaries build.sh produced; never builds anything itself (a first build takes many minutes). */
export function findControlPlaneBinaries(env: NodeJS.ProcessEnv = process.env): ControlPlaneBinaries {
  const versions = readVersions();
  const root = env.DFS_E2E_BIN_DIR ?? join(homedir(), '.cache', 'dfs-injector', 'control-plane');
  const k8sDir = join(root, `k8s-${versions.kubernetes}`);
  const kubeApiserver = join(k8sDir, 'kube-apiserver');
  const kubeControllerManager = join(k8sDir, 'kube-controller-manager');
  const etcd = join(root, `etcd-${versions.etcd}`, 'etcd');
  const missing = [kubeApiserver, kubeControllerManager, etcd].filter((p) => !isExecutable(p));
  const hint =
    missing.length === 0
      ? ''
      : `Missing: ${missing.join(', ')}. Build them once with \`bash ${BUILD_SCRIPT}\` ` +
        `(needs Go and the Go module proxy; the first build of Kubernetes ${versions.kubernetes} takes ` +
        `about 25-30 minutes on 2 cores), or point DFS_E2E_BIN_DIR at a directory holding them.`;
  const nodeBinaries = ['kube-scheduler', 'kubelet', 'kube-proxy', 'kubectl'].map((b) => join(k8sDir, b));
  const [kubeScheduler, kubelet, kubeProxy, kubectl] = nodeBinaries as [string, string, string, string];
  const nodeMissing = nodeBinaries.filter((p) => !isExecutable(p));
  const node: NodeBinaries = {
    dir: k8sDir,
    kubeScheduler,
    kubelet,
    kubeProxy,
    kubectl,
    available: nodeMissing.length === 0,
    hint:
      nodeMissing.length === 0
        ? ''
        : `Missing: ${nodeMissing.join(', ')}. \`bash ${BUILD_SCRIPT}\` builds them after the control plane ` +
          '(a few more minutes once the API server is built).',
  };
  return { versions, root, kubeApiserver, kubeControllerManager, etcd, available: missing.length === 0, hint, node };
}
