import jsonpatch from 'fast-json-patch';
import type { Config } from './config.js';
import type { EntryContext } from './entry.js';
import { isRecord } from './k8s.js';
import { planPod, type PodDecision } from './plan-pod.js';
import { PatchBuilder } from './patch.js';
import { findPods } from './workloads.js';

export interface InjectResult {
  object: unknown;
  changed: boolean;
  warnings: string[];
  errors: string[];
  decisions: PodDecision[];
}

export interface InjectOptions {
  /** Treat pods without a role label as consumers, as in a namespace labelled default-role=consumer. */
  defaultRole?: 'consumer';
}

/**
 * Offline injection (`dfs-injector inject`): the same planner the webhook runs, applied to every
 * pod template in a document. A document with any denial is returned unchanged with its errors.
 */
export function injectDocument(doc: unknown, config: Config, options: InjectOptions = {}): InjectResult {
  const entry: EntryContext = { defaultRole: options.defaultRole, podSecurityEnforced: false };
  const patch = new PatchBuilder();
  const label = describe(doc);
  const pods = findPods(doc);
  const decisions = pods.map(({ pod, prefix }) => planPod(pod, prefix, patch, config, entry));
  const where = (i: number): string => {
    const prefix = pods[i]?.prefix ?? '';
    return prefix === '' ? label : `${label} ${prefix}`;
  };
  const errors = decisions.flatMap((d, i) => d.errors.map((e) => `${where(i)}: ${e}`));
  const warnings = decisions.flatMap((d, i) => d.warnings.map((w) => `${where(i)}: ${w}`));
  if (errors.length > 0 || patch.isEmpty) return { object: doc, changed: false, warnings, errors, decisions };
  const object = jsonpatch.applyPatch(doc, patch.ops, false, false).newDocument;
  return { object, changed: true, warnings, errors, decisions };
}

function describe(doc: unknown): string {
  if (!isRecord(doc)) return 'document';
  const meta = isRecord(doc.metadata) ? doc.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '(unnamed)';
  return `${typeof doc.kind === 'string' ? doc.kind : 'object'}/${name}`;
}
