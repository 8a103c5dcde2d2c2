import { z } from 'zod';
import type { Config } from './config.js';
import type { EntryContext } from './entry.js';
import { isPodLike, isRecord, nonEmptyString } from './k8s.js';
import { planPod, type Outcome, type PodDecision } from './plan-pod.js';
import type { Role } from './names.js';
import { boundMessages, LIMITS, truncate } from './bounds.js';
import { PatchBuilder } from './patch.js';

export type { Role } from './names.js';

export interface Decision {
  uid: string;
  namespace: string;
  name: string;
  role: Role | 'unselected';
  outcome: Outcome;
  reason: string;
  dryRun: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
  status?: { code: number; message: string; reason?: string };
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type ReviewResult =
  | { kind: 'response'; review: AdmissionReviewResponse; decision: Decision }
  | { kind: 'bad-request'; message: string };

// Compiled once at load: the admission path builds no schema per request. Loose objects, because
// the API server sends many fields this webhook has no use for; `object` is checked separately so
// the pod is not walked twice.
const reviewSchema = z.looseObject({
  apiVersion: z.literal('admission.k8s.io/v1', { error: 'must be "admission.k8s.io/v1"; list v1 in the webhook\'s admissionReviewVersions' }),
  kind: z.literal('AdmissionReview', { error: 'must be "AdmissionReview"' }),
  request: z.looseObject({
    uid: z.string({ error: 'is required and must be a string' }).min(1, { error: 'must not be empty' }),
    kind: z.looseObject({
      group: z.string({ error: 'is required and must be a string' }),
      version: z.string({ error: 'is required and must be a string' }),
      kind: z.string({ error: 'is required and must be a string' }),
    }, { error: 'is required and must be an object with group, version and kind' }),
    operation: z.string({ error: 'is required and must be a string' }),
    namespace: z.string().optional(),
    name: z.string().optional(),
    subResource: z.string().optional(),
    dryRun: z.boolean().optional(),
    object: z.unknown().optional(),
  }, { error: 'is required and must be an object' }),
});

/**
 * The whole admission decision, request body to response body: the webhook only decodes,
 * calls this, encodes and logs. `bad-request` means the body is not a usable AdmissionReview v1.
 */
export function reviewAdmission(body: unknown, entry: EntryContext, config: Config): ReviewResult {
  const parsed = parseReview(body);
  if (typeof parsed === 'string') return { kind: 'bad-request', message: parsed };
  const { request, decision: base } = parsed;
  // A literal, not `{ ...base, role, outcome, reason }`: on Node 20, spreading first and then
  // adding keys gives every result a hidden class of its own, about 1 µs per added key, which was
  // more than half of this function's time (docs/benchmarks.md).
  const decide = (role: Decision['role'], outcome: Outcome, reason: string): Decision => ({
    uid: base.uid,
    namespace: base.namespace,
    name: base.name,
    dryRun: base.dryRun,
    role,
    outcome,
    reason,
  });
  const pass = (reason: string): ReviewResult => respond({ uid: request.uid, allowed: true }, decide('unselected', 'skipped', reason));

  const isPod = request.kind.group === '' && request.kind.kind === 'Pod';
  if (!isPod) return pass('not-a-pod');
  if (request.subResource !== undefined && request.subResource !== '') return pass('subresource');
  if (request.operation !== 'CREATE') return pass('not-create');
  if (!isPodLike(request.object)) {
    return { kind: 'bad-request', message: 'invalid AdmissionReview: request.object must be a Pod with spec.containers for a Pod CREATE' };
  }

  const patch = new PatchBuilder();
  const pod = planPod(request.object, '', patch, config, entry);
  return respond(admissionResponse(request.uid, pod, patch), decide(pod.role, pod.outcome, pod.reason));
}

type ParsedRequest = z.infer<typeof reviewSchema>['request'];

/** The request and the decision fields known before any policy runs, or why the body is unusable. */
function parseReview(body: unknown): { request: ParsedRequest; decision: Pick<Decision, 'uid' | 'namespace' | 'name' | 'dryRun'> } | string {
  if (!isRecord(body)) return 'the body must be a JSON object: an admission.k8s.io/v1 AdmissionReview';
  const parsed = reviewSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? 'AdmissionReview' : issue.path.join('.');
    return `invalid AdmissionReview: ${field} ${issue?.message ?? 'is invalid'}`;
  }
  const request = parsed.data.request;
  const meta = isRecord(request.object) && isRecord(request.object.metadata) ? request.object.metadata : {};
  // Not validated yet when the webhook is called: a name can be megabytes, and every log line carries it.
  const name = truncate(request.name || nonEmptyString(meta.name) || nonEmptyString(meta.generateName) || '', LIMITS.podNameChars);
  return { request, decision: { uid: request.uid, namespace: request.namespace ?? nonEmptyString(meta.namespace) ?? '', name, dryRun: request.dryRun ?? false } };
}

/** The webhook's answer to a Pod CREATE from its one decision; `explain` shows the same answer. */
export function admissionResponse(uid: string, pod: PodDecision, patch: PatchBuilder): AdmissionResponse {
  const response: AdmissionResponse = { uid, allowed: pod.denial === undefined };
  if (pod.warnings.length > 0) response.warnings = boundMessages(pod.warnings, LIMITS.warnings, 'warnings');
  if (pod.denial !== undefined) {
    response.status = { code: pod.denial.code, message: boundMessages(pod.errors, LIMITS.errors, 'errors').join('; '), reason: pod.denial.reason };
    response.auditAnnotations = { role: pod.role, denied: pod.reason };
    return response;
  }
  if (!patch.isEmpty) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(patch.ops)).toString('base64');
  }
  if (pod.outcome === 'injected') response.auditAnnotations = auditAnnotations(pod);
  return response;
}

function auditAnnotations(pod: PodDecision): Record<string, string> {
  const { volumes, mounts, containers, initContainers } = pod.injected;
  const parts = [
    volumes.length > 0 ? `volumes=${volumes.join(',')}` : '',
    mounts.length > 0 ? `mounts=${mounts.join(',')}` : '',
    containers.length > 0 ? `containers=${containers.join(',')}` : '',
    initContainers.length > 0 ? `initContainers=${initContainers.join(',')}` : '',
  ].filter((p) => p !== '');
  return { role: pod.role, injected: truncate(parts.join(' '), LIMITS.auditValueChars) };
}

/**
 * The answer when the webhook itself failed on a request: denied with 500, the pod untouched.
 * The message names the uid so the log line with the details can be found; never the error.
 */
export function internalErrorReview(uid: string): AdmissionReviewResponse {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: false,
      status: {
        code: 500,
        reason: 'InternalError',
        message: `dfs-injector hit an internal error and left this pod unchanged; the webhook log has the details (request uid ${uid})`,
      },
    },
  };
}

function respond(response: AdmissionResponse, decision: Decision): ReviewResult {
  return { kind: 'response', review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }, decision };
}
