import type { Config } from './config-schema.js';
import type { Container, Volume, VolumeMount } from './k8s.js';
import type { Overrides } from './overrides.js';
import { LIMITS, listSome, shown } from './bounds.js';
import { OVERRIDE_ANNOTATIONS } from './names.js';
import { refuseForeignDfsVolumes } from './dfs-volumes.js';
import { normalizePath, type PlanContext } from './plan.js';

/** The wait-for-mount init container's script: constant, its inputs in DFS_MOUNT_PATH and DFS_WAIT_TIMEOUT. */export const WAIT_FOR_MOUNT_SCRIPT = [
  'case $DFS_WAIT_TIMEOUT in "" | *[!0-9]*) printf \'dfs-injector: DFS_WAIT_TIMEOUT must be a number of seconds\\n\' >&2; exit 2 ;; esac',
  'deadline=$(( $(date +%s) + $DFS_WAIT_TIMEOUT ))',
  'until awk \'$5 == ENVIRON["DFS_MOUNT_PATH"] { for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i+1) } } END { exit !(t == "cifs" || t == "smb3") }\' /proc/self/mountinfo; do',
  '  if [ "$(date +%s)" -ge "$deadline" ]; then printf \'dfs-injector: no CIFS mount at %s after %ss; is the dfs-mounter pod on this node Ready?\\n\' "$DFS_MOUNT_PATH" "$DFS_WAIT_TIMEOUT" >&2; exit 1; fi',
  '  sleep 2',
  'done',
  'printf \'dfs-injector: %s is mounted\\n\' "$DFS_MOUNT_PATH"',
].join('\n');

interface Target {
  container: Container;
  /** JSON pointer of the container inside the patched object. */
  path: string;
}

/**
 * Consumer: a read-only hostPath mount of the node's DFS mount with HostToContainer propagation,
 * so a CIFS mount that appears or is re-made on the node after the pod started is still seen.
 * Existing volumes and mounts are never duplicated or overwritten.
 */
export function planConsumer(ctx: PlanContext, config: Config, overrides: Overrides): void {
  const mountPath = overrides.mountPath ?? config.consumer.mountPath;
  const volumeName = ensureHostPathVolume(ctx, config);
  if (volumeName === undefined) return;
  refuseForeignDfsVolumes(ctx, config, volumeName);
  if (ctx.errors.length > 0) return;
  makeDfsMountsSafe(ctx, volumeName);
  const targets = selectTargets(ctx, overrides.containers ?? config.consumer.containers, overrides.containers !== undefined);
  if (targets === undefined) return;

  let mounted = 0;
  for (const { container, path } of targets) {
    const existing = container.volumeMounts?.find((m) => normalizePath(m.mountPath) === mountPath);
    if (existing === undefined) {
      const mount: VolumeMount = { name: volumeName, mountPath, readOnly: true, mountPropagation: 'HostToContainer' };
      ctx.patch.appendTo(`${path}/volumeMounts`, container.volumeMounts, mount);
      ctx.injected.mounts.push(`${container.name}:${mountPath}`);
      mounted++;
    } else if (existing.name === volumeName) {
      mounted++;
    } else {
      ctx.warnings.push(`container "${shown(container.name)}" already mounts volume "${shown(existing.name)}" at ${mountPath}; the DFS mount was not added to it`);
    }
  }
  if (mounted === 0) {
    ctx.errors.push(`no container could receive the DFS mount at ${mountPath}: every selected container already mounts another volume there; choose another path with annotation ${OVERRIDE_ANNOTATIONS.mountPath}`);
    return;
  }
  if (config.consumer.waitForMount.enabled) addWaitForMount(ctx, config, volumeName, mountPath);
}

function ensureHostPathVolume(ctx: PlanContext, config: Config): string | undefined {
  const volumes = ctx.pod.spec.volumes;
  const wanted = config.consumer.volumeName;
  const sameName = volumes?.find((v) => v.name === wanted);
  if (sameName !== undefined) {
    if (sameName.hostPath != null && normalizePath(sameName.hostPath.path) === normalizePath(config.hostPath)) {
      // Injected by an earlier pass, or written by hand under the webhook's name: either way it is the webhook's now.
      ctx.adopted.push(wanted);
      return wanted;
    }
    ctx.errors.push(`volume "${wanted}" already exists and is not a hostPath of ${config.hostPath}; rename that volume, or set consumer.volumeName in the dfs-injector config`);
    return undefined;
  }
  // A hand-written hostPath of the same node path is reused rather than mounted twice.
  const handWritten = volumes?.find((v) => v.hostPath != null && normalizePath(v.hostPath.path) === normalizePath(config.hostPath));
  if (handWritten !== undefined) {
    ctx.warnings.push(`volume "${shown(handWritten.name)}" already mounts host path ${config.hostPath}; it was reused instead of adding "${wanted}"`);
    // From now on the webhook answers for it: its mounts are made safe and the status lists it.
    ctx.adopted.push(handWritten.name);
    return handWritten.name;
  }
  const volume: Volume = { name: wanted, hostPath: { path: config.hostPath, type: 'Directory' } };
  ctx.patch.appendTo(`${ctx.prefix}/spec/volumes`, volumes, volume);
  ctx.injected.volumes.push(wanted);
  return wanted;
}

/**
 * Every mount of the DFS volume, wherever the pod put it, becomes read-only with HostToContainer:
 * the pod still gets the share (which is read-only anyway), and cannot write onto the node disk
 * under it when the share is not mounted, nor miss a mount re-made after it started.
 */
function makeDfsMountsSafe(ctx: PlanContext, volumeName: string): void {
  const spec = ctx.pod.spec;
  for (const list of ['containers', 'initContainers', 'ephemeralContainers'] as const) {
    (spec[list] ?? []).forEach((container, i) => {
      (container.volumeMounts ?? []).forEach((mount, j) => {
        if (mount.name !== volumeName) return;
        const readOnly = mount.readOnly === true;
        const propagation = mount.mountPropagation === 'HostToContainer';
        if (readOnly && propagation) return;
        const at = `${ctx.prefix}/spec/${list}/${i}/volumeMounts/${j}`;
        if (!readOnly) ctx.patch.setField(`${at}/readOnly`, true);
        if (!propagation) ctx.patch.setField(`${at}/mountPropagation`, 'HostToContainer');
        const was = [readOnly ? '' : 'writable', propagation ? '' : `with mountPropagation ${mount.mountPropagation == null ? 'None (unset)' : shown(mount.mountPropagation)}`].filter((w) => w !== '').join(' and ');
        ctx.warnings.push(`container "${shown(container.name)}" mounted the DFS volume "${shown(volumeName)}" at ${shown(mount.mountPath)} ${was}; it is now read-only with HostToContainer`);
        ctx.injected.mounts.push(`${container.name}:${mount.mountPath}`);
      });
    });
  }
}

function selectTargets(ctx: PlanContext, names: readonly string[], fromAnnotation: boolean): Target[] | undefined {
  const { containers, initContainers } = ctx.pod.spec;
  const regular = containers.map((container, i) => ({ container, path: `${ctx.prefix}/spec/containers/${i}` }));
  if (names.includes('*')) return regular;
  // Native sidecars (init containers that keep running) may be named too: they live as long as the app.
  const sidecars = (initContainers ?? []).flatMap((container, i) =>
    container.restartPolicy === 'Always' ? [{ container, path: `${ctx.prefix}/spec/initContainers/${i}` }] : [],
  );
  const candidates = [...regular, ...sidecars];
  // A map, not a search per name: both lists come from the request and can be long.
  const byName = new Map<string, Target>();
  for (const t of candidates) if (!byName.has(t.container.name)) byName.set(t.container.name, t);
  const targets: Target[] = [];
  const missing: string[] = [];
  for (const name of names) {
    const found = byName.get(name);
    if (found !== undefined) targets.push(found);
    else missing.push(name);
  }
  if (missing.length > 0) {
    const source = fromAnnotation ? `annotation ${OVERRIDE_ANNOTATIONS.containers}` : 'consumer.containers in the dfs-injector config';
    const available = listSome(candidates.map((t) => t.container.name));
    // One error per missing name while they fit in an answer; the rest are counted, never spelled out.
    const listed = LIMITS.errors - 1;
    for (const name of missing.slice(0, listed)) {
      ctx.errors.push(`${source} names container "${shown(name)}", which is not in this pod (containers: ${available})`);
    }
    if (missing.length > listed) ctx.errors.push(`${source} names ${missing.length - listed} more containers that are not in this pod`);
  }
  return ctx.errors.length > 0 ? undefined : targets;
}

function addWaitForMount(ctx: PlanContext, config: Config, volumeName: string, mountPath: string): void {
  const wait = config.consumer.waitForMount;
  const initContainers = ctx.pod.spec.initContainers;
  if (initContainers?.some((c) => c.name === wait.name)) return;
  // The bind mount of the host directory exists at once; only the CIFS mount propagated on top of
  // it proves the share is live, so wait for a cifs/smb3 entry at the mount path. The script is a
  // constant: the path and the timeout reach it as environment variables, which sh and awk read as
  // data (ENVIRON, not awk -v, which would interpret backslashes), so no value can become code.
  const container: Container = {
    name: wait.name,
    image: wait.image,
    command: ['sh', '-c', WAIT_FOR_MOUNT_SCRIPT],
    env: [
      { name: 'DFS_MOUNT_PATH', value: mountPath },
      { name: 'DFS_WAIT_TIMEOUT', value: String(wait.timeoutSeconds) },
    ],
    volumeMounts: [{ name: volumeName, mountPath, readOnly: true, mountPropagation: 'HostToContainer' }],
    resources: wait.resources,
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, runAsUser: 65534 },
  };
  ctx.patch.appendTo(`${ctx.prefix}/spec/initContainers`, initContainers, container);
  ctx.injected.initContainers.push(wait.name);
}
