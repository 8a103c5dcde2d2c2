import { configHash, type Config } from './config.js';
import type { EntryContext } from './entry.js';
import type { PodLike } from './k8s.js';
import { ANNOTATION_STATUS, LABEL_POD_SECURITY_ENFORCE, type Role } from './names.js';
import { parseOverrides } from './overrides.js';
import { PatchBuilder } from './patch.js';
import { emptyInjected, isEmptyInjected, type Injected, type PlanContext } from './plan.js';
import { planConsumer } from './consumer.js';
import { planSource } from './source.js';
import { selectRole } from './role.js';
import { mergeStatus, parseStatus, serializeStatus } from './status.js';
import { VERSION } from './version.js';

export type Outcome = 'injected' | 'unchanged' | 'skipped' | 'denied';

export interface PodDecision {
  role: Role | 'unselected';
  outcome: Outcome;
  reason: string;
  errors: string[];
  warnings: string[];
  injected: Injected;
}

/**
 * Plans injection for one pod or pod template located at `prefix` inside the patched object, and
 * appends its operations to `patch`. Nothing is written when the decision is a denial: a
 * labelled pod is never admitted half-injected.
 */
export function planPod(pod: PodLike, prefix: string, patch: PatchBuilder, config: Config, entry: EntryContext): PodDecision {
  const labels = pod.metadata?.labels;
  const selection = selectRole(labels, entry);
  const decision = (role: PodDecision['role'], outcome: Outcome, reason: string, errors: string[] = [], warnings: string[] = []): PodDecision => ({
    role,
    outcome,
    reason,
    errors,
    warnings,
    injected: emptyInjected(),
  });
  if (selection.kind === 'invalid') return decision('unselected', 'denied', 'invalid-role-label', [selection.message]);
  if (selection.kind === 'unselected') return decision('unselected', 'skipped', 'no-role');
  const role = selection.role;
  if (role === 'none') return decision('none', 'skipped', 'role-none');

  if (entry.podSecurityEnforced) {
    const needs = role === 'consumer' ? 'a hostPath volume' : 'a privileged source container (for Bidirectional mount propagation)';
    return decision(role, 'denied', 'pod-security', [
      `this namespace enforces Pod Security baseline or restricted (label ${LABEL_POD_SECURITY_ENFORCE}), which forbids ${needs}; a DFS ${role} cannot run here. Label the namespace ${LABEL_POD_SECURITY_ENFORCE}=privileged, or remove the pod's dfs-injector role`,
    ]);
  }

  const annotations = pod.metadata?.annotations;
  const parsed = parseOverrides(annotations, role);
  if (parsed.errors.length > 0) return decision(role, 'denied', 'invalid-annotation', parsed.errors, parsed.warnings);

  // Plan into a scratch builder first so a denial leaves the caller's patch untouched.
  const scratch = new PatchBuilder();
  const ctx: PlanContext = { pod, prefix, patch: scratch, injected: emptyInjected(), errors: [], warnings: [...parsed.warnings] };
  if (role === 'consumer') planConsumer(ctx, config, parsed.overrides);
  else planSource(ctx, config, parsed.overrides);
  if (ctx.errors.length > 0) return decision(role, 'denied', role === 'source' ? 'source-conflict' : 'consumer-conflict', ctx.errors, ctx.warnings);

  const previousRaw = annotations?.[ANNOTATION_STATUS];
  const previous = parseStatus(previousRaw);
  if (previousRaw !== undefined && previous === undefined) {
    ctx.warnings.push(`annotation ${ANNOTATION_STATUS} was not valid dfs-injector status JSON and was rewritten`);
  }
  const status = mergeStatus(previous, { role, configHash: configHash(config), version: VERSION, ...ctx.injected });
  const serialized = serializeStatus(status);
  if (serialized !== previousRaw && (previous === undefined || !isEmptyInjected(ctx.injected) || previous.role !== role)) {
    scratch.setMapEntry(`${prefix}/metadata/annotations`, annotations, ANNOTATION_STATUS, serialized);
  }
  // The status annotation needs metadata to exist; templates written by hand may lack it.
  if (pod.metadata === undefined && !scratch.isEmpty) patch.setField(`${prefix}/metadata`, {});
  patch.ops.push(...scratch.ops);

  const outcome: Outcome = isEmptyInjected(ctx.injected) ? 'unchanged' : 'injected';
  const reason = outcome === 'injected' ? selection.via : previous === undefined ? 'already-present' : 'already-injected';
  return { role, outcome, reason, errors: [], warnings: ctx.warnings, injected: ctx.injected };
}
