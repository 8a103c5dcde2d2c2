import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod, POD_FIXTURES } from '../test/support/fixtures.js';
import { assertValidPod } from '../test/support/k8s-schema.js';
import { reviewAdmission } from './admission.js';
import { configSchema } from './config.js';
import type { EntryContext } from './entry.js';

const arbitraryCase = fc.record({
  fixture: fc.constantFrom(...POD_FIXTURES),
  role: fc.constantFrom('consumer', 'source', 'none', undefined),
  defaultRole: fc.constantFrom('consumer' as const, undefined),
  mountPath: fc.constantFrom(undefined, '/mnt/dfs', '/data/dfs', '/config'),
  dropAnnotations: fc.boolean(),
  dropVolumes: fc.boolean(),
  waitForMount: fc.boolean(),
  shim: fc.constantFrom('image', 'init', 'off'),
  privileged: fc.boolean(),
});

function decodePatch(patch: string | undefined): jsonpatch.Operation[] {
  return patch === undefined ? [] : JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
}

describe('the JSON patch the webhook returns', () => {
  it('applies to the object as sent, yields a valid pod that only grew arrays, and is empty on a second pass', () => {
    const seen = { injected: 0, denied: 0 };
    fc.assert(
      fc.property(arbitraryCase, (c) => {
        const pod = loadPod(c.fixture);
        const labels = pod.metadata.labels as Record<string, string>;
        if (c.role === undefined) delete labels['dfs-injector.io/role'];
        else labels['dfs-injector.io/role'] = c.role;
        if (c.dropAnnotations) delete pod.metadata.annotations;
        if (c.mountPath !== undefined) pod.metadata.annotations = { ...pod.metadata.annotations, 'dfs-injector.io/mount-path': c.mountPath };
        if (c.dropVolumes) {
          delete pod.spec.volumes;
          for (const container of pod.spec.containers) delete container.volumeMounts;
          for (const container of pod.spec.initContainers ?? []) delete container.volumeMounts;
        }
        pod.spec.containers[0].securityContext = { ...pod.spec.containers[0].securityContext, privileged: c.privileged };
        const config = configSchema.parse({ consumer: { waitForMount: { enabled: c.waitForMount } }, source: { shim: { mode: c.shim } } });
        const entry: EntryContext = { defaultRole: c.defaultRole, podSecurityEnforced: false };

        const original = structuredClone(pod);
        const first = reviewAdmission(admissionReviewFor(pod), entry, config);
        if (first.kind !== 'response') throw new Error(first.message);
        expect(pod).toEqual(original);
        const ops = decodePatch(first.review.response.patch);
        if (first.decision.outcome === 'injected') seen.injected++;
        if (!first.review.response.allowed) {
          seen.denied++;
          expect(ops).toEqual([]);
          return;
        }
        expect(jsonpatch.validate(ops, pod)).toBeUndefined();
        const mutated = jsonpatch.applyPatch(pod, ops, true, false).newDocument;
        assertValidPod(mutated);
        for (const key of ['volumes', 'containers', 'initContainers'] as const) {
          const before = (original.spec[key] ?? []) as unknown[];
          expect((mutated.spec[key] ?? []).slice(0, before.length).map((x: any) => x.name)).toEqual(before.map((x: any) => x.name));
        }
        const second = reviewAdmission(admissionReviewFor(mutated), entry, config);
        if (second.kind !== 'response') throw new Error(second.message);
        expect(second.review.response.allowed).toBe(true);
        expect(second.review.response.patch).toBeUndefined();
      }),
      { numRuns: 300 },
    );
    // The generator must really exercise both paths, or the property says nothing.
    expect(seen.injected).toBeGreaterThan(50);
    expect(seen.denied).toBeGreaterThan(5);
  });
});
