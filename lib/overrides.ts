import { RULES, isDns1123Label, isShareName, pathProblem } from './config-schema.js';
import { shown } from './bounds.js';
import { ANNOTATION_STATUS, DOMAIN, OVERRIDE_ANNOTATIONS } from './names.js';

export interface Overrides {
  mountPath?: string;
  containers?: string[];
  sourceContainer?: string;
  sourcePath?: string;
  shareName?: string;
}

export interface OverrideParse {
  overrides: Overrides;
  errors: string[];
  warnings: string[];
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
  const result: OverrideParse = { overrides: {}, errors: [], warnings: [] };
  if (annotations == null) return result;
  for (const key of Object.keys(annotations)) {
    if (key.startsWith(`${DOMAIN}/`) && !KNOWN.has(key)) {
      result.warnings.push(`annotation ${shown(key)} is not known and was ignored (known: ${Object.values(OVERRIDE_ANNOTATIONS).join(', ')})`);
    }
  }
  for (const key of Object.keys(OVERRIDE_ANNOTATIONS) as OverrideKey[]) {
    const name = OVERRIDE_ANNOTATIONS[key];
    const raw = annotations[name];
    if (raw === undefined) continue;
    if (APPLIES_TO[key] !== role) {
      result.warnings.push(`annotation ${name} applies to ${APPLIES_TO[key]} pods and was ignored on this ${role} pod`);
      continue;
    }
    readOverride(key, name, raw.trim(), result);
  }
  return result;
}

function readOverride(key: OverrideKey, name: string, value: string, result: OverrideParse): void {
  const fail = (rule: string): void => {
    result.errors.push(`annotation ${name}="${shown(value)}" is invalid: ${rule}`);
  };
  switch (key) {
    case 'mountPath':
    case 'sourcePath': {
      const problem = pathProblem(value);
      if (problem === undefined) result.overrides[key] = value;
      else fail(`the path ${problem}`);
      return;
    }
    case 'sourceContainer':
      if (isDns1123Label(value)) result.overrides.sourceContainer = value;
      else fail(`a container name ${RULES.dns1123Label}`);
      return;
    case 'shareName':
      if (isShareName(value)) result.overrides.shareName = value;
      else fail(`a share name ${RULES.shareName}`);
      return;
    case 'containers': {
      const names = value.split(',').map((s) => s.trim());
      const bad = names.find((n) => !isDns1123Label(n));
      if (bad !== undefined) fail(`it must be a comma-separated list of container names, and "${shown(bad)}" ${RULES.dns1123Label}`);
      else if (new Set(names).size !== names.length) fail('it names a container more than once');
      else result.overrides.containers = names;
      return;
    }
  }
}
