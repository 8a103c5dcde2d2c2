// Steps 2 and 3 of `check` from the objects: source pods and their sidecar, the SMB Service the
// mounters mount, and a Ready mounter on every node that runs consumers.
import { TROUBLESHOOTING } from './troubleshooting.js';
import type { StepResult } from './types.js';

export interface CheckPod {
  namespace: string;
  name: string;
  nodeName?: string;
  /** From the webhook's status annotation: what it injected the pod as. */
  role: 'source' | 'consumer' | undefined;
  phase?: string;
  ready: boolean;
  /** Container name to readiness and a short state ("running", "waiting: CrashLoopBackOff"). */
  containers: Record<string, { ready: boolean; state: string }>;
  /** From the status annotation: "container:path", or "container:path:Bidirectional" for a source. */
  mounts?: string[];
}

export interface SmbServiceFacts {
  namespace: string;
  name: string;
  /** Where the name came from, e.g. "DFS_SMB_SERVICE of daemonset dfs-system/dfs-mounter". */
  source: string;
  exists: boolean;
  readyEndpoints: number;
  notReadyEndpoints: number;
}

export interface MounterPodFacts {
  name: string;
  nodeName: string;
  ready: boolean;
  /** Phase Running: a pod to exec in, Ready or not. */
  running?: boolean;
}

export function checkSourceSidecars(pods: readonly CheckPod[], sidecar: string): StepResult[] {
  return pods
    .filter((p) => p.role === 'source')
    .map((pod): StepResult => {
      const subject = `pod ${pod.namespace}/${pod.name}`;
      const container = pod.containers[sidecar];
      const fix = `kubectl -n ${pod.namespace} describe pod ${pod.name}; kubectl -n ${pod.namespace} logs ${pod.name} -c ${sidecar}`;
      if (container === undefined) {
        return { step: 'source-sidecar', subject, status: 'fail', reason: `no ${sidecar} container status${pod.phase === undefined ? '' : ` (pod ${pod.phase}${pod.nodeName === undefined ? ', not scheduled' : ''})`}`, fix, troubleshooting: TROUBLESHOOTING.staleMount };
      }
      if (!container.ready) {
        return {
          step: 'source-sidecar',
          subject,
          status: 'fail',
          reason: `${sidecar} is not Ready (${container.state}): it turns Ready only when the FUSE mount is there and readable`,
          fix: `${fix}; kubectl -n ${pod.namespace} exec ${pod.name} -c ${sidecar} -- dfs-smbd-ready`,
          troubleshooting: TROUBLESHOOTING.staleMount,
        };
      }
      return { step: 'source-sidecar', subject, status: 'pass', reason: `${sidecar} Ready on node ${pod.nodeName ?? '(none)'}` };
    });
}

export function checkSmbService(service: SmbServiceFacts | undefined, anySource: boolean): StepResult {
  if (service === undefined) {
    return { step: 'smb-endpoint', subject: '', status: 'skip', reason: anySource ? 'no mounter DaemonSet names the SMB Service' : 'no mounter DaemonSet and no source pod: nothing names the SMB Service' };
  }
  const subject = `service ${service.namespace}/${service.name}`;
  if (!service.exists) {
    return {
      step: 'smb-endpoint',
      subject,
      status: 'fail',
      reason: `not found (named by ${service.source}): the mounters have nothing to mount`,
      fix: `include manifests/components/smb-service in the source app's kustomization (namespace ${service.namespace}), or point DFS_SMB_SERVICE at the namespace of the source pod`,
      troubleshooting: TROUBLESHOOTING.staleMount,
    };
  }
  if (service.readyEndpoints === 0) {
    return {
      step: 'smb-endpoint',
      subject,
      status: 'fail',
      reason: `no ready endpoint (${service.notReadyEndpoints} not ready): no source pod with a Ready dfs-smbd sidecar backs it, so every node's CIFS mount fails`,
      fix: `kubectl -n ${service.namespace} get endpointslices -l kubernetes.io/service-name=${service.name}; start the source pod, or fix its sidecar (source-sidecar step)`,
      troubleshooting: TROUBLESHOOTING.staleMount,
    };
  }
  return { step: 'smb-endpoint', subject, status: 'pass', reason: `${service.readyEndpoints} ready endpoint${service.readyEndpoints === 1 ? '' : 's'}` };
}

/** One result per node that runs consumers: it needs a Ready mounter pod, or its consumers see an empty mount. */
export function checkNodeMounters(pods: readonly CheckPod[], mounters: readonly MounterPodFacts[]): StepResult[] {
  const consumersByNode = new Map<string, string[]>();
  for (const pod of pods) {
    if (pod.role !== 'consumer' || pod.nodeName === undefined || pod.nodeName === '') continue;
    const list = consumersByNode.get(pod.nodeName) ?? [];
    list.push(`${pod.namespace}/${pod.name}`);
    consumersByNode.set(pod.nodeName, list);
  }
  if (consumersByNode.size === 0) return [{ step: 'node-mounter', subject: '', status: 'skip', reason: 'no consumer pod is scheduled on a node' }];
  return [...consumersByNode.keys()].sort().map((node): StepResult => {
    const consumers = consumersByNode.get(node) ?? [];
    const who = `${consumers.length} consumer${consumers.length === 1 ? '' : 's'} (${consumers.slice(0, 3).join(', ')}${consumers.length > 3 ? ', …' : ''})`;
    const here = mounters.filter((m) => m.nodeName === node);
    const ready = here.find((m) => m.ready);
    if (ready !== undefined) return { step: 'node-mounter', subject: `node ${node}`, status: 'pass', reason: `${ready.name} Ready; serves ${who}` };
    const state = here.length === 0 ? 'no dfs-mounter pod runs there' : `${here.map((m) => m.name).join(', ')} not Ready`;
    return {
      step: 'node-mounter',
      subject: `node ${node}`,
      status: 'fail',
      reason: `${state}, but it runs ${who}: they see an empty mount`,
      fix: here.length === 0 ? 'kubectl -n dfs-system get daemonset dfs-mounter; check its node selector and tolerations' : `kubectl -n dfs-system logs ${here[0]?.name ?? 'POD'}`,
      troubleshooting: TROUBLESHOOTING.emptyMount,
    };
  });
}

/** "dfs-smb.media.svc.cluster.local" → media/dfs-smb; undefined for anything that is not a Service name. */
export function parseServiceHost(host: string): { namespace: string; name: string } | undefined {
  const labels = host.split('.');
  const [name, namespace, svc] = labels;
  if (name === undefined || namespace === undefined || name === '' || namespace === '') return undefined;
  if (svc !== undefined && svc !== 'svc') return undefined;
  return { namespace, name };
}
