import { LIMITS } from './bounds.js';
import { isRecord, type PodLike } from './k8s.js';

// The API server calls the webhook before it validates a pod, so any field may hold any JSON value.
// Injection reads the fields below; each must have its Kubernetes type, or be null or absent (null
// is absent, as kubectl and the API server read it). Anything else is refused here, naming the
// field and the rule, instead of failing later as a patch that does not apply or a stack trace.

type Fail = (field: string, rule: string, value: unknown) => void;

/** What is wrong with the fields injection reads, at most LIMITS.errors problems; empty when none. */
export function podShapeErrors(pod: PodLike): string[] {
  const errors: string[] = [];
  const fail: Fail = (field, rule, value) => {
    if (errors.length < LIMITS.errors) errors.push(`${field} ${rule}, not ${kindOf(value)}`);
  };
  const full = (): boolean => errors.length >= LIMITS.errors;
  const meta: unknown = pod.metadata;
  if (meta != null) {
    if (!isRecord(meta)) fail('metadata', 'must be an object', meta);
    else {
      stringMap('metadata.labels', meta.labels, fail);
      stringMap('metadata.annotations', meta.annotations, fail);
    }
  }
  const spec = pod.spec as Record<string, unknown>;
  for (const list of ['containers', 'initContainers', 'ephemeralContainers'] as const) {
    const containers = arrayOf(`spec.${list}`, spec[list], fail);
    for (let i = 0; i < containers.length && !full(); i++) container(`spec.${list}[${i}]`, containers[i], fail);
  }
  const volumes = arrayOf('spec.volumes', spec.volumes, fail);
  for (let i = 0; i < volumes.length && !full(); i++) volume(`spec.volumes[${i}]`, volumes[i], fail);
  return errors;
}

/**
 * What keeps `value` from being a pod that injection and `audit` can read: not an object, no spec
 * object, no containers array, or any error of `podShapeErrors`. `at` names where the pod sits in
 * its document (`spec.template` in a Deployment, empty for a Pod) and prefixes every field.
 */
export function podErrors(value: unknown, at = ''): string[] {
  const field = (name: string): string => (at === '' ? name : name === '' ? at : `${at}.${name}`);
  if (!isRecord(value)) return [`${at === '' ? 'the pod' : at} must be an object, not ${kindOf(value)}`];
  if (!isRecord(value.spec)) return [`${field('spec')} must be an object, not ${kindOf(value.spec)}`];
  if (!Array.isArray(value.spec.containers)) return [`${field('spec.containers')} must be an array, not ${kindOf(value.spec.containers)}`];
  return podShapeErrors(value as PodLike).map((error) => field(error));
}

const PROPAGATION = new Set(['None', 'HostToContainer', 'Bidirectional']);

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'absent';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** The elements of an optional array field; a wrong type is reported and reads as empty. */
function arrayOf(field: string, value: unknown, fail: Fail): readonly unknown[] {
  if (value == null) return [];
  if (Array.isArray(value)) return value;
  fail(field, 'must be an array', value);
  return [];
}

function optional(field: string, value: unknown, type: 'string' | 'boolean' | 'object', fail: Fail): void {
  if (value == null) return;
  const ok = type === 'object' ? isRecord(value) : typeof value === type;
  if (!ok) fail(field, `must be ${type === 'object' ? 'an object' : `a ${type}`}`, value);
}

function required(field: string, value: unknown, fail: Fail): void {
  if (typeof value !== 'string') fail(field, 'must be a string', value);
}

function stringMap(field: string, value: unknown, fail: Fail): void {
  if (value == null) return;
  if (!isRecord(value)) {
    fail(field, 'must be an object of strings', value);
    return;
  }
  for (const key in value) {
    if (typeof value[key] !== 'string') {
      fail(`${field}[${JSON.stringify(key.length > LIMITS.valueChars ? `${key.slice(0, LIMITS.valueChars)}…` : key)}]`, 'must be a string', value[key]);
      return;
    }
  }
}

function container(field: string, value: unknown, fail: Fail): void {
  if (!isRecord(value)) {
    fail(field, 'must be an object', value);
    return;
  }
  required(`${field}.name`, value.name, fail);
  optional(`${field}.restartPolicy`, value.restartPolicy, 'string', fail);
  optional(`${field}.securityContext`, value.securityContext, 'object', fail);
  if (isRecord(value.securityContext)) optional(`${field}.securityContext.privileged`, value.securityContext.privileged, 'boolean', fail);
  const mounts = arrayOf(`${field}.volumeMounts`, value.volumeMounts, fail);
  mounts.forEach((mount, i) => {
    const at = `${field}.volumeMounts[${i}]`;
    if (!isRecord(mount)) return fail(at, 'must be an object', mount);
    required(`${at}.name`, mount.name, fail);
    required(`${at}.mountPath`, mount.mountPath, fail);
    optional(`${at}.readOnly`, mount.readOnly, 'boolean', fail);
    const propagation = mount.mountPropagation;
    if (propagation != null && !PROPAGATION.has(propagation as string)) fail(`${at}.mountPropagation`, 'must be None, HostToContainer or Bidirectional', propagation);
  });
  const ports = arrayOf(`${field}.ports`, value.ports, fail);
  ports.forEach((port, i) => {
    const at = `${field}.ports[${i}]`;
    if (!isRecord(port)) return fail(at, 'must be an object', port);
    const number = port.containerPort;
    if (!(typeof number === 'number' && Number.isInteger(number) && number >= 1 && number <= 65_535)) fail(`${at}.containerPort`, 'must be an integer from 1 to 65535', number);
  });
}

function volume(field: string, value: unknown, fail: Fail): void {
  if (!isRecord(value)) {
    fail(field, 'must be an object', value);
    return;
  }
  required(`${field}.name`, value.name, fail);
  optional(`${field}.emptyDir`, value.emptyDir, 'object', fail);
  if (value.hostPath == null) return;
  if (!isRecord(value.hostPath)) return fail(`${field}.hostPath`, 'must be an object', value.hostPath);
  required(`${field}.hostPath.path`, value.hostPath.path, fail);
}
