// The ClusterReader of `audit` and the object reader of `explain`, on @kubernetes/client-node 1.x.
// Every list is read page by page (`limit` + `continue`), so a large cluster never arrives in one
// response and memory holds at most one page of pods.
import { ApiException, AppsV1Api, BatchV1Api, CoreV1Api, type KubeConfig, type V1Namespace, type V1Pod } from '@kubernetes/client-node';
import { ClusterAccessError, resolveClusterAccess } from '../kube/access.js';
import { kubeConfigFor } from '../kube/client-node.js';
import { controllerOf, isPodReady, MOUNTER, type ClusterReader, type InventoryNamespace, type InventoryPod, type MounterPod } from '../lib/audit/index.js';
import type { PodSpec } from '../lib/k8s.js';

import { ClusterError, DEFAULT_PAGE_SIZE, type KubeconfigOptions } from './cluster-error.js';
import { CLUSTER_KINDS, type ClusterKind, type ExplainTarget } from './explain-target.js';

export { ClusterError, DEFAULT_PAGE_SIZE, type KubeconfigOptions } from './cluster-error.js';

/** The cluster as kube/access.ts resolves it for every command, as a client-node KubeConfig. */
export async function loadKubeConfig(options: KubeconfigOptions): Promise<KubeConfig> {
  try {
    return kubeConfigFor(await resolveClusterAccess(options));
  } catch (error) {
    if (error instanceof ClusterAccessError) throw new ClusterError(error.message);
    throw error;
  }
}

/** "403 Forbidden: pods is forbidden: User ... cannot list ..." from whatever client-node threw. */
export function describeApiError(error: unknown, what: string): ClusterError {
  if (error instanceof ApiException) {
    const code = error.code;
    let detail = '';
    const body: unknown = error.body;
    try {
      const parsed: unknown = typeof body === 'string' ? JSON.parse(body) : body;
      if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { message?: unknown }).message === 'string') detail = (parsed as { message: string }).message;
    } catch {
      detail = typeof body === 'string' ? body.slice(0, 200) : '';
    }
    const hint = code === 410 ? ' (the list changed for too long while it was read page by page; run the audit again)' : '';
    return new ClusterError(`${what}: HTTP ${code}${detail === '' ? '' : `: ${detail}`}${hint}`, code);
  }
  const cause = error instanceof Error ? ((error as { cause?: unknown }).cause ?? error) : error;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new ClusterError(`${what}: ${message}`);
}

function labelsOf(value: Record<string, string> | undefined): Record<string, string> {
  return { ...(value ?? {}) };
}

export function inventoryPod(pod: V1Pod): InventoryPod {
  const meta = pod.metadata ?? {};
  const entry: InventoryPod = {
    apiVersion: 'v1',
    kind: 'Pod',
    namespace: meta.namespace ?? '',
    name: meta.name ?? meta.generateName ?? '(unnamed)',
    labels: labelsOf(meta.labels),
    annotations: labelsOf(meta.annotations),
    // client-node's V1PodSpec carries the same field names as the JSON the rules read.
    spec: (pod.spec ?? { containers: [] }) as unknown as PodSpec,
  };
  if (meta.uid !== undefined) entry.uid = meta.uid;
  if (pod.spec?.nodeName !== undefined) entry.nodeName = pod.spec.nodeName;
  if (pod.status?.phase !== undefined) entry.phase = pod.status.phase;
  const owner = controllerOf(meta.ownerReferences);
  if (owner !== undefined) entry.owner = owner;
  return entry;
}

function inventoryNamespace(ns: V1Namespace): InventoryNamespace {
  return { name: ns.metadata?.name ?? '', labels: labelsOf(ns.metadata?.labels) };
}

interface Page<T> {
  items: T[];
  metadata?: { _continue?: string };
}

/** Follows `continue` tokens until the server has no more pages. */
async function* paginate<T>(fetchPage: (token: string | undefined) => Promise<Page<T>>, what: string): AsyncGenerator<T> {
  let token: string | undefined;
  do {
    let page: Page<T>;
    try {
      page = await fetchPage(token);
    } catch (error) {
      throw describeApiError(error, what);
    }
    yield* page.items;
    token = page.metadata?._continue;
  } while (token !== undefined && token !== '');
}

type ObjectReader = (request: { namespace: string; name: string }) => Promise<object>;

export class KubeClusterReader implements ClusterReader {
  private readonly readers: Readonly<Record<ClusterKind, ObjectReader>>;

  constructor(
    private readonly api: CoreV1Api,
    apps: AppsV1Api,
    batch: BatchV1Api,
    private readonly pageSize: number = DEFAULT_PAGE_SIZE,
  ) {
    this.readers = {
      Pod: (r) => api.readNamespacedPod(r),
      ReplicationController: (r) => api.readNamespacedReplicationController(r),
      Deployment: (r) => apps.readNamespacedDeployment(r),
      StatefulSet: (r) => apps.readNamespacedStatefulSet(r),
      DaemonSet: (r) => apps.readNamespacedDaemonSet(r),
      ReplicaSet: (r) => apps.readNamespacedReplicaSet(r),
      Job: (r) => batch.readNamespacedJob(r),
      CronJob: (r) => batch.readNamespacedCronJob(r),
    };
  }

  static fromKubeConfig(kc: KubeConfig, pageSize?: number): KubeClusterReader {
    return new KubeClusterReader(kc.makeApiClient(CoreV1Api), kc.makeApiClient(AppsV1Api), kc.makeApiClient(BatchV1Api), pageSize);
  }

  async *listNamespaces(): AsyncGenerator<InventoryNamespace> {
    const pages = paginate((token) => this.api.listNamespace({ limit: this.pageSize, ...(token === undefined ? {} : { _continue: token }) }), 'cannot list namespaces');
    for await (const ns of pages) yield inventoryNamespace(ns);
  }

  async readNamespace(name: string): Promise<InventoryNamespace | undefined> {
    try {
      return inventoryNamespace(await this.api.readNamespace({ name }));
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw describeApiError(error, `cannot read namespace ${name}`);
    }
  }

  async *listPods(namespace?: string): AsyncGenerator<InventoryPod> {
    const page = (token: string | undefined): Promise<Page<V1Pod>> => {
      const common = { limit: this.pageSize, ...(token === undefined ? {} : { _continue: token }) };
      return namespace === undefined ? this.api.listPodForAllNamespaces(common) : this.api.listNamespacedPod({ namespace, ...common });
    };
    for await (const pod of paginate(page, namespace === undefined ? 'cannot list pods in all namespaces' : `cannot list pods in namespace ${namespace}`)) {
      yield inventoryPod(pod);
    }
  }

  async listMounterPods(namespace: string): Promise<MounterPod[]> {
    const mounters: MounterPod[] = [];
    const pages = paginate(
      (token) =>
        this.api.listNamespacedPod({
          namespace,
          labelSelector: `${MOUNTER.labelKey}=${MOUNTER.labelValue}`,
          limit: this.pageSize,
          ...(token === undefined ? {} : { _continue: token }),
        }),
      `cannot list the ${MOUNTER.name} pods in namespace ${namespace}`,
    );
    for await (const pod of pages) {
      // The label narrows the list; the owner decides, since anyone may label a pod.
      const owner = controllerOf(pod.metadata?.ownerReferences);
      if (owner?.kind !== 'DaemonSet' || owner.name !== MOUNTER.name) continue;
      const nodeName = pod.spec?.nodeName;
      if (nodeName !== undefined && nodeName !== '') mounters.push({ nodeName, ready: isPodReady(pod.status), name: pod.metadata?.name ?? '(unnamed)' });
    }
    return mounters;
  }

  /** A pod or workload as plain JSON (dates as strings), or undefined when it does not exist; for `explain`. */
  async readObject({ kind, namespace, name }: ExplainTarget): Promise<Record<string, unknown> | undefined> {
    try {
      const object = await this.readers[kind]({ namespace, name });
      // client-node's models use the API's field names for these kinds; only dates need turning back into strings.
      const plain = JSON.parse(JSON.stringify(object)) as Record<string, unknown>;
      return { apiVersion: CLUSTER_KINDS[kind], kind, ...plain };
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw describeApiError(error, `cannot read ${kind.toLowerCase()} ${namespace}/${name}`);
    }
  }
}
