// Pieces of the real-kernel mounter tests: the shipped mounter and consumers started in the test
// VM, smbd on the host, and the pure reading of what the consumers logged.
import { copyFileSync, chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile } from '../../shim/test/support.js';
import type { Vm } from '../vm/vm.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
export const mounterScript = join(repo, 'manifests', 'mounter', 'dfs-mounter.sh');
export const daemonsetYaml = join(repo, 'manifests', 'mounter', 'daemonset.yaml');

/** The DFS_MOUNT_OPTIONS the shipped DaemonSet sets. */
export function daemonsetMountOptions(): string {
  const m = /- name: DFS_MOUNT_OPTIONS\n\s+value: (\S+)/.exec(readFileSync(daemonsetYaml, 'utf8'));
  if (m === null) throw new Error(`${daemonsetYaml} sets no DFS_MOUNT_OPTIONS`);
  return m[1]!;
}

/**
 * The mount options the READMEs say the mounter uses: README.md's "The mounter uses `…`" and
 * manifests/README.md's "It calls `mount.cifs` (cifs-utils) with `…`" (wrapped over two lines).
 */
export function documentedMountOptions(): { readme: string; manifestsReadme: string } {
  const find = (file: string, re: RegExp): string => {
    const m = re.exec(readFileSync(join(repo, file), 'utf8'));
    if (m === null) throw new Error(`${file} no longer says which options the mounter uses (${re})`);
    return m[1]!.replace(/\s+/g, '');
  };
  return {
    readme: find('README.md', /The mounter uses `([^`]{1,400})`/),
    manifestsReadme: find(join('manifests', 'README.md'), /It calls `mount\.cifs` \(cifs-utils\) with `([^`]{1,400})`/),
  };
}

/** Copies the shipped script and a static consumer into the guest's /harness/bin. */
export async function installTools(vm: Vm): Promise<void> {
  const consumer = await compile('cc', [fileURLToPath(new URL('consumer.c', import.meta.url))], 'vm-consumer', ['-static']);
  const bin = join(vm.harness, 'bin');
  mkdirSync(bin, { recursive: true });
  mkdirSync(join(vm.harness, 'out'), { recursive: true });
  copyFileSync(consumer, join(bin, 'consumer'));
  copyFileSync(mounterScript, join(bin, 'dfs-mounter.sh'));
  chmodSync(join(bin, 'consumer'), 0o755);
}

export type Shell = 'dash' | 'ash';
export type ConsumerMode = 'path' | 'fd' | 'cwd';

export interface MounterRun {
  name: string;
  hostPath: string;
  readyFile: string;
  /** The host-side path of the mounter's log (stdout and stderr). */
  logFile: string;
  log: () => string;
  /** Guest pid of the mounter's shell. */
  pid: number;
  /** The environment it runs with (for check-ready). */
  env: Record<string, string>;
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Starts the shipped script in the guest, in the background, with the given environment. */
export async function startMounter(vm: Vm, name: string, env: Record<string, string>, shell: Shell = 'dash', logSuffix = ''): Promise<MounterRun> {
  const hostPath = env.DFS_HOST_PATH ?? `/mnt/${name}`;
  const readyFile = env.DFS_READY_FILE ?? `/run/${name}/ready`;
  // Each mounter in the VM has its own probe directory, as each node has its own pod.
  const full = { DFS_HOST_PATH: hostPath, DFS_READY_FILE: readyFile, DFS_PROBE_DIR: `/run/${name}/probe`, ...env };
  const assigns = Object.entries(full)
    .map(([k, v]) => `${k}=${q(v)}`)
    .join(' ');
  const logName = `${name}-mounter${logSuffix}.log`;
  const sh = shell === 'dash' ? 'dash' : 'busybox ash';
  const pid = Number(
    (await vm.execOk(`env ${assigns} ${sh} /harness/bin/dfs-mounter.sh run >/harness/out/${logName} 2>&1 </dev/null & echo $!`)).trim(),
  );
  const logFile = join(vm.harness, 'out', logName);
  return { name, hostPath, readyFile, logFile, pid, env: full, log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') };
}

/** Starts a consumer in its own mount namespace, a slave of the guest's, as HostToContainer does. */
export async function startConsumer(vm: Vm, name: string, mode: ConsumerMode, file: string, intervalMs = 1000): Promise<() => ConsumerRead[]> {
  const logName = `${name}-consumer-${mode}.log`;
  await vm.execOk(
    `unshare -m --propagation slave /harness/bin/consumer ${mode} ${q(file)} ${intervalMs} >/harness/out/${logName} 2>&1 </dev/null &`,
  );
  const logFile = join(vm.harness, 'out', logName);
  return () => parseReads(existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
}

/** The readinessProbe's answer: the shipped script's check-ready with the mounter's environment. */
export async function checkReady(vm: Vm, env: Record<string, string>): Promise<{ ready: boolean; why: string }> {
  const assigns = Object.entries(env)
    .map(([k, v]) => `${k}=${q(v)}`)
    .join(' ');
  const r = await vm.exec(`env ${assigns} dash /harness/bin/dfs-mounter.sh check-ready`);
  return { ready: r.code === 0, why: r.stderr.trim() };
}

/** SIGTERM to a guest process; resolves once it has exited. */
export async function terminate(vm: Vm, pid: number, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  await vm.execOk(`kill -TERM ${pid}`);
  // A zombie counts as gone: the guest's init may not reap orphans at once.
  while ((await vm.exec(`grep -q '^State:[[:space:]]*[^Z]' /proc/${pid}/status 2>/dev/null`)).code === 0) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`guest pid ${pid} still runs ${timeoutMs} ms after SIGTERM`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return Date.now() - t0;
}

export async function guestUptimeMs(vm: Vm): Promise<number> {
  const up = await vm.execOk('cut -d" " -f1 /proc/uptime');
  return Math.round(Number(up.trim()) * 1000);
}

/** The mount ID (mountinfo field 1) of the topmost mount at path, in the guest's namespace. */
export async function mountId(vm: Vm, path: string): Promise<string | undefined> {
  const out = await vm.execOk(`awk -v p=${q(path)} '$5 == p { id = $1 " " $0 } END { print id }' /proc/self/mountinfo`);
  const line = out.trim();
  return line === '' ? undefined : line.split(' ')[0];
}

// ---- what consumers saw (pure) ----------------------------------------------------------------

export interface ConsumerRead {
  startMs: number;
  durationMs: number;
  ok: boolean;
  bytes?: number;
  nlink?: number;
  errno?: string;
}

export function parseReads(text: string): ConsumerRead[] {
  const reads: ConsumerRead[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 4 || !/^\d+$/.test(f[0]!)) continue;
    const base = { startMs: Number(f[0]), durationMs: Number(f[1]) };
    if (f[2] === 'ok') reads.push({ ...base, ok: true, bytes: Number(f[3]), nlink: Number(f[4]) });
    else reads.push({ ...base, ok: false, errno: f[3]! });
  }
  return reads;
}

export interface OutageFigures {
  /** Longest time one read took, among those started from the outage on. */
  longestReadMs: number;
  /** errno names consumers got from the outage on, with counts. */
  errors: Record<string, number>;
  /** ms from the server's return until a read completed successfully; undefined: never. */
  recoveredAfterMs: number | undefined;
  /** Reads that failed after the first success following the server's return. */
  failuresAfterRecovery: number;
}

export function outageFigures(reads: readonly ConsumerRead[], downAtMs: number, upAtMs: number): OutageFigures {
  const from = reads.filter((r) => r.startMs + r.durationMs >= downAtMs);
  const errors: Record<string, number> = {};
  for (const r of from) if (!r.ok) errors[r.errno!] = (errors[r.errno!] ?? 0) + 1;
  const recovered = from.find((r) => r.ok && r.startMs >= upAtMs);
  const after = recovered === undefined ? [] : from.filter((r) => r.startMs > recovered.startMs);
  return {
    longestReadMs: Math.max(0, ...from.map((r) => r.durationMs)),
    errors,
    recoveredAfterMs: recovered === undefined ? undefined : recovered.startMs + recovered.durationMs - upAtMs,
    failuresAfterRecovery: after.filter((r) => !r.ok).length,
  };
}
