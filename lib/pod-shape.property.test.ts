import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod, POD_FIXTURES } from '../test/support/fixtures.js';
import { assertValidPod, withoutNulls } from '../test/support/k8s-schema.js';
import { reviewAdmission } from './admission.js';
import { configSchema } from './config.js';
import { DEFAULT_ENTRY } from './entry.js';

// The API server calls the webhook before it validates a pod: any field may hold any JSON value.
// Every field injection reads is tried with values of every type; the answer must be a denial
// that names the field, or a patch that applies to the request and yields a valid pod.

type Path = readonly (string | number)[];

// Fields read only for their presence or for a few members: every type, and the empty object.
const SHAPES = fc.constantFrom<unknown>(null, [], [1], '', 'x', 0, 7, true, false, {});
// Fields whose whole value is read: any JSON value.
const ANY = fc.oneof(SHAPES, fc.jsonValue({ maxDepth: 2 }));

const FIELDS: readonly (readonly [Path, fc.Arbitrary<unknown>])[] = [
  [['metadata'], SHAPES],
  [['metadata', 'labels'], ANY],
  [['metadata', 'labels', 'dfs-injector.io/role'], ANY],
  [['metadata', 'annotations'], ANY],
  [['metadata', 'annotations', 'dfs-injector.io/mount-path'], ANY],
  [['metadata', 'annotations', 'dfs-injector.io/containers'], ANY],
  [['metadata', 'annotations', 'dfs-injector.io/status'], fc.oneof(ANY, fc.jsonValue().map((v) => JSON.stringify(v)))],
  [['spec', 'volumes'], SHAPES],
  [['spec', 'volumes', 0], SHAPES],
  [['spec', 'volumes', 0, 'name'], ANY],
  [['spec', 'volumes', 0, 'hostPath'], SHAPES],
  [['spec', 'volumes', 0, 'emptyDir'], SHAPES],
  [['spec', 'initContainers'], SHAPES],
  [['spec', 'ephemeralContainers'], SHAPES],
  [['spec', 'containers', 0, 'volumeMounts'], SHAPES],
  [['spec', 'containers', 0, 'volumeMounts', 0], SHAPES],
  [['spec', 'containers', 0, 'volumeMounts', 0, 'name'], ANY],
  [['spec', 'containers', 0, 'volumeMounts', 0, 'mountPath'], ANY],
  [['spec', 'containers', 0, 'volumeMounts', 0, 'readOnly'], ANY],
  [['spec', 'containers', 0, 'volumeMounts', 0, 'mountPropagation'], ANY],
  [['spec', 'containers', 0, 'ports'], SHAPES],
  [['spec', 'containers', 0, 'ports', 0], SHAPES],
  [['spec', 'containers', 0, 'ports', 0, 'containerPort'], ANY],
  [['spec', 'containers', 0, 'securityContext'], SHAPES],
  [['spec', 'containers', 0, 'securityContext', 'privileged'], ANY],
  [['spec', 'containers', 0, 'restartPolicy'], ANY],
  [['spec', 'containers', 0, 'name'], ANY],
  [['spec', 'containers'], SHAPES],
  [['spec'], SHAPES],
];

/** `spec.containers[0].name`, as the webhook's messages name fields. */
function fieldName(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : /^[A-Za-z]+$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
}

function set(object: Record<string, any>, path: Path, value: unknown): boolean {
  let node: any = object;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object' || !(key in node)) return false;
    node = node[key];
  }
  if (node === null || typeof node !== 'object') return false;
  node[path.at(-1) as string | number] = value;
  return true;
}

const arbitraryCase = fc.record({
  fixture: fc.constantFrom(...POD_FIXTURES),
  role: fc.constantFrom('consumer', 'source'),
  waitForMount: fc.boolean(),
  field: fc.integer({ min: 0, max: FIELDS.length - 1 }).chain((i) => {
    const [path, values] = FIELDS[i] as (typeof FIELDS)[number];
    return values.map((value) => ({ path, value }));
  }),
});

describe('a pod with any JSON value in a field the webhook reads', () => {
  it('gets a denial that names the field and its rule, or a patch that applies and yields a valid pod', () => {
    const seen = { patched: 0, refused: 0 };
    fc.assert(
      fc.property(arbitraryCase, ({ fixture, role, waitForMount, field }) => {
        const pod = loadPod(fixture);
        pod.metadata.labels['dfs-injector.io/role'] = role;
        pod.spec.containers[0].securityContext = { ...pod.spec.containers[0].securityContext, privileged: true };
        if (!set(pod, field.path, field.value)) return;
        const config = configSchema.parse({ consumer: { waitForMount: { enabled: waitForMount } } });
        const result = reviewAdmission(admissionReviewFor(pod), DEFAULT_ENTRY, config);
        const name = fieldName(field.path);
        if (result.kind === 'bad-request') {
          // Without spec.containers there is no pod to decide on; the message says so.
          expect(name.startsWith('spec')).toBe(true);
          expect(result.message).toContain('spec.containers');
          seen.refused++;
          return;
        }
        const response = result.review.response;
        if (!response.allowed) {
          seen.refused++;
          expect(response.patch).toBeUndefined();
          const message = response.status?.message ?? '';
          expect(message).not.toMatch(/\n\s+at /);
          if (result.decision.reason === 'invalid-pod') {
            // The field itself, or one inside it (an annotation of the annotations), or the one holding it.
            expect(message.includes(name) || name.startsWith(message.slice(0, message.indexOf(' ')))).toBe(true);
            expect(message).toMatch(/ must be /);
          }
          return;
        }
        const ops = response.patch === undefined ? [] : JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
        const copy = structuredClone(pod);
        expect(jsonpatch.validate(ops, copy)).toBeUndefined();
        const out = jsonpatch.applyPatch(copy, ops, true, false).newDocument;
        assertValidPod(withoutNulls(out));
        seen.patched++;
      }),
      { numRuns: 1500 },
    );
    expect(seen.patched).toBeGreaterThan(120);
    expect(seen.refused).toBeGreaterThan(100);
  });
});

describe('null is absent, as the API server reads it', () => {
  it.each([
    ['metadata', ['metadata']],
    ['metadata.annotations', ['metadata', 'annotations']],
    ['metadata.labels of a namespace-default consumer', ['metadata', 'labels']],
    ['spec.volumes', ['spec', 'volumes']],
    ['every container\'s volumeMounts', ['spec', 'containers', 0, 'volumeMounts']],
    ['spec.initContainers', ['spec', 'initContainers']],
  ] as const)('injects a consumer whose %s is null', (_, path) => {
    const pod = loadPod('sonarr');
    set(pod, path, null);
    const entry = path[1] === 'labels' || path[0] === 'metadata' ? { defaultRole: 'consumer' as const, podSecurityEnforced: false } : DEFAULT_ENTRY;
    const config = configSchema.parse({ consumer: { waitForMount: { enabled: true } } });
    const result = reviewAdmission(admissionReviewFor(pod), entry, config);
    if (result.kind !== 'response') throw new Error(result.message);
    expect(result.review.response).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    const ops = JSON.parse(Buffer.from(result.review.response.patch ?? '', 'base64').toString('utf8'));
    expect(jsonpatch.validate(ops, pod)).toBeUndefined();
    const out = jsonpatch.applyPatch(pod, ops, true, false).newDocument;
    assertValidPod(out);
    expect(out.spec.containers[0].volumeMounts).toContainEqual({ name: 'dfs-injector-dfs', mountPath: '/mnt/dfs', readOnly: true, mountPropagation: 'HostToContainer' });
    expect(out.metadata.annotations['dfs-injector.io/status']).toContain('"role":"consumer"');
  });

  it.each([
    ['metadata.annotations', ['metadata', 'annotations'], 'a string', 'metadata.annotations must be an object of strings, not a string'],
    ['metadata.annotations', ['metadata', 'annotations'], ['x'], 'metadata.annotations must be an object of strings, not an array'],
    ['spec.volumes', ['spec', 'volumes'], { a: 1 }, 'spec.volumes must be an array, not an object'],
    ['a volumeMount', ['spec', 'containers', 0, 'volumeMounts'], 'x', 'spec.containers[0].volumeMounts must be an array, not a string'],
  ] as const)('denies a pod whose %s has the wrong type, naming the field and the rule', (_, path, value, message) => {
    const pod = loadPod('sonarr');
    set(pod, path, value);
    const result = reviewAdmission(admissionReviewFor(pod), DEFAULT_ENTRY, configSchema.parse({}));
    if (result.kind !== 'response') throw new Error(result.message);
    expect(result.review.response).toMatchObject({ allowed: false, status: { code: 400, message, reason: 'BadRequest' } });
  });
});
