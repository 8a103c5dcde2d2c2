/**
 * Pods for the scenarios, made from the recorded fixtures in test/fixtures/pods: those are pods
 * as the API server sent them to admission, so everything the server fills in itself is taken
 * out again before they are created for real.
 */
import type { Container, Volume } from '../../lib/k8s.js';
import { ANNOTATION_STATUS, LABEL_ROLE } from '../../lib/names.js';
import { parseStatus, type InjectionStatus } from '../../lib/status.js';
import { loadPod, type PodFixture } from '../support/fixtures.js';
import type { KubeObject } from './kube-client.js';

export interface Pod extends KubeObject {
  spec: {
    containers: Container[];
    initContainers?: Container[];
    volumes?: Volume[];
    serviceAccountName?: string;
    [field: string]: unknown;
  };
  status?: { phase?: string };
}

const SERVER_SET_META = ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'ownerReferences', 'generateName'];
const SERVER_SET_SPEC = ['nodeName'];
const SA_TOKEN_VOLUME = /^kube-api-access-/;

/**
 * A fixture pod ready to create: ownerReferences and other server-set fields dropped, and the
 * ServiceAccount token volume removed (the ServiceAccount admission plugin adds its own).
 */
export function fixturePod(fixture: PodFixture, name: string, namespace: string): Pod {
  const pod = loadPod(fixture) as Pod;
  for (const field of SERVER_SET_META) delete pod.metadata[field];
  for (const field of SERVER_SET_SPEC) delete pod.spec[field];
  delete pod.status;
  pod.metadata.name = name;
  pod.metadata.namespace = namespace;
  pod.spec.volumes = (pod.spec.volumes ?? []).filter((v) => !SA_TOKEN_VOLUME.test(v.name));
  for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
    if (c.volumeMounts != null) c.volumeMounts = c.volumeMounts.filter((m) => !SA_TOKEN_VOLUME.test(m.name));
  }
  return pod;
}

/** The Sonarr fixture with `role` as its dfs-injector role label; null: without the label. */
export function sonarr(name: string, namespace: string, role: 'consumer' | 'source' | 'none' | null = 'consumer'): Pod {
  const pod = fixturePod('sonarr', name, namespace);
  const labels = { ...pod.metadata.labels };
  if (role === null) delete labels[LABEL_ROLE];
  else labels[LABEL_ROLE] = role;
  pod.metadata.labels = labels;
  return pod;
}

/** The decypharr source fixture; `privileged: false` turns off what Bidirectional needs. */
export function decypharr(name: string, namespace: string, privileged = true): Pod {
  const pod = fixturePod('decypharr-source', name, namespace);
  // A StatefulSet pod's hostname and subdomain are its own name; keep them consistent.
  pod.spec.hostname = name;
  const first = pod.spec.containers[0]!;
  first.securityContext = { ...first.securityContext, privileged };
  return pod;
}

export function statusOf(pod: Pod): InjectionStatus | undefined {
  return parseStatus(pod.metadata.annotations?.[ANNOTATION_STATUS]);
}

export function volumesNamed(pod: Pod, name: string): Volume[] {
  return (pod.spec.volumes ?? []).filter((v) => v.name === name);
}

export function mountsAt(container: Container, mountPath: string): NonNullable<Container['volumeMounts']> {
  return (container.volumeMounts ?? []).filter((m) => m.mountPath === mountPath);
}

export function container(pod: Pod, name: string): Container {
  const found = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((c) => c.name === name);
  if (found === undefined) throw new Error(`pod ${pod.metadata.name ?? ''} has no container ${name}`);
  return found;
}

/** True when nothing of dfs-injector is in the stored pod. */
export function untouched(pod: Pod, hostPath: string): boolean {
  const hasHostPath = (pod.spec.volumes ?? []).some((v) => v.hostPath?.path === hostPath || v.name.startsWith('dfs-injector-'));
  const hasStatus = pod.metadata.annotations?.[ANNOTATION_STATUS] !== undefined;
  const hasSidecar = pod.spec.containers.some((c) => c.name === 'dfs-smbd');
  return !hasHostPath && !hasStatus && !hasSidecar;
}
