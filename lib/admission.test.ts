import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { assertValidPod } from '../test/support/k8s-schema.js';
import { reviewAdmission, type ReviewResult } from './admission.js';
import { configSchema, defaultConfig, type Config } from './config.js';
import { DEFAULT_ENTRY, type EntryContext } from './entry.js';

const NAMESPACE_CONSUMER: EntryContext = { defaultRole: 'consumer', podSecurityEnforced: false };

function review(object: unknown, entry: EntryContext = DEFAULT_ENTRY, config: Config = defaultConfig, options = {}): Extract<ReviewResult, { kind: 'response' }> {
  const result = reviewAdmission(admissionReviewFor(object, options), entry, config);
  if (result.kind !== 'response') throw new Error(`expected a response, got ${result.message}`);
  return result;
}

function patched(object: Record<string, any>, result: Extract<ReviewResult, { kind: 'response' }>): Record<string, any> {
  const patch = result.review.response.patch;
  if (patch === undefined) return object;
  const ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
  return jsonpatch.applyPatch(object, ops, true, false).newDocument;
}

const status = (pod: Record<string, any>): Record<string, any> => JSON.parse(pod.metadata.annotations['dfs-injector.io/status']);

describe('consumer injection', () => {
  it('adds a read-only HostToContainer hostPath mount of the node DFS path to the Sonarr pod', () => {
    const pod = loadPod('sonarr');
    const result = review(pod);
    expect(result.review.response.allowed).toBe(true);
    expect(result.decision).toMatchObject({ role: 'consumer', outcome: 'injected', reason: 'pod-label' });
    const out = patched(pod, result);
    expect(out.spec.volumes.at(-1)).toEqual({ name: 'dfs-injector-dfs', hostPath: { path: '/mnt/decypharr-dfs', type: 'Directory' } });
    expect(out.spec.containers[0].volumeMounts.at(-1)).toEqual({ name: 'dfs-injector-dfs', mountPath: '/mnt/dfs', readOnly: true, mountPropagation: 'HostToContainer' });
    // The existing NFS media mount and the projected token stay exactly where they were.
    expect(out.spec.volumes.slice(0, -1)).toEqual(pod.spec.volumes);
    expect(out.spec.containers[0].volumeMounts.slice(0, -1)).toEqual(pod.spec.containers[0].volumeMounts);
    expect(status(out)).toMatchObject({ role: 'consumer', volumes: ['dfs-injector-dfs'], mounts: ['sonarr:/mnt/dfs'], version: '0.1.0' });
    expect(out.metadata.annotations['kubectl.kubernetes.io/restartedAt']).toBe(pod.metadata.annotations['kubectl.kubernetes.io/restartedAt']);
    expect(result.review.response.auditAnnotations).toEqual({ role: 'consumer', injected: 'volumes=dfs-injector-dfs mounts=sonarr:/mnt/dfs' });
    assertValidPod(out);
  });

  it('injects nothing the second time it sees an injected pod', () => {
    const pod = loadPod('sonarr');
    const once = patched(pod, review(pod));
    const again = review(once);
    expect(again.review.response.patch).toBeUndefined();
    expect(again.decision).toMatchObject({ outcome: 'unchanged', reason: 'already-injected' });
  });

  it('mounts only the containers named by the containers annotation, leaving init containers alone', () => {
    const pod = loadPod('plex-multi-container');
    const out = patched(pod, review(pod));
    const mounted = out.spec.containers.filter((c: any) => c.volumeMounts.some((m: any) => m.name === 'dfs-injector-dfs')).map((c: any) => c.name);
    expect(mounted).toEqual(['plex', 'transcoder']);
    expect(out.spec.initContainers).toEqual(pod.spec.initContainers);
    assertValidPod(out);
  });

  it('can mount into a native sidecar when it is named', () => {
    const pod = loadPod('radarr-native-sidecar');
    pod.metadata.annotations = { 'dfs-injector.io/containers': 'radarr,log-shipper' };
    const out = patched(pod, review(pod));
    expect(out.spec.initContainers[0].volumeMounts.at(-1).mountPath).toBe('/mnt/dfs');
    expect(out.spec.containers[0].volumeMounts.at(-1).mountPath).toBe('/mnt/dfs');
    assertValidPod(out);
  });

  it('mounts every regular container but not a native sidecar by default', () => {
    const pod = loadPod('radarr-native-sidecar');
    const out = patched(pod, review(pod));
    expect(out.spec.initContainers).toEqual(pod.spec.initContainers);
    expect(out.spec.containers[0].volumeMounts.at(-1).name).toBe('dfs-injector-dfs');
  });

  it('honours the mount-path annotation', () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/mount-path'] = '/data/dfs';
    const out = patched(pod, review(pod));
    expect(out.spec.containers[0].volumeMounts.at(-1).mountPath).toBe('/data/dfs');
  });

  it('denies an invalid mount-path annotation, naming the annotation, its value and the rule', () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/mount-path'] = 'relative/../dfs';
    const result = review(pod);
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.patch).toBeUndefined();
    expect(result.review.response.status?.code).toBe(400);
    expect(result.review.response.status?.message).toBe(
      'annotation dfs-injector.io/mount-path="relative/../dfs" is invalid: the path must be an absolute path without "..", ":" or a trailing "/"',
    );
  });

  it('denies a containers annotation that names a container the pod does not have', () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/containers'] = 'sonar';
    const result = review(pod);
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.status?.message).toContain('annotation dfs-injector.io/containers names container "sonar", which is not in this pod (containers: sonarr)');
  });

  it('does not overwrite another volume already mounted at the mount path, and says so', () => {
    const pod = loadPod('plex-multi-container');
    pod.spec.containers[1].volumeMounts.push({ name: 'transcode', mountPath: '/mnt/dfs' });
    const result = review(pod);
    const out = patched(pod, result);
    expect(out.spec.containers[1].volumeMounts.filter((m: any) => m.mountPath === '/mnt/dfs')).toEqual([{ name: 'transcode', mountPath: '/mnt/dfs' }]);
    expect(result.review.response.warnings).toContain('container "transcoder" already mounts volume "transcode" at /mnt/dfs; the DFS mount was not added to it');
    expect(out.spec.containers[0].volumeMounts.at(-1).name).toBe('dfs-injector-dfs');
  });

  it('denies a pod whose volume of the same name is something else', () => {
    const pod = loadPod('sonarr');
    pod.spec.volumes.push({ name: 'dfs-injector-dfs', emptyDir: {} });
    const result = review(pod);
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.status?.message).toContain('volume "dfs-injector-dfs" already exists and is not a hostPath of /mnt/decypharr-dfs');
  });

  it('reuses a hand-written hostPath volume of the node path instead of adding a second one', () => {
    const pod = loadPod('sonarr');
    pod.spec.volumes.push({ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } });
    const result = review(pod);
    const out = patched(pod, result);
    expect(out.spec.volumes.filter((v: any) => v.hostPath)).toHaveLength(1);
    expect(out.spec.containers[0].volumeMounts.at(-1)).toMatchObject({ name: 'dfs', mountPath: '/mnt/dfs' });
    expect(result.review.response.warnings?.[0]).toContain('volume "dfs" already mounts host path /mnt/decypharr-dfs');
  });

  it('adds a wait-for-mount init container when the config asks for one', () => {
    const config = configSchema.parse({ consumer: { waitForMount: { enabled: true, timeoutSeconds: 60 } } });
    const pod = loadPod('sonarr');
    const out = patched(pod, review(pod, DEFAULT_ENTRY, config));
    expect(out.spec.initContainers).toHaveLength(1);
    expect(out.spec.initContainers[0]).toMatchObject({ name: 'dfs-wait-for-mount', image: 'busybox:1.37' });
    // The timeout reaches the script as data, never as part of its text (issue 14, defect 7).
    expect(out.spec.initContainers[0].env).toEqual([
      { name: 'DFS_MOUNT_PATH', value: '/mnt/dfs' },
      { name: 'DFS_WAIT_TIMEOUT', value: '60' },
    ]);
    assertValidPod(out);
  });

  it('warns about a misspelt dfs-injector annotation instead of ignoring it silently', () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/mountpath'] = '/x';
    const result = review(pod);
    expect(result.review.response.allowed).toBe(true);
    expect(result.review.response.warnings?.[0]).toMatch(/^annotation dfs-injector.io\/mountpath is not known and was ignored/);
  });
});

describe('role selection', () => {
  it('leaves an unlabelled pod alone on the labelled-pods path', () => {
    const pod = loadPod('sonarr');
    delete pod.metadata.labels['dfs-injector.io/role'];
    const result = review(pod);
    expect(result.review.response).toEqual({ uid: expect.any(String), allowed: true });
    expect(result.decision).toMatchObject({ role: 'unselected', outcome: 'skipped', reason: 'no-role' });
  });

  it('injects an unlabelled pod as a consumer on the namespace-default path', () => {
    const pod = loadPod('sonarr');
    delete pod.metadata.labels['dfs-injector.io/role'];
    const result = review(pod, NAMESPACE_CONSUMER);
    expect(result.decision).toMatchObject({ role: 'consumer', outcome: 'injected', reason: 'namespace-default' });
  });

  it('lets role none opt a pod out, even in a namespace of consumers', () => {
    const pod = loadPod('sonarr');
    pod.metadata.labels['dfs-injector.io/role'] = 'none';
    const result = review(pod, NAMESPACE_CONSUMER);
    expect(result.review.response.patch).toBeUndefined();
    expect(result.decision).toMatchObject({ role: 'none', outcome: 'skipped', reason: 'role-none' });
  });

  it('denies a role label that is not a role', () => {
    const pod = loadPod('sonarr');
    pod.metadata.labels['dfs-injector.io/role'] = 'consumr';
    const result = review(pod);
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.status?.message).toBe('label dfs-injector.io/role="consumr" is not a role: it must be one of source, consumer, none');
  });

  it('refuses a consumer in a namespace that enforces Pod Security baseline, before PodSecurity does', () => {
    const result = review(loadPod('sonarr'), { defaultRole: undefined, podSecurityEnforced: true });
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.status).toMatchObject({ code: 403 });
    expect(result.review.response.status?.message).toContain('forbids a hostPath volume');
  });
});

describe('source injection', () => {
  it('adds an emptyDir with Bidirectional propagation and the smbd sidecar with the shim preloaded', () => {
    const pod = loadPod('decypharr-source');
    const result = review(pod);
    expect(result.decision).toMatchObject({ role: 'source', outcome: 'injected' });
    const out = patched(pod, result);
    expect(out.spec.volumes.slice(-2)).toEqual([
      { name: 'dfs-injector-source', emptyDir: {} },
      { name: 'dfs-injector-smbd-state', emptyDir: { sizeLimit: '64Mi' } },
    ]);
    expect(out.spec.containers[0].volumeMounts.at(-1)).toEqual({ name: 'dfs-injector-source', mountPath: '/mnt/dfs', mountPropagation: 'Bidirectional' });
    const sidecar = out.spec.containers[1];
    expect(sidecar.name).toBe('dfs-smbd');
    expect(sidecar.volumeMounts).toEqual([
      { name: 'dfs-injector-source', mountPath: '/mnt/dfs', readOnly: true, mountPropagation: 'HostToContainer' },
      { name: 'dfs-injector-smbd-state', mountPath: '/run/dfs-smbd' },
    ]);
    // Read-only root, state in the emptyDir, and only the capabilities smbd uses.
    expect(sidecar.securityContext).toMatchObject({ readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SETGID', 'SETUID'] } });
    expect(sidecar.env).toEqual(
      expect.arrayContaining([
        { name: 'DFS_SHARE_NAME', value: 'dfs' },
        { name: 'DFS_SHARE_PATH', value: '/mnt/dfs' },
        { name: 'LD_PRELOAD', value: '/usr/local/lib/dfs/fix_nlink.so' },
      ]),
    );
    expect(sidecar.ports).toEqual([{ name: 'smb', containerPort: 445, protocol: 'TCP' }]);
    expect(sidecar.readinessProbe.exec.command).toEqual(['/usr/local/bin/dfs-smbd-ready']);
    expect(status(out)).toMatchObject({ role: 'source', containers: ['dfs-smbd'] });
    assertValidPod(out);
  });

  it('denies a source whose container is not privileged, saying why', () => {
    const pod = loadPod('decypharr-source');
    pod.spec.containers[0].securityContext = { capabilities: { add: ['SYS_ADMIN'] } };
    const result = review(pod);
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.status?.message).toBe(
      'source container "decypharr" must set securityContext.privileged: true: the FUSE mount reaches the smbd sidecar only through mountPropagation Bidirectional, which Kubernetes allows only in privileged containers',
    );
  });

  it('reuses the volume already mounted at the source path and sets Bidirectional on it', () => {
    const pod = loadPod('decypharr-source');
    pod.spec.volumes.push({ name: 'fuse', emptyDir: {} });
    pod.spec.containers[0].volumeMounts.push({ name: 'fuse', mountPath: '/mnt/dfs' });
    const result = review(pod);
    const out = patched(pod, result);
    expect(out.spec.containers[0].volumeMounts.at(-1)).toEqual({ name: 'fuse', mountPath: '/mnt/dfs', mountPropagation: 'Bidirectional' });
    // Only the smbd state volume is added; the source volume is the pod's own.
    expect(out.spec.volumes.map((v: { name: string }) => v.name)).toEqual([...pod.spec.volumes.map((v: { name: string }) => v.name), 'dfs-injector-smbd-state']);
    expect(out.spec.containers[1].volumeMounts[0].name).toBe('fuse');
    expect(result.review.response.warnings?.[0]).toContain('set mountPropagation: Bidirectional');
  });

  it('refuses a pod whose volume named like the smbd state volume is not an emptyDir', () => {
    const pod = loadPod('decypharr-source');
    pod.spec.volumes.push({ name: 'dfs-injector-smbd-state', hostPath: { path: '/var/lib' } });
    const result = review(pod);
    expect(result.review.response.allowed).toBe(false);
    expect(result.review.response.status?.message).toContain('volume "dfs-injector-smbd-state" already exists and is not an emptyDir');
  });

  it('honours source-container, source-path and share-name annotations', () => {
    const pod = loadPod('decypharr-source');
    pod.spec.containers.unshift({ name: 'vpn', image: 'qmcgaw/gluetun:v3.40.0' });
    pod.spec.containers[1].securityContext = { privileged: true };
    pod.metadata.annotations = { 'dfs-injector.io/source-container': 'decypharr', 'dfs-injector.io/source-path': '/mnt/remote', 'dfs-injector.io/share-name': 'realdebrid' };
    const out = patched(pod, review(pod));
    expect(out.spec.containers[1].volumeMounts.at(-1).mountPath).toBe('/mnt/remote');
    expect(out.spec.containers[2].env).toEqual(expect.arrayContaining([{ name: 'DFS_SHARE_NAME', value: 'realdebrid' }, { name: 'DFS_SHARE_PATH', value: '/mnt/remote' }]));
    assertValidPod(out);
  });

  it('delivers the shim through an init container in shim mode init', () => {
    const config = configSchema.parse({ source: { shim: { mode: 'init', initImage: 'ghcr.io/dfs-injector/smbd:0.1.0' }, sidecar: { image: 'ghcr.io/servercontainers/samba:4.22' } } });
    const pod = loadPod('decypharr-source');
    const out = patched(pod, review(pod, DEFAULT_ENTRY, config));
    expect(out.spec.initContainers).toEqual([expect.objectContaining({ name: 'dfs-shim-install', command: ['cp', '/usr/local/lib/dfs/glibc/fix_nlink.so', '/usr/local/bin/dfs-smbd-ready', '/dfs-shim/'] })]);
    expect(out.spec.containers.at(-1).readinessProbe.exec.command).toEqual(['sh', '/dfs-shim/dfs-smbd-ready']);
    const sidecar = out.spec.containers.at(-1);
    expect(sidecar.image).toBe('ghcr.io/servercontainers/samba:4.22');
    expect(sidecar.env).toContainEqual({ name: 'LD_PRELOAD', value: '/dfs-shim/fix_nlink.so' });
    expect(sidecar.volumeMounts).toContainEqual({ name: 'dfs-injector-shim', mountPath: '/dfs-shim', readOnly: true });
    assertValidPod(out);
  });

  it('adds no shim in shim mode off', () => {
    const config = configSchema.parse({ source: { shim: { mode: 'off' } } });
    const pod = loadPod('decypharr-source');
    const out = patched(pod, review(pod, DEFAULT_ENTRY, config));
    const sidecar = out.spec.containers.at(-1);
    expect(sidecar.env.map((e: any) => e.name)).not.toContain('LD_PRELOAD');
    expect(out.spec.initContainers).toBeUndefined();
  });

  it('denies a source pod whose port 445 is taken by another container', () => {
    const pod = loadPod('decypharr-source');
    pod.spec.containers[0].ports.push({ containerPort: 445, protocol: 'TCP' });
    const result = review(pod);
    expect(result.review.response.status?.message).toContain('container "decypharr" already uses port 445');
  });
});

describe('requests the webhook passes through', () => {
  it.each([
    ['an UPDATE', { operation: 'UPDATE' as const }, 'not-create'],
    ['a Deployment', { kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, 'not-a-pod'],
    ['a pod subresource', { subResource: 'ephemeralcontainers' }, 'subresource'],
  ])('allows %s without a patch', (_what, options, reason) => {
    const result = review(loadPod('sonarr'), DEFAULT_ENTRY, defaultConfig, options);
    expect(result.review.response).toEqual({ uid: expect.any(String), allowed: true });
    expect(result.decision.reason).toBe(reason);
  });

  it('answers a dry run exactly like a real request', () => {
    const pod = loadPod('sonarr');
    const real = review(pod, DEFAULT_ENTRY, defaultConfig, { uid: 'u1' });
    const dry = review(pod, DEFAULT_ENTRY, defaultConfig, { uid: 'u1', dryRun: true });
    expect(dry.review).toEqual(real.review);
    expect(dry.decision.dryRun).toBe(true);
  });

  it('names the pod by generateName when the API server has not named it yet', () => {
    expect(review(loadPod('sonarr')).decision).toMatchObject({ name: 'sonarr-7d9f8b6c5d-', namespace: 'media' });
  });
});

describe('malformed AdmissionReviews', () => {
  const good = (): Record<string, any> => admissionReviewFor(loadPod('sonarr'));
  it.each([
    ['a JSON array', () => [], 'the body must be a JSON object'],
    ['an old API version', () => ({ ...good(), apiVersion: 'admission.k8s.io/v1beta1' }), 'invalid AdmissionReview: apiVersion must be "admission.k8s.io/v1"'],
    ['no request', () => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), 'invalid AdmissionReview: request is required and must be an object'],
    ['no uid', () => { const r = good(); delete r.request.uid; return r; }, 'invalid AdmissionReview: request.uid is required and must be a string'],
    ['no kind', () => { const r = good(); delete r.request.kind; return r; }, 'invalid AdmissionReview: request.kind is required'],
    ['a pod without containers', () => { const r = good(); delete r.request.object.spec.containers; return r; }, 'request.object must be a Pod with spec.containers'],
  ])('rejects %s with a message naming the field', (_what, body, message) => {
    const result = reviewAdmission(body(), DEFAULT_ENTRY, defaultConfig);
    expect(result.kind).toBe('bad-request');
    expect(result.kind === 'bad-request' && result.message).toContain(message);
  });
});
