import { isRecord, type PodLike } from './k8s.js';
import { normalizePath } from './plan.js';
import type { Injected } from './plan.js';

/** The JSON written to `dfs-injector.io/status`: what this webhook put into the pod, and under which config. */
export interface InjectionStatus extends Injected {
  role: 'consumer' | 'source';
  configHash: string;
  version: string;
}

export function parseStatus(raw: string | undefined): InjectionStatus | undefined {
  if (raw === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    if (!isRecord(value) || (value.role !== 'consumer' && value.role !== 'source')) return undefined;
    const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    return {
      role: value.role,
      configHash: typeof value.configHash === 'string' ? value.configHash : '',
      version: typeof value.version === 'string' ? value.version : '',
      volumes: list(value.volumes),
      mounts: list(value.mounts),
      containers: list(value.containers),
      initContainers: list(value.initContainers),
    };
  } catch {
    return undefined;
  }
}

/** A re-invocation adds to what an earlier pass recorded; it never forgets it. */
export function mergeStatus(previous: InjectionStatus | undefined, next: InjectionStatus): InjectionStatus {
  if (previous === undefined || previous.role !== next.role) return next;
  const union = (a: string[], b: string[]): string[] => [...new Set([...a, ...b])];
  return {
    role: next.role,
    configHash: next.configHash,
    version: next.version,
    volumes: union(previous.volumes, next.volumes),
    mounts: union(previous.mounts, next.mounts),
    containers: union(previous.containers, next.containers),
    initContainers: union(previous.initContainers, next.initContainers),
  };
}

export function serializeStatus(status: InjectionStatus): string {
  const { role, volumes, mounts, containers, initContainers, configHash, version } = status;
  return JSON.stringify({ role, volumes, mounts, containers, initContainers, configHash, version });
}

/** The names of what this webhook adds to a pod of one role under one config, plus what it took over. */
export interface OwnNames {
  volumes: ReadonlySet<string>;
  containers: ReadonlySet<string>;
  initContainers: ReadonlySet<string>;
}

/**
 * The part of a status annotation the pod arrived with that this webhook could have written: names
 * it uses, of things the pod really has. A pod that brings its own status (copied from an injected
 * pod, or forged to make a hand-written mount look injected) gets nothing else carried over, so
 * the status never vouches for what the webhook did not do.
 */
export function trustedStatus(previous: InjectionStatus, pod: PodLike, own: OwnNames): InjectionStatus {
  const spec = pod.spec;
  const present = (items: readonly { name: string }[] | null | undefined): Set<string> => new Set((items ?? []).map((i) => i.name));
  const volumes = present(spec.volumes);
  const containers = present(spec.containers);
  const initContainers = present(spec.initContainers);
  const mountsByContainer = new Map<string, Set<string>>();
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    const paths = mountsByContainer.get(c.name) ?? new Set<string>();
    for (const m of c.volumeMounts ?? []) paths.add(normalizePath(m.mountPath));
    mountsByContainer.set(c.name, paths);
  }
  // "container:path" or "container:path:Bidirectional"; neither a container name nor a path holds ":".
  const mounted = (entry: string): boolean => {
    const [container = '', path = ''] = entry.split(':', 2);
    return mountsByContainer.get(container)?.has(normalizePath(path)) === true;
  };
  return {
    role: previous.role,
    configHash: previous.configHash,
    version: previous.version,
    volumes: previous.volumes.filter((v) => own.volumes.has(v) && volumes.has(v)),
    mounts: previous.mounts.filter(mounted),
    containers: previous.containers.filter((c) => own.containers.has(c) && containers.has(c)),
    initContainers: previous.initContainers.filter((c) => own.initContainers.has(c) && initContainers.has(c)),
  };
}

export function sameStatus(a: InjectionStatus, b: InjectionStatus): boolean {
  const same = (x: readonly string[], y: readonly string[]): boolean => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.role === b.role && same(a.volumes, b.volumes) && same(a.mounts, b.mounts) && same(a.containers, b.containers) && same(a.initContainers, b.initContainers);
}
