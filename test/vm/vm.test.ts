// The VM harness itself: boot and teardown times, the exec channel, 9p shares, user networking
// to the host's loopback, a TAP device inside a network namespace, and cleanup.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../support/prereq.js';
import { bootVm, vmUnavailableReason, VM_HINT, type Vm } from './vm.js';

const reason = vmUnavailableReason();
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const enabled = needs(`a QEMU VM (${reason ?? 'ok'})`, reason === undefined, VM_HINT) && needs('root (TAP devices, network namespaces)', isRoot, 'run as root');

describe.skipIf(!needs('shellcheck', spawnSync('sh', ['-c', 'command -v shellcheck']).status === 0, 'apt-get install -y shellcheck'))('test VM scripts', () => {
  it('finds nothing in build-base.sh (bash) and guest-init.sh (POSIX sh, run by BusyBox)', () => {
    const dir = new URL('.', import.meta.url).pathname;
    for (const args of [[join(dir, 'build-base.sh')], ['-s', 'sh', join(dir, 'guest-init.sh')]]) {
      const r = spawnSync('shellcheck', args, { encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    }
  });
});

describe.runIf(enabled)('test VM harness', () => {
  let vm: Vm;
  let bootMs = 0;
  let shared: string;
  let server: Server;
  let port = 0;

  beforeAll(async () => {
    shared = mkdtempSync(join(tmpdir(), 'dfs-vm-share-'));
    writeFileSync(join(shared, 'from-host.txt'), 'written on the host\n');
    server = createServer((sock) => sock.end('hello over user networking\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const t0 = Date.now();
    vm = await bootVm({ shares: [{ hostPath: shared, guestPath: '/mnt/host' }], init: 'echo "init says hi"\n' });
    bootMs = Date.now() - t0;
    process.stderr.write(`vm: booted ${vm.kernelRelease} in ${bootMs} ms\n`);
  }, 90_000);

  afterAll(async () => {
    await vm?.stop();
    server?.close();
    rmSync(shared, { recursive: true, force: true });
  });

  it('boots Debian\'s kernel within 30 s and runs the caller\'s init', async () => {
    expect(bootMs).toBeLessThan(30_000);
    expect(vm.kernelRelease).toMatch(/^\d+\.\d+\.\d+.*-amd64$/);
    await vm.waitForConsole(/^init says hi$/, 10_000);
  });

  it('runs scripts in the guest and returns their output and status', async () => {
    const r = await vm.exec('uname -r; echo oops >&2; exit 3');
    expect(r).toEqual({ code: 3, stdout: `${vm.kernelRelease}\n`, stderr: 'oops\n' });
    const many = await Promise.all([1, 2, 3].map((i) => vm.execOk(`sleep 1; echo ${i}`)));
    expect(many).toEqual(['1\n', '2\n', '3\n']);
  });

  it('has the CIFS client, cgroup v2 and a shared /mnt, and shares host directories over 9p both ways', async () => {
    expect(await vm.execOk('grep -w cifs /proc/filesystems >/dev/null && mount.cifs -V')).toMatch(/mount.cifs version: \d/);
    // A node's mounts: cgroup v2 at /sys/fs/cgroup, and /mnt shared for slave namespaces.
    expect(await vm.execOk("awk '$2 == \"/sys/fs/cgroup\" { print $3 }' /proc/mounts")).toBe('cgroup2\n');
    expect(await vm.execOk("awk '$5 == \"/mnt\"' /proc/self/mountinfo")).toMatch(/ shared:\d+ /);
    expect(await vm.execOk('cat /mnt/host/from-host.txt; echo back > /mnt/host/from-guest.txt')).toBe('written on the host\n');
    expect(readFileSync(join(shared, 'from-guest.txt'), 'utf8')).toBe('back\n');
  });

  it('reaches a server on the host\'s loopback at 10.0.2.2', async () => {
    expect(await vm.execOk(`nc -w 5 10.0.2.2 ${port} </dev/null`)).toBe('hello over user networking\n');
  });

  it('times out an exec that does not finish, without killing the VM', async () => {
    await expect(vm.exec('sleep 30', { timeoutMs: 1_000 })).rejects.toThrow(/timed out after 1000 ms/);
    expect(await vm.execOk('echo still here')).toBe('still here\n');
  });

  it('stops within 30 s and removes its harness directory', async () => {
    const t0 = Date.now();
    await vm.stop();
    const stopMs = Date.now() - t0;
    process.stderr.write(`vm: stopped in ${stopMs} ms\n`);
    expect(stopMs).toBeLessThan(30_000);
    expect(existsSync(vm.harness)).toBe(false);
    await expect(vm.exec('true')).rejects.toThrow(/stopped VM/);
  });
});

describe.runIf(enabled)('test VM on a TAP device in a network namespace', () => {
  const ns = `dfs-vm-${process.pid}`;
  const ip = (...args: string[]): void => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };

  afterAll(() => {
    spawnSync('ip', ['netns', 'delete', ns]);
  });

  it('routes between the guest and the namespace, and nowhere else', async () => {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
    ip('-n', ns, 'addr', 'add', '192.168.77.1/24', 'dev', 'tap0');
    ip('-n', ns, 'link', 'set', 'tap0', 'up');
    const vm = await bootVm({ network: { mode: 'tap', netns: ns, tap: 'tap0', guestCidr: '192.168.77.2/24', gateway: '192.168.77.1' } });
    try {
      expect(await vm.execOk('ip -4 addr show eth0 | grep -o "inet [0-9./]*"')).toBe('inet 192.168.77.2/24\n');
      const ping = spawnSync('ip', ['netns', 'exec', ns, 'busybox', 'ping', '-c', '1', '-W', '10', '192.168.77.2'], { encoding: 'utf8' });
      expect(ping.status, ping.stdout + ping.stderr).toBe(0);
      expect(await vm.execOk('ping -c 1 -W 10 192.168.77.1 >/dev/null && echo reached')).toBe('reached\n');
    } finally {
      await vm.stop();
    }
  }, 90_000);
});

describe.runIf(enabled)('test VM that fails to boot', () => {
  // QEMU processes this worker started that are still there (setpriv execs QEMU in place).
  const qemuChildren = (): string[] =>
    spawnSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((l) => l.includes('qemu'));

  // bootVm makes its harness directory under os.tmpdir(), which follows TMPDIR: a private one
  // shows what a failed boot leaves behind without seeing other suites' VMs.
  async function failedBoot(opts: Parameters<typeof bootVm>[0]): Promise<{ error: string; left: string[]; ms: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'dfs-vm-fail-'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    const t0 = Date.now();
    let error = '';
    try {
      await bootVm(opts).then(
        async (vm) => {
          await vm.stop();
          error = 'booted';
        },
        (e: unknown) => {
          error = e instanceof Error ? e.message : String(e);
        },
      );
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    const ms = Date.now() - t0;
    const left = readdirSync(dir);
    rmSync(dir, { recursive: true, force: true });
    return { error, left, ms };
  }

  it('a boot that misses its deadline kills QEMU and removes the harness directory', async () => {
    // Boot takes 7-10 s under TCG: 1.5 s ends it while the kernel is still starting.
    const r = await failedBoot({ bootTimeoutMs: 1_500 });
    expect(r.error).toMatch(/^timed out after 1500 ms waiting for console line/);
    expect(r.left).toEqual([]);
    expect(qemuChildren()).toEqual([]);
    expect(r.ms).toBeLessThan(30_000);
  }, 60_000);

  it('a guest that dies while booting (no init: kernel panic) rejects with the console\'s tail and leaves nothing', async () => {
    const r = await failedBoot({ append: ['rdinit=/no-such-init'] });
    expect(r.error).toMatch(/^console line .*: QEMU exited \(\w+\); console:\n/);
    expect(r.error).toMatch(/Kernel panic/);
    expect(r.left).toEqual([]);
    expect(qemuChildren()).toEqual([]);
  }, 90_000);
});
