// The runtime steps of `check`: verdicts on what the commands of exec-commands.ts printed inside
// the source containers, their smbd sidecars, the mounter pods and the consumers. Everything
// quoted from that output is cut to a few hundred characters: it comes from inside pods.
import { shown, truncate } from '../bounds.js';
import { parseMountProbe, parseReadiness, statTimedOut, type ExecOutcome } from './exec-commands.js';
import { mountsBelow, optionValue, parseMountinfo, topMountAt, type MountEntry } from './mountinfo.js';
import { TROUBLESHOOTING } from './troubleshooting.js';
import type { StepId, StepResult } from './types.js';

const QUOTED_OUTPUT = 300;
const CIFS_TYPES = new Set(['cifs', 'smb3']);

/** A container to exec in, and the path the step is about. */
export interface ExecTarget {
  namespace: string;
  pod: string;
  container: string;
  path: string;
}

/** The node's share as the mounter DaemonSet asks for it. */
export interface ShareExpectation {
  /** The mounter's container that has these in its environment. */
  container: string;
  hostPath: string;
  shareName: string;
  /** DFS_MOUNT_OPTIONS, comma-separated. */
  options: string;
  /** Where these came from, e.g. "daemonset dfs-system/dfs-mounter". */
  source: string;
}

/** DEFAULT_OPTIONS of manifests/mounter/dfs-mounter.sh (runtime.test.ts holds the two equal). */
export const DEFAULT_MOUNT_OPTIONS = 'ro,nosuid,nodev,noexec,vers=3.1.1,guest,soft,echo_interval=10,actimeo=1,cache=strict,noserverino';

const quoted = (text: string): string => truncate(text.replace(/\s+/g, ' ').trim(), QUOTED_OUTPUT);
/** Error chains (the API server's, the runtime's) end with the cause: keep the end when cutting. */
const quotedTail = (text: string): string => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= QUOTED_OUTPUT ? flat : `…${flat.slice(flat.length - QUOTED_OUTPUT)}`;
};
const describeMount = (m: MountEntry): string => `${m.fstype} ${shown(m.source)}`;
export const EXEC_ROLE_HINT = 'bind the ClusterRole dfs-injector-checker-exec (manifests/auditor-check) with a RoleBinding in that namespace, or run check with --no-exec';

/** The outcomes every runtime step treats alike: the command did not run to an exit status. */
function notRun(step: StepId, subject: string, outcome: Exclude<ExecOutcome, { kind: 'exited' }>, what: string): StepResult {
  switch (outcome.kind) {
    case 'forbidden':
      return { step, subject, status: 'skip', reason: `not allowed to exec (${quoted(outcome.message)})`, fix: EXEC_ROLE_HINT };
    case 'timeout':
      return {
        step,
        subject,
        status: 'fail',
        reason: `${what} timed out after ${outcome.seconds} s: a process in the container is blocked, usually on a mount whose server is away`,
        fix: 'check the SMB Service and the source pod first (smb-endpoint, source-* steps)',
        troubleshooting: TROUBLESHOOTING.staleMount,
      };
    case 'error':
      return { step, subject, status: 'skip', reason: `cannot exec ${what}: ${quotedTail(outcome.message)}` };
  }
}

/** Step 2: the FUSE mount at the source path, or below it, in the source container itself. */
export function checkSourceFuseMount(target: ExecTarget, outcome: ExecOutcome): StepResult {
  const subject = `pod ${target.namespace}/${target.pod} container ${target.container}`;
  if (outcome.kind !== 'exited') return notRun('source-fuse-mount', subject, outcome, 'cat /proc/self/mountinfo');
  if (outcome.code !== 0) return { step: 'source-fuse-mount', subject, status: 'skip', reason: `cannot read its mount table (exit ${outcome.code}: ${quoted(outcome.stderr)})` };
  const entries = parseMountinfo(outcome.stdout);
  const top = topMountAt(entries, target.path);
  const path = shown(target.path);
  if (top?.fstype.startsWith('fuse') === true) return { step: 'source-fuse-mount', subject, status: 'pass', reason: `${describeMount(top)} mounted at ${path}` };
  const below = mountsBelow(entries, target.path).filter((e) => e.fstype.startsWith('fuse'));
  const first = below[0];
  if (first !== undefined) return { step: 'source-fuse-mount', subject, status: 'pass', reason: `${describeMount(first)} mounted at ${shown(first.mountPoint)}, below the shared ${path}` };
  return {
    step: 'source-fuse-mount',
    subject,
    status: 'fail',
    reason: `no FUSE mount at or below ${path} (${top === undefined ? 'not a mount point at all' : `on top there: ${describeMount(top)}, the pod's volume`}): the FUSE program has not mounted, has died, or mounts somewhere else`,
    fix: `kubectl -n ${target.namespace} logs ${target.pod} -c ${target.container}; it must mount at ${path} (the source path) or a directory below it`,
    troubleshooting: TROUBLESHOOTING.fuseMissing,
  };
}

/** Step 2: the sidecar's readiness output: the mount seen from smbd's side, nlink 0, the shim in smbd. */
export function checkSourceSmbd(pod: { namespace: string; name: string }, sidecar: string, outcome: ExecOutcome): StepResult {
  const subject = `pod ${pod.namespace}/${pod.name} container ${sidecar}`;
  if (outcome.kind !== 'exited') return notRun('source-smbd', subject, outcome, 'dfs-smbd-ready');
  if (outcome.code === 127 || outcome.code === 64) {
    return { step: 'source-smbd', subject, status: 'skip', reason: `the readiness script could not run (exit ${outcome.code}: ${quoted(`${outcome.stdout} ${outcome.stderr}`)})` };
  }
  const report = parseReadiness(outcome.stdout, outcome.code);
  const details = [report.nlink0Line === '' ? undefined : `nlink0 ${report.nlink0Line}`, report.smbdLine === '' ? undefined : `smbd ${report.smbdLine}`].filter((d) => d !== undefined).map(quoted).join('; ');
  if (report.ready) {
    return { step: 'source-smbd', subject, status: 'pass', reason: `${quoted(report.headline)}${details === '' ? '' : `; ${details}`}` };
  }
  const shimProblem = report.nlink0 === 'seen' && report.shim === 'not loaded';
  return {
    step: 'source-smbd',
    subject,
    status: 'fail',
    reason: `${quoted(report.headline === '' ? `exit ${outcome.code}, no output` : report.headline)}${details === '' ? '' : `; ${details}`}`,
    fix: shimProblem
      ? `set LD_PRELOAD in ${sidecar} (source.shim.mode image or init, not off); kubectl -n ${pod.namespace} get pod ${pod.name} -o jsonpath='{.spec.containers[?(@.name=="${sidecar}")].env}'`
      : `kubectl -n ${pod.namespace} exec ${pod.name} -c ${sidecar} -- dfs-smbd-ready`,
    troubleshooting: shimProblem ? TROUBLESHOOTING.nlinkShim : TROUBLESHOOTING.fuseMissing,
  };
}

/** How the kernel shows an option of DFS_MOUNT_OPTIONS, or undefined when it does not show it in a way worth comparing. */
function optionShown(option: string, mount: MountEntry): boolean | undefined {
  const [key = '', value] = option.split('=', 2);
  switch (key) {
    case 'ro':
    case 'nosuid':
    case 'nodev':
    case 'noexec':
      return mount.mountOptions.includes(key);
    case 'soft':
    case 'hard':
      return mount.superOptions.includes(key);
    case 'noserverino':
      return !mount.superOptions.includes('serverino');
    case 'guest':
      return optionValue(mount.superOptions, 'sec') === 'none';
    case 'vers':
    case 'cache':
    case 'echo_interval':
    case 'actimeo':
    case 'rsize':
    case 'wsize':
      return value === undefined ? undefined : optionValue(mount.superOptions, key) === value;
    default:
      return undefined;
  }
}

/** The options of DFS_MOUNT_OPTIONS the mount does not have (only those the kernel shows comparably). */
export function missingMountOptions(expected: string, mount: MountEntry): string[] {
  const wanted = expected.split(',').map((o) => o.trim()).filter((o) => o !== '');
  // "ro" is what keeps consumers from writing through the share: required whatever the variable says.
  if (!wanted.includes('ro')) wanted.unshift('ro');
  return wanted.filter((option) => optionShown(option, mount) === false);
}

interface MountVerdict {
  ok: boolean;
  reason: string;
}

/** The stat part of a mount probe: did the share root answer within the limit? */
function statVerdict(stat: string, code: number | undefined, statSeconds: number, where: string): MountVerdict {
  const fields = /^(.{1,60})\|(\d{1,12})\|\d{1,20}$/.exec(stat);
  if (code === 0) return { ok: true, reason: `stat ${where} answered (${fields === null ? quoted(stat) : `${fields[1]}, ${fields[2]} links`})` };
  if (statTimedOut(code)) return { ok: false, reason: `stat ${where} did not answer within ${statSeconds} s: the SMB server is away and the CIFS client is waiting for it` };
  if (code === undefined) return { ok: false, reason: `stat ${where} did not finish (${quoted(stat) || 'no output'})` };
  return { ok: false, reason: `stat ${where} failed (exit ${code}: ${quoted(stat) || 'no output'})` };
}

/** Step 3: on a node with consumers, through its mounter pod: the share at the host path, its options, a bounded stat. */
export function checkNodeShare(node: string, mounterPod: string, expected: ShareExpectation, outcome: ExecOutcome, statSeconds: number): StepResult {
  const subject = `node ${node}`;
  if (outcome.kind !== 'exited') return notRun('node-share', subject, outcome, `the mount probe in dfs-system/${mounterPod}`);
  const probe = parseMountProbe(outcome.stdout);
  const top = topMountAt(parseMountinfo(probe.mountinfo), expected.hostPath);
  const path = shown(expected.hostPath);
  const logs = `kubectl -n dfs-system logs ${mounterPod}`;
  if (top === undefined || !CIFS_TYPES.has(top.fstype)) {
    return {
      step: 'node-share',
      subject,
      status: 'fail',
      reason: `the share is not mounted at ${path} (${top === undefined ? 'not a mount point' : `on top there: ${describeMount(top)}`}): consumers on this node see an empty directory`,
      fix: logs,
      troubleshooting: TROUBLESHOOTING.emptyMount,
    };
  }
  const share = top.source.slice(top.source.lastIndexOf('/') + 1);
  if (share !== expected.shareName) {
    return {
      step: 'node-share',
      subject,
      status: 'fail',
      reason: `${path} mounts ${shown(top.source)}, not the share ${shown(expected.shareName)} (DFS_SHARE_NAME of ${expected.source})`,
      fix: `${logs}; unmount ${path} on that node and let the mounter mount the right share`,
      troubleshooting: TROUBLESHOOTING.mountOptions,
    };
  }
  const missing = missingMountOptions(expected.options, top);
  if (missing.length > 0) {
    return {
      step: 'node-share',
      subject,
      status: 'fail',
      reason: `${shown(top.source)} at ${path} is mounted without ${missing.map(shown).join(', ')}, which DFS_MOUNT_OPTIONS of ${expected.source} asks for (the mount has ${quoted([...top.mountOptions, ...top.superOptions].join(','))})`,
      fix: `the mounter keeps a healthy mount as it finds it: unmount it on that node (kubectl -n dfs-system exec ${mounterPod} -- umount ${path}) and it mounts again with the current options`,
      troubleshooting: TROUBLESHOOTING.mountOptions,
    };
  }
  const stat = statVerdict(probe.stat, probe.statExit, statSeconds, path);
  if (!stat.ok) return { step: 'node-share', subject, status: 'fail', reason: `${shown(top.source)} is mounted at ${path}, but ${stat.reason}`, fix: `${logs}; check smb-endpoint and the source pod`, troubleshooting: TROUBLESHOOTING.staleMount };
  return { step: 'node-share', subject, status: 'pass', reason: `${shown(top.source)} mounted at ${path} (${top.fstype}, ro, options as DFS_MOUNT_OPTIONS asks); ${stat.reason}` };
}

/** Step 4: inside a consumer container: the CIFS share on top at its mount path, and a bounded stat through it. */
export function checkConsumerMount(target: ExecTarget, node: string | undefined, outcome: ExecOutcome, statSeconds: number): StepResult {
  const subject = `pod ${target.namespace}/${target.pod} container ${target.container}`;
  if (outcome.kind !== 'exited') return notRun('consumer-mount', subject, outcome, 'the mount probe');
  const probe = parseMountProbe(outcome.stdout);
  if (probe.statExit === undefined && probe.mountinfo === outcome.stdout && outcome.code !== 0) {
    return { step: 'consumer-mount', subject, status: 'skip', reason: `the probe did not run (exit ${outcome.code}: ${quoted(outcome.stderr || outcome.stdout)}); the image may lack /bin/sh or cat` };
  }
  const path = shown(target.path);
  const top = topMountAt(parseMountinfo(probe.mountinfo), target.path);
  const onNode = node === undefined ? 'its node' : `node ${node}`;
  if (top === undefined) {
    return {
      step: 'consumer-mount',
      subject,
      status: 'fail',
      reason: `nothing is mounted at ${path}: the container runs without the share`,
      fix: `dfs-injector explain ${target.namespace}/${target.pod}`,
      troubleshooting: TROUBLESHOOTING.notInjected,
    };
  }
  if (!CIFS_TYPES.has(top.fstype)) {
    return {
      step: 'consumer-mount',
      subject,
      status: 'fail',
      reason: `${path} shows ${describeMount(top)}, the node's empty directory, not the CIFS share: the share was not mounted on ${onNode} when the container started, or is gone`,
      fix: `check the node-share step for ${onNode}; with the share back, restart the pod if it still sees the directory (kubectl -n ${target.namespace} delete pod ${target.pod})`,
      troubleshooting: TROUBLESHOOTING.emptyMount,
    };
  }
  const stat = statVerdict(probe.stat, probe.statExit, statSeconds, path);
  if (!stat.ok) return { step: 'consumer-mount', subject, status: 'fail', reason: `${shown(top.source)} is at ${path}, but ${stat.reason}`, fix: `check the node-share step for ${onNode} and the source pod`, troubleshooting: TROUBLESHOOTING.staleMount };
  return { step: 'consumer-mount', subject, status: 'pass', reason: `${shown(top.source)} (${top.fstype}) at ${path}; ${stat.reason}` };
}

/**
 * At most `n` pods, spread over nodes: one per node in name order, then a second per node, and so
 * on, so a sample covers as many nodes as it can. Deterministic, so two runs check the same pods.
 */
export function sampleAcrossNodes<T extends { nodeName?: string; namespace: string; name: string }>(pods: readonly T[], n: number): T[] {
  const byNode = new Map<string, T[]>();
  for (const pod of [...pods].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))) {
    const key = pod.nodeName ?? '';
    const list = byNode.get(key) ?? [];
    list.push(pod);
    byNode.set(key, list);
  }
  const queues = [...byNode.keys()].sort().map((k) => byNode.get(k) ?? []);
  const picked: T[] = [];
  for (let round = 0; picked.length < n && queues.some((q) => q.length > round); round++) {
    for (const queue of queues) {
      const pod = queue[round];
      if (pod !== undefined && picked.length < n) picked.push(pod);
    }
  }
  return picked;
}
