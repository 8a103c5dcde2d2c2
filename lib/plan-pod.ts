import { configHash, type Config } from './config.js';
import type { EntryContext } from './entry.js';
import type { PodLike } from './k8s.js';
import { ANNOTATION_STATUS, LABEL_POD_SECURITY_ENFORCE, type Role } from './names.js';
import { parseOverrides, type AnnotationResult } from './overrides.js';
import { podShapeErrors } from './pod-shape.js';
import { PatchBuilder } from './patch.js';
import { emptyInjected, isEmptyInjected, type Injected, type PlanContext } from './plan.js';
import { planConsumer } from './consumer.js';
import { planSource, SHIM_INIT_CONTAINER, SHIM_VOLUME, SMBD_STATE_VOLUME } from './source.js';
import { selectRole, type RoleSelection } from './role.js';
import { mergeStatus, parseStatus, sameStatus, serializeStatus, trustedStatus, type InjectionStatus, type OwnNames } from './status.js';
import { VERSION } from './version.js';

export type Outcome = 'injected' | 'unchanged' | 'skipped' | 'denied';

/** How a denial reaches the API server: 400 for a pod, label or annotation that is malformed, 403 for a rule. */
export interface Denial {
  code: 400 | 403;
  reason: 'BadRequest' | 'Forbidden';
}

export interface PodDecision {
  role: Role | 'unselected';
  outcome: Outcome;
  reason: string;
  errors: string[];
  warnings: string[];
  injected: Injected;
  /** Set exactly when the outcome is denied; the webhook's answer and `explain` both read it. */
  denial: Denial | undefined;
  /** Each dfs-injector.io annotation as the decision read it; undefined when it was decided before reading them. */
  annotations: AnnotationResult[] | undefined;
  /** The gate: which role the labels select and from where; undefined when the pod's shape was refused first. */
  selection: RoleSelection | undefined;
}

/** The denials that mean the request is malformed, rather than refused by a rule. */
const BAD_REQUEST_REASONS: ReadonlySet<string> = new Set(['invalid-pod', 'invalid-role-label', 'invalid-annotation']);

/**
 * Plans injection for one pod or pod template located at `prefix` inside the patched object, and
 * appends its operations to `patch`. Nothing is written when the decision is a denial: a
 * labelled pod is never admitted half-injected.
 */
export function planPod(pod: PodLike, prefix: string, patch: PatchBuilder, config: Config, entry: EntryContext): PodDecision {
  // Before the role: a label map of the wrong type cannot say which role applies.
  const shape = podShapeErrors(pod);
  if (shape.length > 0) return decided(undefined, 'unselected', 'denied', 'invalid-pod', shape);
  const selection = selectRole(pod.metadata?.labels, entry);
  const gate = admitRole(selection, entry);
  if (gate.kind === 'decided') return gate.decision;
  const role = gate.role;
  const annotations = pod.metadata?.annotations;
  const parsed = parseOverrides(annotations, role);
  if (parsed.errors.length > 0) return decided(selection, role, 'denied', 'invalid-annotation', parsed.errors, parsed.warnings, parsed.annotations);

  // Plan into a scratch builder first so a denial leaves the caller's patch untouched.
  const scratch = new PatchBuilder();
  const ctx: PlanContext = { pod, prefix, patch: scratch, injected: emptyInjected(), adopted: [], errors: [], warnings: [...parsed.warnings] };
  if (role === 'consumer') planConsumer(ctx, config, parsed.overrides);
  else planSource(ctx, config, parsed.overrides);
  if (ctx.errors.length > 0) return decided(selection, role, 'denied', `${role}-conflict`, ctx.errors, ctx.warnings, parsed.annotations);

  const previous = writeStatus(ctx, role, config);
  // The status annotation needs metadata to exist; templates written by hand may lack it.
  if (pod.metadata == null && !scratch.isEmpty) patch.setField(`${prefix}/metadata`, {});
  patch.ops.push(...scratch.ops);

  const outcome: Outcome = isEmptyInjected(ctx.injected) ? 'unchanged' : 'injected';
  const reason = outcome === 'injected' ? gate.via : previous === undefined ? 'already-present' : 'already-injected';
  return { role, outcome, reason, errors: [], warnings: ctx.warnings, injected: ctx.injected, denial: undefined, annotations: parsed.annotations, selection };
}

function decided(
  selection: RoleSelection | undefined,
  role: PodDecision['role'],
  outcome: Outcome,
  reason: string,
  errors: string[] = [],
  warnings: string[] = [],
  annotations?: AnnotationResult[],
): PodDecision {
  const denial: Denial | undefined = outcome !== 'denied' ? undefined : BAD_REQUEST_REASONS.has(reason) ? { code: 400, reason: 'BadRequest' } : { code: 403, reason: 'Forbidden' };
  return { role, outcome, reason, errors, warnings, injected: emptyInjected(), denial, annotations, selection };
}

type RoleGate = { kind: 'decided'; decision: PodDecision } | { kind: 'inject'; role: 'consumer' | 'source'; via: string };

/** Which role applies, or the decision when none does (unselected, opted out, or refused outright). */
function admitRole(selection: RoleSelection, entry: EntryContext): RoleGate {
  const done = (decision: PodDecision): RoleGate => ({ kind: 'decided', decision });
  if (selection.kind === 'invalid') return done(decided(selection, 'unselected', 'denied', 'invalid-role-label', [selection.message]));
  if (selection.kind === 'unselected') return done(decided(selection, 'unselected', 'skipped', 'no-role'));
  const role = selection.role;
  if (role === 'none') return done(decided(selection, 'none', 'skipped', 'role-none'));
  if (entry.podSecurityEnforced) {
    const needs = role === 'consumer' ? 'a hostPath volume' : 'a privileged source container (for Bidirectional mount propagation)';
    return done(
      decided(selection, role, 'denied', 'pod-security', [
        `this namespace enforces Pod Security baseline or restricted (label ${LABEL_POD_SECURITY_ENFORCE}), which forbids ${needs}; a DFS ${role} cannot run here. Label the namespace ${LABEL_POD_SECURITY_ENFORCE}=privileged, or remove the pod's dfs-injector role`,
      ]),
    );
  }
  return { kind: 'inject', role, via: selection.via };
}

/**
 * Records what was injected in the status annotation. A pass that adds nothing to an injected
 * pod leaves the annotation alone, so an old config hash stays visible to the drift audit.
 */
function writeStatus(ctx: PlanContext, role: 'consumer' | 'source', config: Config): InjectionStatus | undefined {
  const annotations = ctx.pod.metadata?.annotations;
  const previousRaw = annotations?.[ANNOTATION_STATUS];
  const previous = parseStatus(previousRaw);
  if (previousRaw !== undefined && previous === undefined) {
    ctx.warnings.push(`annotation ${ANNOTATION_STATUS} was not valid dfs-injector status JSON and was rewritten`);
  }
  const trusted = previous === undefined ? undefined : trustedStatus(previous, ctx.pod, ownNames(config, role, ctx.adopted));
  const unrecorded = ctx.adopted.filter((v) => trusted === undefined || trusted.role !== role || !trusted.volumes.includes(v));
  const unchanged = previous !== undefined && trusted !== undefined && previous.role === role && isEmptyInjected(ctx.injected) && unrecorded.length === 0 && sameStatus(trusted, previous);
  if (!unchanged) {
    const next: InjectionStatus = { role, configHash: configHash(config), version: VERSION, ...ctx.injected, volumes: [...ctx.injected.volumes, ...unrecorded] };
    const status = mergeStatus(trusted, next);
    ctx.patch.setMapEntry(`${ctx.prefix}/metadata/annotations`, annotations, ANNOTATION_STATUS, serializeStatus(status));
  }
  return previous;
}

/** What this webhook adds to a pod of `role` under `config`, and the volumes it took over. */
function ownNames(config: Config, role: 'consumer' | 'source', adopted: readonly string[]): OwnNames {
  if (role === 'consumer') {
    return { volumes: new Set([config.consumer.volumeName, ...adopted]), containers: new Set(), initContainers: new Set([config.consumer.waitForMount.name]) };
  }
  return { volumes: new Set([config.source.volumeName, SHIM_VOLUME, SMBD_STATE_VOLUME]), containers: new Set([config.source.sidecar.name]), initContainers: new Set([SHIM_INIT_CONTAINER]) };
}
