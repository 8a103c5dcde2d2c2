// Benchmark inputs built from the same pod fixtures the tests use: pods as the API server sends
// them, with defaults filled in, so the webhook does its real work (an injection, not a skip).
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';

const FIXTURE_DIR = new URL('../../test/fixtures/pods/', import.meta.url);
export const POD_FIXTURES = ['sonarr', 'plex-multi-container', 'radarr-native-sidecar', 'decypharr-source'];

/** @param {string} name */
export function loadPod(name) {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURE_DIR), 'utf8'));
}

/**
 * What kube-apiserver posts for a Pod CREATE; the same shape as admissionReviewFor() in
 * test/support/fixtures.ts, with fixed uids so every request and every run is byte-identical.
 * @param {Record<string, any>} pod
 */
export function admissionReviewFor(pod) {
  const meta = pod.metadata ?? {};
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '0d3e7a4c-6b1f-4f7e-9a52-3c8d2b1e5f60',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      ...(meta.name === undefined ? {} : { name: meta.name }),
      namespace: meta.namespace ?? 'default',
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: '8f1c2b7e-2d4a-4c1b-b7e9-5a6d3f0c9e21',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

const NAME = '__BENCH_NAME__';

/** A pod fixture as a bare Pod manifest (what `kubectl apply` would be given). */
function asPod(pod) {
  const { metadata, spec } = structuredClone(pod);
  const { generateName: _g, ownerReferences: _o, ...meta } = metadata;
  return { apiVersion: 'v1', kind: 'Pod', metadata: { ...meta, name: NAME }, spec };
}

/** The same pod as a Deployment's template, as a user writes it. */
function asDeployment(pod) {
  const { metadata, spec } = structuredClone(pod);
  const labels = { ...(metadata.labels ?? {}) };
  delete labels['pod-template-hash'];
  const selector = { app: NAME };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAME, namespace: metadata.namespace ?? 'media' },
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      template: { metadata: { labels: { ...labels, ...selector }, ...(metadata.annotations ? { annotations: metadata.annotations } : {}) }, spec },
    },
  };
}

/**
 * A multi-document YAML stream of `count` documents cycling through every fixture as a Pod and
 * as a Deployment, each with its own name.
 * @param {number} count
 */
export function manifestStream(count) {
  const templates = POD_FIXTURES.flatMap((name) => {
    const pod = loadPod(name);
    return [stringify(asDeployment(pod)), stringify(asPod(pod))];
  });
  const parts = [];
  for (let i = 0; i < count; i++) {
    const template = templates[i % templates.length];
    parts.push(template.replaceAll(NAME, `bench-${i}`));
  }
  return parts.join('---\n');
}
