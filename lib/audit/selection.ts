import { LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE } from '../names.js';
import { ENFORCED_POD_SECURITY_LEVELS, EXCLUDED_NAMESPACES, LABEL_NAMESPACE_NAME, WEBHOOK_ENTRIES, type LabelSelector, type LabelSelectorRequirement, type WebhookEntry } from '../entry.js';

// The selectors of the webhook's entries (lib/entry.ts, the one table), evaluated exactly as the
// API server does, so `audit` and `explain` can say why a pod was (or was not) sent to the webhook.

export {
  ENFORCED_POD_SECURITY_LEVELS,
  EXCLUDED_NAMESPACES,
  LABEL_NAMESPACE_NAME,
  OPT_IN_VALUE,
  WEBHOOK_ENTRIES,
  type LabelSelector,
  type LabelSelectorRequirement,
  type SelectorOperator,
  type WebhookEntry,
} from '../entry.js';

export interface RequirementResult {
  /** The requirement as kubectl prints it, e.g. `dfs-injector.io/injection in (enabled)`. */
  text: string;
  matches: boolean;
  /** The label's value, or undefined when the label is absent. */
  actual: string | undefined;
}

export interface SelectorResult {
  matches: boolean;
  requirements: RequirementResult[];
}

export function describeRequirement(req: LabelSelectorRequirement): string {
  switch (req.operator) {
    case 'Exists':
      return req.key;
    case 'DoesNotExist':
      return `!${req.key}`;
    default:
      return `${req.key} ${req.operator.toLowerCase()} (${(req.values ?? []).join(',')})`;
  }
}

function requirementMatches(req: LabelSelectorRequirement, value: string | undefined): boolean {
  switch (req.operator) {
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'In':
      return value !== undefined && (req.values ?? []).includes(value);
    case 'NotIn':
      // As in Kubernetes: a missing label is "not in" any set.
      return value === undefined || !(req.values ?? []).includes(value);
  }
}

/** Evaluates a label selector the way the API server does; an empty selector matches everything. */
export function evaluateSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): SelectorResult {
  const requirements: RequirementResult[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    requirements.push({ text: `${key}=${value}`, matches: labels[key] === value, actual: labels[key] });
  }
  for (const req of selector.matchExpressions ?? []) {
    const actual = labels[req.key];
    requirements.push({ text: describeRequirement(req), matches: requirementMatches(req, actual), actual });
  }
  return { matches: requirements.every((r) => r.matches), requirements };
}

/** Namespace labels as the API server sees them: it adds kubernetes.io/metadata.name itself. */
export function effectiveNamespaceLabels(name: string, labels: Readonly<Record<string, string>>): Record<string, string> {
  return { ...labels, [LABEL_NAMESPACE_NAME]: name };
}

export interface EntryMatch {
  entry: WebhookEntry;
  namespace: SelectorResult;
  object: SelectorResult;
}

/** Every entry's namespaceSelector and objectSelector, evaluated for one pod in one namespace. */
export function matchEntries(namespace: string, namespaceLabels: Readonly<Record<string, string>>, podLabels: Readonly<Record<string, string>>): EntryMatch[] {
  const effective = effectiveNamespaceLabels(namespace, namespaceLabels);
  return WEBHOOK_ENTRIES.map((entry) => ({ entry, namespace: evaluateSelector(entry.namespaceSelector, effective), object: evaluateSelector(entry.objectSelector, podLabels) }));
}

/** The entry the API server calls for this pod, if any (the selectors make it at most one). */
export function selectEntry(namespace: string, namespaceLabels: Readonly<Record<string, string>>, podLabels: Readonly<Record<string, string>>): WebhookEntry | undefined {
  return matchEntries(namespace, namespaceLabels, podLabels).find((m) => m.namespace.matches && m.object.matches)?.entry;
}

export type NamespaceSelection = { kind: 'served' } | { kind: 'excluded' } | { kind: 'not-opted-in'; value: string | undefined };

/** Whether the webhook serves this namespace at all, whatever the pod's labels. */
export function selectNamespace(name: string, labels: Readonly<Record<string, string>>): NamespaceSelection {
  const effective = effectiveNamespaceLabels(name, labels);
  if (WEBHOOK_ENTRIES.some((e) => evaluateSelector(e.namespaceSelector, effective).matches)) return { kind: 'served' };
  if (EXCLUDED_NAMESPACES.includes(name)) return { kind: 'excluded' };
  return { kind: 'not-opted-in', value: labels[LABEL_INJECTION] };
}

export function enforcesPodSecurity(labels: Readonly<Record<string, string>>): string | undefined {
  const level = labels[LABEL_POD_SECURITY_ENFORCE];
  return level !== undefined && ENFORCED_POD_SECURITY_LEVELS.includes(level) ? level : undefined;
}
