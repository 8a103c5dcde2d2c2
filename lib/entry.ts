import { LABEL_DEFAULT_ROLE, LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE, LABEL_ROLE } from './names.js';

// The one table of the webhook's MutatingWebhookConfiguration entries: which namespaces and pods
// the API server sends to which URL path. An AdmissionRequest does not carry namespace labels; the
// API server has already matched them against each entry's namespaceSelector, so each entry posts
// to its own path and the path tells the webhook what the namespace labels said (no namespace is
// ever read from the API). The webhook maps paths to contexts with this table; `audit` and
// `explain` evaluate its selectors as the API server does (lib/audit/selection.ts); a test holds
// it equal to manifests/base/mutatingwebhookconfiguration.yaml.

export interface EntryContext {
  /** Set when the namespace carries `dfs-injector.io/default-role: consumer`. */
  readonly defaultRole: 'consumer' | undefined;
  /** Set when the namespace enforces Pod Security baseline or restricted. */
  readonly podSecurityEnforced: boolean;
}

const BASE = '/mutate';
const NAMESPACE_CONSUMER = '/namespace-consumer';
const POD_SECURITY = '/pod-security-enforced';

export function entryPath(entry: EntryContext): string {
  return `${BASE}${entry.defaultRole === 'consumer' ? NAMESPACE_CONSUMER : ''}${entry.podSecurityEnforced ? POD_SECURITY : ''}`;
}

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

const BY_PATH: ReadonlyMap<string, EntryContext> = new Map(WEBHOOK_ENTRIES.map((e) => [e.path, e.context]));

export const ENTRY_PATHS: readonly string[] = [...BY_PATH.keys()];

export function entryForPath(path: string): EntryContext | undefined {
  return BY_PATH.get(path);
}

export const DEFAULT_ENTRY: EntryContext = (WEBHOOK_ENTRIES[0] as WebhookEntry).context;
