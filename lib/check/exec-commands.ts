// The commands `check` runs inside containers (the runtime steps), and what came back.
//
// Every command is a fixed argv. What comes from the cluster (a mount path from a pod's
// annotation, the mounter's DFS_HOST_PATH) is never spliced into a script: it is passed as a
// positional argument ("$1") to a fixed `sh -c` script, so no value can become shell syntax.
// Every exec is bounded twice: the CLI's transport stops waiting after the exec timeout and keeps
// at most a fixed number of bytes; inside the container, `timeout` (where the image has it) stops
// a `stat` that a hung CIFS mount would block for minutes.

/** What one exec gave: an exit status, or why there is none. */
export type ExecOutcome =
  | { kind: 'exited'; code: number; stdout: string; stderr: string; truncated: boolean }
  | { kind: 'timeout'; seconds: number }
  /** RBAC refused pods/exec: the step cannot run for this identity. */
  | { kind: 'forbidden'; message: string }
  /** The exec did not start or broke off: no such container, no such binary, the kubelet unreachable. */
  | { kind: 'error'; message: string };

/** Output kept per stream; the commands print a mount table and one line of `stat`. */
export const EXEC_OUTPUT_LIMIT = 256 * 1024;
/** Runtime execs in flight at once, so a large cluster is not hit with hundreds together. */
export const EXEC_CONCURRENCY = 4;

/** The source container's mount table: `cat` only, because a FUSE program's image may have no shell. */
export const SOURCE_MOUNTINFO: readonly string[] = ['cat', '/proc/self/mountinfo'];

/**
 * The sidecar's readiness script, as its readiness probe runs it: the project's smbd image has it
 * on PATH; with shim.mode init (a user's own Samba image), the init container put it beside the
 * shim in /dfs-shim.
 */
export const SIDECAR_READINESS: readonly string[] = [
  '/bin/sh',
  '-c',
  'if [ -x /usr/local/bin/dfs-smbd-ready ]; then exec /usr/local/bin/dfs-smbd-ready; ' +
    'elif [ -f /dfs-shim/dfs-smbd-ready ]; then exec /bin/sh /dfs-shim/dfs-smbd-ready; ' +
    'else echo "dfs-smbd-ready is in neither /usr/local/bin nor /dfs-shim" >&2; exit 127; fi',
];

export const STAT_MARKER = '--- dfs-injector check: stat';
export const EXIT_MARKER = '--- dfs-injector check: exit ';

/**
 * The mount table, then a bounded `stat` of "$1" with its exit status. "$2" is the stat's time
 * limit in seconds, a number the CLI computes. An image without `timeout` (or without `stat`)
 * still gets the mount table; the transport's own timeout then bounds the whole exec.
 */
const MOUNT_PROBE_SCRIPT = [
  'p=$1; t=$2',
  'cat /proc/self/mountinfo',
  `echo '${STAT_MARKER}'`,
  `if command -v timeout >/dev/null 2>&1; then timeout "$t" stat -c '%F|%h|%s' -- "$p" 2>&1; else stat -c '%F|%h|%s' -- "$p" 2>&1; fi`,
  `echo "${EXIT_MARKER}$?"`,
].join('\n');

export function mountProbe(path: string, statSeconds: number): string[] {
  return ['/bin/sh', '-c', MOUNT_PROBE_SCRIPT, 'dfs-injector-check', path, String(Math.max(1, Math.floor(statSeconds)))];
}

/** What mountProbe printed: the mount table, and the stat's output and exit status (undefined when it never got there). */
export interface MountProbeOutput {
  mountinfo: string;
  stat: string;
  statExit: number | undefined;
}

export function parseMountProbe(stdout: string): MountProbeOutput {
  const text = `\n${stdout}`;
  const at = text.indexOf(`\n${STAT_MARKER}\n`);
  if (at < 0) return { mountinfo: stdout, stat: '', statExit: undefined };
  const mountinfo = text.slice(1, at);
  const rest = text.slice(at + STAT_MARKER.length + 2);
  const exitAt = rest.lastIndexOf(EXIT_MARKER);
  if (exitAt < 0) return { mountinfo, stat: rest.trim(), statExit: undefined };
  const code = /^(\d{1,3})\s*$/.exec(rest.slice(exitAt + EXIT_MARKER.length));
  return { mountinfo, stat: rest.slice(0, exitAt).trim(), statExit: code === null ? undefined : Number(code[1]) };
}

/** coreutils `timeout` exits 124 when it had to stop the command; BusyBox's reports the signal (128 + TERM). */
export function statTimedOut(code: number | undefined): boolean {
  return code === 124 || code === 143;
}

/** What the sidecar's readiness script said (shim/image/ready.sh). */
export interface ReadinessReport {
  ready: boolean;
  /** The first line without its "ready: " or "not ready: " prefix. */
  headline: string;
  nlink0: 'seen' | 'not seen' | 'unknown';
  nlink0Line: string;
  shim: 'loaded' | 'not loaded' | 'unknown';
  smbdLine: string;
}

export function parseReadiness(stdout: string, code: number): ReadinessReport {
  const lines = stdout.split('\n').map((l) => l.trim());
  const first = lines.find((l) => l !== '') ?? '';
  const headline = first.replace(/^(not )?ready: /, '');
  const nlink0Line = (lines.find((l) => l.startsWith('nlink0: ')) ?? '').slice('nlink0: '.length);
  const smbdLine = (lines.find((l) => l.startsWith('smbd: ')) ?? '').slice('smbd: '.length);
  return {
    ready: code === 0 && first.startsWith('ready: '),
    headline,
    nlink0: nlink0Line.startsWith('seen') ? 'seen' : nlink0Line.startsWith('not seen') ? 'not seen' : 'unknown',
    nlink0Line,
    shim: /nlink shim NOT loaded/.test(smbdLine) ? 'not loaded' : /nlink shim loaded/.test(smbdLine) ? 'loaded' : 'unknown',
    smbdLine,
  };
}
