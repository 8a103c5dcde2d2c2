import { stringify } from 'yaml';
import { RULES } from './rules.js';
import { SEVERITIES, severityRank, type AuditResult, type Finding, type ResourceRef, type Severity } from './types.js';

export const FAIL_ON_VALUES = [...SEVERITIES, 'none'] as const;
export type FailOn = (typeof FAIL_ON_VALUES)[number];

export function isFailOn(value: string): value is FailOn {
  return (FAIL_ON_VALUES as readonly string[]).includes(value);
}

/** True when a finding is at or above `failOn`; `none` never fails. */
export function failsAt(result: AuditResult, failOn: FailOn): boolean {
  if (failOn === 'none') return false;
  const threshold = severityRank(failOn);
  return result.findings.some((f) => severityRank(f.severity) >= threshold);
}

/** `media/sonarr-abc` for a Pod, `media/deployment/sonarr` for a workload, `node/worker-1` for a Node. */
export function resourceLabel(ref: ResourceRef): string {
  if (ref.namespace === undefined) return `${ref.kind.toLowerCase()}/${ref.name}`;
  return ref.kind === 'Pod' ? `${ref.namespace}/${ref.name}` : `${ref.namespace}/${ref.kind.toLowerCase()}/${ref.name}`;
}

function countBySeverity(findings: readonly Finding[]): Record<Severity, number> {
  const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) counts[f.severity]++;
  return counts;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function summaryLine(result: AuditResult): string {
  const counts = countBySeverity(result.findings);
  const parts = [...SEVERITIES].reverse().filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`);
  const head = result.findings.length === 0 ? 'No findings' : `${plural(result.findings.length, 'finding')} (${parts.join(', ')})`;
  const { pods, namespaces, nodes } = result.checked;
  const nodeState = result.skipped.some((s) => s.rules.includes('DFS009')) ? '' : `; ${plural(nodes, 'node')} run${nodes === 1 ? 's' : ''} DFS consumers`;
  return `${head}. Checked ${plural(pods, 'pod')} in ${plural(namespaces, 'namespace')}${nodeState}. Config: ${result.config.source} (hash ${result.config.hash}).`;
}

/** The default output: an aligned table, a summary, what was skipped and why, and the rules that fired. */
export function formatTable(result: AuditResult): string {
  const lines: string[] = [];
  if (result.findings.length > 0) {
    const rows = [['SEVERITY', 'RULE', 'NAMESPACE/NAME', 'MESSAGE'], ...result.findings.map((f) => [f.severity, f.rule, resourceLabel(f.resource), f.message])];
    const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
    for (const row of rows) lines.push(row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  '));
    lines.push('');
  }
  lines.push(summaryLine(result));
  if (result.skipped.length > 0) {
    lines.push('', 'Skipped:');
    for (const skip of result.skipped) lines.push(`  ${skip.rules.join(', ')}: ${skip.reason}`);
  }
  const fired = [...new Set(result.findings.map((f) => f.rule))].sort();
  if (fired.length > 0) {
    lines.push('', 'Rules:');
    for (const id of fired) {
      const rule = RULES[id];
      lines.push(`  ${id} (${rule.severity}) ${rule.title}: ${rule.explanation}`, `    fix: ${rule.fix}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** `-o json`: findings with their rule's title, explanation and fix, so each entry stands alone. */
export function toJsonReport(result: AuditResult, now: Date): unknown {
  return {
    apiVersion: 'dfs-injector.io/v1alpha1',
    kind: 'AuditReport',
    timestamp: now.toISOString(),
    config: result.config,
    checked: result.checked,
    summary: { findings: result.findings.length, ...countBySeverity(result.findings) },
    findings: result.findings.map((f) => {
      const rule = RULES[f.rule];
      return { rule: f.rule, severity: f.severity, title: rule.title, category: rule.category, resource: f.resource, message: f.message, explanation: rule.explanation, fix: rule.fix };
    }),
    skipped: result.skipped,
  };
}

// Two report APIs with the same result format: wgpolicyk8s.io/v1alpha2 (PolicyReport and
// ClusterPolicyReport, what Kyverno up to 1.14 writes and Policy Reporter reads), and
// openreports.io/v1alpha1 (Report and ClusterReport, its successor, which Kyverno 1.15 and Policy
// Reporter 3 read). Policy Reporter groups results by `source` (the engine, here dfs-injector),
// then lists `policy` and `rule`, colours by `result` and filters by `severity` and `category`.
export const POLICY = 'dfs-injector';
export const REPORT_NAME = 'dfs-injector-audit';
const SOURCE = 'dfs-injector';

export const REPORT_APIS = {
  policyreport: { apiVersion: 'wgpolicyk8s.io/v1alpha2', namespaced: 'PolicyReport', cluster: 'ClusterPolicyReport' },
  openreports: { apiVersion: 'openreports.io/v1alpha1', namespaced: 'Report', cluster: 'ClusterReport' },
} as const;
export type ReportApi = keyof typeof REPORT_APIS;

type PolicyResult = 'pass' | 'fail' | 'warn' | 'error' | 'skip';

interface PolicyReportResult {
  policy: string;
  rule: string;
  category: string;
  result: PolicyResult;
  severity?: Severity;
  scored: boolean;
  source: string;
  message: string;
  properties?: Record<string, string>;
  resources?: ResourceRef[];
  timestamp: { seconds: number; nanos: number };
}

export interface PolicyReport {
  apiVersion: (typeof REPORT_APIS)[ReportApi]['apiVersion'];
  kind: (typeof REPORT_APIS)[ReportApi]['namespaced' | 'cluster'];
  metadata: { name: string; namespace?: string; labels: Record<string, string> };
  /** openreports.io only: the report-level source, which Policy Reporter prefers to the results'. */
  source?: string;
  summary: Record<PolicyResult, number>;
  results: PolicyReportResult[];
}

/** Severe findings fail; low and info findings warn. */
export function resultFor(severity: Severity): 'fail' | 'warn' {
  return severityRank(severity) >= severityRank('medium') ? 'fail' : 'warn';
}

function timestampOf(now: Date): { seconds: number; nanos: number } {
  const ms = now.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function report(api: ReportApi, scope: 'namespaced' | 'cluster', namespace: string | undefined, results: PolicyReportResult[]): PolicyReport {
  const summary: Record<PolicyResult, number> = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
  for (const r of results) summary[r.result]++;
  const metadata: PolicyReport['metadata'] = { name: REPORT_NAME, ...(namespace === undefined ? {} : { namespace }), labels: { 'app.kubernetes.io/managed-by': 'dfs-injector' } };
  const { apiVersion, [scope]: kind } = REPORT_APIS[api];
  return { apiVersion, kind, metadata, ...(api === 'openreports' ? { source: SOURCE } : {}), summary, results };
}

/**
 * One namespaced report per namespace that holds a DFS pod or a finding (an empty one clears stale
 * results when applied), and one cluster report with the node findings and the skipped rules.
 * Results list failures, warnings and skips; passing checks are not listed one by one.
 */
export function toPolicyReports(result: AuditResult, now: Date, api: ReportApi = 'policyreport'): PolicyReport[] {
  const timestamp = timestampOf(now);
  const toResult = (f: Finding): PolicyReportResult => {
    const rule = RULES[f.rule];
    return {
      policy: POLICY,
      rule: f.rule,
      category: rule.category,
      result: resultFor(f.severity),
      severity: f.severity,
      scored: true,
      source: SOURCE,
      message: `${rule.title}: ${f.message}`,
      properties: { fix: rule.fix },
      resources: [f.resource],
      timestamp,
    };
  };
  const byNamespace = new Map<string, PolicyReportResult[]>(result.reportNamespaces.map((ns) => [ns, []]));
  const cluster: PolicyReportResult[] = [];
  for (const f of result.findings) {
    const ns = f.resource.namespace;
    if (ns === undefined) cluster.push(toResult(f));
    else {
      const list = byNamespace.get(ns) ?? [];
      list.push(toResult(f));
      byNamespace.set(ns, list);
    }
  }
  for (const skip of result.skipped) {
    for (const id of skip.rules) {
      const rule = RULES[id];
      cluster.push({ policy: POLICY, rule: id, category: rule.category, result: 'skip', scored: true, source: SOURCE, message: `${rule.title}: ${skip.reason}`, timestamp });
    }
  }
  const namespaced = [...byNamespace.keys()].sort().map((ns) => report(api, 'namespaced', ns, byNamespace.get(ns) ?? []));
  return [...namespaced, report(api, 'cluster', undefined, cluster)];
}

/** The reports as a YAML stream, ready for `kubectl apply -f -`. */
export function formatPolicyReports(reports: readonly PolicyReport[]): string {
  return reports.map((r) => stringify(r, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}
