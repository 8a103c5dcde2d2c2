import type { Config } from './config-schema.js';
import { LIMITS, shown } from './bounds.js';
import type { Container, PodSpec, Volume, VolumeMount } from './k8s.js';
import { holdsHostPath, isUnderHostPath, type PlanContext } from './plan.js';

export const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;
export type ContainerList = (typeof CONTAINER_LISTS)[number];

/** One mount of a volume in one container of a pod. */
export interface MountUse {
  list: ContainerList;
  container: Container;
  mount: VolumeMount;
}

/** Every mount, in every container of every list, of a volume named in `names`. */
export function mountsOf(spec: PodSpec, names: ReadonlySet<string>): MountUse[] {
  if (names.size === 0) return [];
  return CONTAINER_LISTS.flatMap((list) =>
    (spec[list] ?? []).flatMap((container) => (container.volumeMounts ?? []).filter((mount) => names.has(mount.name)).map((mount) => ({ list, container, mount }))),
  );
}

/**
 * Mounts without readOnly: true of a hostPath volume of a directory above the DFS host path (`/`,
 * `/mnt`): through them a container can write into the DFS host path on the node, as through a
 * writable mount of the DFS host path itself. One rule for the webhook, which refuses such a pod,
 * and `audit` (DFS001), so a pod the webhook admits never has one. A read-only one sees the share
 * as read-only as a consumer does (node agents mount `/` so), and is left alone. The subPath is
 * not looked at: a writable mount of `/` is refused whatever part of it the container sees.
 */
export function writableParentMounts(spec: PodSpec, hostPath: string): (MountUse & { volume: Volume & { hostPath: { path: string } } })[] {
  const parents = new Map<string, Volume & { hostPath: { path: string } }>();
  for (const volume of spec.volumes ?? []) {
    if (volume.hostPath != null && holdsHostPath(volume.hostPath.path, hostPath)) parents.set(volume.name, volume as Volume & { hostPath: { path: string } });
  }
  return mountsOf(spec, new Set(parents.keys()))
    .filter((use) => use.mount.readOnly !== true)
    .map((use) => ({ ...use, volume: parents.get(use.mount.name) as Volume & { hostPath: { path: string } } }));
}

const WHERE: Readonly<Record<ContainerList, string>> = { containers: 'container', initContainers: 'init container', ephemeralContainers: 'ephemeral container' };

/** "init container", for messages. */
export function containerKind(list: ContainerList): string {
  return WHERE[list];
}

/**
 * Any other hostPath of the DFS host path, or of a directory under it, is refused: the webhook
 * cannot vouch for it, and a writable one would let the pod write onto the node (issue 14). So is
 * a writable mount of a directory above it (writableParentMounts).
 */
export function refuseForeignDfsVolumes(ctx: PlanContext, config: Config, allowed: string | undefined): void {
  for (const volume of ctx.pod.spec.volumes ?? []) {
    if (volume.name === allowed || volume.hostPath == null || !isUnderHostPath(volume.hostPath.path, config.hostPath)) continue;
    ctx.errors.push(
      `volume "${shown(volume.name)}" is a hostPath of ${shown(volume.hostPath.path)}, which is or lies under the DFS host path ${config.hostPath}; only the volume dfs-injector manages may mount it (read-only, HostToContainer): remove that volume${allowed === undefined ? '' : `, and mount volume "${shown(allowed)}" instead`}`,
    );
    if (ctx.errors.length >= LIMITS.errors) return;
  }
  for (const { list, container, mount, volume } of writableParentMounts(ctx.pod.spec, config.hostPath)) {
    ctx.errors.push(
      `${containerKind(list)} "${shown(container.name)}" mounts volume "${shown(volume.name)}", a hostPath of ${shown(volume.hostPath.path)}, which holds the DFS host path ${config.hostPath}, at ${shown(mount.mountPath)} writable: through it the container could write into the DFS host path on the node; set readOnly: true on that mount`,
    );
    if (ctx.errors.length >= LIMITS.errors) return;
  }
}
