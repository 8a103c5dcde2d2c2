import { isRecord } from './k8s.js';
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
