import { Auditor, type AuditOptions } from './auditor.js';
import { MOUNTER } from './rules.js';
import type { AuditResult, InventoryNamespace, InventoryPod, MounterPod } from './types.js';

/**
 * The narrow view of the API server that `audit` needs. Implementations read page by page
 * (`limit` + `continue`), so a large cluster is never listed in one response.
 */
export interface ClusterReader {
  listNamespaces(): AsyncIterable<InventoryNamespace>;
  /** One namespace, for `--namespace`; undefined when it does not exist. */
  readNamespace(name: string): Promise<InventoryNamespace | undefined>;
  /** Pods of one namespace, or of all namespaces. */
  listPods(namespace?: string): AsyncIterable<InventoryPod>;
  /** The pods of the dfs-mounter DaemonSet in `namespace`, with their node and readiness. */
  listMounterPods(namespace: string): Promise<MounterPod[]>;
}

export interface ClusterAuditOptions extends AuditOptions {
  /** Only this namespace; the mounter pods are still read, since they serve every namespace. */
  namespace?: string;
}

/** Thrown when a namespace given with --namespace does not exist. */
export class NamespaceNotFoundError extends Error {
  override readonly name = 'NamespaceNotFoundError';
}

/**
 * Audits a live cluster through a ClusterReader: namespaces first (their labels decide which
 * webhook entry serves a pod), then pods one page at a time, then the mounter pods. When the
 * mounter pods cannot be read, `readMounters` turns the error into a reason and the node rule is
 * reported as skipped; any other error propagates.
 */
export async function auditCluster(
  reader: ClusterReader,
  options: ClusterAuditOptions,
  mounterError: (error: unknown) => string | undefined = () => undefined,
): Promise<AuditResult> {
  const namespaces: InventoryNamespace[] = [];
  if (options.namespace !== undefined) {
    const ns = await reader.readNamespace(options.namespace);
    if (ns === undefined) throw new NamespaceNotFoundError(`namespace "${options.namespace}" does not exist`);
    namespaces.push(ns);
  } else {
    for await (const ns of reader.listNamespaces()) namespaces.push(ns);
  }
  let mounterPods: MounterPod[] | undefined;
  let nodesUnavailable: string | undefined;
  try {
    mounterPods = await reader.listMounterPods(options.mounterNamespace ?? MOUNTER.namespace);
  } catch (error) {
    nodesUnavailable = mounterError(error);
    if (nodesUnavailable === undefined) throw error;
  }
  const auditor = new Auditor({ ...options, ...(nodesUnavailable === undefined ? {} : { nodesUnavailable }) }, namespaces);
  for await (const pod of reader.listPods(options.namespace)) auditor.addPod(pod);
  return auditor.finish(mounterPods);
}
