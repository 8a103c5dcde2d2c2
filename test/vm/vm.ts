// Boots a QEMU virtual machine with Debian's own kernel, for tests that need a real kernel
// feature this machine's kernel lacks (the CIFS client) or a whole node. The kernel and an
// initramfs base come from test/vm/build-base.sh (cached by package version); the caller adds
// an init script, directories shared from the host over virtio-9p, disks and a network.
//
// The guest's /init (test/vm/guest-init.sh) runs an agent: exec() drops a script into the
// harness share, the guest runs it and writes its output and status back. Console lines stream
// to the caller and can be awaited. stop() kills QEMU and removes the temporary directory; the
// same happens when a boot or an exec times out, and at worker exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const vmDir = fileURLToPath(new URL('.', import.meta.url));
const buildScript = join(vmDir, 'build-base.sh');

export interface VmBase {
  dir: string;
  kernel: string;
  initramfs: string;
  /** package=version lines written by build-base.sh (kernel, cifs-utils, busybox, dash, libc). */
  versions: Record<string, string>;
}

/** What is missing on this machine to boot a VM; undefined when nothing is. */
export function vmUnavailableReason(): string | undefined {
  const missing = ['qemu-system-x86_64', 'cpio', 'depmod', 'dpkg-deb', 'setpriv'].filter(
    (c) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', c]).status !== 0,
  );
  if (missing.length > 0) return `missing ${missing.join(', ')}`;
  if (findBase() === undefined) return `no VM base under ${cacheRoot()}: run bash test/vm/build-base.sh`;
  return undefined;
}

export const VM_HINT = 'Run bash test/setup.sh (installs qemu-system-x86, cpio, kmod and builds the VM base with test/vm/build-base.sh).';

function cacheRoot(): string {
  return process.env.DFS_VM_CACHE ?? join(homedir(), '.cache', 'dfs-injector', 'vm');
}

let baseCache: VmBase | undefined;

/**
 * The base build-base.sh built for the current script and package versions. It asks the
 * script (which refreshes apt lists at most daily and exits at once when its entry exists).
 */
export function findBase(): VmBase | undefined {
  if (baseCache !== undefined) return baseCache;
  const r = spawnSync('bash', [buildScript], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DFS_VM_NO_UPDATE: '1' } });
  if (r.status !== 0) return undefined;
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(join(dir, 'done'))) return undefined;
  const versions: Record<string, string> = {};
  for (const line of readFileSync(join(dir, 'versions'), 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) versions[line.slice(0, eq)] = line.slice(eq + 1);
  }
  baseCache = { dir, kernel: join(dir, 'vmlinuz'), initramfs: join(dir, 'initramfs.cpio.gz'), versions };
  return baseCache;
}

export type VmNetwork =
  /** QEMU user networking: the guest is 10.0.2.15 and reaches the host's loopback at 10.0.2.2. */
  | { mode: 'user' }
  /**
   * A TAP device the caller created inside the network namespace `netns` (QEMU runs in that
   * namespace, so the guest's traffic never leaves it). guestCidr is eth0's address.
   */
  | { mode: 'tap'; netns: string; tap: string; guestCidr: string; gateway?: string; mac?: string }
  | { mode: 'none' };

export interface VmShare {
  /** Directory on the host. */
  hostPath: string;
  /** Where the guest mounts it (read-write, 9p2000.L, no caching). */
  guestPath: string;
}

export interface VmDisk {
  path: string;
  format: 'raw' | 'qcow2';
  readOnly?: boolean;
}

export interface VmOptions {
  /** Shell script the guest runs in the background once it is up (as /harness/init). */
  init?: string;
  shares?: VmShare[];
  disks?: VmDisk[];
  memoryMiB?: number;
  cpus?: number;
  network?: VmNetwork;
  /** Modules to load besides the default set (they must be in the base). */
  modules?: string[];
  /** Extra kernel command-line words. */
  append?: string[];
  /** Each console line, as it arrives. */
  onConsole?: (line: string) => void;
  /** Boot deadline, ms [60000]. */
  bootTimeoutMs?: number;
  /** Hard limit on the VM's whole life, ms; it is killed after it [3600000]. */
  lifetimeMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Vm {
  /** The harness directory on the host (the guest's /harness). */
  harness: string;
  kernelRelease: string;
  /** Runs a shell script in the guest (as root, cwd /). Rejects on timeout, never on exit status. */
  exec: (script: string, opts?: { timeoutMs?: number }) => Promise<ExecResult>;
  /** exec() that rejects unless the script exits 0. */
  execOk: (script: string, opts?: { timeoutMs?: number }) => Promise<string>;
  /** Resolves with the first console line (from the start of the boot) matching re. */
  waitForConsole: (re: RegExp, timeoutMs: number) => Promise<string>;
  console: () => string;
  /** Kills QEMU and removes the harness directory. Idempotent. */
  stop: () => Promise<void>;
}

const live = new Set<{ kill: () => void }>();
process.on('exit', () => {
  for (const v of live) v.kill();
});

function waitUntil(what: string, check: () => boolean, timeoutMs: number, failed: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const why = failed();
      if (why !== undefined) {
        reject(new Error(`${what}: ${why}`));
        return;
      }
      if (check()) {
        resolve();
        return;
      }
      if (Date.now() > deadline) {
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        return;
      }
      setTimeout(tick, 50);
    };
    tick();
  });
}

function netArgs(net: VmNetwork): { qemu: string[]; append: string[] } {
  switch (net.mode) {
    case 'user':
      return {
        qemu: ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0'],
        append: ['dfs.ip=10.0.2.15/24', 'dfs.gw=10.0.2.2'],
      };
    case 'tap': {
      const mac = net.mac ?? '52:54:00:12:34:56';
      return {
        qemu: ['-netdev', `tap,id=n0,ifname=${net.tap},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${mac}`],
        append: [`dfs.ip=${net.guestCidr}`, ...(net.gateway !== undefined ? [`dfs.gw=${net.gateway}`] : [])],
      };
    }
    case 'none':
      return { qemu: [], append: [] };
  }
}

/**
 * The machine this harness and test/node boot: emulated (`accel`), no default devices and no
 * display, a kernel panic ends QEMU instead of rebooting it (`panic=-1` on the command line), the
 * serial console on stdio for the log, and the kernel and initramfs booted directly.
 */
export function qemuMachineArgs(m: { accel: string; memoryMiB: number; cpus: number; kernel: string; initrd: string }): string[] {
  return [
    '-accel', m.accel, '-cpu', 'max',
    '-m', String(m.memoryMiB),
    '-smp', String(m.cpus),
    '-nodefaults', '-display', 'none', '-no-reboot',
    '-serial', 'stdio',
    '-kernel', m.kernel,
    '-initrd', m.initrd,
  ];
}

/** QEMU's command line: TCG, serial console on stdio, the harness share, the caller's devices. */
function qemuArgs(base: VmBase, harness: string, opts: VmOptions): string[] {
  const net = netArgs(opts.network ?? { mode: 'user' });
  const shares = opts.shares ?? [];
  const args = [
    ...qemuMachineArgs({ accel: 'tcg', memoryMiB: opts.memoryMiB ?? 512, cpus: opts.cpus ?? 1, kernel: base.kernel, initrd: base.initramfs }),
    '-fsdev', `local,id=harness,path=${harness},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=harness,mount_tag=harness',
    ...net.qemu,
  ];
  const shareWords: string[] = [];
  shares.forEach((s, i) => {
    if (!/^\/[\w./-]*$/.test(s.guestPath)) throw new Error(`share guestPath "${s.guestPath}": must be an absolute path of letters, digits, _ . / -`);
    if (s.hostPath.includes(',')) throw new Error(`share hostPath "${s.hostPath}": QEMU cannot take a path with a comma`);
    args.push('-fsdev', `local,id=share${i},path=${s.hostPath},security_model=none`, '-device', `virtio-9p-pci,fsdev=share${i},mount_tag=share${i}`);
    shareWords.push(`share${i}=${s.guestPath}`);
  });
  (opts.disks ?? []).forEach((d, i) => {
    if (d.path.includes(',')) throw new Error(`disk path "${d.path}": QEMU cannot take a path with a comma`);
    args.push('-drive', `file=${d.path},format=${d.format},if=virtio,id=disk${i}${d.readOnly === true ? ',readonly=on' : ''}`);
  });
  const append = [
    'console=ttyS0', 'panic=-1', 'loglevel=4', 'quiet',
    ...net.append,
    ...(shareWords.length > 0 ? [`dfs.shares=${shareWords.join(',')}`] : []),
    ...(opts.modules !== undefined && opts.modules.length > 0 ? [`dfs.modules=${opts.modules.join(',')}`] : []),
    ...(opts.append ?? []),
  ];
  args.push('-append', append.join(' '));
  return args;
}

/**
 * The host side of the guest agent (guest-init.sh; test/node's init runs the same loop): a script
 * is dropped into DIR/req and its status and output are read back from DIR/res. `wait` polls for
 * the status file and gives up on a timeout or a dead VM.
 */
export function agentClient(
  dir: string,
  label: string,
  wait: (what: string, done: () => boolean, timeoutMs: number) => Promise<unknown>,
): (script: string, timeoutMs?: number) => Promise<ExecResult> {
  let seq = 0;
  return async (script, timeoutMs = 60_000) => {
    const n = `${process.pid}-${++seq}`;
    const req = join(dir, 'req');
    const res = join(dir, 'res');
    writeFileSync(join(req, `${n}.sh`), script);
    // Announced by a rename, so the agent never runs a half-written script.
    writeFileSync(join(req, `${n}.tmp`), '');
    renameSync(join(req, `${n}.tmp`), join(req, `${n}.go`));
    const rc = join(res, `${n}.rc`);
    await wait(`${label} exec #${n} (${script.slice(0, 80)})`, () => existsSync(rc), timeoutMs);
    const result = {
      code: Number(readFileSync(rc, 'utf8').trim()),
      stdout: readFileSync(join(res, `${n}.out`), 'utf8'),
      stderr: readFileSync(join(res, `${n}.err`), 'utf8'),
    };
    for (const f of [join(req, `${n}.sh`), rc, join(res, `${n}.out`), join(res, `${n}.err`)]) rmSync(f, { force: true });
    return result;
  };
}

/** Boots a VM and resolves once its agent is up. */
export async function bootVm(opts: VmOptions = {}): Promise<Vm> {
  const base = findBase();
  if (base === undefined) throw new Error(`no VM base: ${VM_HINT}`);
  const harness = mkdtempSync(join(tmpdir(), 'dfs-vm-'));
  mkdirSync(join(harness, 'agent', 'req'), { recursive: true });
  mkdirSync(join(harness, 'agent', 'res'), { recursive: true });
  if (opts.init !== undefined) writeFileSync(join(harness, 'init'), opts.init);

  let args: string[];
  try {
    args = qemuArgs(base, harness, opts);
  } catch (e) {
    rmSync(harness, { recursive: true, force: true });
    throw e;
  }

  // setpriv --pdeathsig: QEMU dies with this worker even when the worker is SIGKILLed.
  const qemuCmd = ['setpriv', '--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', ...args];
  const cmd = opts.network?.mode === 'tap' ? ['ip', 'netns', 'exec', opts.network.netns, ...qemuCmd] : qemuCmd;
  const child: ChildProcess = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });

  let consoleText = '';
  let partial = '';
  let exited: string | undefined;
  let stopped = false;
  const onData = (d: Buffer): void => {
    partial += d.toString('utf8').replace(/\r/g, '');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      consoleText += `${line}\n`;
      opts.onConsole?.(line);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.on('exit', (code, signal) => {
    exited = `QEMU exited (${code ?? signal}); console:\n${consoleText.slice(-4000)}${partial}`;
  });
  child.on('error', (e) => {
    exited = `QEMU did not start: ${e.message}`;
  });

  const entry = {
    kill: (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(harness, { recursive: true, force: true });
    },
  };
  live.add(entry);
  const lifetime = setTimeout(() => entry.kill(), opts.lifetimeMs ?? 3_600_000);
  lifetime.unref();

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    clearTimeout(lifetime);
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await gone;
    }
    rmSync(harness, { recursive: true, force: true });
    live.delete(entry);
  };

  const waitForConsole = async (re: RegExp, timeoutMs: number): Promise<string> => {
    let found: string | undefined;
    await waitUntil(
      `console line ${re}`,
      () => {
        found = consoleText.split('\n').find((l) => re.test(l));
        return found !== undefined;
      },
      timeoutMs,
      () => exited,
    );
    return found!;
  };

  const run = agentClient(join(harness, 'agent'), 'guest', (what, done, timeoutMs) => waitUntil(what, done, timeoutMs, () => exited));
  const exec = async (script: string, eopts: { timeoutMs?: number } = {}): Promise<ExecResult> => {
    if (stopped) throw new Error('exec on a stopped VM');
    return run(script, eopts.timeoutMs);
  };
  const execOk = async (script: string, eopts: { timeoutMs?: number } = {}): Promise<string> => {
    const r = await exec(script, eopts);
    if (r.code !== 0) throw new Error(`guest script exited ${r.code}:\n${script}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return r.stdout;
  };

  try {
    const ready = await waitForConsole(/^DFS-VM: ready /, opts.bootTimeoutMs ?? 60_000);
    const kernelRelease = ready.split(' ')[2] ?? '';
    return { harness, kernelRelease, exec, execOk, waitForConsole, console: () => consoleText, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
