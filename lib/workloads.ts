import { isPodLike, isRecord, type PodLike } from './k8s.js';

/** Where each workload kind keeps its pod template, as JSON pointer segments. */
const TEMPLATE_PATHS: Readonly<Record<string, { groups: readonly string[]; path: readonly string[] }>> = {
  Deployment: { groups: ['apps', 'extensions'], path: ['spec', 'template'] },
  StatefulSet: { groups: ['apps'], path: ['spec', 'template'] },
  DaemonSet: { groups: ['apps', 'extensions'], path: ['spec', 'template'] },
  ReplicaSet: { groups: ['apps', 'extensions'], path: ['spec', 'template'] },
  ReplicationController: { groups: [''], path: ['spec', 'template'] },
  Job: { groups: ['batch'], path: ['spec', 'template'] },
  CronJob: { groups: ['batch'], path: ['spec', 'jobTemplate', 'spec', 'template'] },
};

export interface PodLocation {
  pod: PodLike;
  /** JSON pointer of the pod or pod template inside the document. */
  prefix: string;
}

function groupOf(apiVersion: unknown): string | undefined {
  if (typeof apiVersion !== 'string') return undefined;
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/**
 * The objects of a document with their JSON pointer: a List (any kind ending in List, with an
 * items array; `kubectl get -o yaml` writes `List`, others write `PodList`…) is opened, nested too.
 */
export function objectsOf(doc: unknown, pointer = ''): { object: Record<string, unknown>; pointer: string }[] {
  if (!isRecord(doc)) return [];
  if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) {
    return (doc.items as unknown[]).flatMap((item, i) => objectsOf(item, `${pointer}/items/${i}`));
  }
  return [{ object: doc, pointer }];
}

/** Where a document holds a pod or pod template, whatever that value turns out to be. */
export interface PodSlot {
  /** The Pod itself, or what sits where a workload keeps its template (any JSON value). */
  value: unknown;
  /** JSON pointer of the slot inside the document. */
  prefix: string;
}

/**
 * Every place a document holds a pod: a Pod, the template of a workload, or the items of a List,
 * with whatever value is there. `audit` reports the ones that are not pods; `findPods` keeps the rest.
 */
export function findPodSlots(doc: unknown, prefix = ''): PodSlot[] {
  if (!isRecord(doc)) return [];
  const kind = doc.kind;
  const group = groupOf(doc.apiVersion);
  if (typeof kind !== 'string' || group === undefined) return [];
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(doc.items))) {
    const items = Array.isArray(doc.items) ? (doc.items as unknown[]) : [];
    return items.flatMap((item, i) => findPodSlots(item, `${prefix}/items/${i}`));
  }
  if (kind === 'Pod' && group === '') return [{ value: doc, prefix }];
  const workload = TEMPLATE_PATHS[kind];
  if (workload === undefined || !workload.groups.includes(group)) return [];
  let node: unknown = doc;
  for (const key of workload.path) node = isRecord(node) ? node[key] : undefined;
  return [{ value: node, prefix: `${prefix}/${workload.path.join('/')}` }];
}

/**
 * Every pod or pod template in a document that has the shape injection needs. Anything else
 * yields nothing and so passes through untouched.
 */
export function findPods(doc: unknown, prefix = ''): PodLocation[] {
  return findPodSlots(doc, prefix).flatMap(({ value, prefix: at }) => (isPodLike(value) ? [{ pod: value, prefix: at }] : []));
}

export const WORKLOAD_KINDS: readonly string[] = ['Pod', ...Object.keys(TEMPLATE_PATHS), 'List'];
