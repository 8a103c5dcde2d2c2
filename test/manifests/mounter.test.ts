import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { needs } from '../../test/support/prereq.js';

// The mounter runs against stub mount.cifs, umount, stat, getent and nslookup commands
// (manifests/mounter/test-stubs/)
// that log every call and read the SMB server's behaviour from a state directory, so each test
// drives a scenario (server down, server hanging, a mount already there) and asserts the
// sequence of actions. The same script on a real kernel CIFS client, in a VM, is tested by
// test/mounter/mounter.vm.test.ts.

const SCRIPT = fileURLToPath(new URL('../../manifests/mounter/dfs-mounter.sh', import.meta.url));
const STUBS = fileURLToPath(new URL('../../manifests/mounter/test-stubs/', import.meta.url));
const SERVICE = 'dfs-smb.media.svc.cluster.local';
const CLUSTER_IP = '10.43.0.10';
const DEFAULT_OPTIONS = 'ro,nosuid,nodev,noexec,vers=3.1.1,guest,soft,echo_interval=10,actimeo=1,cache=strict,noserverino';

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

// The tools the script runs besides the stubbed ones, as BusyBox applets: in the Alpine image
// awk, sleep, date and the rest are BusyBox too, with its own options and quirks.
const BUSYBOX_APPLETS = ['awk', 'cat', 'date', 'dirname', 'mkdir', 'mv', 'rm', 'sleep'];
let appletDir: string | undefined;
function busyboxApplets(): string {
  if (appletDir === undefined) {
    appletDir = mkdtempSync(join(tmpdir(), 'dfs-mounter-busybox-'));
    scratch.push(appletDir);
    const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
    for (const applet of BUSYBOX_APPLETS) symlinkSync(busybox, join(appletDir, applet));
  }
  return appletDir;
}

interface Shell {
  name: string;
  argv: string[];
  available: boolean;
  hint: string;
  /** Directory put on PATH after the stubs. */
  tools?: () => string;
}

const SHELLS: Shell[] = [
  { name: 'dash', argv: ['dash'], available: onPath('dash'), hint: 'Install it with: apt-get install dash' },
  // The mounter image is Alpine, whose /bin/sh is BusyBox ash.
  { name: 'busybox ash', argv: ['busybox', 'ash'], available: onPath('busybox'), hint: 'Install it with: apt-get install busybox', tools: busyboxApplets },
];

/**
 * stale: the mounts made before do not answer, but a new mount works; returning: hangs until a
 * mount connects, which brings the server back; refusing: answers but refuses the share, error 13
 * (see test-stubs/_lib.sh).
 */
type ServerState = 'up' | 'down' | 'hang' | 'stale' | 'returning' | 'refusing';

interface Scenario {
  server?: ServerState;
  mountFailures?: number;
  /** A CIFS mount of the share is already on the host path when the mounter starts. */
  mounted?: boolean;
  env?: Record<string, string>;
}

class Mounter {
  readonly state: string;
  readonly hostPath: string;
  readonly readyFile: string;
  readonly probeDir: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';

  constructor(shell: Shell, scenario: Scenario, args: string[] = []) {
    const dir = mkdtempSync(join(tmpdir(), 'dfs-mounter-'));
    scratch.push(dir);
    this.state = join(dir, 'state');
    this.hostPath = join(dir, 'host', 'mnt', 'decypharr-dfs');
    this.readyFile = join(dir, 'run', 'ready');
    this.probeDir = join(dir, 'run', 'probe');
    spawnSync('mkdir', ['-p', this.state, this.hostPath]);
    // Inside the pod the host path is always a mount point, the hostPath bind itself; the share
    // is a cifs mount on top of it.
    let table = `30 25 8:1 /mnt/decypharr-dfs ${this.hostPath} rw,relatime shared:1 - ext4 /dev/sda1 rw\n`;
    if (scenario.mounted === true) table += `900 30 0:99 / ${this.hostPath} ro,relatime shared:500 - cifs //${CLUSTER_IP}/dfs ro,vers=3.1.1\n`;
    writeFileSync(join(this.state, 'mountinfo'), table);
    writeFileSync(join(this.state, 'hosts'), `${SERVICE} ${CLUSTER_IP}\n`);
    writeFileSync(join(this.state, 'calls'), '');
    this.setServer(scenario.server ?? 'up');
    writeFileSync(join(this.state, 'mount-failures'), `${scenario.mountFailures ?? 0}\n`);
    const env: Record<string, string> = {
      PATH: [STUBS, shell.tools?.(), process.env.PATH ?? '/usr/bin:/bin'].filter((p) => p !== undefined).join(':'),
      DFS_STUB_STATE: this.state,
      DFS_MOUNTINFO: join(this.state, 'mountinfo'),
      DFS_HOST_PATH: this.hostPath,
      DFS_READY_FILE: this.readyFile,
      DFS_PROBE_DIR: this.probeDir,
      DFS_CHECK_INTERVAL: '1',
      DFS_STAT_TIMEOUT: '1',
      DFS_MOUNT_TIMEOUT: '2',
      DFS_FAILURE_THRESHOLD: '2',
      DFS_BACKOFF_INITIAL: '1',
      DFS_BACKOFF_MAX: '2',
      DFS_READY_MAX_AGE: '5',
      ...scenario.env,
    };
    const [command, ...shellArgs] = shell.argv;
    // Its own process group, so kill() also ends a hanging stub that the mounter left behind.
    this.child = spawn(command!, [...shellArgs, SCRIPT, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': only then has all of stderr been read.
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    });
  }

  setServer(state: ServerState): void {
    writeFileSync(join(this.state, 'server'), `${state}\n`);
  }

  /** The server state the next umount switches to: the server is back when the share is remounted. */
  setServerAfterUnmount(state: ServerState): void {
    writeFileSync(join(this.state, 'server-after-umount'), `${state}\n`);
  }

  /** The stub calls so far, with the health-check stats and name look-ups left out unless asked. */
  calls(options: { all?: boolean } = {}): string[] {
    const lines = readFileSync(join(this.state, 'calls'), 'utf8').split('\n').filter((l) => l !== '');
    return options.all === true ? lines : lines.filter((l) => !/^(stat|getent|nslookup) /.test(l));
  }

  cifsMounted(): boolean {
    return readFileSync(join(this.state, 'mountinfo'), 'utf8')
      .split('\n')
      .some((l) => l.includes(` ${this.hostPath} `) && l.includes(' - cifs '));
  }

  ready(): boolean {
    return existsSync(this.readyFile);
  }

  log(): string {
    return this.stderr;
  }

  async until(what: string, predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\ncalls:\n${this.calls({ all: true }).join('\n')}\nlog:\n${this.stderr}`);
      if (this.child.exitCode !== null) throw new Error(`the mounter exited (${this.child.exitCode}) while waiting for ${what}\nlog:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** stderr arrives through a pipe, possibly after a file the same step wrote: wait for it. */
  async untilLogged(pattern: string | RegExp): Promise<void> {
    await this.until(`the log to show ${String(pattern)}`, () => (typeof pattern === 'string' ? this.stderr.includes(pattern) : pattern.test(this.stderr)));
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const started = Date.now();
    this.child.kill('SIGTERM');
    const result = await this.exited;
    return { ...result, ms: Date.now() - started };
  }

  kill(): void {
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
}

const mountCall = (hostPath: string, address = CLUSTER_IP, options = DEFAULT_OPTIONS): string => `mount.cifs //${address}/dfs ${hostPath} -o ${options}`;
/** The remount policy's probe: a new mount of the share, on a connection of its own. */
const probeCall = (probeDir: string): string => mountCall(probeDir, CLUSTER_IP, `${DEFAULT_OPTIONS},nosharesock`);

const haveShellcheck = onPath('shellcheck');
describe.skipIf(!needs('shellcheck', haveShellcheck, 'Install it with: apt-get install shellcheck'))('shellcheck', () => {
  it('finds nothing in the mounter script and its test stubs, read as POSIX sh', () => {
    const stubs = ['mount.cifs', 'umount', 'stat', 'getent', 'nslookup', '_lib.sh'].map((f) => join(STUBS, f));
    const result = spawnSync('shellcheck', ['-x', '-s', 'sh', SCRIPT, ...stubs], { encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});

for (const shell of SHELLS) {
  // Concurrent: the tests mostly wait on the script's timers. Generous timeouts for a busy machine.
  describe.skipIf(!needs(shell.name, shell.available, shell.hint)).concurrent(`dfs-mounter.sh under ${shell.name}`, { timeout: 90_000 }, () => {
    const start = (scenario: Scenario, args: string[] = []): Mounter => new Mounter(shell, scenario, args);

    it('resolves the Service name, mounts its ClusterIP with the default options and turns ready', async () => {
      const m = start({});
      try {
        await m.until('the ready file', () => m.ready());
        expect(m.calls({ all: true }).slice(0, 2)).toEqual([`getent hosts ${SERVICE}`, mountCall(m.hostPath)]);
        expect(m.cifsMounted()).toBe(true);
      } finally {
        m.kill();
      }
    });

    it('mounts an explicit DFS_SMB_ADDRESS without a name look-up, with DFS_MOUNT_OPTIONS as given', async () => {
      const options = 'ro,vers=3.0,sec=none,soft';
      const m = start({ env: { DFS_SMB_ADDRESS: '10.43.9.9', DFS_MOUNT_OPTIONS: options } });
      try {
        await m.until('the ready file', () => m.ready());
        expect(m.calls({ all: true }).filter((c) => !c.startsWith('stat '))).toEqual([mountCall(m.hostPath, '10.43.9.9', options)]);
      } finally {
        m.kill();
      }
    });

    it('retries a server that is down at start with a doubling, capped backoff, then mounts', async () => {
      const m = start({ mountFailures: 3, env: { DFS_BACKOFF_INITIAL: '1', DFS_BACKOFF_MAX: '2' } });
      try {
        await m.until('the ready file', () => m.ready(), 20_000);
        await m.untilLogged('mounted and healthy');
        expect(m.calls()).toEqual([mountCall(m.hostPath), mountCall(m.hostPath), mountCall(m.hostPath), mountCall(m.hostPath)]);
        const waits = [...m.log().matchAll(/retrying in (\d+)s/g)].map((match) => Number(match[1]));
        expect(waits).toEqual([1, 2, 2]);
      } finally {
        m.kill();
      }
    });

    it('keeps retrying, without a mount call, while the Service name does not resolve', async () => {
      const m = start({ env: { DFS_SMB_SERVICE: 'missing.media.svc.cluster.local' } });
      try {
        await m.until('two name look-ups', () => m.calls({ all: true }).filter((c) => c.startsWith('getent ')).length >= 2);
        expect(m.calls()).toEqual([]);
        await m.untilLogged('cannot resolve missing.media.svc.cluster.local');
        expect(m.ready()).toBe(false);
      } finally {
        m.kill();
      }
    });

    it('adopts a healthy mount that is already there instead of mounting again', async () => {
      const m = start({ mounted: true });
      try {
        await m.until('the ready file', () => m.ready());
        // Three check intervals: still no mount or umount, only health-check stats.
        await m.until('three health checks', () => m.calls({ all: true }).filter((c) => c.startsWith('stat ')).length >= 3);
        expect(m.calls()).toEqual([]);
        await m.untilLogged('adopted the healthy mount');
      } finally {
        m.kill();
      }
    });

    it('remounts a mount that hangs at start once a new mount of the share works', async () => {
      const m = start({ mounted: true, server: 'stale' });
      try {
        await m.until('the ready file', () => m.ready());
        expect(m.calls()).toEqual([probeCall(m.probeDir), `umount -l ${m.probeDir}`, `umount -l ${m.hostPath}`, mountCall(m.hostPath)]);
        await m.untilLogged('unmounting ' + m.hostPath + ' lazily (stale after 2 failed checks while a new mount of the share works)');
      } finally {
        m.kill();
      }
    });

    it('turns unready when the mount hangs mid-run, bounds the stat, and remounts when a new mount works', async () => {
      const m = start({});
      try {
        await m.until('the ready file', () => m.ready());
        m.setServer('stale');
        await m.until('the ready file to go', () => !m.ready());
        await m.until('a second mount', () => m.calls().filter((c) => c === mountCall(m.hostPath)).length === 2);
        await m.until('the ready file again', () => m.ready());
        expect(m.calls()).toEqual([mountCall(m.hostPath), probeCall(m.probeDir), `umount -l ${m.probeDir}`, `umount -l ${m.hostPath}`, mountCall(m.hostPath)]);
        await m.untilLogged(/health check failed \(1 of 2\)[^\n]*took over 1s/);
        expect(m.cifsMounted()).toBe(true);
      } finally {
        m.kill();
      }
    });

    it('keeps the mount when the server comes back during a failed check: the probe works and the mount answers again', async () => {
      const m = start({});
      try {
        await m.until('the ready file', () => m.ready());
        m.setServer('returning');
        await m.until('the ready file to go', () => !m.ready());
        await m.untilLogged('the mount answers again');
        await m.until('the ready file again', () => m.ready());
        expect(m.calls()).toEqual([mountCall(m.hostPath), probeCall(m.probeDir), `umount -l ${m.probeDir}`]);
        expect(m.cifsMounted()).toBe(true);
      } finally {
        m.kill();
      }
    });

    for (const away of ['down', 'hang'] as const) {
      it(`keeps the mount while the server is away (${away}): probes, stays unready, never unmounts, ready again when it returns`, async () => {
        const m = start({});
        try {
          await m.until('the ready file', () => m.ready());
          m.setServer(away);
          await m.until('two probe mounts', () => m.calls().filter((c) => c === probeCall(m.probeDir)).length >= 2, 30_000);
          expect(m.ready()).toBe(false);
          await m.untilLogged(`a new mount of the share fails too, so the server is away: keeping the mount at ${m.hostPath}`);
          m.setServer('up');
          await m.until('the ready file again', () => m.ready(), 30_000);
          await m.untilLogged('the mount answers again');
          // Only the probes (and, if the server came back while a check waited, the unmount of a
          // probe that worked): the share itself was mounted once and never unmounted.
          expect(m.calls().filter((c) => c !== probeCall(m.probeDir) && c !== `umount -l ${m.probeDir}`)).toEqual([mountCall(m.hostPath)]);
          expect(m.cifsMounted()).toBe(true);
        } finally {
          m.kill();
        }
      });
    }

    it('keeps the mount while the server refuses the share (its FUSE mount gone), says so, and remounts once a new mount works', async () => {
      const m = start({});
      try {
        await m.until('the ready file', () => m.ready());
        m.setServer('refusing');
        await m.untilLogged(
          `a new mount of the share is refused too (mount error(13)): the server answers but refuses the share, as the source's smbd does while its FUSE mount is gone: keeping the mount at ${m.hostPath}`,
        );
        expect(m.ready()).toBe(false);
        expect(m.log()).toContain('mount error(13): Permission denied');
        expect(m.log()).toContain("and, for mount error(13), that the source's FUSE mount is up");
        expect(m.log()).not.toContain('so the server is away');
        // The FUSE mount is back: smbd serves the share again, the old connection's tree does not answer.
        m.setServer('stale');
        await m.until('the ready file again', () => m.ready(), 30_000);
        await m.untilLogged(`unmounting ${m.hostPath} lazily (stale after`);
        expect(m.calls().filter((c) => c === mountCall(m.hostPath))).toHaveLength(2);
        expect(m.cifsMounted()).toBe(true);
      } finally {
        m.kill();
      }
    });

    it('rides out a server restart shorter than the failure threshold without remounting', async () => {
      const m = start({ env: { DFS_FAILURE_THRESHOLD: '5' } });
      try {
        await m.until('the ready file', () => m.ready());
        m.setServer('down');
        await m.until('the ready file to go', () => !m.ready());
        m.setServer('up');
        await m.until('the ready file again', () => m.ready());
        expect(m.calls()).toEqual([mountCall(m.hostPath)]);
        await m.untilLogged('the mount answers again');
      } finally {
        m.kill();
      }
    });

    it('mounts again when the share disappears from under it', async () => {
      const m = start({});
      try {
        await m.until('the ready file', () => m.ready());
        const table = readFileSync(join(m.state, 'mountinfo'), 'utf8').split('\n').filter((l) => !l.includes(' - cifs '));
        writeFileSync(join(m.state, 'mountinfo'), table.join('\n'));
        await m.until('a second mount', () => m.calls().length === 2);
        expect(m.calls()).toEqual([mountCall(m.hostPath), mountCall(m.hostPath)]);
      } finally {
        m.kill();
      }
    });

    it('leaves the share mounted on SIGTERM and exits promptly, even mid-interval', async () => {
      const m = start({ env: { DFS_CHECK_INTERVAL: '30', DFS_READY_MAX_AGE: '60' } });
      try {
        await m.until('the ready file', () => m.ready());
        const { code, ms } = await m.stop();
        expect(code).toBe(0);
        expect(ms).toBeLessThan(5_000);
        expect(m.calls()).toEqual([mountCall(m.hostPath)]);
        expect(m.cifsMounted()).toBe(true);
        expect(m.ready()).toBe(false);
      } finally {
        m.kill();
      }
    });

    it('unmounts on SIGTERM when DFS_UNMOUNT_ON_EXIT=true', async () => {
      const m = start({ env: { DFS_UNMOUNT_ON_EXIT: 'true' } });
      try {
        await m.until('the ready file', () => m.ready());
        const { code, ms } = await m.stop();
        expect(code).toBe(0);
        expect(ms).toBeLessThan(5_000);
        expect(m.calls()).toEqual([mountCall(m.hostPath), `umount -l ${m.hostPath}`]);
        expect(m.cifsMounted()).toBe(false);
      } finally {
        m.kill();
      }
    });

    it('exits promptly on SIGTERM while a mount attempt hangs', async () => {
      const m = start({ server: 'hang', env: { DFS_MOUNT_TIMEOUT: '60' } });
      try {
        await m.until('a mount attempt', () => m.calls().length === 1);
        const { code, ms } = await m.stop();
        expect(code).toBe(0);
        expect(ms).toBeLessThan(5_000);
      } finally {
        m.kill();
      }
    });

    it.each([
      ['DFS_HOST_PATH', 'mnt/dfs', 'must be an absolute path'],
      ['DFS_HOST_PATH', '/mnt/../etc', 'without ".."'],
      ['DFS_MOUNT_OPTIONS', 'vers=3.1.1,guest', 'must contain "ro"'],
      ['DFS_MOUNT_OPTIONS', 'ro, guest', 'without spaces'],
      ['DFS_MOUNT_OPTIONS', 'ro,rw', 'must not contain "rw"'],
      ['DFS_MOUNT_OPTIONS', 'rw,vers=3.1.1,ro', 'must not contain "rw"'],
      ['DFS_PROBE_DIR', 'run/probe', 'must be an absolute path other than /'],
      ['DFS_CHECK_INTERVAL', '10s', 'must be a whole number'],
      ['DFS_FAILURE_THRESHOLD', '0', 'from 1 to 86400'],
      ['DFS_SMB_ADDRESS', '300.1.2.3', 'must be an IPv4 or IPv6 address'],
      ['DFS_SMB_SERVICE', 'DFS_SMB.media', 'must be a DNS name'],
      ['DFS_SHARE_NAME', 'my share', 'must be 1 to 80 characters'],
      ['DFS_UNMOUNT_ON_EXIT', 'yes', 'must be true or false'],
      ['DFS_READY_MAX_AGE', '2', 'must be greater than DFS_CHECK_INTERVAL + DFS_STAT_TIMEOUT'],
      ['DFS_BACKOFF_MAX', '1', 'must be at least DFS_BACKOFF_INITIAL'],
    ])('refuses %s=%j, naming the variable and the rule', async (name, value, rule) => {
      const m = start({ env: { DFS_BACKOFF_INITIAL: name === 'DFS_BACKOFF_MAX' ? '5' : '1', [name]: value } });
      try {
        const { code } = await m.exited;
        expect(code).toBe(2);
        expect(m.log()).toContain(`${name}=`);
        expect(m.log()).toContain(rule);
        expect(m.calls({ all: true })).toEqual([]);
      } finally {
        m.kill();
      }
    });

    it('refuses to start with neither DFS_SMB_SERVICE nor DFS_SMB_ADDRESS', async () => {
      const m = start({ env: { DFS_SMB_SERVICE: '', DFS_SMB_ADDRESS: '' } });
      try {
        expect((await m.exited).code).toBe(2);
        expect(m.log()).toContain('DFS_SMB_SERVICE and DFS_SMB_ADDRESS are both empty');
      } finally {
        m.kill();
      }
    });

    it('check-ready passes on a fresh ready file and fails, saying why, on a missing or old one', async () => {
      const probe = async (setup: (file: string) => void): Promise<{ code: number | null; log: string }> => {
        const dir = mkdtempSync(join(tmpdir(), 'dfs-mounter-ready-'));
        scratch.push(dir);
        const file = join(dir, 'ready');
        setup(file);
        const m = new Mounter(shell, { env: { DFS_READY_FILE: file, DFS_READY_MAX_AGE: '5' } }, ['check-ready']);
        const { code } = await m.exited;
        return { code, log: m.log() };
      };
      const now = Math.floor(Date.now() / 1000);
      expect((await probe((f) => writeFileSync(f, `${now}\n`))).code).toBe(0);
      const missing = await probe(() => undefined);
      expect(missing.code).toBe(1);
      expect(missing.log).toContain('is missing');
      const old = await probe((f) => writeFileSync(f, `${now - 60}\n`));
      expect(old.code).toBe(1);
      expect(old.log).toMatch(/last healthy check was \d+s ago/);
    });
  });
}
