// The slice of the Kubernetes Pod API that injection reads. Fields are optional because the
// offline `inject` path sees objects that the API server has not defaulted yet, and may be null,
// which means absent (Helm writes `annotations:` with only a comment as null). lib/pod-shape.ts
// refuses every other type before anything reads these fields.

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  [key: string]: unknown;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean | null;
  mountPropagation?: string | null;
  subPath?: string | null;
  [key: string]: unknown;
}

export interface ContainerPort {
  containerPort: number;
  name?: string;
  protocol?: string;
  [key: string]: unknown;
}

export interface Container {
  name: string;
  image?: string;
  ports?: ContainerPort[] | null;
  volumeMounts?: VolumeMount[] | null;
  securityContext?: { privileged?: boolean | null; [key: string]: unknown } | null;
  restartPolicy?: string | null;
  [key: string]: unknown;
}

export interface Volume {
  name: string;
  hostPath?: { path: string; type?: string | null } | null;
  emptyDir?: Record<string, unknown> | null;
  [key: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[] | null;
  ephemeralContainers?: Container[] | null;
  volumes?: Volume[] | null;
  [key: string]: unknown;
}

/** A Pod, or a pod template: both have metadata and a spec. */
export interface PodLike {
  metadata?: ObjectMeta | null;
  spec: PodSpec;
  [key: string]: unknown;
}

/** The value when it is a non-empty string: names, namespaces and labels read from untyped objects. */
export function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True when `value` has the shape injection needs: a spec with a containers array of named objects. */
export function isPodLike(value: unknown): value is PodLike {
  if (!isRecord(value) || !isRecord(value.spec)) return false;
  const containers = value.spec.containers;
  return Array.isArray(containers) && containers.every((c) => isRecord(c) && typeof c.name === 'string');
}
