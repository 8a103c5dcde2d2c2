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
  /** Volumes already in the pod that the webhook took over (a hand-written hostPath of the DFS host path). */
  readonly adopted: string[];
  readonly errors: string[];
  readonly warnings: string[];
}

/**
 * A path as the kernel resolves it: repeated "/" collapsed, "." segments and a trailing "/"
 * dropped, so `/mnt//decypharr-dfs/./` is recognised as the DFS host path. Linear in the length
 * of the path, with no regular expression: the path comes from the request (see lib/bounds.ts).
 */
export function normalizePath(path: string): string {
  const clean = path.indexOf('//') < 0 && path.indexOf('/.') < 0 && (path.length <= 1 || !path.endsWith('/'));
  if (clean) return path;
  // One pass over the characters: a split would allocate a string per "/" of a hostile run.
  const segments: string[] = [];
  const n = path.length;
  let i = 0;
  while (i < n) {
    while (i < n && path.charCodeAt(i) === SLASH) i++;
    const start = i;
    while (i < n && path.charCodeAt(i) !== SLASH) i++;
    if (i > start && !(i - start === 1 && path.charCodeAt(start) === DOT)) segments.push(path.slice(start, i));
  }
  const absolute = path.charCodeAt(0) === SLASH;
  if (segments.length === 0) return absolute ? '/' : path;
  return (absolute ? '/' : '') + segments.join('/');
}

/** True when `path` is the DFS host path or lies under it, however it is spelt. */
export function isUnderHostPath(path: string, hostPath: string): boolean {
  const normalized = normalizePath(path);
  const host = normalizePath(hostPath);
  return normalized === host || host === '/' || normalized.startsWith(`${host}/`);
}

/**
 * True when `path` is a directory above the DFS host path (`/mnt`, `/`), however it is spelt: a
 * hostPath of it holds the share too, at `<mountPath>/decypharr-dfs`. Linear, like normalizePath.
 */
export function holdsHostPath(path: string, hostPath: string): boolean {
  const normalized = normalizePath(path);
  const host = normalizePath(hostPath);
  if (normalized === host || !normalized.startsWith('/')) return false;
  return normalized === '/' || host.startsWith(`${normalized}/`);
}

const SLASH = 0x2f;
const DOT = 0x2e;
