import { describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { sampleAdmissionReview } from './sample-review.js';

// `serve --dev` writes a sample review for curl; the unit tests send the same Sonarr pod from
// test/fixtures/pods/sonarr.json. The two are one example, held equal here: change both or neither.
describe('the dev server sample review', () => {
  it('carries the sonarr test fixture, as kube-apiserver would send it for a CREATE in media', () => {
    const sample = sampleAdmissionReview() as { request: Record<string, unknown> };
    expect(sample.request.object).toEqual(loadPod('sonarr'));
    const expected = admissionReviewFor(loadPod('sonarr'), { namespace: 'media' });
    expect(sample).toMatchObject({ apiVersion: expected.apiVersion, kind: expected.kind, request: { operation: 'CREATE', namespace: 'media', kind: expected.request.kind } });
  });
});
