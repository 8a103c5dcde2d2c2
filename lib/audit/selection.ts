import { entryPath, type EntryContext } from '../entry.js';
import { LABEL_DEFAULT_ROLE, LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE, LABEL_ROLE } from '../names.js';

// The webhook's MutatingWebhookConfiguration entries as data: which namespaces and pods the API
// server sends to which URL path. `audit` and `explain` evaluate these selectors exactly as the API
// server does, so they can say why a pod was (or was not) sent to the webhook. A test holds them
// equal to manifests/base/mutatingwebhookconfiguration.yaml.

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: readonly string[];
}

export interface LabelSelector {
  matchLabels?: Readonly<Record<string, string>>;
  matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface WebhookEntry {
  /** The `webhooks[].name` in the MutatingWebhookConfiguration. */
  name: string;
  /** The URL path the API server posts to; it tells the webhook what the namespace labels said. */
  path: string;
  context: EntryContext;
  namespaceSelector: LabelSelector;
  objectSelector: LabelSelector;
  /** Which pods this entry is for, in a few words. */
  description: string;
}

/** Set by the API server on every namespace (Kubernetes 1.21+): the namespace's own name. */
export const LABEL_NAMESPACE_NAME = 'kubernetes.io/metadata.name';
export const EXCLUDED_NAMESPACES: readonly string[] = ['kube-system', 'dfs-system'];
export const OPT_IN_VALUE = 'enabled';
export const ENFORCED_POD_SECURITY_LEVELS: readonly string[] = ['baseline', 'restricted'];

const optedIn: LabelSelectorRequirement = { key: LABEL_INJECTION, operator: 'In', values: [OPT_IN_VALUE] };
const optedOutExcluded: LabelSelectorRequirement = { key: LABEL_ROLE, operator: 'NotIn', values: ['none'] };
const notExcluded: LabelSelectorRequirement = { key: LABEL_NAMESPACE_NAME, operator: 'NotIn', values: EXCLUDED_NAMESPACES };

function entry(defaultRole: 'consumer' | undefined, podSecurityEnforced: boolean): WebhookEntry {
  const context: EntryContext = { defaultRole, podSecurityEnforced };
  const nsConsumer = defaultRole === 'consumer';
  const expressions: LabelSelectorRequirement[] = [
    optedIn,
    notExcluded,
    { key: LABEL_POD_SECURITY_ENFORCE, operator: podSecurityEnforced ? 'In' : 'NotIn', values: ENFORCED_POD_SECURITY_LEVELS },
  ];
  if (nsConsumer) expressions.push({ key: LABEL_DEFAULT_ROLE, operator: 'In', values: ['consumer'] });
  return {
    name: `${nsConsumer ? 'namespace-consumers' : 'pods'}${podSecurityEnforced ? '-pod-security' : ''}.dfs-injector.io`,
    path: entryPath(context),
    context,
    namespaceSelector: { matchExpressions: expressions },
    // A pod with a role label goes to the first kind of entry: any value but "none", so that a
    // misspelt role is refused with a message while a pod that opted out is never sent, and so
    // is created even while the webhook is down. A pod without one, in a namespace of
    // consumers, goes to the second.
    objectSelector: { matchExpressions: nsConsumer ? [{ key: LABEL_ROLE, operator: 'DoesNotExist' }] : [{ key: LABEL_ROLE, operator: 'Exists' }, optedOutExcluded] },
    description: `${nsConsumer ? 'pods without a role label in a namespace labelled default-role=consumer' : 'pods with a role label other than none'}${podSecurityEnforced ? ', where Pod Security enforces baseline or restricted' : ''}`,
  };
}

export const WEBHOOK_ENTRIES: readonly WebhookEntry[] = [entry(undefined, false), entry('consumer', false), entry(undefined, true), entry('consumer', true)];

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
