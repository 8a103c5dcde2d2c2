import type { EntryContext } from './entry.js';
import { shown } from './bounds.js';
import { LABEL_ROLE, ROLES, type Role } from './names.js';

export type RoleSelection =
  | { kind: 'selected'; role: Role; via: 'pod-label' | 'namespace-default' }
  | { kind: 'unselected' }
  | { kind: 'invalid'; message: string };

/** The pod's own role label wins; otherwise the namespace-wide default, if its entry says so. */
export function selectRole(labels: Readonly<Record<string, string>> | null | undefined, entry: EntryContext): RoleSelection {
  const value = labels?.[LABEL_ROLE];
  if (value === undefined) {
    return entry.defaultRole === undefined ? { kind: 'unselected' } : { kind: 'selected', role: entry.defaultRole, via: 'namespace-default' };
  }
  if ((ROLES as readonly string[]).includes(value)) return { kind: 'selected', role: value as Role, via: 'pod-label' };
  return { kind: 'invalid', message: `label ${LABEL_ROLE}="${shown(value)}" is not a role: it must be one of ${ROLES.join(', ')}` };
}
