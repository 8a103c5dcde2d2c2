// An AdmissionRequest does not carry namespace labels. The API server has already matched them
// against each webhook entry's namespaceSelector, so each entry posts to its own URL path and the
// path tells us what the namespace labels said. No namespace is ever read from the API.

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

const ENTRIES: readonly EntryContext[] = [
  { defaultRole: undefined, podSecurityEnforced: false },
  { defaultRole: 'consumer', podSecurityEnforced: false },
  { defaultRole: undefined, podSecurityEnforced: true },
  { defaultRole: 'consumer', podSecurityEnforced: true },
];

const BY_PATH: ReadonlyMap<string, EntryContext> = new Map(ENTRIES.map((e) => [entryPath(e), e]));

export const ENTRY_PATHS: readonly string[] = [...BY_PATH.keys()];

export function entryForPath(path: string): EntryContext | undefined {
  return BY_PATH.get(path);
}

export const DEFAULT_ENTRY: EntryContext = ENTRIES[0] as EntryContext;
