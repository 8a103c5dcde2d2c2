import { boundMessages, LIMITS, shown } from '../bounds.js';
import { isRecord, nonEmptyString, type PodLike } from '../k8s.js';
import { podErrors } from '../pod-shape.js';
import { findPodSlots, objectsOf, type PodSlot } from '../workloads.js';
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

/** A manifest holds a pod that neither the API server nor the rules can read; nothing was audited. */
export class InvalidPodError extends Error {
  override readonly name = 'InvalidPodError';
}

/** The pods of `object`, each with what is wrong with it. */
function podSlots(object: Record<string, unknown>): { slot: PodSlot; errors: string[] }[] {
  return findPodSlots(object).map((slot) => ({ slot, errors: podErrors(slot.value, slot.prefix.slice(1).replaceAll('/', '.')) }));
}

/**
 * What is wrong with the pods and pod templates in `docs`, one line per pod ("Deployment
 * media/sonarr: spec.template.spec.volumes[0].name must be a string, not a number"), at most
 * LIMITS.errors lines; empty when every pod has the shape the rules read (lib/pod-shape.ts, the
 * webhook's own check).
 */
export function invalidPods(docs: readonly unknown[]): string[] {
  const lines: string[] = [];
  let more = 0;
  for (const object of docs.flatMap((doc) => objectsOf(doc).map((o) => o.object))) {
    for (const { errors } of podSlots(object)) {
      if (errors.length === 0) continue;
      if (lines.length < LIMITS.errors) lines.push(`${describe(object)}: ${errors.join('; ')}`);
      else more++;
    }
  }
  return [...boundMessages(lines, LIMITS.errors, ''), ...(more > 0 ? [`and ${more} more invalid pod${more === 1 ? '' : 's'}`] : [])];
}

function describe(object: Record<string, unknown>): string {
  const meta = isRecord(object.metadata) ? object.metadata : {};
  const name = nonEmptyString(meta.name) ?? nonEmptyString(meta.generateName) ?? '(unnamed)';
  const namespace = nonEmptyString(meta.namespace);
  return `${shown(String(object.kind))} ${namespace === undefined ? '' : `${shown(namespace)}/`}${shown(name)}`;
}

/**
 * An inventory from manifests: every pod and pod template (`findPods`: Pods, workloads, Lists),
 * the labels of Namespace objects found among them, and, when the input is a dump of live pods
 * (some are bound to a node), the mounter pods and their readiness. Plain manifests carry no node
 * state, so `mounterPods` stays undefined and the node rule is skipped. A pod of the wrong shape
 * throws InvalidPodError, naming the field and the rule.
 */
export function inventoryFromDocuments(docs: readonly unknown[], options: ManifestInventoryOptions): Inventory {
  const invalid = invalidPods(docs);
  if (invalid.length > 0) throw new InvalidPodError(invalid.join('\n'));
  const namespaces: InventoryNamespace[] = [];
  const pods: InventoryPod[] = [];
  const mounterPods: MounterPod[] = [];
  let bound = false;
  for (const object of docs.flatMap((doc) => objectsOf(doc).map((o) => o.object))) {
    const meta = isRecord(object.metadata) ? object.metadata : {};
    if (object.kind === 'Namespace' && object.apiVersion === 'v1') {
      const name = nonEmptyString(meta.name);
      if (name !== undefined) namespaces.push({ name, labels: stringMap(meta.labels) });
      continue;
    }
    for (const { value } of findPodSlots(object)) {
      const pod = value as PodLike;
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
