import type { PatchBuilder } from './patch.js';
import type { PodLike } from './k8s.js';

/** What one pass of injection added; it becomes the status annotation and auditAnnotations. */
export interface Injected {
  volumes: string[];
  mounts: string[];
  containers: string[];
  initContainers: string[];
}

export function emptyInjected(): Injected {
  return { volumes: [], mounts: [], containers: [], initContainers: [] };
}

export function isEmptyInjected(injected: Injected): boolean {
  return injected.volumes.length + injected.mounts.length + injected.containers.length + injected.initContainers.length === 0;
}

/** Everything a role's planner needs: the pod as received, where it sits, and where to write. */
export interface PlanContext {
  readonly pod: PodLike;
  /** JSON pointer to the pod (or template) inside the object the patch applies to. */
  readonly prefix: string;
  readonly patch: PatchBuilder;
  readonly injected: Injected;
  readonly errors: string[];
  readonly warnings: string[];
}

export function normalizePath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.replace(/\/+$/, '') : path;
}
