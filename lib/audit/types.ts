import type { PodSpec } from '../k8s.js';

// What `dfs-injector audit` reads and what it reports. The inventory is plain data: the CLI fills
// it from the API server page by page, or from manifests; the rules never do I/O.

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export function isSeverity(value: string): value is Severity {
  return (SEVERITIES as readonly string[]).includes(value);
}

export interface InventoryNamespace {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** A Pod, or the pod template of a workload read from a manifest. */
export interface InventoryPod {
  /** Of the object that holds the pod: `v1` for a Pod, `apps/v1` for a Deployment's template. */
  apiVersion?: string;
  /** `Pod`, or the workload kind whose template this is. */
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  spec: PodSpec;
  nodeName?: string;
  /** `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`; absent for templates. */
  phase?: string;
  /** The controller that owns a Pod (its ownerReference with controller: true); absent for templates. */
  owner?: { kind: string; name: string };
}

export interface MounterPod {
  nodeName: string;
  ready: boolean;
  /** For messages only. */
  name?: string;
}

export interface Inventory {
  /**
   * Namespaces whose labels are known. A pod whose namespace is not listed is still checked by
   * every rule that needs only the pod; the namespace rules are reported as skipped for it.
   */
  namespaces: readonly InventoryNamespace[];
  pods: readonly InventoryPod[];
  /** Mounter pods on nodes; undefined when node state is unknown (manifests), which skips the node rule. */
  mounterPods?: readonly MounterPod[];
}

/** What a finding is about, as a Kubernetes ObjectReference. */
export interface ResourceRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
}

export type RuleId = 'DFS001' | 'DFS002' | 'DFS003' | 'DFS004' | 'DFS005' | 'DFS006' | 'DFS007' | 'DFS008' | 'DFS009' | 'DFS010';

export interface Finding {
  rule: RuleId;
  severity: Severity;
  resource: ResourceRef;
  /** What is wrong with this resource, in one line. */
  message: string;
}

/** Rules that could not be evaluated, and why; reported, never silently dropped. */
export interface Skip {
  rules: RuleId[];
  reason: string;
}

export interface AuditResult {
  findings: Finding[];
  skipped: Skip[];
  /** How much was looked at, for the summary line. */
  checked: { pods: number; namespaces: number; nodes: number };
  /** Namespaces holding a DFS pod (source or consumer) or a finding, sorted; each gets a PolicyReport. */
  reportNamespaces: string[];
  config: { hash: string; source: string };
}
