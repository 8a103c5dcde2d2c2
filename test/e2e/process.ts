import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** stdout and stderr of the process, interleaved. */
  readonly logPath: string;
  /** Settles when the process has exited; never rejects. */
  readonly exited: Promise<ExitInfo>;
  running(): boolean;
  /** The last `lines` lines of the log, for error messages. */
  logTail(lines?: number): string;
  /** SIGTERM to the whole process group, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

const liveGroups = new Set<number>();
const dirsToRemove = new Set<string>();
let exitHookInstalled = false;

function cleanupSync(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  liveGroups.clear();
  for (const dir of dirsToRemove) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
  dirsToRemove.clear();
}

// Cleanup must be synchronous here: SIGKILL the groups and delete the temp dirs so a failed
// or interrupted test file leaves neither ports nor etcd data behind. Vitest ends its fork
// workers with SIGTERM, which skips 'exit' handlers, hence the signal handlers too.
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', cleanupSync);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupSync();
      process.removeListener(signal, onSignal);
      // Someone else handles it: let them decide. Otherwise die of the signal as if we had
      // never listened.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Removes `dir` when this process exits, unless `forgetDirectory` was called first. */
export function removeOnExit(dir: string): void {
  installExitHook();
  dirsToRemove.add(dir);
}

export function forgetDirectory(dir: string): void {
  dirsToRemove.delete(dir);
}

let pdeathsig: boolean | undefined;

// A worker killed with SIGKILL runs no exit hook; setpriv's parent-death signal makes the
// kernel kill the child then instead of leaving an apiserver bound to a port forever.
function hasSetprivPdeathsig(): boolean {
  if (pdeathsig === undefined) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
    pdeathsig = r.status === 0 && r.stdout.includes('--pdeathsig');
  }
  return pdeathsig;
}

export interface StartOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logPath: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run inside this network namespace (`ip netns exec`), e.g. a node test's control plane. */
  readonly netns?: string;
}

export function startProcess(o: StartOptions): ManagedProcess {
  installExitHook();
  const fd = openSync(o.logPath, 'a');
  // `ip netns exec` execs the command in place, so the parent-death signal still reaches it.
  const target = o.netns === undefined ? [o.command, ...o.args] : ['ip', 'netns', 'exec', o.netns, o.command, ...o.args];
  const [command, args] = hasSetprivPdeathsig()
    ? ['setpriv', ['--pdeathsig', 'KILL', '--', ...target]]
    : [target[0] ?? o.command, target.slice(1)];
  const child = spawn(command, args, {
    cwd: o.cwd,
    env: o.env ?? process.env,
    // Own process group, so stop() reaches anything the binary forks.
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  if (child.pid === undefined) {
    throw new Error(`could not start ${o.name} (${o.command})`);
  }
  const pid: number = child.pid;
  liveGroups.add(pid);
  let alive = true;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      liveGroups.delete(pid);
      resolve({ code, signal });
    });
    child.once('error', () => {
      alive = false;
      liveGroups.delete(pid);
      resolve({ code: null, signal: null });
    });
  });
  // The test runner must not wait on these children to exit.
  child.unref();

  function logTail(lines = 40): string {
    try {
      return readFileSync(o.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  function signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-pid, signal);
    } catch {
      // group already gone
    }
  }

  async function stop(graceMs = 10_000): Promise<ExitInfo> {
    if (alive) {
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    // Children that outlived the leader would keep ports and files open.
    signalGroup('SIGKILL');
    return exited;
  }

  return { name: o.name, pid, logPath: o.logPath, exited, running: () => alive, logTail, stop };
}
