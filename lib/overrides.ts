import { FIELD_RULES, isDns1123Label, isShareName, pathProblem } from './config-schema.js';
import { shown } from './bounds.js';
import { ANNOTATION_STATUS, DOMAIN, OVERRIDE_ANNOTATIONS } from './names.js';

export interface Overrides {
  mountPath?: string;
  containers?: string[];
  sourceContainer?: string;
  sourcePath?: string;
  shareName?: string;
}

/** What became of one annotation in the dfs-injector.io domain, for `explain` to show. */
export interface AnnotationResult {
  name: string;
  /** As written on the pod. */
  value: string;
  /** valid: used; invalid: the pod is refused; ignored: for the other role; unknown: not ours (a typo?). */
  status: 'valid' | 'invalid' | 'ignored' | 'unknown';
  /** The error or warning, for every status but valid. */
  message?: string;
}

export interface OverrideParse {
  overrides: Overrides;
  errors: string[];
  warnings: string[];
  /** Each annotation read: the unknown ones first, then the overrides in OVERRIDE_ANNOTATIONS order. */
  annotations: AnnotationResult[];
}

type OverrideKey = keyof typeof OVERRIDE_ANNOTATIONS;

const APPLIES_TO: Record<OverrideKey, 'consumer' | 'source'> = {
  mountPath: 'consumer',
  containers: 'consumer',
  sourceContainer: 'source',
  sourcePath: 'source',
  shareName: 'source',
};

const KNOWN = new Set<string>([...Object.values(OVERRIDE_ANNOTATIONS), ANNOTATION_STATUS]);

/**
 * Reads the per-pod override annotations. An invalid value is an error (the pod is refused with
 * the annotation, its value and the rule); an override that does not apply to the pod's role, or
 * an unknown annotation in our domain (usually a typo), is a warning, so nothing is ignored silently.
 */
export function parseOverrides(annotations: Readonly<Record<string, string>> | null | undefined, role: 'consumer' | 'source'): OverrideParse {
  const result: OverrideParse = { overrides: {}, errors: [], warnings: [], annotations: [] };
  if (annotations == null) return result;
  const warn = (name: string, value: string, status: 'ignored' | 'unknown', message: string): void => {
    result.warnings.push(message);
    result.annotations.push({ name, value, status, message });
  };
  for (const key of Object.keys(annotations)) {
    if (key.startsWith(`${DOMAIN}/`) && !KNOWN.has(key)) {
      warn(key, annotations[key] ?? '', 'unknown', `annotation ${shown(key)} is not known and was ignored (known: ${Object.values(OVERRIDE_ANNOTATIONS).join(', ')})`);
    }
  }
  for (const key of Object.keys(OVERRIDE_ANNOTATIONS) as OverrideKey[]) {
    const name = OVERRIDE_ANNOTATIONS[key];
    const raw = annotations[name];
    if (raw === undefined) continue;
    if (APPLIES_TO[key] !== role) {
      warn(name, raw, 'ignored', `annotation ${name} applies to ${APPLIES_TO[key]} pods and was ignored on this ${role} pod`);
      continue;
    }
    const error = readOverride(key, name, raw.trim(), result.overrides);
    if (error !== undefined) result.errors.push(error);
    result.annotations.push(error === undefined ? { name, value: raw, status: 'valid' } : { name, value: raw, status: 'invalid', message: error });
  }
  return result;
}

/** Sets the override in `overrides`, or returns why the value is invalid. */
function readOverride(key: OverrideKey, name: string, value: string, overrides: Overrides): string | undefined {
  const fail = (rule: string): string => `annotation ${name}="${shown(value)}" is invalid: ${rule}`;
  switch (key) {
    case 'mountPath':
    case 'sourcePath': {
      const problem = pathProblem(value);
      if (problem !== undefined) return fail(`the path ${problem}`);
      overrides[key] = value;
      return undefined;
    }
    case 'sourceContainer':
      if (!isDns1123Label(value)) return fail(`a container name ${FIELD_RULES.dns1123Label}`);
      overrides.sourceContainer = value;
      return undefined;
    case 'shareName':
      if (!isShareName(value)) return fail(`a share name ${FIELD_RULES.shareName}`);
      overrides.shareName = value;
      return undefined;
    case 'containers': {
      const names = value.split(',').map((s) => s.trim());
      const bad = names.find((n) => !isDns1123Label(n));
      if (bad !== undefined) return fail(`it must be a comma-separated list of container names, and "${shown(bad)}" ${FIELD_RULES.dns1123Label}`);
      if (new Set(names).size !== names.length) return fail('it names a container more than once');
      overrides.containers = names;
      return undefined;
    }
  }
}
