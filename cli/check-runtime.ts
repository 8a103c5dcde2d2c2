// The runtime steps of `dfs-injector check`: which containers to exec in, with which fixed
// command (lib/check/exec-commands.ts), a few at a time; the verdicts are lib/check's.
import {
  checkConsumerMount,
  checkNodeShare,
  checkSourceFuseMount,
  checkSourceSmbd,
  EXEC_CONCURRENCY,
  mountProbe,
  sampleAcrossNodes,
  SIDECAR_READINESS,
  SOURCE_MOUNTINFO,
  type CheckPod,
  type ExecOutcome,
  type ExecTarget,
  type MounterPodFacts,
  type ShareExpectation,
  type StepResult,
} from '../lib/check/index.js';
import { MOUNTER } from '../lib/audit/index.js';
import type { ExecRequest } from './check-exec.js';

export interface RuntimeCluster {
  exec(request: ExecRequest, timeoutMs: number): Promise<ExecOutcome>;
}

export interface RuntimeArgs {
  sidecar: string;
  /** Each exec's deadline; the stat inside gets half of it. */
  execTimeoutSeconds: number;
  /** Consumer pods to look into; undefined: all. */
  sample: number | undefined;
}

/** `items` through `work`, at most `limit` at a time, results in the order of `items`. */
async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** "container:path" or "container:path:Bidirectional", as the webhook's status annotation records its mounts. */
function parseMountEntry(entry: string): { container: string; path: string; bidirectional: boolean } | undefined {
  const [container = '', path = '', mode] = entry.split(':', 3);
  return container === '' || !path.startsWith('/') ? undefined : { container, path, bidirectional: mode === 'Bidirectional' };
}

const running = (pod: CheckPod): boolean => pod.phase === 'Running';

/** Step 2 inside containers: each running source pod's FUSE mount, then its sidecar's readiness output. */
export async function sourceRuntimeSteps(cluster: RuntimeCluster, pods: readonly CheckPod[], args: RuntimeArgs): Promise<StepResult[]> {
  const timeoutMs = args.execTimeoutSeconds * 1000;
  const sources = pods.filter((p) => p.role === 'source');
  const perPod = await mapLimit(sources, EXEC_CONCURRENCY, async (pod): Promise<StepResult[]> => {
    const subject = `pod ${pod.namespace}/${pod.name}`;
    if (!running(pod)) {
      const reason = `pod is ${pod.phase ?? 'not started'}: nothing to exec in`;
      return [
        { step: 'source-fuse-mount', subject, status: 'skip', reason },
        { step: 'source-smbd', subject, status: 'skip', reason },
      ];
    }
    const mount = (pod.mounts ?? []).map(parseMountEntry).find((m) => m?.bidirectional === true);
    const fuse: StepResult =
      mount === undefined
        ? { step: 'source-fuse-mount', subject, status: 'skip', reason: 'its dfs-injector.io/status annotation names no source container' }
        : checkSourceFuseMount(
            { namespace: pod.namespace, pod: pod.name, container: mount.container, path: mount.path },
            await cluster.exec({ namespace: pod.namespace, pod: pod.name, container: mount.container, command: SOURCE_MOUNTINFO }, timeoutMs),
          );
    const smbd = checkSourceSmbd(pod, args.sidecar, await cluster.exec({ namespace: pod.namespace, pod: pod.name, container: args.sidecar, command: SIDECAR_READINESS }, timeoutMs));
    return [fuse, smbd];
  });
  // All FUSE mounts first, then all sidecars: the report stays in data-path order.
  return [...perPod.map((r) => r[0] as StepResult), ...perPod.map((r) => r[1] as StepResult)];
}

/** Steps 3 and 4 inside containers: the share on each node with consumers (through its mounter), then consumers. */
export async function nodeAndConsumerRuntimeSteps(
  cluster: RuntimeCluster,
  pods: readonly CheckPod[],
  mounters: readonly MounterPodFacts[],
  share: ShareExpectation | undefined,
  args: RuntimeArgs,
): Promise<StepResult[]> {
  const timeoutMs = args.execTimeoutSeconds * 1000;
  const statSeconds = Math.max(1, Math.floor(args.execTimeoutSeconds / 2));
  const consumers = pods.filter((p) => p.role === 'consumer' && p.nodeName !== undefined);
  const nodes = [...new Set(consumers.map((p) => p.nodeName as string))].sort();
  const nodeResults = await mapLimit(nodes, EXEC_CONCURRENCY, async (node): Promise<StepResult> => {
    const subject = `node ${node}`;
    if (share === undefined) return { step: 'node-share', subject, status: 'skip', reason: `no ${MOUNTER.namespace}/${MOUNTER.name} DaemonSet says where the share is mounted` };
    const mounter = mounters.find((m) => m.nodeName === node && m.running === true);
    if (mounter === undefined) return { step: 'node-share', subject, status: 'skip', reason: 'no running dfs-mounter pod there to look through (see node-mounter)' };
    const outcome = await cluster.exec({ namespace: MOUNTER.namespace, pod: mounter.name, container: share.container, command: mountProbe(share.hostPath, statSeconds) }, timeoutMs);
    return checkNodeShare(node, mounter.name, share, outcome, statSeconds);
  });

  const candidates = consumers.filter(running);
  const picked = args.sample === undefined ? candidates : sampleAcrossNodes(candidates, args.sample);
  const consumerResults = await mapLimit(picked, EXEC_CONCURRENCY, async (pod): Promise<StepResult> => {
    const mount = (pod.mounts ?? []).map(parseMountEntry).find((m) => m !== undefined && !m.bidirectional);
    if (mount === undefined) return { step: 'consumer-mount', subject: `pod ${pod.namespace}/${pod.name}`, status: 'skip', reason: 'its dfs-injector.io/status annotation names no mounted container' };
    const target: ExecTarget = { namespace: pod.namespace, pod: pod.name, container: mount.container, path: mount.path };
    const outcome = await cluster.exec({ namespace: pod.namespace, pod: pod.name, container: mount.container, command: mountProbe(mount.path, statSeconds) }, timeoutMs);
    return checkConsumerMount(target, pod.nodeName, outcome, statSeconds);
  });
  const left = candidates.length - picked.length;
  const notRunning = consumers.length - candidates.length;
  const notes: StepResult[] = [];
  if (left > 0) notes.push({ step: 'consumer-mount', subject: '', status: 'skip', reason: `${left} more running consumer pod${left === 1 ? '' : 's'} not looked into (--sample ${args.sample})` });
  if (notRunning > 0) notes.push({ step: 'consumer-mount', subject: '', status: 'skip', reason: `${notRunning} consumer pod${notRunning === 1 ? ' is' : 's are'} not running: nothing to exec in` });
  if (consumers.length === 0) notes.push({ step: 'consumer-mount', subject: '', status: 'skip', reason: 'no consumer pod is scheduled on a node' });
  return [...nodeResults, ...consumerResults, ...notes];
}
