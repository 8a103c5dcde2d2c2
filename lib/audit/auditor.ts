import { configHash, type Config } from '../config.js';
import { MOUNTER, RULES, checkPod, dfsRole, isMounterPod, podFacts, type RuleContext } from './rules.js';
import { severityRank, type AuditResult, type Finding, type Inventory, type InventoryNamespace, type InventoryPod, type MounterPod, type RuleId, type Skip } from './types.js';

export interface AuditOptions {
  config: Config;
  /** Where the config came from, for the report header, e.g. "config.yaml" or "built-in defaults". */
  configSource: string;
  /** Why drift (DFS005) cannot be measured; set when the webhook's config is not known. */
  driftUnavailable?: string;
  /** Why node state is unknown; used when mounter pods are not given. */
  nodesUnavailable?: string;
  /** Namespace of the dfs-mounter DaemonSet (the webhook's); default dfs-system. */
  mounterNamespace?: string;
}

const NAMESPACE_RULES: RuleId[] = (Object.values(RULES) as { id: RuleId; needs: string }[]).filter((r) => r.needs === 'namespace').map((r) => r.id);
const TERMINAL_PHASES = new Set(['Succeeded', 'Failed']);
/** How many pod names a node finding lists before it says "and N more". */
const NAMES_PER_NODE = 3;

/**
 * Audits pods one at a time, so a cluster can be read page by page without holding every pod:
 * give it the namespaces first, then `addPod` for each pod, then `finish`. Pure: no I/O.
 */
export class Auditor {
  private readonly namespaces = new Map<string, InventoryNamespace>();
  private readonly ctx: RuleContext;
  private readonly findings: Finding[] = [];
  /** node name → consumer pods on it ("namespace/name"), for the mounter rule. */
  private readonly consumersByNode = new Map<string, { count: number; names: string[] }>();
  private readonly unknownNamespaces = new Map<string, number>();
  private readonly dfsNamespaces = new Set<string>();
  private readonly podNamespaces = new Set<string>();
  private pods = 0;

  constructor(
    private readonly options: AuditOptions,
    namespaces: Iterable<InventoryNamespace>,
  ) {
    for (const ns of namespaces) this.namespaces.set(ns.name, ns);
    this.ctx = { config: options.config, configHash: configHash(options.config), checkDrift: options.driftUnavailable === undefined };
  }

  addPod(pod: InventoryPod): void {
    if (isMounterPod(pod, this.options.mounterNamespace)) return;
    this.pods++;
    this.podNamespaces.add(pod.namespace);
    const namespace = this.namespaces.get(pod.namespace);
    if (namespace === undefined) this.unknownNamespaces.set(pod.namespace, (this.unknownNamespaces.get(pod.namespace) ?? 0) + 1);
    const facts = podFacts(pod, this.options.config, namespace);
    const findings = checkPod(facts, this.ctx);
    this.findings.push(...findings);
    if (findings.length > 0 || dfsRole(facts) !== undefined) this.dfsNamespaces.add(pod.namespace);
    if (pod.nodeName !== undefined && pod.nodeName !== '' && facts.dfsMounts.length > 0 && !TERMINAL_PHASES.has(pod.phase ?? '')) {
      const node = this.consumersByNode.get(pod.nodeName) ?? { count: 0, names: [] };
      node.count++;
      if (node.names.length < NAMES_PER_NODE) node.names.push(`${pod.namespace}/${pod.name}`);
      this.consumersByNode.set(pod.nodeName, node);
    }
  }

  /** `mounterPods` undefined: node state is unknown, and the node rule is reported as skipped. */
  finish(mounterPods: readonly MounterPod[] | undefined): AuditResult {
    const skipped: Skip[] = [];
    if (this.unknownNamespaces.size > 0) {
      const total = [...this.unknownNamespaces.values()].reduce((a, b) => a + b, 0);
      const names = [...this.unknownNamespaces.keys()].sort();
      const list = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
      skipped.push({
        rules: NAMESPACE_RULES,
        reason: `not checked for ${total} pod${total === 1 ? '' : 's'}: the labels of namespace${names.length === 1 ? '' : 's'} ${list} are not known (add the Namespace objects to the input, or audit the cluster)`,
      });
    }
    if (this.options.driftUnavailable !== undefined) skipped.push({ rules: ['DFS005'], reason: this.options.driftUnavailable });
    if (mounterPods === undefined) {
      skipped.push({ rules: ['DFS009'], reason: this.options.nodesUnavailable ?? 'node state is not known' });
    } else {
      this.findings.push(...this.nodeFindings(mounterPods));
    }
    return {
      findings: sortFindings(this.findings),
      skipped,
      checked: { pods: this.pods, namespaces: this.podNamespaces.size, nodes: this.consumersByNode.size },
      reportNamespaces: [...this.dfsNamespaces].sort(),
      config: { hash: this.ctx.configHash, source: this.options.configSource },
    };
  }

  private nodeFindings(mounterPods: readonly MounterPod[]): Finding[] {
    const findings: Finding[] = [];
    for (const [node, consumers] of this.consumersByNode) {
      const mounters = mounterPods.filter((m) => m.nodeName === node);
      if (mounters.some((m) => m.ready)) continue;
      const who = consumers.names.join(', ') + (consumers.count > consumers.names.length ? ` and ${consumers.count - consumers.names.length} more` : '');
      const state =
        mounters.length === 0
          ? `no ${MOUNTER.name} pod runs there`
          : `its ${MOUNTER.name} pod${mounters.length === 1 ? '' : 's'} ${mounters.map((m) => m.name ?? '(unnamed)').join(', ')} ${mounters.length === 1 ? 'is' : 'are'} not Ready`;
      findings.push({
        rule: 'DFS009',
        severity: RULES.DFS009.severity,
        resource: { apiVersion: 'v1', kind: 'Node', name: node },
        message: `node ${node} runs ${consumers.count} DFS consumer pod${consumers.count === 1 ? '' : 's'} (${who}) but ${state}`,
      });
    }
    return findings;
  }
}

export function sortFindings(findings: readonly Finding[]): Finding[] {
  const key = (f: Finding): string => `${f.rule}\u0000${f.resource.namespace ?? ''}\u0000${f.resource.kind}\u0000${f.resource.name}`;
  return [...findings].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The whole audit of an inventory held in memory (manifests, tests). */
export function auditInventory(inventory: Inventory, options: AuditOptions): AuditResult {
  const auditor = new Auditor(options, inventory.namespaces);
  for (const pod of inventory.pods) auditor.addPod(pod);
  return auditor.finish(inventory.mounterPods);
}
