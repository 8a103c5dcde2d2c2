import type { Config } from './config-schema.js';
import type { Container, VolumeMount } from './k8s.js';
import type { Overrides } from './overrides.js';
import { OVERRIDE_ANNOTATIONS } from './names.js';
import { listSome, shown } from './bounds.js';
import { refuseForeignDfsVolumes } from './dfs-volumes.js';
import { isRecord } from './k8s.js';
import { normalizePath, type PlanContext } from './plan.js';

export const SHIM_VOLUME = 'dfs-injector-shim';
export const SHIM_MOUNT_DIR = '/dfs-shim';
export const SHIM_INIT_CONTAINER = 'dfs-shim-install';
/** In the project's smbd image (shim/Dockerfile); mode init copies it next to the shim. */
export const READINESS_SCRIPT = '/usr/local/bin/dfs-smbd-ready';
/** smbd's writable state (smb.conf, tdb files, pid): DFS_STATE_DIR of the project's smbd image. */
export const SMBD_STATE_VOLUME = 'dfs-injector-smbd-state';
export const SMBD_STATE_DIR = '/run/dfs-smbd';

/**
 * Source: the container holding the FUSE mount shares it, through a Bidirectional mount of a pod
 * volume, with an smbd sidecar that exports it read-only. Kubernetes allows Bidirectional only in
 * privileged containers, so a non-privileged source is refused rather than admitted broken.
 */
export function planSource(ctx: PlanContext, config: Config, overrides: Overrides): void {
  // A source serves the share; it has no business mounting the node's copy of it.
  refuseForeignDfsVolumes(ctx, config, undefined);
  if (ctx.errors.length > 0) return;
  const found = findSourceContainer(ctx, config, overrides);
  if (found === undefined) return;
  const { container, index } = found;
  if (container.securityContext?.privileged !== true) {
    ctx.errors.push(
      `source container "${shown(container.name)}" must set securityContext.privileged: true: the FUSE mount reaches the smbd sidecar only through mountPropagation Bidirectional, which Kubernetes allows only in privileged containers`,
    );
    return;
  }
  const sourcePath = overrides.sourcePath ?? config.source.path;
  const volumeName = ensureSourceVolume(ctx, config, container, `${ctx.prefix}/spec/containers/${index}`, sourcePath);
  if (volumeName === undefined) return;
  addSidecar(ctx, config, overrides, volumeName, sourcePath);
}

function findSourceContainer(ctx: PlanContext, config: Config, overrides: Overrides): { container: Container; index: number } | undefined {
  const containers = ctx.pod.spec.containers;
  const wanted = overrides.sourceContainer ?? config.source.container;
  if (wanted === undefined) {
    const first = containers[0];
    if (first === undefined) ctx.errors.push('the pod has no containers, so there is no source container');
    return first === undefined ? undefined : { container: first, index: 0 };
  }
  const index = containers.findIndex((c) => c.name === wanted);
  const container = containers[index];
  if (container === undefined) {
    const origin = overrides.sourceContainer !== undefined ? `annotation ${OVERRIDE_ANNOTATIONS.sourceContainer}` : 'source.container in the dfs-injector config';
    ctx.errors.push(`${origin} names container "${wanted}", which is not in this pod (containers: ${listSome(containers.map((c) => c.name))})`);
    return undefined;
  }
  return { container, index };
}

function ensureSourceVolume(ctx: PlanContext, config: Config, container: Container, containerPath: string, sourcePath: string): string | undefined {
  const mounts = container.volumeMounts;
  const index = mounts?.findIndex((m) => normalizePath(m.mountPath) === sourcePath) ?? -1;
  const existing = mounts?.[index];
  if (existing !== undefined) {
    if (existing.mountPropagation === 'Bidirectional') return existing.name;
    if (existing.mountPropagation == null) {
      ctx.patch.setField(`${containerPath}/volumeMounts/${index}/mountPropagation`, 'Bidirectional');
      ctx.warnings.push(`set mountPropagation: Bidirectional on the mount of volume "${shown(existing.name)}" at ${sourcePath} in container "${shown(container.name)}", so the FUSE mount reaches the smbd sidecar`);
      ctx.injected.mounts.push(`${container.name}:${sourcePath}:Bidirectional`);
      return existing.name;
    }
    ctx.errors.push(
      `container "${shown(container.name)}" mounts volume "${shown(existing.name)}" at ${sourcePath} with mountPropagation ${shown(String(existing.mountPropagation))}; the source path needs Bidirectional (or no mountPropagation, and the webhook sets it)`,
    );
    return undefined;
  }
  const name = config.source.volumeName;
  const volumes = ctx.pod.spec.volumes;
  const clash = volumes?.find((v) => v.name === name);
  if (clash !== undefined && clash.emptyDir == null) {
    ctx.errors.push(`volume "${name}" already exists and is not an emptyDir; rename that volume, or set source.volumeName in the dfs-injector config`);
    return undefined;
  }
  if (clash === undefined) {
    ctx.patch.appendTo(`${ctx.prefix}/spec/volumes`, volumes, { name, emptyDir: {} });
    ctx.injected.volumes.push(name);
  }
  const mount: VolumeMount = { name, mountPath: sourcePath, mountPropagation: 'Bidirectional' };
  ctx.patch.appendTo(`${containerPath}/volumeMounts`, mounts, mount);
  ctx.injected.mounts.push(`${container.name}:${sourcePath}:Bidirectional`);
  return name;
}

function addSidecar(ctx: PlanContext, config: Config, overrides: Overrides, volumeName: string, sourcePath: string): void {
  const { sidecar, shim } = config.source;
  const spec = ctx.pod.spec;
  const present = spec.containers.find((c) => c.name === sidecar.name);
  if (present !== undefined) {
    checkPresentSidecar(ctx, config, present, sourcePath);
    return;
  }
  const portOwner = [...spec.containers, ...(spec.initContainers ?? [])].find((c) => c.ports?.some((p) => p.containerPort === sidecar.port));
  if (portOwner !== undefined) {
    ctx.errors.push(`container "${shown(portOwner.name)}" already uses port ${sidecar.port}, which the smbd sidecar needs; free it or set source.sidecar.port in the dfs-injector config`);
    return;
  }
  const env = [
    { name: 'DFS_SHARE_NAME', value: overrides.shareName ?? config.source.shareName },
    { name: 'DFS_SHARE_PATH', value: sourcePath },
    { name: 'DFS_SMB_PORT', value: String(sidecar.port) },
    { name: 'DFS_LOG_LEVEL', value: String(sidecar.logLevel) },
    { name: 'DFS_GUEST_ACCOUNT', value: sidecar.guestAccount },
  ];
  const stateVolume = ensureStateVolume(ctx);
  if (stateVolume === undefined) return;
  const volumeMounts: VolumeMount[] = [
    { name: volumeName, mountPath: sourcePath, readOnly: true, mountPropagation: 'HostToContainer' },
    // The sidecar's root filesystem is read-only; everything smbd writes lives here.
    { name: stateVolume, mountPath: SMBD_STATE_DIR },
  ];
  const preload = shimPreloadPath(ctx, config);
  // A user's own Samba image (mode init) lacks the readiness script, so it runs the copy the
  // init container put beside the shim.
  const readiness = shim.mode === 'init' ? ['sh', `${SHIM_MOUNT_DIR}/${READINESS_SCRIPT.slice(READINESS_SCRIPT.lastIndexOf('/') + 1)}`] : [READINESS_SCRIPT];
  if (preload !== undefined) {
    env.push({ name: 'LD_PRELOAD', value: preload });
    if (shim.log) env.push({ name: 'DFS_SHIM_LOG', value: '1' });
    if (shim.mode === 'init') volumeMounts.push({ name: SHIM_VOLUME, mountPath: SHIM_MOUNT_DIR, readOnly: true });
  }
  const container: Container = {
    name: sidecar.name,
    image: sidecar.image,
    imagePullPolicy: sidecar.imagePullPolicy,
    env,
    ports: [{ name: 'smb', containerPort: sidecar.port, protocol: 'TCP' }],
    volumeMounts,
    readinessProbe: { exec: { command: readiness }, periodSeconds: 10, timeoutSeconds: 10, failureThreshold: 3 },
    resources: sidecar.resources,
    securityContext: sidecar.securityContext,
  };
  ctx.patch.appendTo(`${ctx.prefix}/spec/containers`, spec.containers, container);
  ctx.injected.containers.push(sidecar.name);
}

/** An emptyDir for smbd's state; a volume of that name that is something else is refused. */
function ensureStateVolume(ctx: PlanContext): string | undefined {
  const volumes = ctx.pod.spec.volumes;
  const clash = volumes?.find((v) => v.name === SMBD_STATE_VOLUME);
  if (clash === undefined) {
    ctx.patch.appendTo(`${ctx.prefix}/spec/volumes`, volumes, { name: SMBD_STATE_VOLUME, emptyDir: { sizeLimit: '64Mi' } });
    ctx.injected.volumes.push(SMBD_STATE_VOLUME);
  } else if (clash.emptyDir == null) {
    ctx.errors.push(`volume "${SMBD_STATE_VOLUME}" already exists and is not an emptyDir; the smbd sidecar keeps its state there, so rename that volume`);
    return undefined;
  }
  return SMBD_STATE_VOLUME;
}

/**
 * A container that already has the sidecar's name is left in place only if it is what the webhook
 * would have added in the ways that matter (the pod was injected before): the shim preloaded, and
 * the share mounted read-only. Anything else is refused rather than admitted looking injected.
 */
function checkPresentSidecar(ctx: PlanContext, config: Config, container: Container, sourcePath: string): void {
  const env = Array.isArray(container.env) ? (container.env as unknown[]) : [];
  const value = (name: string): string | undefined => {
    for (const e of env) if (isRecord(e) && e.name === name && typeof e.value === 'string') return e.value;
    return undefined;
  };
  const problems: string[] = [];
  if (config.source.shim.mode !== 'off' && (value('LD_PRELOAD') ?? '') === '') problems.push('has no LD_PRELOAD of the nlink shim');
  const sharePath = normalizePath(value('DFS_SHARE_PATH') ?? sourcePath);
  const writable = (container.volumeMounts ?? []).filter((m) => m.name !== SHIM_VOLUME && normalizePath(m.mountPath) === sharePath && m.readOnly !== true);
  if (writable.length > 0) problems.push(`mounts the share path ${shown(sharePath)} writable`);
  if (problems.length === 0) return;
  ctx.errors.push(
    `container "${shown(container.name)}" is already in the pod but is not the smbd sidecar dfs-injector injects: it ${problems.join(' and ')}; remove it and let the webhook add the sidecar, or set source.sidecar.name in the dfs-injector config`,
  );
}

/** Where LD_PRELOAD points, after adding whatever delivers the shim there; undefined when off. */
function shimPreloadPath(ctx: PlanContext, config: Config): string | undefined {
  const { shim, sidecar } = config.source;
  if (shim.mode === 'off') return undefined;
  if (shim.mode === 'image') return shim.path;
  const spec = ctx.pod.spec;
  const file = shim.initSourcePath.slice(shim.initSourcePath.lastIndexOf('/') + 1);
  if (!(spec.volumes ?? []).some((v) => v.name === SHIM_VOLUME)) {
    ctx.patch.appendTo(`${ctx.prefix}/spec/volumes`, spec.volumes, { name: SHIM_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } });
    ctx.injected.volumes.push(SHIM_VOLUME);
  }
  if (!(spec.initContainers ?? []).some((c) => c.name === SHIM_INIT_CONTAINER)) {
    const init: Container = {
      name: SHIM_INIT_CONTAINER,
      image: shim.initImage ?? sidecar.image,
      imagePullPolicy: sidecar.imagePullPolicy,
      command: ['cp', shim.initSourcePath, READINESS_SCRIPT, `${SHIM_MOUNT_DIR}/`],
      volumeMounts: [{ name: SHIM_VOLUME, mountPath: SHIM_MOUNT_DIR }],
      resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '32Mi' } },
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true },
    };
    ctx.patch.appendTo(`${ctx.prefix}/spec/initContainers`, spec.initContainers, init);
    ctx.injected.initContainers.push(SHIM_INIT_CONTAINER);
  }
  return `${SHIM_MOUNT_DIR}/${file}`;
}
