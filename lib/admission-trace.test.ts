// The trace each admission decision leaves: `warnings` (shown to the user by kubectl) and
// `auditAnnotations` (in the API server's audit log). lib/admission.test.ts covers a consumer's
// injected annotation and a few warnings; this file covers every other outcome.
import { describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { reviewAdmission, type AdmissionResponse } from './admission.js';
import { configSchema, defaultConfig, type Config } from './config.js';
import { DEFAULT_ENTRY, type EntryContext } from './entry.js';
import { injectDocument } from './inject.js';

const NAMESPACE_CONSUMER: EntryContext = { defaultRole: 'consumer', podSecurityEnforced: false };
const POD_SECURITY: EntryContext = { defaultRole: undefined, podSecurityEnforced: true };

function respond(object: unknown, entry: EntryContext = DEFAULT_ENTRY, config: Config = defaultConfig): AdmissionResponse {
  const result = reviewAdmission(admissionReviewFor(object), entry, config);
  if (result.kind !== 'response') throw new Error(result.message);
  return result.review.response;
}

describe('auditAnnotations', () => {
  it('record the sidecar, volume and Bidirectional mount of a source', () => {
    expect(respond(loadPod('decypharr-source')).auditAnnotations).toEqual({
      role: 'source',
      injected: 'volumes=dfs-injector-source,dfs-injector-smbd-state mounts=decypharr:/mnt/dfs:Bidirectional containers=dfs-smbd',
    });
  });

  it('record init containers: the shim installer of shim mode init', () => {
    const config = configSchema.parse({ source: { shim: { mode: 'init' } } });
    expect(respond(loadPod('decypharr-source'), DEFAULT_ENTRY, config).auditAnnotations?.injected).toBe(
      'volumes=dfs-injector-source,dfs-injector-smbd-state,dfs-injector-shim mounts=decypharr:/mnt/dfs:Bidirectional containers=dfs-smbd initContainers=dfs-shim-install',
    );
  });

  it('record init containers: the wait-for-mount container of a consumer', () => {
    const config = configSchema.parse({ consumer: { waitForMount: { enabled: true } } });
    expect(respond(loadPod('sonarr'), DEFAULT_ENTRY, config).auditAnnotations?.injected).toBe('volumes=dfs-injector-dfs mounts=sonarr:/mnt/dfs initContainers=dfs-wait-for-mount');
  });

  it('record every mounted container of a multi-container consumer', () => {
    expect(respond(loadPod('plex-multi-container')).auditAnnotations).toEqual({ role: 'consumer', injected: 'volumes=dfs-injector-dfs mounts=plex:/mnt/dfs,transcoder:/mnt/dfs' });
  });

  it('record no volume when a hand-written hostPath was reused, only the mounts', () => {
    const pod = loadPod('sonarr');
    pod.spec.volumes.push({ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } });
    expect(respond(pod).auditAnnotations).toEqual({ role: 'consumer', injected: 'mounts=sonarr:/mnt/dfs' });
  });

  it.each([
    ['an invalid annotation', (p: Record<string, any>) => (p.metadata.annotations['dfs-injector.io/mount-path'] = 'x'), DEFAULT_ENTRY, { role: 'consumer', denied: 'invalid-annotation' }],
    ['an invalid role', (p: Record<string, any>) => (p.metadata.labels['dfs-injector.io/role'] = 'consumr'), DEFAULT_ENTRY, { role: 'unselected', denied: 'invalid-role-label' }],
    ['Pod Security', () => undefined, POD_SECURITY, { role: 'consumer', denied: 'pod-security' }],
    ['a conflict', (p: Record<string, any>) => p.spec.volumes.push({ name: 'dfs-injector-dfs', emptyDir: {} }), DEFAULT_ENTRY, { role: 'consumer', denied: 'consumer-conflict' }],
  ])('record the reason of a denial for %s', (_what, edit, entry, expected) => {
    const pod = loadPod('sonarr');
    edit(pod);
    const response = respond(pod, entry);
    expect(response.allowed).toBe(false);
    expect(response.auditAnnotations).toEqual(expected);
  });

  it('record a source conflict as such', () => {
    const pod = loadPod('decypharr-source');
    pod.spec.containers[0].securityContext = {};
    expect(respond(pod).auditAnnotations).toEqual({ role: 'source', denied: 'source-conflict' });
  });

  it.each([
    ['a pod without a role label', (p: Record<string, any>) => delete p.metadata.labels['dfs-injector.io/role'], DEFAULT_ENTRY],
    ['a pod with role none', (p: Record<string, any>) => (p.metadata.labels['dfs-injector.io/role'] = 'none'), NAMESPACE_CONSUMER],
  ])('are absent for %s, which passes untouched', (_what, edit, entry) => {
    const pod = loadPod('sonarr');
    edit(pod);
    const response = respond(pod, entry);
    expect(response.auditAnnotations).toBeUndefined();
    expect(response.warnings).toBeUndefined();
  });

  it('are absent when the webhook sees an injected pod again (reinvocation)', () => {
    const injected = injectDocument(loadPod('decypharr-source'), defaultConfig).object;
    const response = respond(injected);
    expect(response).toEqual({ uid: expect.any(String), allowed: true });
  });
});

describe('warnings', () => {
  it('say when an override does not apply to the role', () => {
    const pod = loadPod('decypharr-source');
    pod.metadata.annotations = { 'dfs-injector.io/mount-path': '/data' };
    expect(respond(pod).warnings).toEqual(['annotation dfs-injector.io/mount-path applies to consumer pods and was ignored on this source pod']);
  });

  it('still reach the user when the pod is denied', () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/mount-path'] = 'x';
    pod.metadata.annotations['dfs-injector.io/sharename'] = 'y';
    const response = respond(pod);
    expect(response.allowed).toBe(false);
    expect(response.warnings).toEqual([expect.stringMatching(/^annotation dfs-injector.io\/sharename is not known and was ignored/)]);
  });

  it('say that an invalid status annotation was rewritten', () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/status'] = 'not json';
    const response = respond(pod);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toContain('annotation dfs-injector.io/status was not valid dfs-injector status JSON and was rewritten');
  });

  it('say which container already had another volume at the mount path, with the mount still injected elsewhere', () => {
    const pod = loadPod('plex-multi-container');
    pod.spec.containers[0].volumeMounts.push({ name: 'config', mountPath: '/mnt/dfs', subPath: 'dfs' });
    const response = respond(pod);
    expect(response.warnings).toEqual(['container "plex" already mounts volume "config" at /mnt/dfs; the DFS mount was not added to it']);
    expect(response.auditAnnotations?.injected).toBe('volumes=dfs-injector-dfs mounts=transcoder:/mnt/dfs');
  });
});
