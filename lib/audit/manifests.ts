import { isRecord, nonEmptyString, type PodLike } from '../k8s.js';
import { findPods } from '../workloads.js';
import { controllerOf, isMounterPod } from './rules.js';
import type { Inventory, InventoryNamespace, InventoryPod, MounterPod } from './types.js';

export interface ManifestInventoryOptions {
  /** Namespace of objects that name none, as `kubectl apply -n` would use. */
  defaultNamespace: string;
  /** Namespace of the dfs-mounter DaemonSet; default dfs-system. */
  mounterNamespace?: string;
}

function stringMap(value: unknown): Record<string, string> {
  if (!isRecord(value)) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** True when a pod's status says it is Ready (condition Ready=True). */
export function isPodReady(status: unknown): boolean {
  if (!isRecord(status) || !Array.isArray(status.conditions)) return false;
  return status.conditions.some((c) => isRecord(c) && c.type === 'Ready' && c.status === 'True');
}

function flatten(doc: unknown): Record<string, unknown>[] {
  if (!isRecord(doc)) return [];
  if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) return (doc.items as unknown[]).flatMap(flatten);
  return [doc];
}

/**
 * An inventory from manifests: every pod and pod template (`findPods`: Pods, workloads, Lists),
 * the labels of Namespace objects found among them, and, when the input is a dump of live pods
 * (some are bound to a node), the mounter pods and their readiness. Plain manifests carry no node
 * state, so `mounterPods` stays undefined and the node rule is skipped.
 */
export function inventoryFromDocuments(docs: readonly unknown[], options: ManifestInventoryOptions): Inventory {
  const namespaces: InventoryNamespace[] = [];
  const pods: InventoryPod[] = [];
  const mounterPods: MounterPod[] = [];
  let bound = false;
  for (const object of docs.flatMap(flatten)) {
    const meta = isRecord(object.metadata) ? object.metadata : {};
    if (object.kind === 'Namespace' && object.apiVersion === 'v1') {
      const name = nonEmptyString(meta.name);
      if (name !== undefined) namespaces.push({ name, labels: stringMap(meta.labels) });
      continue;
    }
    for (const { pod } of findPods(object)) {
      const entry = inventoryEntry(object, meta, pod, options.defaultNamespace);
      if (entry.nodeName !== undefined) {
        bound = true;
        if (isMounterPod(entry, options.mounterNamespace)) mounterPods.push({ nodeName: entry.nodeName, ready: isPodReady(object.status), name: entry.name });
      }
      pods.push(entry);
    }
  }
  return bound ? { namespaces, pods, mounterPods } : { namespaces, pods };
}

function inventoryEntry(object: Record<string, unknown>, meta: Record<string, unknown>, pod: PodLike, defaultNamespace: string): InventoryPod {
  const podMeta = pod.metadata ?? {};
  const entry: InventoryPod = {
    apiVersion: nonEmptyString(object.apiVersion) ?? 'v1',
    kind: nonEmptyString(object.kind) ?? 'Pod',
    namespace: nonEmptyString(meta.namespace) ?? defaultNamespace,
    name: nonEmptyString(meta.name) ?? nonEmptyString(meta.generateName) ?? '(unnamed)',
    labels: stringMap(podMeta.labels),
    annotations: stringMap(podMeta.annotations),
    spec: pod.spec,
  };
  const uid = nonEmptyString(meta.uid);
  if (uid !== undefined) entry.uid = uid;
  const owner = object.kind === 'Pod' ? controllerOf(meta.ownerReferences) : undefined;
  if (owner !== undefined) entry.owner = owner;
  // Only a Pod is bound to a node; a template's nodeName is a scheduling request, not state.
  const nodeName = nonEmptyString(pod.spec.nodeName);
  if (object.kind === 'Pod' && nodeName !== undefined) {
    entry.nodeName = nodeName;
    const phase = isRecord(object.status) ? nonEmptyString(object.status.phase) : undefined;
    if (phase !== undefined) entry.phase = phase;
  }
  return entry;
}
