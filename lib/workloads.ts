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
 * Every pod or pod template in a document: a Pod, the template of a workload, or the items of a
 * List. Anything else yields nothing and so passes through untouched.
 */
export function findPods(doc: unknown, prefix = ''): PodLocation[] {
  if (!isRecord(doc)) return [];
  const kind = doc.kind;
  const group = groupOf(doc.apiVersion);
  if (typeof kind !== 'string' || group === undefined) return [];
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(doc.items))) {
    const items = Array.isArray(doc.items) ? (doc.items as unknown[]) : [];
    return items.flatMap((item, i) => findPods(item, `${prefix}/items/${i}`));
  }
  if (kind === 'Pod' && group === '') return isPodLike(doc) ? [{ pod: doc, prefix }] : [];
  const workload = TEMPLATE_PATHS[kind];
  if (workload === undefined || !workload.groups.includes(group)) return [];
  let node: unknown = doc;
  for (const key of workload.path) node = isRecord(node) ? node[key] : undefined;
  return isPodLike(node) ? [{ pod: node, prefix: `${prefix}/${workload.path.join('/')}` }] : [];
}

export const WORKLOAD_KINDS: readonly string[] = ['Pod', ...Object.keys(TEMPLATE_PATHS), 'List'];
