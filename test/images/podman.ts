// Runs the built images with podman as the kubelet would run their containers: a Kubernetes
// container spec (env, securityContext, volume mounts) becomes `podman run` flags, each pod gets a
// network namespace of its own with only loopback (--network=none), and the test reaches it by
// entering that namespace (nsenter), so nothing listens on or sends to any host interface.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { have, isRoot, run, runOk, tempDir, waitFor, type RunResult } from '../../shim/test/support.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BUILD_SCRIPT = join(REPO_ROOT, 'test', 'images', 'build.sh');

/** The runtimes and tools the image suite needs; false with the reason in `missing`. */
export function imageToolsMissing(): string[] {
  const missing = ['podman', 'buildah', 'mmdebstrap', 'runc', 'nsenter', 'smbclient', 'curl'].filter((t) => !have(t));
  if (!isRoot()) missing.push('root (rootful containers-storage, FUSE, nsenter)');
  return missing;
}

export const IMAGE_TOOLS_HINT = 'bash test/setup.sh (apt-get install -y podman buildah mmdebstrap runc smbclient curl), as root';

export interface BuiltImage {
  name: string;
  tag: string;
  id: string;
  size: number;
}

/**
 * Builds (or finds cached) images with test/images/build.sh; one build at a time per machine.
 * With `exportDir`, each is also written there as NAME.tar, a docker-archive that keeps its tag
 * (`ctr -n k8s.io images import`), re-exported only when the image changed.
 */
export async function buildImages(names: readonly string[], opts: { exportDir?: string } = {}): Promise<Map<string, BuiltImage>> {
  const exportArgs = opts.exportDir !== undefined ? ['--export', opts.exportDir] : [];
  const r = await runOk('bash', [BUILD_SCRIPT, '--quiet', ...exportArgs, ...names], { timeoutMs: 1_800_000, env: { ...process.env } });
  const images = new Map<string, BuiltImage>();
  for (const line of r.stdout.trim().split('\n')) {
    const [name = '', tag = '', id = '', size = ''] = line.split(' ');
    images.set(name, { name, tag, id, size: Number(size) });
  }
  for (const name of names) if (!images.has(name)) throw new Error(`build.sh reported no ${name} image:\n${r.stdout}\n${r.stderr}`);
  return images;
}

// This machine's podman: crun cannot run in a cgroup v1/v2 hybrid, so runc; and without
// CAP_SYS_RESOURCE a container's rlimits may only be lowered, never set to the host's own.
function hardLimit(flag: string): number {
  const n = Number(spawnSync('sh', ['-c', `ulimit -H${flag}`], { encoding: 'utf8' }).stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}
const NOFILE = Math.min(65_536, Math.floor(hardLimit('n') / 2));
const NPROC = Math.min(32_768, Math.floor(hardLimit('u') / 2));
export const PODMAN_BASE = ['--runtime', 'runc'];
const RUN_DEFAULTS = ['--pull=never', '--network=none', `--ulimit=nofile=${NOFILE}:${NOFILE}`, `--ulimit=nproc=${NPROC}:${NPROC}`];

export function podman(args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  return run('podman', [...PODMAN_BASE, ...args], { timeoutMs });
}

export async function podmanOk(args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  const r = await podman(args, timeoutMs);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** A container run to completion (`podman run --rm`), as an init container or a one-off command. */
export function runOnce(image: string, args: readonly string[], flags: readonly string[] = []): Promise<RunResult> {
  return podman(['run', '--rm', ...RUN_DEFAULTS, ...flags, image, ...args]);
}

interface K8sSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
}

export interface K8sContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
  securityContext?: K8sSecurityContext;
}

/** Where each of the pod's volumes is on this machine (an emptyDir is a fresh directory). */
export type VolumeSources = Record<string, string>;

/** An emptyDir as the kubelet makes one: a new directory, mode 0777. */
export function emptyDir(name: string): string {
  const dir = join(tempDir(`emptydir-${name}`), 'volume');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  return dir;
}

/**
 * `podman run` flags for a Kubernetes container: its env, its securityContext (podman's own
 * read-only /tmp and /run tmpfs turned off, which the kubelet does not add), and its volume
 * mounts, HostToContainer as rslave. The pod's securityContext is passed separately.
 */
export function containerFlags(c: K8sContainer, volumes: VolumeSources, pod: K8sSecurityContext = {}): string[] {
  const flags: string[] = [];
  for (const e of c.env ?? []) {
    if (e.value === undefined) throw new Error(`env ${e.name} of container ${c.name} has no literal value`);
    flags.push('--env', `${e.name}=${e.value}`);
  }
  flags.push(...securityFlags({ ...pod, ...(c.securityContext ?? {}) }));
  for (const m of c.volumeMounts ?? []) {
    const source = volumes[m.name];
    if (source === undefined) throw new Error(`container ${c.name} mounts volume ${m.name}, which the test does not provide`);
    const options = [m.readOnly === true ? 'ro' : 'rw'];
    if (m.mountPropagation === 'HostToContainer') options.push('rslave');
    if (m.mountPropagation === 'Bidirectional') options.push('rshared');
    flags.push('--volume', `${source}:${m.mountPath}:${options.join(',')}`);
  }
  if (c.command !== undefined) flags.push('--entrypoint', JSON.stringify(c.command));
  return flags;
}

function securityFlags(sc: K8sSecurityContext): string[] {
  const flags: string[] = [];
  if (sc.runAsUser !== undefined) flags.push('--user', sc.runAsGroup !== undefined ? `${sc.runAsUser}:${sc.runAsGroup}` : String(sc.runAsUser));
  if (sc.readOnlyRootFilesystem === true) flags.push('--read-only', '--read-only-tmpfs=false');
  if (sc.allowPrivilegeEscalation === false) flags.push('--security-opt=no-new-privileges');
  if (sc.privileged === true) flags.push('--privileged');
  for (const cap of sc.capabilities?.drop ?? []) flags.push(`--cap-drop=${cap.toLowerCase()}`);
  for (const cap of sc.capabilities?.add ?? []) flags.push(`--cap-add=${cap.toLowerCase()}`);
  return flags;
}

export interface Running {
  name: string;
  pid: number;
  /** Runs a command in the container's network namespace, from this machine. */
  inNetns: (command: string, args: readonly string[], timeoutMs?: number) => Promise<RunResult>;
  exec: (args: readonly string[]) => Promise<RunResult>;
  logs: () => Promise<string>;
  stop: () => Promise<void>;
}

let serial = 0;
const started = new Set<string>();

/** Starts a detached container; `stopAll` (afterAll) removes whatever a failed test left. */
export async function start(image: string, flags: readonly string[], args: readonly string[] = []): Promise<Running> {
  const name = `dfs-image-test-${process.pid}-${++serial}`;
  started.add(name);
  await podmanOk(['run', '--detach', '--name', name, ...RUN_DEFAULTS, ...flags, image, ...args]);
  const pid = Number((await podmanOk(['inspect', '--format', '{{.State.Pid}}', name])).stdout.trim());
  if (!(pid > 0)) throw new Error(`container ${name} has no pid: ${await logsOf(name)}`);
  return {
    name,
    pid,
    inNetns: (command, cmdArgs, timeoutMs = 60_000) => run('nsenter', [`--net=/proc/${pid}/ns/net`, command, ...cmdArgs], { timeoutMs }),
    exec: (cmdArgs) => podman(['exec', name, ...cmdArgs]),
    logs: () => logsOf(name),
    stop: async () => {
      started.delete(name);
      await remove(name);
    },
  };
}

async function logsOf(name: string): Promise<string> {
  const r = await podman(['logs', name]);
  return r.stdout + r.stderr;
}

/** Stops (SIGTERM, then SIGKILL after 10 s, as the kubelet would) and removes a container. */
async function remove(name: string): Promise<void> {
  await podman(['stop', '--time', '10', name]);
  const r = await podman(['rm', '--force', name]);
  if (r.code !== 0 && !/no such container/i.test(r.stderr)) throw new Error(`podman rm ${name} failed: ${r.stderr}`);
}

export async function stopAll(): Promise<void> {
  for (const name of [...started]) {
    started.delete(name);
    await remove(name);
  }
}

/** Waits until the container is running its command (not yet exited) and `check` holds. */
export async function waitUntil(c: Running, what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    what,
    async () => {
      const state = (await podman(['inspect', '--format', '{{.State.Status}}', c.name])).stdout.trim();
      if (state !== 'running') throw new Error(`container ${c.name} is ${state} while waiting for ${what}:\n${await c.logs()}`);
      return check();
    },
    timeoutMs,
  );
}

/** A shell command's output from inside the image, as root, without the image's entrypoint. */
export async function shellIn(image: string, script: string): Promise<RunResult> {
  return runOnce(image, ['-c', script], ['--entrypoint', '/bin/sh', '--user', '0']);
}
