// `dfs-injector explain`: step by step, whether and why the webhook would inject a pod, as the
// API server and the webhook decide it, and the resulting change as a unified diff. Pure: the CLI
// reads the pod and the namespace labels and passes them in.
import jsonpatch from 'fast-json-patch';
import { stringify } from 'yaml';
import { admissionResponse, type AdmissionResponse } from '../admission.js';
import { effectiveNamespaceLabels, enforcesPodSecurity, EXCLUDED_NAMESPACES, matchEntries, type EntryMatch, type WebhookEntry } from '../audit/selection.js';
import type { Config } from '../config.js';
import { isRecord, nonEmptyString, type PodLike } from '../k8s.js';
import { planPod, type PodDecision } from '../plan-pod.js';
import { LABEL_DEFAULT_ROLE, LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE, LABEL_ROLE } from '../names.js';
import type { AnnotationResult } from '../overrides.js';
import { PatchBuilder } from '../patch.js';
import { selectRole } from '../role.js';
import { unifiedDiff } from './unified-diff.js';
import { findPods, objectsOf } from '../workloads.js';

export interface NamespaceInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** Where the labels came from, for the reader: "from the cluster", "from --namespace-labels", … */
  origin: string;
}

export type StepStatus = 'ok' | 'no' | 'warn' | 'info';

export interface ExplainStep {
  title: string;
  status: StepStatus;
  lines: string[];
}

export type Verdict = 'not-sent' | 'skipped' | 'denied' | 'injected' | 'unchanged';

export interface PodExplanation {
  /** "Pod media/sonarr-0", or "Deployment media/radarr (pod template)". */
  subject: string;
  namespace: string;
  /** The webhook entry the API server calls for this pod; undefined when it calls none. */
  entry: WebhookEntry | undefined;
  steps: ExplainStep[];
  verdict: Verdict;
  /** The outcome in one line. */
  summary: string;
  /** What the webhook answers the API server; undefined when the pod is not sent to it. */
  response: AdmissionResponse | undefined;
  /** The document as YAML, before and after this pod's injection. */
  before: string;
  after: string;
  diff: string;
}

export interface ExplainOptions {
  config: Config;
  /** Labels of a namespace by name. */
  namespaceOf: (name: string) => NamespaceInfo;
  /** Namespace of objects that name none. */
  defaultNamespace: string;
  /** Names the input in the diff header, e.g. the file. */
  source: string;
}

const MARK: Record<StepStatus, string> = { ok: '[ok]  ', no: '[no]  ', warn: '[warn]', info: '[info]' };

function labelList(labels: Readonly<Record<string, string>>): string {
  const entries = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? '(none)' : entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

function actual(value: string | undefined): string {
  return value === undefined ? 'the label is not set' : `the label is "${value}"`;
}

function namespaceStep(ns: NamespaceInfo, matches: readonly EntryMatch[]): ExplainStep {
  const lines = [`labels (${ns.origin}): ${labelList(effectiveNamespaceLabels(ns.name, ns.labels))}`];
  for (const m of matches) {
    const failing = m.namespace.requirements.filter((r) => !r.matches);
    const detail = failing.length === 0 ? 'namespaceSelector matches' : failing.map((r) => `${r.text} is false: ${actual(r.actual)}`).join('; ');
    lines.push(`${failing.length === 0 ? MARK.ok : MARK.no} ${m.entry.name} (${m.entry.path}): ${detail}`);
  }
  const served = matches.some((m) => m.namespace.matches);
  if (!served) {
    const why = EXCLUDED_NAMESPACES.includes(ns.name)
      ? `${ns.name} is excluded: the webhook never mutates ${EXCLUDED_NAMESPACES.join(' or ')}`
      : `the namespace is not opted in; label it ${LABEL_INJECTION}=enabled`;
    lines.push(`→ no entry serves this namespace: ${why}`);
  }
  return { title: `Namespace ${ns.name} against each webhook entry's namespaceSelector`, status: served ? 'ok' : 'no', lines };
}

function objectStep(matches: readonly EntryMatch[], podLabels: Readonly<Record<string, string>>, entry: WebhookEntry | undefined): ExplainStep {
  const lines = [`pod labels: ${labelList(podLabels)}`];
  for (const m of matches.filter((x) => x.namespace.matches)) {
    const req = m.object.requirements;
    lines.push(`${m.object.matches ? MARK.ok : MARK.no} ${m.entry.name}: ${req.map((r) => `${r.text} (${actual(r.actual)})`).join('; ')}`);
  }
  if (entry !== undefined) {
    lines.push(`→ the API server calls ${entry.path} (${entry.name}) for this pod`);
    return { title: "Pod labels against the objectSelector", status: 'ok', lines };
  }
  if (podLabels[LABEL_ROLE] === 'none') {
    lines.push(`→ ${LABEL_ROLE}=none: the pod opted out, so no entry selects it and the API server creates it without calling the webhook (even while the webhook is down)`);
  } else {
    lines.push(`→ no entry selects this pod, so the API server creates it without calling the webhook; label it ${LABEL_ROLE}=consumer (or source), or label the namespace ${LABEL_DEFAULT_ROLE}=consumer`);
  }
  return { title: 'Pod labels against the objectSelector', status: 'no', lines };
}

/** The override annotations as the decision read them; nothing is parsed again here. */
function overridesStep(annotations: readonly AnnotationResult[] | undefined, role: 'consumer' | 'source', config: Config): ExplainStep {
  if (annotations === undefined) return { title: 'Override annotations', status: 'info', lines: ['not read: the webhook refuses the pod for its shape first (see the plan)'] };
  const mark = (a: AnnotationResult): string => (a.status === 'invalid' ? MARK.no : a.status === 'valid' ? MARK.ok : MARK.warn);
  // The overrides first, in OVERRIDE_ANNOTATIONS order, then the annotations nobody knows.
  const lines = [...annotations.filter((a) => a.status !== 'unknown'), ...annotations.filter((a) => a.status === 'unknown')].map(
    (a) => `${mark(a)} ${a.message ?? `${a.name}="${a.value}" is valid`}`,
  );
  if (lines.length === 0) {
    const defaults =
      role === 'consumer'
        ? `mount path ${config.consumer.mountPath}, containers ${config.consumer.containers.join(',')}`
        : `source container ${config.source.container ?? '(the first)'}, source path ${config.source.path}, share ${config.source.shareName}`;
    lines.push(`none: the config decides (${defaults})`);
  }
  const status: StepStatus = annotations.some((a) => a.status === 'invalid') ? 'no' : annotations.some((a) => a.status !== 'valid') ? 'warn' : 'ok';
  return { title: 'Override annotations', status, lines };
}

function planStep(decision: PodDecision): ExplainStep {
  const { injected } = decision;
  if (decision.outcome === 'denied') return { title: 'Injection plan', status: 'no', lines: decision.errors.map((e) => `${MARK.no} ${e}`) };
  const lines = [
    ...(injected.volumes.length > 0 ? [`adds volumes: ${injected.volumes.join(', ')}`] : []),
    ...(injected.mounts.length > 0 ? [`adds mounts (container:path): ${injected.mounts.join(', ')}`] : []),
    ...(injected.containers.length > 0 ? [`adds containers: ${injected.containers.join(', ')}`] : []),
    ...(injected.initContainers.length > 0 ? [`adds init containers: ${injected.initContainers.join(', ')}`] : []),
    ...decision.warnings.map((w) => `${MARK.warn} ${w}`),
  ];
  if (decision.outcome === 'unchanged') lines.unshift(`already injected (${decision.reason}): nothing to add`);
  return { title: 'Injection plan', status: decision.warnings.length > 0 ? 'warn' : decision.outcome === 'unchanged' ? 'info' : 'ok', lines };
}

interface Subject {
  object: Record<string, unknown>;
  pod: PodLike;
  prefix: string;
  namespace: string;
  subject: string;
}

function podSecurityStep(ns: NamespaceInfo, entry: WebhookEntry, role: 'consumer' | 'source'): ExplainStep {
  if (entry.context.podSecurityEnforced) {
    const level = enforcesPodSecurity(ns.labels) ?? 'baseline or restricted';
    const needs = role === 'consumer' ? 'hostPath volumes' : 'privileged containers (which Bidirectional propagation needs)';
    return {
      title: 'Pod Security',
      status: 'no',
      lines: [`the namespace enforces Pod Security ${level}, which forbids ${needs}; PodSecurity admission runs after this webhook and would refuse the injected pod, so the webhook refuses it first, saying why`],
    };
  }
  const current = ns.labels[LABEL_POD_SECURITY_ENFORCE];
  return { title: 'Pod Security', status: 'ok', lines: [`the namespace does not enforce baseline or restricted (${LABEL_POD_SECURITY_ENFORCE} ${current === undefined ? 'is not set' : `is "${current}"`})`] };
}

interface Context {
  doc: unknown;
  s: Subject;
  options: ExplainOptions;
  docPrefix: string;
  ns: NamespaceInfo;
  entry: WebhookEntry | undefined;
  steps: ExplainStep[];
  before: string;
}

function unchanged(ctx: Context, verdict: Verdict, summary: string, response?: AdmissionResponse): PodExplanation {
  return { subject: ctx.s.subject, namespace: ctx.s.namespace, entry: ctx.entry, steps: ctx.steps, verdict, summary, response, before: ctx.before, after: ctx.before, diff: '' };
}

function explainSubject(doc: unknown, s: Subject, options: ExplainOptions, docPrefix: string): PodExplanation {
  const ns = options.namespaceOf(s.namespace);
  const podLabels = s.pod.metadata?.labels ?? {};
  const matches = matchEntries(s.namespace, ns.labels, podLabels);
  const entry = matches.find((m) => m.namespace.matches && m.object.matches)?.entry;
  const first = namespaceStep(ns, matches);
  const steps: ExplainStep[] = first.status === 'ok' ? [first, objectStep(matches, podLabels, entry)] : [first];
  const ctx: Context = { doc, s, options, docPrefix, ns, entry, steps, before: stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false }) };
  if (entry === undefined) return unchanged(ctx, 'not-sent', 'not sent to the webhook: the pod is created as written');
  return explainSent(ctx, entry, podLabels);
}

/** The webhook's side: role, Pod Security, overrides, plan, and the patch applied to the document. */
function explainSent(ctx: Context, entry: WebhookEntry, podLabels: Readonly<Record<string, string>>): PodExplanation {
  const { s, options, steps } = ctx;
  const { config } = options;
  // One decision, as the webhook takes it on the pod: its answer and every step below render it.
  const patch = new PatchBuilder();
  const decision = planPod(s.pod, '', patch, config, entry.context);
  const response = admissionResponse('explain', decision, patch);
  // The webhook refuses a pod of the wrong shape before it chooses a role; the reader still learns
  // which role its labels ask for.
  const role = decision.selection ?? selectRole(podLabels, entry.context);
  if (role.kind === 'invalid') {
    steps.push({ title: 'Role', status: 'no', lines: [role.message] });
    return unchanged(ctx, 'denied', `DENIED by ${entry.path} (HTTP ${decision.denial?.code ?? 400}): ${role.message}`, response);
  }
  if (role.kind === 'unselected' || role.role === 'none') {
    steps.push({ title: 'Role', status: 'info', lines: [`${LABEL_ROLE}=none: the pod opted out, and the webhook allows it unchanged`] });
    return unchanged(ctx, 'skipped', `sent to ${entry.path}, which allows it unchanged (role none)`, response);
  }
  const via = role.via === 'pod-label' ? `the pod label ${LABEL_ROLE}=${role.role}` : `the namespace label ${LABEL_DEFAULT_ROLE}=consumer (the pod has no ${LABEL_ROLE} label)`;
  steps.push({ title: 'Role', status: 'ok', lines: [`${role.role}, from ${via}`] }, podSecurityStep(ctx.ns, entry, role.role));
  if (!entry.context.podSecurityEnforced) steps.push(overridesStep(decision.annotations, role.role, config));
  if (decision.reason !== 'pod-security' && decision.reason !== 'invalid-annotation') steps.push(planStep(decision));
  if (decision.denial !== undefined) {
    return unchanged(ctx, 'denied', `DENIED by ${entry.path} (HTTP ${decision.denial.code}): ${decision.errors.join('; ')}`, response);
  }
  if (patch.isEmpty) return unchanged(ctx, 'unchanged', `sent to ${entry.path}; already injected, so nothing changes`, response);
  // The same operations, at the pod's place in the document.
  const at = `${ctx.docPrefix}${s.prefix}`;
  const ops = patch.ops.map((op) => ({ ...op, path: `${at}${op.path}` }));
  const afterDoc = jsonpatch.applyPatch(structuredClone(ctx.doc), ops, false, false).newDocument;
  const after = stringify(afterDoc, { lineWidth: 0, aliasDuplicateObjects: false });
  const template = s.object.kind === 'Pod' ? '' : '; the webhook does this to every pod created from the template, shown here on the template';
  const count = `${patch.ops.length} JSON Patch operation${patch.ops.length === 1 ? '' : 's'}`;
  return {
    subject: s.subject,
    namespace: s.namespace,
    entry,
    steps,
    verdict: decision.outcome === 'injected' ? 'injected' : 'unchanged',
    summary: `${decision.outcome === 'injected' ? 'INJECTED' : 'UPDATED'} by ${entry.path} as a ${role.role}: ${count}${template}`,
    response,
    before: ctx.before,
    after,
    diff: unifiedDiff(ctx.before, after, { from: `${options.source} (as written)`, to: `${options.source} (as admitted)` }),
  };
}

/** One explanation per pod or pod template in the document (Pods, workloads, Lists). */
export function explainDocument(doc: unknown, options: ExplainOptions): PodExplanation[] {
  const subjects: { subject: Subject; docPrefix: string }[] = [];
  for (const { object, pointer } of objectsOf(doc)) {
    const meta = isRecord(object.metadata) ? object.metadata : {};
    const namespace = nonEmptyString(meta.namespace) ?? options.defaultNamespace;
    const generateName = nonEmptyString(meta.generateName);
    const name = nonEmptyString(meta.name) ?? (generateName === undefined ? '(unnamed)' : `${generateName}*`);
    const kind = nonEmptyString(object.kind) ?? 'object';
    for (const { pod, prefix } of findPods(object)) {
      subjects.push({ subject: { object, pod, prefix, namespace, subject: `${kind} ${namespace}/${name}${kind === 'Pod' ? '' : ' (pod template)'}` }, docPrefix: pointer });
    }
  }
  return subjects.map(({ subject, docPrefix }) => explainSubject(doc, subject, options, docPrefix));
}

function responseLines(response: AdmissionResponse): string[] {
  const lines = [`allowed: ${response.allowed}`];
  if (response.status !== undefined) lines.push(`status: ${response.status.code} ${response.status.reason ?? ''}`.trimEnd());
  if (response.patch !== undefined) lines.push(`patchType: ${response.patchType ?? 'JSONPatch'}`);
  for (const w of response.warnings ?? []) lines.push(`warning: ${w}`);
  for (const [k, v] of Object.entries(response.auditAnnotations ?? {})) lines.push(`auditAnnotation ${k}: ${v}`);
  return lines;
}

/** The explanations as text: numbered steps, the webhook's answer, then the diff. */
export function renderExplanations(explanations: readonly PodExplanation[]): string {
  if (explanations.length === 0) return 'No pod or pod template in the input: nothing the webhook would see.\n';
  const blocks = explanations.map((e) => {
    const lines = [e.subject, ''];
    e.steps.forEach((step, i) => {
      lines.push(`${i + 1}. ${step.title}: ${step.status}`);
      for (const line of step.lines) lines.push(`   ${line}`);
    });
    lines.push('', `Result: ${e.summary}`);
    if (e.response !== undefined) {
      lines.push('', 'Webhook response:');
      for (const line of responseLines(e.response)) lines.push(`   ${line}`);
    }
    lines.push('', e.diff === '' ? 'No change.' : e.diff.trimEnd());
    return lines.join('\n');
  });
  return `${blocks.join('\n\n')}\n`;
}
