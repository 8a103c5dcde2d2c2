// Workloads of the test image every node carries (localhost/dfs-toolbox:1, see node.ts): the
// consumers and hand-made pods the real-node suites create, written once so that a change of
// the image, its pull policy or the container's name reaches every suite alike.
import type { KubeObject } from '../e2e/harness.js';

export const TOOLBOX_IMAGE = 'localhost/dfs-toolbox:1';

export interface VolumeMount {
  name: string;
  mountPath: string;
}
export interface Volume {
  name: string;
  emptyDir?: object;
  hostPath?: { path: string };
}

/** What a toolbox workload may add to the bare container and pod. */
export interface ToolboxExtras {
  volumeMounts?: VolumeMount[];
  volumes?: Volume[];
  /** 1 unless given: the suites delete these pods and want them gone at once. */
  terminationGracePeriodSeconds?: number;
}

/** The toolbox container, named app. */
export function toolboxContainer(command: readonly string[], volumeMounts?: VolumeMount[]): Record<string, unknown> {
  return {
    name: 'app',
    image: TOOLBOX_IMAGE,
    // The image was imported into containerd at boot; no registry is reachable.
    imagePullPolicy: 'Never',
    command: [...command],
    ...(volumeMounts !== undefined ? { volumeMounts } : {}),
  };
}

/** A pod spec of the toolbox container alone. */
export function toolboxPodSpec(command: readonly string[], extras: ToolboxExtras = {}): Record<string, unknown> {
  return {
    terminationGracePeriodSeconds: extras.terminationGracePeriodSeconds ?? 1,
    containers: [toolboxContainer(command, extras.volumeMounts)],
    ...(extras.volumes !== undefined ? { volumes: extras.volumes } : {}),
  };
}

/** A bare pod of the toolbox container: no controller, so the test alone decides when it goes. */
export function toolboxPod(metadata: KubeObject['metadata'], command: readonly string[], extras: ToolboxExtras = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec: toolboxPodSpec(command, extras) };
}

/**
 * A one-replica Deployment of the toolbox container, selected by app.kubernetes.io/name = its
 * name; `labels` go on the pod template beside that one (the webhook's role label, for one).
 */
export function toolboxDeployment(
  name: string,
  namespace: string,
  command: readonly string[],
  extras: ToolboxExtras & { labels?: Record<string, string> } = {},
): KubeObject {
  const { labels, ...pod } = extras;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': name, ...labels } },
        spec: toolboxPodSpec(command, pod),
      },
    },
  };
}
