import type { Config } from './config-schema.js';
import { LIMITS, shown } from './bounds.js';
import { isUnderHostPath, type PlanContext } from './plan.js';

/**
 * Any other hostPath of the DFS host path, or of a directory under it, is refused: the webhook
 * cannot vouch for it, and a writable one would let the pod write onto the node (issue 14).
 */
export function refuseForeignDfsVolumes(ctx: PlanContext, config: Config, allowed: string | undefined): void {
  for (const volume of ctx.pod.spec.volumes ?? []) {
    if (volume.name === allowed || volume.hostPath == null || !isUnderHostPath(volume.hostPath.path, config.hostPath)) continue;
    ctx.errors.push(
      `volume "${shown(volume.name)}" is a hostPath of ${shown(volume.hostPath.path)}, which is or lies under the DFS host path ${config.hostPath}; only the volume dfs-injector manages may mount it (read-only, HostToContainer): remove that volume${allowed === undefined ? '' : `, and mount volume "${shown(allowed)}" instead`}`,
    );
    if (ctx.errors.length >= LIMITS.errors) return;
  }
}
