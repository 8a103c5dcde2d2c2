/**
 * A one-node Kubernetes cluster for tests of the whole data path: a QEMU VM with Debian's kernel
 * (the one the VM harness of test/vm boots, which has CIFS) runs containerd, the kubelet and
 * kube-proxy; etcd, the API server, the controller manager and the scheduler run on the host at
 * full speed. Both sides live in a network namespace of the test's own:
 *
 *   netns dfs-node-…:  br0 10.77.0.1/24 ── tap0 ── VM eth0 10.77.0.2 ── cni0 10.244.0.1/24 ── pods
 *                      routes: 10.244.0.0/24 (pods) and 10.0.0.0/24 (Services) via 10.77.0.2
 *
 * so the API server reaches webhooks through their Service, pods and the kubelet exactly as in a
 * cluster, and no address of it exists outside the namespace. The test process reaches the API
 * server through a forwarder on 127.0.0.1 (see test/e2e/netns-forward.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, link, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findControlPlaneBinaries, type NodeBinaries } from '../e2e/binaries.js';
import { agentClient, findBase, qemuMachineArgs } from '../vm/vm.js';
import { startControlPlane, startScheduler, waitFor, writeKubeconfig, type ControlPlane, type ControlPlaneOptions, type KubeObject } from '../e2e/harness.js';
import { forgetDirectory, removeOnExit, startProcess, type ManagedProcess } from '../e2e/process.js';

const here = fileURLToPath(new URL('.', import.meta.url));

export const NODE_NAME = 'dfs-node';
export const BRIDGE_ADDRESS = '10.77.0.1';
export const NODE_ADDRESS = '10.77.0.2';
export const POD_CIDR = '10.244.0.0/24';
export const SERVICE_CIDR = '10.0.0.0/24';

export interface NodeArtifacts {
  readonly kernel: string;
  readonly initramfs: string;
  /** linux-image-…=version: the rootfs carries this kernel's modules. */
  readonly kernelPackage: string;
  readonly rootfs: string;
  /** Holds pause.tar and toolbox.tar (localhost/dfs-pause:1, localhost/dfs-toolbox:1). */
  readonly images: string;
  /** localhost/dfs-coredns:1, the cluster DNS (addons/coredns.yaml). */
  readonly coredns: string;
  readonly binaries: NodeBinaries;
}

export type NodeArtifactsResult = { readonly available: true; readonly artifacts: NodeArtifacts } | { readonly available: false; readonly hint: string };

const SETUP_HINT = 'Run `bash test/setup.sh` (qemu, mmdebstrap, the VM base, the node binaries, its root disk and images).';

/** The VM harness's base (test/vm): its kernel, its initramfs and the kernel's package. */
function vmBase(): { kernel: string; initramfs: string; kernelPackage: string } | undefined {
  const base = findBase();
  const pkg = base?.versions.kernel_package;
  const version = pkg === undefined ? undefined : base?.versions[pkg];
  if (base === undefined || pkg === undefined || version === undefined) return undefined;
  return { kernel: base.kernel, initramfs: base.initramfs, kernelPackage: `${pkg}=${version}` };
}

/** The cached output of one of the node's build scripts, without building (DFS_NODE_CHECK_ONLY). */
function cachedOutput(script: string, args: readonly string[]): string | undefined {
  const r = spawnSync('bash', [join(here, script), ...args], { encoding: 'utf8', env: { ...process.env, DFS_NODE_CHECK_ONLY: '1' } });
  if (r.status !== 0) return undefined;
  return r.stdout.trim().split('\n').pop();
}

/** Locates everything a node needs; never builds (the first build takes minutes). */
export function findNodeArtifacts(): NodeArtifactsResult {
  const missing: string[] = [];
  for (const tool of ['qemu-system-x86_64', 'ip', 'cpio', 'gzip']) {
    if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0) missing.push(tool);
  }
  if (process.getuid?.() !== 0) missing.push('root (network namespaces, TAP devices)');
  const binaries = findControlPlaneBinaries().node;
  if (!binaries.available) missing.push(binaries.hint);
  const base = vmBase();
  if (base === undefined) missing.push('the VM base (bash test/vm/build-base.sh)');
  const rootfs = base === undefined ? undefined : cachedOutput('build-rootfs.sh', [base.kernelPackage]);
  if (base !== undefined && rootfs === undefined) missing.push(`the node's root disk (bash test/node/build-rootfs.sh ${base.kernelPackage})`);
  const images = cachedOutput('images/build-images.sh', []);
  if (images === undefined) missing.push('the pause and toolbox images (bash test/node/images/build-images.sh)');
  const coredns = cachedOutput('images/build-coredns.sh', []);
  if (coredns === undefined) missing.push('the CoreDNS image (bash test/node/images/build-coredns.sh)');
  if (missing.length > 0 || base === undefined || rootfs === undefined || images === undefined || coredns === undefined) {
    return { available: false, hint: `Missing: ${missing.join('; ')}. ${SETUP_HINT}` };
  }
  return { available: true, artifacts: { ...base, rootfs, images, coredns: join(coredns, 'coredns.tar'), binaries } };
}

export interface NodeOptions {
  /** Image archives (OCI or docker-archive tars) imported into containerd at boot, besides pause and toolbox. */
  readonly images?: readonly string[];
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** Passed to startControlPlane (network is set here). */
  readonly controlPlane?: Omit<ControlPlaneOptions, 'network'>;
  /** Deploy CoreDNS (addons/coredns.yaml) and wait for it. Default true. */
  readonly dns?: boolean;
  /** Until the node is Ready. Default 300 s. */
  readonly readyTimeoutMs?: number;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface TestNode {
  readonly cp: ControlPlane;
  readonly netns: string;
  /** Host side of the node's 9p share: logs/ holds containerd, kubelet and kube-proxy logs. */
  readonly shareDir: string;
  /** Timings of the start, in ms since startNode() was called. */
  readonly timings: { readonly controlPlane: number; readonly nodeInit: number; readonly nodeReady: number; readonly dnsReady: number };
  /** Runs a shell script on the node as root (not in a pod). Never rejects on exit status. */
  exec(script: string, timeoutMs?: number): Promise<ExecResult>;
  /** The run's kubectl against this cluster (admin), from the host. */
  kubectl(args: readonly string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** The VM's console so far. */
  console(): string;
  /** The last lines of a node log (containerd, kubelet, kube-proxy, images). */
  logTail(name: string, lines?: number): string;
  /** Powers the VM off, stops the control plane, deletes the namespace. Idempotent. */
  stop(): Promise<void>;
}

let netnsCounter = 0;

function run(cmd: string, args: readonly string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
}

function createNetns(): string {
  const name = `dfs-node-${process.pid}-${++netnsCounter}`;
  run('ip', ['netns', 'add', name]);
  // Deleted at exit even when the test dies half-way: a left-over namespace holds no process
  // once QEMU and the control plane are killed, but it would accumulate.
  process.once('exit', () => spawnSync('ip', ['netns', 'del', name]));
  const steps: string[][] = [
    ['link', 'set', 'lo', 'up'],
    ['link', 'add', 'br0', 'type', 'bridge'],
    ['addr', 'add', `${BRIDGE_ADDRESS}/24`, 'dev', 'br0'],
    ['link', 'set', 'br0', 'up'],
    ['tuntap', 'add', 'dev', 'tap0', 'mode', 'tap'],
    ['link', 'set', 'tap0', 'master', 'br0'],
    ['link', 'set', 'tap0', 'up'],
    ['route', 'add', POD_CIDR, 'via', NODE_ADDRESS],
    ['route', 'add', SERVICE_CIDR, 'via', NODE_ADDRESS],
  ];
  try {
    for (const s of steps) run('ip', ['-n', name, ...s]);
  } catch (e) {
    spawnSync('ip', ['netns', 'del', name]);
    throw e;
  }
  return name;
}

/**
 * The VM harness's initramfs followed by the root disk's appendix (build-rootfs.sh's .initrd:
 * /dfs-switch-root and the modules it needs): the kernel unpacks concatenated archives in order.
 */
async function nodeInitramfs(base: string, rootfs: string, dir: string): Promise<string> {
  const out = join(dir, 'initramfs.cpio.gz');
  await writeFile(out, Buffer.concat([await readFile(base), await readFile(rootfs.replace(/\.ext4$/, '.initrd'))]));
  return out;
}

async function placeImage(src: string, dir: string): Promise<void> {
  const dst = join(dir, basename(src));
  try {
    await link(src, dst);
  } catch {
    await copyFile(src, dst);
  }
}

function consoleLines(p: ManagedProcess): string {
  try {
    return readFileSync(p.logPath, 'utf8').replace(/\r/g, '');
  } catch {
    return '';
  }
}

type Kubectl = (args: readonly string[], opts?: { timeoutMs?: number; input?: string }) => Promise<ExecResult>;

async function startDns(api: ControlPlane['client'], kubectl: Kubectl, fatal: () => string | undefined): Promise<void> {
  await api.applyManifest(await readFile(join(here, 'addons', 'coredns.yaml'), 'utf8'));
  try {
    await waitFor(
      'CoreDNS ready',
      async () => {
        const d = await api.get('apps/v1', 'Deployment', 'coredns', 'kube-system');
        return ((d?.status as { readyReplicas?: number } | undefined)?.readyReplicas ?? 0) >= 1;
      },
      { timeoutMs: 240_000, intervalMs: 1_000, abort: fatal },
    );
  } catch (e) {
    // Asynchronously: the API server's forwarder lives in this process's event loop.
    const logs = await kubectl(['logs', '-n', 'kube-system', 'deploy/coredns', '--tail=30'], { timeoutMs: 30_000 });
    throw new Error(`${e instanceof Error ? e.message : String(e)}\nCoreDNS log:\n${logs.stdout}${logs.stderr}`, { cause: e });
  }
}

/** Boots the cluster; resolves once the node is Ready. */
export async function startNode(artifacts: NodeArtifacts, options: NodeOptions = {}): Promise<TestNode> {
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'dfs-node-'));
  const keep = process.env.DFS_E2E_KEEP === '1';
  if (!keep) removeOnExit(dir);
  const share = join(dir, 'share');
  await mkdir(join(share, 'images'), { recursive: true });
  await mkdir(join(share, 'logs'), { recursive: true });

  const netns = createNetns();
  let cp: ControlPlane | undefined;
  let qemu: ManagedProcess | undefined;
  let scheduler: ManagedProcess | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (qemu?.running() === true) {
      // A clean power-off flushes nothing we need (the disk is a throw-away snapshot): kill.
      await qemu.stop(2_000);
    }
    await scheduler?.stop(2_000);
    await cp?.stop();
    spawnSync('ip', ['netns', 'del', netns]);
    if (keep) {
      process.stderr.write(`dfs-injector node: run dir kept at ${dir}\n`);
    } else {
      await rm(dir, { recursive: true, force: true });
      forgetDirectory(dir);
    }
  };

  try {
    cp = await startControlPlane({ ...options.controlPlane, network: { netns, address: BRIDGE_ADDRESS } });
    // The scheduler: the only component a node test adds to the harness's control plane.
    scheduler = startScheduler(artifacts.binaries.kubeScheduler, cp.componentsKubeconfig, 10259, join(dir, 'kube-scheduler.log'), {
      cwd: dir,
      env: process.env,
      netns,
    });
    const controlPlaneMs = Date.now() - started;

    const [kubeletClient, kubeletServing, proxyClient] = await Promise.all([
      cp.pki.issue({ name: 'kubelet-client', commonName: `system:node:${NODE_NAME}`, organizations: ['system:nodes'], usage: 'client' }),
      cp.pki.issue({ name: 'kubelet-serving', commonName: NODE_NAME, dnsNames: [NODE_NAME], ipAddresses: [NODE_ADDRESS], usage: 'server' }),
      cp.pki.issue({ name: 'kube-proxy', commonName: 'system:kube-proxy', usage: 'client' }),
    ]);
    const creds = async (c: { cert: string; key: string }): Promise<{ server: string; caPem: string; certPem: string; keyPem: string }> => ({
      server: cp!.innerServer,
      caPem: cp!.pki.caPem,
      certPem: await readFile(c.cert, 'utf8'),
      keyPem: await readFile(c.key, 'utf8'),
    });
    await writeKubeconfig(join(share, 'kubelet.kubeconfig'), `system:node:${NODE_NAME}`, await creds(kubeletClient));
    await writeKubeconfig(join(share, 'kube-proxy.kubeconfig'), 'system:kube-proxy', await creds(proxyClient));
    await copyFile(cp.pki.ca.cert, join(share, 'ca.crt'));
    await copyFile(kubeletServing.cert, join(share, 'kubelet-serving.crt'));
    await copyFile(kubeletServing.key, join(share, 'kubelet-serving.key'));
    for (const image of [join(artifacts.images, 'pause.tar'), join(artifacts.images, 'toolbox.tar'), artifacts.coredns, ...(options.images ?? [])]) {
      await placeImage(image, join(share, 'images'));
    }

    const initramfs = await nodeInitramfs(artifacts.initramfs, artifacts.rootfs, dir);
    for (const p of [artifacts.rootfs, share, artifacts.binaries.dir]) {
      if (p.includes(',')) throw new Error(`${p}: QEMU cannot take a path with a comma`);
    }
    const bootOnce = (attempt: number): ManagedProcess =>
      startProcess({
        name: 'qemu (node)',
        command: 'qemu-system-x86_64',
        args: [
          // KVM hangs this kernel at boot on this machine; TCG with one thread per vCPU.
          ...qemuMachineArgs({ accel: 'tcg,thread=multi', memoryMiB: options.memoryMiB ?? 4096, cpus: options.cpus ?? 2, kernel: artifacts.kernel, initrd: initramfs }),
          '-append', `console=ttyS0 panic=-1 loglevel=4 rdinit=/dfs-switch-root dfs.ip=${NODE_ADDRESS}/24 dfs.gw=${BRIDGE_ADDRESS}`,
          // snapshot=on: writes go to a temporary overlay, the cached image stays pristine.
          '-drive', `file=${artifacts.rootfs},format=raw,if=virtio,snapshot=on`,
          '-fsdev', `local,id=node,path=${share},security_model=none`,
          '-device', 'virtio-9p-pci,fsdev=node,mount_tag=node',
          '-fsdev', `local,id=k8s,path=${artifacts.binaries.dir},security_model=none,readonly=on`,
          '-device', 'virtio-9p-pci,fsdev=k8s,mount_tag=k8s',
          '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no',
          '-device', 'virtio-net-pci,netdev=n0,mac=52:54:00:77:00:02',
        ],
        logPath: join(dir, `console-${attempt}.log`),
        cwd: dir,
        netns,
      });
    // QEMU 7.2's TCG has crashed this kernel very early once in about a dozen boots here (a
    // double fault in apparmor_init, before any of our code runs): such a boot is retried once.
    const earlyCrash = (p: ManagedProcess): boolean => {
      const text = consoleLines(p);
      return !text.includes('DFS-NODE: root disk mounted') && /Kernel panic|double fault/.test(text);
    };
    qemu = bootOnce(1);
    const first = qemu;
    const booted = (): boolean => consoleLines(first).includes('DFS-NODE: root disk mounted') || earlyCrash(first) || !first.running();
    await waitFor('the root disk mounted', booted, { timeoutMs: 120_000, intervalMs: 200 });
    if (earlyCrash(first)) {
      process.stderr.write(`dfs-injector node: the VM's kernel crashed while booting; booting again. Console:\n${consoleLines(first).slice(0, 600)}\n`);
      await first.stop(1_000);
      qemu = bootOnce(2);
    }
    const vm = qemu;
    const fatal = (): string | undefined => {
      const text = consoleLines(vm);
      const line = text.split('\n').find((l) => l.startsWith('DFS-NODE: FATAL'));
      if (line !== undefined) return `${line}\n${text.slice(-3000)}`;
      return vm.running() ? undefined : `QEMU exited; console:\n${text.slice(-3000)}`;
    };
    // The init imports about 670 MB of image archives into containerd, which takes minutes
    // under TCG when the host is busy; a crash or a FATAL line still ends the wait at once.
    await waitFor('the node init (DFS-NODE: ready)', () => consoleLines(vm).includes('DFS-NODE: ready'), {
      timeoutMs: 480_000,
      intervalMs: 200,
      abort: fatal,
    });
    const nodeInitMs = Date.now() - started;
    const api = cp.client;
    const controlPlane = cp;
    await waitFor(
      `node ${NODE_NAME} Ready`,
      async () => {
        const node: KubeObject | undefined = await api.get('v1', 'Node', NODE_NAME);
        const conditions = ((node?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []);
        return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
      },
      { timeoutMs: options.readyTimeoutMs ?? 300_000, intervalMs: 500, abort: fatal },
    );
    const nodeReadyMs = Date.now() - started;

    const kubectl = (args: readonly string[], o: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> =>
      new Promise((resolve, reject) => {
        const child = spawn(artifacts.binaries.kubectl, ['--kubeconfig', controlPlane.kubeconfigPath, ...args], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
        child.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout, stderr });
        });
        child.stdin.end(o.input ?? '');
      });

    // Cluster DNS, as every cluster has it: the mounter finds the SMB Service by name.
    if (options.dns !== false) await startDns(api, kubectl, fatal);
    const dnsReadyMs = Date.now() - started;

    const exec = agentClient(join(share, 'agent'), 'node', (what, done, timeoutMs) => waitFor(what, done, { timeoutMs, intervalMs: 100, abort: fatal }));
    return {
      cp: controlPlane,
      netns,
      shareDir: share,
      timings: { controlPlane: controlPlaneMs, nodeInit: nodeInitMs, nodeReady: nodeReadyMs, dnsReady: dnsReadyMs },
      exec,
      kubectl,
      console: () => consoleLines(vm),
      logTail: (name, lines = 40) => {
        try {
          return readFileSync(join(share, 'logs', `${name}.log`), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
        } catch {
          return `(no ${name} log)`;
        }
      },
      stop,
    };
  } catch (err) {
    const logs = ['containerd', 'kubelet', 'kube-proxy', 'images']
      .map((n) => {
        try {
          const text = readFileSync(join(share, 'logs', `${n}.log`), 'utf8').trimEnd().split('\n').slice(-15).join('\n');
          return `--- node ${n}.log (last lines) ---\n${text}`;
        } catch {
          return '';
        }
      })
      .filter((s) => s !== '')
      .join('\n');
    const consoleText = qemu === undefined ? '' : `--- console (last lines) ---\n${consoleLines(qemu).slice(-2500)}`;
    await stop();
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`the test node did not start: ${reason}\n${consoleText}\n${logs}`, { cause: err });
  }
}
