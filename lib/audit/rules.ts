import type { Config } from '../config.js';
import { isRecord, type Container, type Volume } from '../k8s.js';
import { ANNOTATION_STATUS, LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE, LABEL_ROLE } from '../names.js';
import { containerKind, mountsOf, writableParentMounts, type MountUse } from '../dfs-volumes.js';
import { isUnderHostPath, normalizePath } from '../plan.js';
import { selectRole } from '../role.js';
import { SHIM_VOLUME } from '../source.js';
import { parseStatus, type InjectionStatus } from '../status.js';
import { EXCLUDED_NAMESPACES, OPT_IN_VALUE, enforcesPodSecurity, selectEntry, selectNamespace, type NamespaceSelection, type WebhookEntry } from './selection.js';
import type { Finding, InventoryNamespace, InventoryPod, ResourceRef, RuleId, Severity } from './types.js';

export type RuleNeeds = 'pod' | 'namespace' | 'config' | 'nodes';

export interface RuleInfo {
  id: RuleId;
  severity: Severity;
  /** PolicyReport category, for grouping in Policy Reporter. */
  category: string;
  title: string;
  /** Why it matters, in one line. */
  explanation: string;
  fix: string;
  /** What the rule needs besides the pod itself; without it the rule is skipped, and says so. */
  needs: RuleNeeds;
}

export const MOUNTER = { namespace: 'dfs-system', labelKey: 'app.kubernetes.io/name', labelValue: 'dfs-mounter', name: 'dfs-mounter' } as const;

export const RULES: Readonly<Record<RuleId, RuleInfo>> = {
  DFS001: {
    id: 'DFS001',
    severity: 'high',
    category: 'DFS mounts',
    title: 'writable DFS mount',
    explanation: 'A container mounts the DFS host path, a directory under it, or a directory above it (such as / or /mnt) without readOnly: true, so it can write into the node directory under the share (and onto the node disk whenever the share is not mounted).',
    fix: 'Set readOnly: true on the mount, or drop the hand-written mount and let dfs-injector inject it.',
    needs: 'pod',
  },
  DFS002: {
    id: 'DFS002',
    severity: 'medium',
    category: 'DFS mounts',
    title: 'DFS mount without HostToContainer propagation',
    explanation: 'Without mountPropagation: HostToContainer a container never sees a CIFS mount that the mounter makes or re-makes on the node after the container started; it sees an empty directory instead.',
    fix: 'Set mountPropagation: HostToContainer on the mount (never Bidirectional: that needs a privileged container and lets it mount over the node path).',
    needs: 'pod',
  },
  DFS003: {
    id: 'DFS003',
    severity: 'medium',
    category: 'Injection',
    title: 'hand-written DFS hostPath',
    explanation: `A hostPath volume of the DFS host path that the webhook did not inject (the ${ANNOTATION_STATUS} annotation does not list it): it does not follow config changes and nothing records it.`,
    fix: `Remove the hand-written volume and its mounts, label the pod template ${LABEL_ROLE}=consumer in an opted-in namespace, and let the webhook inject the mount.`,
    needs: 'pod',
  },
  DFS004: {
    id: 'DFS004',
    severity: 'high',
    category: 'Injection',
    title: 'selected pod not injected',
    explanation: `A pod the webhook selects (role source or consumer in an opted-in namespace) has no ${ANNOTATION_STATUS} annotation: it was admitted before the webhook existed, or while its MutatingWebhookConfiguration was missing or set to failurePolicy Ignore, and runs without the DFS.`,
    fix: 'Check that the MutatingWebhookConfiguration is installed with failurePolicy Fail and the webhook is up, then re-create the pod through it (kubectl rollout restart, or delete the pod so its controller re-creates it).',
    needs: 'namespace',
  },
  DFS005: {
    id: 'DFS005',
    severity: 'low',
    category: 'Injection',
    title: 'injected under an older config',
    explanation: `The config hash in the ${ANNOTATION_STATUS} annotation differs from the current config's: the pod runs with what an earlier config injected.`,
    fix: 'Restart the workload (kubectl rollout restart) so its pods are injected under the current config.',
    needs: 'config',
  },
  DFS006: {
    id: 'DFS006',
    severity: 'medium',
    category: 'Source',
    title: 'smbd sidecar without the nlink shim',
    explanation: 'The source pod\'s smbd sidecar has no LD_PRELOAD although the shim is enabled: a FUSE filesystem that reports st_nlink 0 makes every path of the share fail with NT_STATUS_OBJECT_PATH_NOT_FOUND.',
    fix: 'Re-create the pod so the webhook injects the sidecar with the shim, or set source.shim.mode: off if the FUSE filesystem sets Nlink itself.',
    needs: 'pod',
  },
  DFS007: {
    id: 'DFS007',
    severity: 'high',
    category: 'Source',
    title: 'writable SMB share mount',
    explanation: 'The smbd sidecar mounts the FUSE volume without readOnly: true, so the exported share is one config change away from being writable by every node.',
    fix: 'Re-create the pod so the webhook injects the sidecar with a read-only mount; do not edit the sidecar by hand.',
    needs: 'pod',
  },
  DFS008: {
    id: 'DFS008',
    severity: 'high',
    category: 'Pod Security',
    title: 'DFS pod in a namespace that enforces Pod Security',
    explanation: `The namespace enforces Pod Security baseline or restricted (${LABEL_POD_SECURITY_ENFORCE}), which forbids hostPath volumes and privileged containers: this pod cannot be re-created, and the webhook refuses new ones.`,
    fix: `Label the namespace ${LABEL_POD_SECURITY_ENFORCE}=privileged, or move the workload to a namespace that allows hostPath volumes.`,
    needs: 'namespace',
  },
  DFS009: {
    id: 'DFS009',
    severity: 'critical',
    category: 'Nodes',
    title: 'consumers on a node without a Ready mounter',
    explanation: `Consumers on this node read the host path, but no Ready ${MOUNTER.name} pod mounts the share there: they see an empty directory, or a stale mount.`,
    fix: `Check the mounter: kubectl -n ${MOUNTER.namespace} get pods -l ${MOUNTER.labelKey}=${MOUNTER.labelValue} -o wide; its pod may be failing, or the DaemonSet may not tolerate the node's taints.`,
    needs: 'nodes',
  },
  DFS010: {
    id: 'DFS010',
    severity: 'medium',
    category: 'Injection',
    title: 'role label in a namespace the webhook does not serve',
    explanation: `The pod has a ${LABEL_ROLE} label, but its namespace is not opted in (${LABEL_INJECTION}=${OPT_IN_VALUE}) or is excluded (${EXCLUDED_NAMESPACES.join(', ')}): the API server never sends it to the webhook.`,
    fix: `Label the namespace ${LABEL_INJECTION}=${OPT_IN_VALUE}, or remove the role label; ${EXCLUDED_NAMESPACES.join(' and ')} are never injected.`,
    needs: 'namespace',
  },
};

export const RULE_IDS: readonly RuleId[] = Object.keys(RULES) as RuleId[];

/**
 * The mounter's own pods and its DaemonSet's template: their writable, Bidirectional hostPath of
 * the DFS is how they work, not a finding. Known by where they are and who owns them (the
 * DaemonSet named dfs-mounter in the webhook's namespace), never by a label: anyone who may create
 * a pod may give it any label, in any namespace.
 */
export function isMounterPod(pod: Pick<InventoryPod, 'namespace' | 'kind' | 'name' | 'owner'>, mounterNamespace: string = MOUNTER.namespace): boolean {
  if (pod.namespace !== mounterNamespace) return false;
  if (pod.kind === 'DaemonSet') return pod.name === MOUNTER.name;
  return pod.kind === 'Pod' && pod.owner?.kind === 'DaemonSet' && pod.owner.name === MOUNTER.name;
}

/** The controller among ownerReferences, as the API server returns them; undefined when there is none. */
export function controllerOf(ownerReferences: unknown): { kind: string; name: string } | undefined {
  if (!Array.isArray(ownerReferences)) return undefined;
  for (const ref of ownerReferences as unknown[]) {
    if (typeof ref !== 'object' || ref === null) continue;
    const { kind, name, controller } = ref as Record<string, unknown>;
    if (controller === true && typeof kind === 'string' && typeof name === 'string') return { kind, name };
  }
  return undefined;
}

export function podRef(pod: InventoryPod): ResourceRef {
  const ref: ResourceRef = { apiVersion: pod.apiVersion ?? (pod.kind === 'Pod' ? 'v1' : 'apps/v1'), kind: pod.kind, namespace: pod.namespace, name: pod.name };
  if (pod.uid !== undefined) ref.uid = pod.uid;
  return ref;
}

/** A hostPath volume of the DFS host path, or of a directory under it. */
export function isDfsVolume(volume: Volume, hostPath: string): boolean {
  const path = volume.hostPath?.path;
  return typeof path === 'string' && isUnderHostPath(path, hostPath);
}

/** Everything the per-pod rules read, computed once per pod. */
export interface PodFacts {
  pod: InventoryPod;
  ref: ResourceRef;
  status: InjectionStatus | undefined;
  dfsVolumes: Volume[];
  dfsMounts: MountUse[];
  /** undefined: the namespace's labels are not known. */
  namespace: { labels: Readonly<Record<string, string>>; selection: NamespaceSelection; entry: WebhookEntry | undefined } | undefined;
}

export function podFacts(pod: InventoryPod, config: Config, namespace: InventoryNamespace | undefined): PodFacts {
  const dfsVolumes = (pod.spec.volumes ?? []).filter((v) => isDfsVolume(v, config.hostPath));
  return {
    pod,
    ref: podRef(pod),
    status: parseStatus(pod.annotations[ANNOTATION_STATUS]),
    dfsVolumes,
    dfsMounts: mountsOf(pod.spec, new Set(dfsVolumes.map((v) => v.name))),
    namespace:
      namespace === undefined
        ? undefined
        : { labels: namespace.labels, selection: selectNamespace(namespace.name, namespace.labels), entry: selectEntry(namespace.name, namespace.labels, pod.labels) },
  };
}

export interface RuleContext {
  config: Config;
  configHash: string;
  /** False when the webhook's config is not known, so drift cannot be measured. */
  checkDrift: boolean;
}

type Check = (facts: PodFacts, ctx: RuleContext) => string | undefined;

const describeMount = (u: MountUse): string => `${containerKind(u.list)} "${u.container.name}" mounts volume "${u.mount.name}" at ${u.mount.mountPath}`;

const writableMount: Check = (facts, ctx) => {
  const writable = facts.dfsMounts.filter((u) => u.mount.readOnly !== true);
  const parents = writableParentMounts(facts.pod.spec, ctx.config.hostPath).map(
    (u) => `${describeMount(u)} writable (readOnly is not true), a hostPath of ${u.volume.hostPath.path}, which holds the DFS host path ${ctx.config.hostPath}`,
  );
  const messages = writable.length === 0 ? parents : [`${writable.map(describeMount).join('; ')} writable (readOnly is not true)`, ...parents];
  return messages.length === 0 ? undefined : messages.join('; ');
};

const propagation: Check = (facts) => {
  const wrong = facts.dfsMounts.filter((u) => u.mount.mountPropagation !== 'HostToContainer');
  if (wrong.length === 0) return undefined;
  return wrong.map((u) => `${describeMount(u)} with mountPropagation ${typeof u.mount.mountPropagation === 'string' ? u.mount.mountPropagation : 'None (unset)'}`).join('; ');
};

const handWritten: Check = (facts, ctx) => {
  const recorded = new Set(facts.status?.volumes ?? []);
  const foreign = facts.dfsVolumes.filter((v) => !recorded.has(v.name));
  if (foreign.length === 0) return undefined;
  const why = facts.status === undefined ? `there is no ${ANNOTATION_STATUS} annotation` : `the ${ANNOTATION_STATUS} annotation does not list ${foreign.length === 1 ? 'it' : 'them'}`;
  const describe = (v: Volume): string => {
    const path = normalizePath(v.hostPath?.path ?? '');
    return path === ctx.config.hostPath ? `volume "${v.name}" is a hostPath of the DFS host path ${path}` : `volume "${v.name}" is a hostPath of ${path}, under the DFS host path ${ctx.config.hostPath}`;
  };
  return `${foreign.map(describe).join('; ')}, written by hand: ${why}`;
};

/** The role the webhook gives this pod, if the API server sends it to the webhook at all. */
function selectedRole(facts: PodFacts): { role: 'source' | 'consumer'; via: string } | undefined {
  const entry = facts.namespace?.entry;
  if (entry === undefined) return undefined;
  const role = selectRole(facts.pod.labels, entry.context);
  if (role.kind !== 'selected' || role.role === 'none') return undefined;
  return { role: role.role, via: role.via === 'pod-label' ? `label ${LABEL_ROLE}=${role.role}` : 'the namespace default-role' };
}

const notInjected: Check = (facts) => {
  if (facts.pod.kind !== 'Pod' || facts.status !== undefined) return undefined;
  const selected = selectedRole(facts);
  if (selected === undefined) return undefined;
  return `selected as ${selected.role} by ${selected.via} in opted-in namespace ${facts.pod.namespace}, but has no ${ANNOTATION_STATUS} annotation: it was admitted without the webhook`;
};

const drift: Check = (facts, ctx) => {
  const status = facts.status;
  if (!ctx.checkDrift || status === undefined || status.configHash === ctx.configHash) return undefined;
  return `injected under config ${status.configHash || '(none recorded)'} by dfs-injector ${status.version || '(unknown version)'}; the current config is ${ctx.configHash}`;
};

/** The smbd sidecar of a source pod, found by the name the status recorded or the configured name. */
function sidecarOf(facts: PodFacts, config: Config): Container | undefined {
  const isSource = facts.status?.role === 'source' || facts.pod.labels[LABEL_ROLE] === 'source';
  if (!isSource) return undefined;
  const names = new Set([...(facts.status?.role === 'source' ? facts.status.containers : []), config.source.sidecar.name]);
  return facts.pod.spec.containers.find((c) => names.has(c.name));
}

function envValue(container: Container, name: string): string | undefined {
  // env is not among the fields lib/pod-shape.ts checks: any element may be any JSON value.
  const env: unknown[] = Array.isArray(container.env) ? container.env : [];
  const entry = env.find((e): e is Record<string, unknown> => isRecord(e) && e.name === name);
  return typeof entry?.value === 'string' ? entry.value : undefined;
}

const missingShim: Check = (facts, ctx) => {
  if (ctx.config.source.shim.mode === 'off') return undefined;
  const sidecar = sidecarOf(facts, ctx.config);
  if (sidecar === undefined || (envValue(sidecar, 'LD_PRELOAD') ?? '') !== '') return undefined;
  return `smbd sidecar "${sidecar.name}" has no LD_PRELOAD, but source.shim.mode is ${ctx.config.source.shim.mode}`;
};

const writableShare: Check = (facts, ctx) => {
  const sidecar = sidecarOf(facts, ctx.config);
  if (sidecar === undefined) return undefined;
  const sharePath = envValue(sidecar, 'DFS_SHARE_PATH') ?? ctx.config.source.path;
  const writable = (sidecar.volumeMounts ?? []).filter((m) => m.name !== SHIM_VOLUME && normalizePath(m.mountPath) === normalizePath(sharePath) && m.readOnly !== true);
  if (writable.length === 0) return undefined;
  return `smbd sidecar "${sidecar.name}" mounts volume "${writable.map((m) => m.name).join('", "')}" at the share path ${sharePath} writable (readOnly is not true)`;
};

/** Source or consumer, by what was injected, what the webhook would select, or a hand-written DFS volume. */
export function dfsRole(facts: PodFacts): 'source' | 'consumer' | undefined {
  return facts.status?.role ?? selectedRole(facts)?.role ?? (facts.dfsVolumes.length > 0 ? 'consumer' : undefined);
}

const podSecurity: Check = (facts) => {
  const level = facts.namespace === undefined ? undefined : enforcesPodSecurity(facts.namespace.labels);
  const role = dfsRole(facts);
  if (level === undefined || role === undefined) return undefined;
  const needs = role === 'consumer' ? 'a hostPath volume' : 'a privileged source container';
  return `DFS ${role} in namespace ${facts.pod.namespace}, which enforces Pod Security ${level} (${LABEL_POD_SECURITY_ENFORCE}=${level}); ${level} forbids ${needs}`;
};

const unservedLabel: Check = (facts) => {
  const selection = facts.namespace?.selection;
  const role = facts.pod.labels[LABEL_ROLE];
  if (selection === undefined || selection.kind === 'served' || facts.status !== undefined) return undefined;
  if (role !== 'source' && role !== 'consumer') return undefined;
  const why =
    selection.kind === 'excluded'
      ? `namespace ${facts.pod.namespace} is excluded from injection`
      : `namespace ${facts.pod.namespace} is not opted in (${LABEL_INJECTION} is ${selection.value === undefined ? 'not set' : `"${selection.value}"`})`;
  return `labelled ${LABEL_ROLE}=${role}, but ${why}: the webhook never sees this pod`;
};

/** Per-pod rules, in report order. DFS009 is per node and lives in the auditor. */
export const POD_CHECKS: readonly (readonly [RuleId, Check])[] = [
  ['DFS001', writableMount],
  ['DFS002', propagation],
  ['DFS003', handWritten],
  ['DFS004', notInjected],
  ['DFS005', drift],
  ['DFS006', missingShim],
  ['DFS007', writableShare],
  ['DFS008', podSecurity],
  ['DFS010', unservedLabel],
];

export function checkPod(facts: PodFacts, ctx: RuleContext): Finding[] {
  const findings: Finding[] = [];
  for (const [id, check] of POD_CHECKS) {
    const rule = RULES[id];
    if (rule.needs === 'namespace' && facts.namespace === undefined) continue;
    const message = check(facts, ctx);
    if (message !== undefined) findings.push({ rule: id, severity: rule.severity, resource: facts.ref, message });
  }
  return findings;
}
