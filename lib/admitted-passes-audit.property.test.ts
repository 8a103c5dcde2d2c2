import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod, POD_FIXTURES } from '../test/support/fixtures.js';
import { assertValidPod, withoutNulls } from '../test/support/k8s-schema.js';
import { reviewAdmission } from './admission.js';
import { auditInventory } from './audit/auditor.js';
import { severityRank, type InventoryPod } from './audit/types.js';
import { configSchema } from './config.js';
import type { EntryContext } from './entry.js';

// Issue 14, defect 5: a pod the webhook admits must pass `audit` with no finding at medium or
// above, whatever DFS mounts, sidecar or status annotation it arrived with. The pods are those the
// API server sends (a role label, or none in a namespace whose default role is consumer); the
// audit is the real one, run on the pod as the patch leaves it.

const MOUNT = fc.record({
  list: fc.constantFrom('containers', 'initContainers'),
  index: fc.nat({ max: 3 }),
  mountPath: fc.constantFrom('/mnt/dfs', '/mnt/dfs/', '/data', '/mnt/dfs/movies'),
  readOnly: fc.constantFrom(true, false, undefined, null),
  mountPropagation: fc.constantFrom(undefined, null, 'None', 'HostToContainer', 'Bidirectional'),
  subPath: fc.constantFrom(undefined, 'movies'),
});

const HAND_WRITTEN = fc.record({
  name: fc.constantFrom('dfs', 'dfs-injector-dfs', 'media-x', 'dfs-injector-source'),
  path: fc.constantFrom('/mnt/decypharr-dfs', '/mnt/decypharr-dfs/', '/mnt//decypharr-dfs', '/mnt/./decypharr-dfs/.', '/mnt/decypharr-dfs/movies', '/srv/other', '/mnt/decypharr-dfs2', '/mnt', '//mnt/./', '/', '/./'),
  mounts: fc.array(MOUNT, { maxLength: 3 }),
});

const NAMES = ['dfs', 'dfs-injector-dfs', 'media-x', 'dfs-injector-source', 'dfs-injector-shim', 'dfs-smbd', 'sonarr', 'dfs-wait-for-mount'];
const FORGED = fc.record({
  role: fc.constantFrom('consumer', 'source'),
  volumes: fc.subarray(NAMES),
  mounts: fc.subarray(['sonarr:/mnt/dfs', 'radarr:/movies', 'dfs-smbd:/mnt/dfs']),
  containers: fc.subarray(NAMES),
  initContainers: fc.subarray(NAMES),
  configHash: fc.constantFrom('0000000000000000', 'x'),
});

const SIDECAR = fc.record({ preload: fc.boolean(), readOnly: fc.boolean(), volume: fc.constantFrom('media-x', 'dfs-injector-source') });

const arbitraryCase = fc.record({
  fixture: fc.constantFrom(...POD_FIXTURES),
  selection: fc.constantFrom('consumer', 'source', 'namespace-default'),
  privileged: fc.boolean(),
  waitForMount: fc.boolean(),
  shim: fc.constantFrom('image', 'init', 'off'),
  handWritten: fc.array(HAND_WRITTEN, { maxLength: 2 }),
  forged: fc.option(FORGED, { nil: undefined }),
  sidecar: fc.option(SIDECAR, { nil: undefined }),
});

type Case = typeof arbitraryCase extends fc.Arbitrary<infer T> ? T : never;

function build(c: Case): { pod: Record<string, any>; entry: EntryContext } {
  const pod = loadPod(c.fixture);
  if (c.selection === 'namespace-default') delete pod.metadata.labels['dfs-injector.io/role'];
  else pod.metadata.labels['dfs-injector.io/role'] = c.selection;
  pod.spec.containers[0].securityContext = { ...pod.spec.containers[0].securityContext, privileged: c.privileged };
  pod.spec.volumes ??= [];
  for (const h of c.handWritten) {
    if (pod.spec.volumes.some((v: any) => v.name === h.name)) continue;
    pod.spec.volumes.push({ name: h.name, hostPath: { path: h.path } });
    for (const m of h.mounts) {
      const container = pod.spec[m.list]?.[m.index % Math.max(1, pod.spec[m.list]?.length ?? 1)];
      if (container === undefined) continue;
      const mount: Record<string, unknown> = { name: h.name, mountPath: m.mountPath };
      if (m.readOnly !== undefined) mount.readOnly = m.readOnly;
      if (m.mountPropagation !== undefined) mount.mountPropagation = m.mountPropagation;
      if (m.subPath !== undefined) mount.subPath = m.subPath;
      container.volumeMounts = [...(container.volumeMounts ?? []), mount];
    }
  }
  if (c.sidecar !== undefined) {
    if (!pod.spec.volumes.some((v: any) => v.name === c.sidecar?.volume)) pod.spec.volumes.push({ name: c.sidecar.volume, emptyDir: {} });
    pod.spec.containers.push({
      name: 'dfs-smbd',
      image: 'example/samba:1',
      env: c.sidecar.preload ? [{ name: 'LD_PRELOAD', value: '/usr/local/lib/dfs/fix_nlink.so' }] : [],
      volumeMounts: [{ name: c.sidecar.volume, mountPath: '/mnt/dfs', readOnly: c.sidecar.readOnly }],
    });
  }
  if (c.forged !== undefined) {
    pod.metadata.annotations = { ...pod.metadata.annotations, 'dfs-injector.io/status': JSON.stringify({ ...c.forged, version: '0.1.0' }) };
  }
  return { pod, entry: { defaultRole: c.selection === 'namespace-default' ? 'consumer' : undefined, podSecurityEnforced: false } };
}

function inventoryPod(pod: Record<string, any>): InventoryPod {
  return { kind: 'Pod', namespace: 'media', name: pod.metadata.name ?? pod.metadata.generateName, labels: pod.metadata.labels ?? {}, annotations: pod.metadata.annotations ?? {}, spec: pod.spec };
}

describe('a pod the webhook admits', () => {
  it('passes the audit with no finding at medium or above, and a second pass changes nothing', () => {
    const seen = { admittedWithDfs: 0, repaired: 0, denied: 0 };
    fc.assert(
      fc.property(arbitraryCase, (c) => {
        const { pod, entry } = build(c);
        const config = configSchema.parse({ consumer: { waitForMount: { enabled: c.waitForMount } }, source: { shim: { mode: c.shim } } });
        const first = reviewAdmission(admissionReviewFor(pod, { namespace: 'media' }), entry, config);
        if (first.kind !== 'response') throw new Error(first.message);
        const response = first.review.response;
        if (!response.allowed) {
          seen.denied++;
          return;
        }
        const ops = response.patch === undefined ? [] : JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
        const out = jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument;
        assertValidPod(withoutNulls(out));
        if (c.handWritten.length > 0) seen.admittedWithDfs++;
        if ((response.warnings ?? []).some((w) => w.includes('it is now read-only with HostToContainer'))) seen.repaired++;
        const labels = { 'dfs-injector.io/injection': 'enabled', ...(entry.defaultRole === 'consumer' ? { 'dfs-injector.io/default-role': 'consumer' } : {}) };
        const result = auditInventory({ namespaces: [{ name: 'media', labels }], pods: [inventoryPod(out)] }, { config, configSource: 'test' });
        expect(result.findings.filter((f) => severityRank(f.severity) >= severityRank('medium'))).toEqual([]);
        const second = reviewAdmission(admissionReviewFor(out, { namespace: 'media' }), entry, config);
        if (second.kind !== 'response') throw new Error(second.message);
        expect(second.review.response.allowed).toBe(true);
        expect(second.review.response.patch).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
    // The generator must reach every path, or the property says little.
    expect(seen.admittedWithDfs).toBeGreaterThan(50);
    expect(seen.repaired).toBeGreaterThan(20);
    expect(seen.denied).toBeGreaterThan(50);
  });
});

describe('laundering (issue 14, defect 5)', () => {
  const config = configSchema.parse({});
  const entry: EntryContext = { defaultRole: undefined, podSecurityEnforced: false };
  const run = (pod: Record<string, any>): { allowed: boolean; out: Record<string, any>; warnings: string[]; message: string } => {
    const result = reviewAdmission(admissionReviewFor(pod), entry, config);
    if (result.kind !== 'response') throw new Error(result.message);
    const r = result.review.response;
    const ops = r.patch === undefined ? [] : JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8'));
    return { allowed: r.allowed, out: jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument, warnings: r.warnings ?? [], message: r.status?.message ?? '' };
  };

  it('denies a pod whose forged status lists its own writable hostPath under the DFS host path', () => {
    const pod = loadPod('sonarr');
    pod.spec.volumes.push({ name: 'movies', hostPath: { path: '/mnt/decypharr-dfs/movies' } });
    pod.spec.containers[0].volumeMounts.push({ name: 'movies', mountPath: '/movies' });
    pod.metadata.annotations['dfs-injector.io/status'] = JSON.stringify({ role: 'consumer', volumes: ['movies', 'dfs-injector-dfs'], mounts: ['sonarr:/movies'], containers: [], initContainers: [], configHash: 'x', version: '0.1.0' });
    const { allowed, message } = run(pod);
    expect(allowed).toBe(false);
    expect(message).toContain('volume "movies" is a hostPath of /mnt/decypharr-dfs/movies, which is or lies under the DFS host path /mnt/decypharr-dfs; only the volume dfs-injector manages may mount it');
  });

  it('records in the status only what it did, never what a forged status claimed', () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations['dfs-injector.io/status'] = JSON.stringify({ role: 'consumer', volumes: ['media', 'dfs-injector-dfs'], mounts: ['sonarr:/nowhere'], containers: ['sonarr'], initContainers: ['dfs-wait-for-mount'], configHash: 'x', version: '0.1.0' });
    const { allowed, out } = run(pod);
    expect(allowed).toBe(true);
    expect(JSON.parse(out.metadata.annotations['dfs-injector.io/status'])).toMatchObject({ volumes: ['dfs-injector-dfs'], mounts: ['sonarr:/mnt/dfs'], containers: [], initContainers: [] });
  });

  it('makes a writable DFS mount at the mount path read-only with HostToContainer, and says so', () => {
    const pod = loadPod('sonarr');
    pod.spec.volumes.push({ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } });
    pod.spec.containers[0].volumeMounts.push({ name: 'dfs', mountPath: '/mnt/dfs' });
    const { allowed, out, warnings } = run(pod);
    expect(allowed).toBe(true);
    expect(out.spec.containers[0].volumeMounts.at(-1)).toEqual({ name: 'dfs', mountPath: '/mnt/dfs', readOnly: true, mountPropagation: 'HostToContainer' });
    expect(warnings).toContain('container "sonarr" mounted the DFS volume "dfs" at /mnt/dfs writable and with mountPropagation None (unset); it is now read-only with HostToContainer');
    const result = auditInventory({ namespaces: [], pods: [inventoryPod(out)] }, { config, configSource: 'test' });
    expect(result.findings).toEqual([]);
  });

  it('denies a source pod that brings a writable smbd sidecar of its own', () => {
    const pod = loadPod('decypharr-source');
    pod.spec.containers.push({ name: 'dfs-smbd', image: 'example/samba:1', volumeMounts: [{ name: pod.spec.containers[0].volumeMounts[0].name, mountPath: '/mnt/dfs' }] });
    const { allowed, message } = run(pod);
    expect(allowed).toBe(false);
    expect(message).toContain('container "dfs-smbd" is already in the pod but is not the smbd sidecar dfs-injector injects: it has no LD_PRELOAD of the nlink shim and mounts the share path /mnt/dfs writable');
  });
});
