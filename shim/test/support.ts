// Helpers for the shim's tests: building the shim and the C helpers, the FUSE
// fixture, smbd through the real entrypoint, smbclient, and cleanup that runs
// even when a test fails or the worker exits.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const shimDir = fileURLToPath(new URL('..', import.meta.url));
export const testSrcDir = join(shimDir, 'test');
export const imageDir = join(shimDir, 'image');
export const buildDir = join(shimDir, 'build');
export const testBuildDir = join(buildDir, 'test');

export const EPISODE_PATH = '__all__/Show S01E01/episode.mkv';
export const EPISODE_SIZE = 256 * 1024 + 123;
export const HELLO_TEXT = 'hello from nlink0fs\n';
export const NFO_TEXT = '<episodedetails><title>Show S01E01</title></episodedetails>\n';

/** Same generator as nlink0fs.c: byte i is the top byte of i * 2654435761 mod 2^32. */
export function episodeBytes(): Buffer {
  const out = Buffer.alloc(EPISODE_SIZE);
  for (let i = 0; i < EPISODE_SIZE; i++) out[i] = Math.imul(i, 2654435761) >>> 24;
  return out;
}

export function have(command: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1" >/dev/null 2>&1', 'sh', command]).status === 0;
}

export function havePkg(name: string): boolean {
  return have('pkg-config') && spawnSync('pkg-config', ['--exists', name]).status === 0;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** FUSE fixture: root (allow_other, and smbd serving guests), /dev/fuse, fusermount3, libfuse3 headers. */
export function canMountFuse(): boolean {
  return isRoot() && existsSync('/dev/fuse') && have('fusermount3') && have('cc') && havePkg('fuse3');
}

export const FUSE_HINT =
  'Needs root, /dev/fuse, fusermount3 and libfuse3 headers: apt-get install -y fuse3 libfuse3-dev pkg-config';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a command to completion; never rejects on a non-zero exit. */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

export async function runOk(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(command, args, opts);
  if (r.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** An environment without anything that would change the shim's behaviour. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k === 'LD_PRELOAD' || k.startsWith('DFS_')) delete env[k];
  }
  return { ...env, ...extra };
}

/**
 * A directory holding only busybox applets, to run the image's scripts with
 * the tools Alpine has instead of GNU ones. Undefined without busybox.
 */
let busyboxBin: string | undefined;
export function busyboxPath(): string | undefined {
  if (busyboxBin !== undefined) return busyboxBin;
  const r = spawnSync('busybox', ['--list'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
  const dir = join(tempDir('busybox'), 'bin');
  mkdirSync(dir);
  for (const applet of r.stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a))) {
    symlinkSync(busybox, join(dir, applet));
  }
  busyboxBin = dir;
  return dir;
}

export const BUSYBOX_HINT = 'apt-get install -y busybox (an Alpine Samba image, with shim.mode init, runs ready.sh with busybox)';

// ---------------------------------------------------------------------------
// Builds

export type Libc = 'glibc' | 'musl';

export async function buildShim(libc: Libc): Promise<string> {
  await runOk('make', ['-s', '-C', shimDir, libc], { timeoutMs: 180_000 });
  return join(buildDir, libc === 'glibc' ? 'fix_nlink.so' : 'fix_nlink-musl.so');
}

/** Compiles a test helper to a temporary name and renames it: parallel test files may race. */
export async function compile(cc: string, sources: readonly string[], out: string, flags: readonly string[]): Promise<string> {
  mkdirSync(testBuildDir, { recursive: true });
  const dest = join(testBuildDir, out);
  const tmp = `${dest}.${process.pid}.tmp`;
  await runOk(cc, ['-O1', '-Wall', '-Wextra', '-Werror', '-o', tmp, ...sources, ...flags], { timeoutMs: 180_000 });
  renameSync(tmp, dest);
  return dest;
}

export function buildProbe(libc: Libc): Promise<string> {
  const src = join(testSrcDir, 'probe.c');
  return libc === 'glibc'
    ? compile('cc', [src], 'probe-glibc', ['-ldl', '-lpthread'])
    : compile('musl-gcc', [src], 'probe-musl', []);
}

export async function buildFixture(): Promise<string> {
  const flags = (await runOk('pkg-config', ['--cflags', '--libs', 'fuse3'])).stdout.trim().split(/\s+/);
  return compile('cc', [join(testSrcDir, 'nlink0fs.c')], 'nlink0fs', flags);
}

// ---------------------------------------------------------------------------
// Probe output

export interface ProbeRecord {
  target: string;
  call: string;
  how: 'link' | 'dlsym';
  absent: boolean;
  rc?: number;
  errno?: number;
  errno_name?: string;
  errno_kept?: boolean;
  nlink?: number;
  dir?: boolean;
  nlink_valid?: boolean;
}

export function parseProbe(stdout: string): ProbeRecord[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ProbeRecord);
}

// ---------------------------------------------------------------------------
// Cleanup registry: every mount and process started here is undone by
// cleanupAll() (afterAll) and, failing that, when the worker exits.

type Cleanup = { name: string; async: () => Promise<void>; sync: () => void };
const cleanups = new Set<Cleanup>();

function register(c: Cleanup): Cleanup {
  cleanups.add(c);
  return c;
}

export async function cleanupAll(): Promise<void> {
  const errors: string[] = [];
  for (const c of [...cleanups].reverse()) {
    try {
      await c.async();
    } catch (e) {
      errors.push(`${c.name}: ${String(e)}`);
    }
    cleanups.delete(c);
  }
  if (errors.length > 0) throw new Error(`cleanup failed:\n${errors.join('\n')}`);
}

process.on('exit', () => {
  for (const c of [...cleanups].reverse()) {
    try {
      c.sync();
    } catch {
      // Best effort at exit: nothing else can be done here.
    }
  }
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM to the process group, SIGKILL after graceMs. */
export function stopGroup(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      // Children of the group (smbd's workers) may outlive the leader.
      killGroupById(child.pid, 'SIGKILL');
      resolve();
    });
    killGroup(child, 'SIGTERM');
  });
}

function killGroupById(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // No process left in the group.
  }
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function mountFsType(path: string): string | undefined {
  let found: string | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const mountPoint = fields[4]?.replace(/\\040/g, ' ');
    if (mountPoint !== path) continue;
    const sep = fields.indexOf('-', 6);
    found = sep > 0 ? fields[sep + 1] : undefined;
  }
  return found;
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `dfs-shim-${prefix}-`));
  register({
    name: `rm ${dir}`,
    // Never recurse into a mount left behind: unmounts are registered later
    // and so run first.
    async: () => {
      if (mountFsType(join(dir, 'mnt')) === undefined) rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
    sync: () => {
      if (mountFsType(join(dir, 'mnt')) === undefined) rmSync(dir, { recursive: true, force: true });
    },
  });
  return dir;
}

// ---------------------------------------------------------------------------
// The FUSE fixture

export interface Fixture {
  mnt: string;
  log: () => string;
  unmount: () => Promise<void>;
}

function unmountSync(mnt: string): void {
  if (mountFsType(mnt) === undefined) return;
  if (spawnSync('fusermount3', ['-u', '-z', mnt]).status !== 0) spawnSync('umount', ['-l', mnt]);
}

/** Mounts the fixture in a new directory, or again at `at` (the mnt of an earlier, unmounted fixture). */
export async function mountFixture(opts: { correctNlink?: boolean; at?: string } = {}): Promise<Fixture> {
  const bin = await buildFixture();
  let mnt: string;
  if (opts.at !== undefined) {
    mnt = opts.at;
  } else {
    const dir = tempDir('fuse');
    // smbd reaches the share as the guest account; mkdtemp's 0700 would stop it.
    chmodSync(dir, 0o755);
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
  }
  const args = ['-f', '-o', 'allow_other,fsname=nlink0fs,subtype=nlink0fs'];
  if (opts.correctNlink === true) args.push('--correct-nlink');
  args.push(mnt);
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv() });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString('utf8');
  });
  const unmount = async (): Promise<void> => {
    unmountSync(mnt);
    await stopGroup(child);
  };
  register({
    name: `unmount ${mnt}`,
    async: unmount,
    sync: () => {
      unmountSync(mnt);
      killGroupById(child.pid, 'SIGKILL');
    },
  });
  await waitFor(`FUSE mount at ${mnt} (nlink0fs: ${log})`, () => {
    if (child.exitCode !== null) throw new Error(`nlink0fs exited ${child.exitCode}: ${log}`);
    return mountFsType(mnt) !== undefined;
  });
  return { mnt, log: () => log, unmount };
}

// ---------------------------------------------------------------------------
// smbd through the sidecar's own entrypoint, and smbclient

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export interface Smbd {
  port: number;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  output: () => string;
  stop: () => Promise<void>;
}

export async function startSmbd(
  sharePath: string,
  opts: { shim?: string; extraEnv?: Record<string, string>; port?: number; shareName?: string } = {},
): Promise<Smbd> {
  // A fixed port lets a test stop smbd and start it again where its clients reconnect.
  const port = opts.port ?? (await freePort());
  const stateDir = join(tempDir('smbd'), 'state');
  const env = cleanEnv({
    DFS_SHARE_PATH: sharePath,
    DFS_SMB_PORT: String(port),
    DFS_SMB_INTERFACES: '127.0.0.1',
    DFS_STATE_DIR: stateDir,
    DFS_SMBD: '/usr/sbin/smbd',
    DFS_LOG_LEVEL: '1',
    ...(opts.shareName !== undefined ? { DFS_SHARE_NAME: opts.shareName } : {}),
    ...(opts.shim !== undefined ? { LD_PRELOAD: opts.shim } : {}),
    ...opts.extraEnv,
  });
  const child = spawn('sh', [join(imageDir, 'entrypoint.sh')], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (d: Buffer): void => {
    output += d.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const stop = (): Promise<void> => stopGroup(child);
  register({ name: `smbd on port ${port}`, async: stop, sync: () => killGroupById(child.pid, 'SIGKILL') });
  await waitFor(`smbd on 127.0.0.1:${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`smbd exited ${child.exitCode}:\n${output}`);
    return portOpen(port);
  });
  return { port, stateDir, env, output: () => output, stop };
}

/** smbclient with its own config and state, so the host's smb.conf plays no part. */
export async function smbclient(port: number, command: string, share = 'dfs'): Promise<RunResult> {
  const dir = tempDir('smbclient');
  const conf = join(dir, 'client.conf');
  writeFileSync(
    conf,
    ['[global]', `lock directory = ${dir}`, `state directory = ${dir}`, `cache directory = ${dir}`, `private dir = ${dir}`, ''].join('\n'),
  );
  return run('smbclient', [`//127.0.0.1/${share}`, '-p', String(port), '-N', '-s', conf, '-c', command], {
    env: cleanEnv(),
    timeoutMs: 60_000,
  });
}
