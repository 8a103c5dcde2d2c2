import { describe, expect, it } from 'vitest';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { reviewAdmission } from './admission.js';
import { auditInventory } from './audit/auditor.js';
import { defaultConfig } from './config.js';
import { DEFAULT_ENTRY } from './entry.js';
import { holdsHostPath } from './plan.js';

// A hostPath of a directory above the DFS host path (/mnt, /) holds the share too. Mounted
// writable, it lets the container write into the DFS host path on the node, exactly as a writable
// mount of the DFS host path does: the webhook refuses it and `audit` reports it as DFS001. Both
// read the same rule (writableParentMounts), so a pod the webhook admits never has a finding.

const PARENTS = ['/mnt', '/mnt/', '//mnt/./', '/./mnt//', '/', '//', '/./', '/.'];
const NOT_PARENTS = ['/mn', '/mnt/decypharr', '/mnt/decypharr-dfs2', '/srv', '/mntx', 'mnt', ''];

/** A real consumer or source pod that also mounts `path` at /host, writable or read-only. */
function podWith(fixture: 'sonarr' | 'decypharr-source', path: string, readOnly: boolean, list: 'containers' | 'initContainers' = 'containers'): Record<string, any> {
  const pod = loadPod(fixture);
  pod.spec.volumes.push({ name: 'host', hostPath: { path } });
  pod.spec.containers[0].securityContext = { ...pod.spec.containers[0].securityContext, privileged: true };
  const container = list === 'containers' ? pod.spec.containers[0] : (pod.spec.initContainers = [{ name: 'prepare', image: 'busybox' }])[0];
  container.volumeMounts = [...(container.volumeMounts ?? []), { name: 'host', mountPath: '/host', ...(readOnly ? { readOnly: true } : {}) }];
  return pod;
}

function webhook(pod: Record<string, any>): { allowed: boolean; message: string } {
  const result = reviewAdmission(admissionReviewFor(pod), DEFAULT_ENTRY, defaultConfig);
  if (result.kind !== 'response') throw new Error(result.message);
  return { allowed: result.review.response.allowed, message: result.review.response.status?.message ?? '' };
}

function audit(pod: Record<string, any>): string[] {
  const result = auditInventory(
    { namespaces: [], pods: [{ kind: 'Pod', namespace: 'media', name: 'p', labels: {}, annotations: {}, spec: pod.spec }] },
    { config: defaultConfig, configSource: 'test' },
  );
  return result.findings.map((f) => `${f.rule} ${f.message}`);
}

describe('holdsHostPath', () => {
  it.each(PARENTS)('%s holds /mnt/decypharr-dfs', (path) => {
    expect(holdsHostPath(path, '/mnt/decypharr-dfs')).toBe(true);
  });
  it.each([...NOT_PARENTS, '/mnt/decypharr-dfs', '//mnt/decypharr-dfs/.', '/mnt/decypharr-dfs/movies'])('%s does not', (path) => {
    expect(holdsHostPath(path, '/mnt/decypharr-dfs')).toBe(false);
  });
});

describe('a hostPath of a directory above the DFS host path', () => {
  for (const fixture of ['sonarr', 'decypharr-source'] as const) {
    it.each(PARENTS)(`mounted writable in a ${fixture} pod (%s): the webhook refuses it, and audit reports DFS001`, (path) => {
      const pod = podWith(fixture, path, false);
      const answer = webhook(pod);
      expect(answer.allowed).toBe(false);
      expect(answer.message).toContain(`container "${pod.spec.containers[0].name}" mounts volume "host", a hostPath of ${path}, which holds the DFS host path /mnt/decypharr-dfs, at /host writable`);
      expect(audit(pod)).toContain(
        `DFS001 container "${pod.spec.containers[0].name}" mounts volume "host" at /host writable (readOnly is not true), a hostPath of ${path}, which holds the DFS host path /mnt/decypharr-dfs`,
      );
    });
  }

  it('mounted writable by an init container: refused and reported alike', () => {
    const pod = podWith('sonarr', '/mnt', false, 'initContainers');
    expect(webhook(pod)).toMatchObject({ allowed: false, message: expect.stringContaining('init container "prepare" mounts volume "host", a hostPath of /mnt') });
    expect(audit(pod)).toEqual([expect.stringMatching(/^DFS001 init container "prepare" mounts volume "host" at \/host writable/)]);
  });

  it.each(PARENTS)('mounted read-only (%s): admitted, and no finding (it sees the share read-only, like a consumer)', (path) => {
    const pod = podWith('sonarr', path, true);
    expect(webhook(pod).allowed).toBe(true);
    expect(audit(pod)).toEqual([]);
  });

  it.each(NOT_PARENTS.filter((p) => p !== ''))('a writable hostPath of %s, which does not hold it, is neither refused nor reported', (path) => {
    const pod = podWith('sonarr', path, false);
    expect(webhook(pod).allowed).toBe(true);
    expect(audit(pod)).toEqual([]);
  });
});
