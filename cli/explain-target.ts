import { UsageError } from './errors.js';

/** What `explain` reads from the cluster: a pod, or a workload whose pod template it explains. */
export const CLUSTER_KINDS = {
  Pod: 'v1',
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  ReplicaSet: 'apps/v1',
  ReplicationController: 'v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
} as const;

export type ClusterKind = keyof typeof CLUSTER_KINDS;

export interface ExplainTarget {
  readonly kind: ClusterKind;
  readonly namespace: string;
  readonly name: string;
}

// kubectl's names: singular and plural in any case, the short names, and resource.group.
const ALIASES = new Map<string, ClusterKind>();
for (const [kind, apiVersion] of Object.entries(CLUSTER_KINDS) as [ClusterKind, string][]) {
  const singular = kind.toLowerCase();
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  for (const word of [singular, `${singular}s`]) {
    ALIASES.set(word, kind);
    if (group !== '') ALIASES.set(`${word}.${group}`, kind);
  }
}
for (const [short, kind] of [
  ['po', 'Pod'],
  ['deploy', 'Deployment'],
  ['sts', 'StatefulSet'],
  ['ds', 'DaemonSet'],
  ['rs', 'ReplicaSet'],
  ['rc', 'ReplicationController'],
  ['cj', 'CronJob'],
] as const) {
  ALIASES.set(short, kind);
}

/** The kind a kubectl-style resource word names ("deploy", "StatefulSets", "jobs.batch"), if any. */
function clusterKind(word: string): ClusterKind | undefined {
  return ALIASES.get(word.toLowerCase());
}

const KIND_WORDS = 'pod, deployment (deploy), statefulset (sts), daemonset (ds), replicaset (rs), replicationcontroller (rc), job, cronjob (cj)';
const FORMS = 'NAMESPACE/NAME or NAME with -n (a pod), KIND/NAME with -n, or NAMESPACE/KIND/NAME';

/**
 * `explain`'s positional argument. A pod is NAME or NAMESPACE/NAME, as before workloads were
 * supported; a first word that is a kind ("deploy/sonarr") makes it a workload, so a namespace
 * that shares its name with a kind is written NAMESPACE/pod/NAME.
 */
export function parseTarget(target: string, namespaceOption: string | undefined): ExplainTarget {
  const parts = target.split('/');
  if (parts.some((part) => part === '') || parts.length > 3) {
    throw new UsageError(`"${target}" is not a pod or workload: write ${FORMS}`, 'explain');
  }
  let kind: ClusterKind = 'Pod';
  let namespace: string | undefined;
  let name: string;
  if (parts.length === 3) {
    const [ns, word, last] = parts as [string, string, string];
    const named = clusterKind(word);
    if (named === undefined) throw new UsageError(`"${word}" in "${target}" is not a kind explain reads: use ${KIND_WORDS}`, 'explain');
    [namespace, kind, name] = [ns, named, last];
  } else if (parts.length === 2) {
    const [first, last] = parts as [string, string];
    const named = clusterKind(first);
    if (named === undefined) namespace = first;
    else kind = named;
    name = last;
  } else {
    name = parts[0] as string;
  }
  if (namespace !== undefined && namespaceOption !== undefined && namespace !== namespaceOption) {
    throw new UsageError(`"${target}" is in namespace "${namespace}" but -n says "${namespaceOption}": give the namespace once`, 'explain');
  }
  return { kind, namespace: namespace ?? namespaceOption ?? 'default', name };
}
