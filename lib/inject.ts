import jsonpatch from 'fast-json-patch';
import type { Config } from './config.js';
import type { EntryContext } from './entry.js';
import { isRecord } from './k8s.js';
import { planPod, type PodDecision } from './plan-pod.js';
import { PatchBuilder } from './patch.js';
import { podErrors } from './pod-shape.js';
import { findPodSlots, findPods } from './workloads.js';

export interface InjectResult {
  object: unknown;
  changed: boolean;
  warnings: string[];
  /** Refusals by a rule, as the webhook's 403 (`inject` exits 1). */
  errors: string[];
  /**
   * Pods or pod templates of the wrong shape (`containers` not a list, a volume without a name),
   * one line per pod naming the field and the rule, as the webhook's 400: the document was not
   * planned at all (`inject` exits 3, like `audit -f`).
   */
  invalid: string[];
  decisions: PodDecision[];
}

export interface InjectOptions {
  /** Treat pods without a role label as consumers, as in a namespace labelled default-role=consumer. */
  defaultRole?: 'consumer';
}

/**
 * Offline injection (`dfs-injector inject`): the same planner the webhook runs, applied to every
 * pod template in a document. A document with any denial is returned unchanged with its errors;
 * one with a pod of the wrong shape, unchanged and unplanned, with `invalid`.
 */
export function injectDocument(doc: unknown, config: Config, options: InjectOptions = {}): InjectResult {
  const entry: EntryContext = { defaultRole: options.defaultRole, podSecurityEnforced: false };
  const patch = new PatchBuilder();
  const label = describe(doc);
  const at = (prefix: string): string => (prefix === '' ? label : `${label} ${prefix}`);
  // findPods skips what is not a pod; the webhook answers such a pod with 400, so it is named here
  // rather than passed through untouched.
  const invalid = findPodSlots(doc).flatMap(({ value, prefix }) => {
    const shape = podErrors(value);
    return shape.length === 0 ? [] : [`${at(prefix)}: ${shape.join('; ')}`];
  });
  if (invalid.length > 0) return { object: doc, changed: false, warnings: [], errors: [], invalid, decisions: [] };
  const pods = findPods(doc);
  const decisions = pods.map(({ pod, prefix }) => planPod(pod, prefix, patch, config, entry));
  const where = (i: number): string => at(pods[i]?.prefix ?? '');
  const errors = decisions.flatMap((d, i) => d.errors.map((e) => `${where(i)}: ${e}`));
  const warnings = decisions.flatMap((d, i) => d.warnings.map((w) => `${where(i)}: ${w}`));
  if (errors.length > 0 || patch.isEmpty) return { object: doc, changed: false, warnings, errors, invalid, decisions };
  const object = jsonpatch.applyPatch(doc, patch.ops, false, false).newDocument;
  return { object, changed: true, warnings, errors, invalid, decisions };
}

function describe(doc: unknown): string {
  if (!isRecord(doc)) return 'document';
  const meta = isRecord(doc.metadata) ? doc.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '(unnamed)';
  return `${typeof doc.kind === 'string' ? doc.kind : 'object'}/${name}`;
}
