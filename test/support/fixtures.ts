import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const FIXTURE_DIR = new URL('../fixtures/pods/', import.meta.url);

export const POD_FIXTURES = ['sonarr', 'plex-multi-container', 'radarr-native-sidecar', 'decypharr-source'] as const;
export type PodFixture = (typeof POD_FIXTURES)[number];

/** A fresh deep copy of a pod exactly as the API server sends it to admission (defaults filled in). */
export function loadPod(name: PodFixture): Record<string, any> {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURE_DIR), 'utf8'));
}

export interface ReviewOptions {
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  namespace?: string;
  dryRun?: boolean;
  uid?: string;
  kind?: { group: string; version: string; kind: string };
  subResource?: string;
}

/** Wraps an object the way kube-apiserver does when it calls a mutating webhook. */
export function admissionReviewFor(object: unknown, options: ReviewOptions = {}): Record<string, any> {
  const meta = (object as { metadata?: { name?: string; namespace?: string } }).metadata ?? {};
  const namespace = options.namespace ?? meta.namespace ?? 'default';
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: options.uid ?? randomUUID(),
      kind: options.kind ?? { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: options.kind ?? { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      ...(options.subResource === undefined ? {} : { subResource: options.subResource }),
      ...(meta.name === undefined ? {} : { name: meta.name }),
      namespace,
      operation: options.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: randomUUID(), groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: options.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}
