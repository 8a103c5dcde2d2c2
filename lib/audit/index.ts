// `dfs-injector audit`: pure rules over an inventory of namespaces, pods and mounter pods.
export { Auditor, auditInventory, sortFindings, type AuditOptions } from './auditor.js';
export { auditCluster, NamespaceNotFoundError, type ClusterAuditOptions, type ClusterReader } from './cluster.js';
export { InvalidPodError, inventoryFromDocuments, invalidPods, isPodReady, type ManifestInventoryOptions } from './manifests.js';
export { FAIL_ON_VALUES, REPORT_APIS, failsAt, formatPolicyReports, formatTable, isFailOn, resourceLabel, toJsonReport, toPolicyReports, type FailOn, type PolicyReport, type ReportApi } from './report.js';
export { MOUNTER, RULES, RULE_IDS, controllerOf, isMounterPod, type RuleInfo } from './rules.js';
export * from './selection.js';
export * from './types.js';
