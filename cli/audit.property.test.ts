import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureIo } from '../test/support/cli-io.js';
import { loadPod, POD_FIXTURES } from '../test/support/fixtures.js';
import { run } from './audit.js';

// `audit -f` reads manifests anyone may have written: Helm output, a hand-edited file, a dump. Any
// field may hold any JSON value. The answer is a report, or exit 3 with an error that names the
// field and the rule it broke (the webhook's own check, lib/pod-shape.ts); never a crash.

type Path = readonly (string | number)[];

// A fresh copy each time: `set` walks into a value an earlier field of the same case put there, and
// a shared constant written through would carry keys (even itself) into every later case.
const SHAPES = fc.constantFrom<unknown>(null, [], [null], [1], ['x'], '', 'x', 0, 7, true, false, {}, { name: 1 }).map((v) => structuredClone(v));
const ANY = fc.oneof(SHAPES, fc.jsonValue({ maxDepth: 3 }));

const FIELDS: readonly Path[] = [
  ['metadata'],
  ['metadata', 'labels'],
  ['metadata', 'labels', 'dfs-injector.io/role'],
  ['metadata', 'annotations'],
  ['metadata', 'annotations', 'dfs-injector.io/status'],
  ['metadata', 'ownerReferences'],
  ['spec'],
  ['spec', 'nodeName'],
  ['spec', 'containers'],
  ['spec', 'containers', 0],
  ['spec', 'containers', 0, 'name'],
  ['spec', 'containers', 0, 'env'],
  ['spec', 'containers', 0, 'env', 0],
  ['spec', 'containers', 0, 'securityContext'],
  ['spec', 'containers', 0, 'volumeMounts'],
  ['spec', 'containers', 0, 'volumeMounts', 0],
  ['spec', 'containers', 0, 'volumeMounts', 0, 'name'],
  ['spec', 'containers', 0, 'volumeMounts', 0, 'mountPath'],
  ['spec', 'containers', 0, 'volumeMounts', 0, 'readOnly'],
  ['spec', 'containers', 0, 'volumeMounts', 0, 'mountPropagation'],
  ['spec', 'initContainers'],
  ['spec', 'initContainers', 0],
  ['spec', 'ephemeralContainers'],
  ['spec', 'volumes'],
  ['spec', 'volumes', 0],
  ['spec', 'volumes', 0, 'name'],
  ['spec', 'volumes', 0, 'hostPath'],
  ['spec', 'volumes', 0, 'hostPath', 'path'],
  ['status'],
  ['status', 'conditions'],
];

function set(object: Record<string, any>, path: Path, value: unknown): void {
  let node: any = object;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return;
    if (!(key in node)) node[key] = typeof key === 'number' ? {} : {};
    node = node[key];
  }
  if (node !== null && typeof node === 'object') node[path.at(-1) as string | number] = value;
}

/** A pod that reaches every rule: a writable DFS hostPath, a role label, a status, a node. */
function basePod(fixture: (typeof POD_FIXTURES)[number]): Record<string, any> {
  const pod = loadPod(fixture);
  pod.spec.volumes = [{ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs' } }, ...(pod.spec.volumes ?? [])];
  pod.spec.containers[0].volumeMounts = [{ name: 'dfs', mountPath: '/mnt/dfs' }, ...(pod.spec.containers[0].volumeMounts ?? [])];
  pod.spec.containers[0].env = [{ name: 'LD_PRELOAD', value: '' }];
  pod.spec.nodeName = 'node-1';
  pod.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  return pod;
}

const WRAPPERS = ['Pod', 'Deployment', 'List', 'DaemonSet'] as const;

function wrap(pod: Record<string, any>, kind: (typeof WRAPPERS)[number]): unknown {
  if (kind === 'Pod') return pod;
  if (kind === 'List') return { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media', labels: { 'dfs-injector.io/injection': 'enabled' } } }, pod] };
  const { metadata, spec } = pod;
  return { apiVersion: 'apps/v1', kind, metadata: { name: 'dfs-mounter', namespace: 'dfs-system' }, spec: { selector: {}, template: { metadata, spec } } };
}

const arbitraryCase = fc.record({
  fixture: fc.constantFrom(...POD_FIXTURES),
  wrapper: fc.constantFrom(...WRAPPERS),
  fields: fc.array(fc.record({ path: fc.constantFrom(...FIELDS), value: ANY }), { minLength: 1, maxLength: 3 }),
});

async function audit(argv: string[], stdin: string): Promise<{ code: number; err: string; out: string }> {
  const io = captureIo({ stdin });
  const code = await run(argv, io, () => {
    throw new Error('this test audits manifests; it must not read a cluster');
  });
  return { code, err: io.err(), out: io.out() };
}

describe('audit -f with any JSON value in any field it reads', () => {
  it('reports, or exits 3 naming the field and its rule; never crashes', async () => {
    const seen = { reported: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(arbitraryCase, async ({ fixture, wrapper, fields }) => {
        const pod = basePod(fixture);
        for (const { path, value } of fields) set(pod, path, value);
        const { code, err, out } = await audit(['-f', '-', '-o', 'json', '--fail-on', 'none'], JSON.stringify(wrap(pod, wrapper)));
        expect(err).not.toContain('unexpected failure');
        expect(err).not.toMatch(/\n\s+at /);
        if (code === 0) {
          expect(err).toBe('');
          expect(JSON.parse(out)).toMatchObject({ kind: 'AuditReport' });
          seen.reported++;
          return;
        }
        expect(code).toBe(3);
        expect(out).toBe('');
        expect(err).toMatch(/^error: -f <stdin>: .* must be /);
        seen.refused++;
      }),
      { numRuns: 400 },
    );
    // Both outcomes must be reached, or the property says little. Over 60 seeds: 42 to 76 reports
    // (mean 56, sd 7) and over 320 refusals; 25 is more than four deviations below the mean.
    expect(seen.reported).toBeGreaterThan(25);
    expect(seen.refused).toBeGreaterThan(40);
  });
});

describe('audit -f with a field of the wrong type', () => {
  const cases: readonly (readonly [string, Path, unknown, string])[] = [
    ['volumeMounts a string', ['spec', 'containers', 0, 'volumeMounts'], 'x', 'Pod media/sonarr-7d9f8b6c5d-: spec.containers[0].volumeMounts must be an array, not a string'],
    ['containers not a list', ['spec', 'containers'], { name: 'sonarr' }, 'Pod media/sonarr-7d9f8b6c5d-: spec.containers must be an array, not an object'],
    ['a volume that is null', ['spec', 'volumes', 0], null, 'Pod media/sonarr-7d9f8b6c5d-: spec.volumes[0] must be an object, not null'],
    ['a hostPath that is a number', ['spec', 'volumes', 0, 'hostPath'], 7, 'Pod media/sonarr-7d9f8b6c5d-: spec.volumes[0].hostPath must be an object, not a number'],
  ];
  it.each(cases)('%s: exit 3, naming the file, the pod, the field and the rule', async (_, path, value, message) => {
    const pod = basePod('sonarr');
    set(pod, path, value);
    const dir = mkdtempSync(join(tmpdir(), 'dfs-audit-'));
    const file = join(dir, 'pod.json');
    writeFileSync(file, JSON.stringify(pod));
    const { code, err, out } = await audit(['-f', file], '');
    expect({ code, err, out }).toEqual({ code: 3, err: `error: -f ${file}: ${message}\n`, out: '' });
  });

  it('names the template of a workload by its place in the document', async () => {
    const pod = basePod('sonarr');
    set(pod, ['spec', 'initContainers'], 'x');
    const { code, err } = await audit(['-f', '-'], JSON.stringify(wrap(pod, 'Deployment')));
    expect(code).toBe(3);
    expect(err).toBe('error: -f <stdin>: Deployment dfs-system/dfs-mounter: spec.template.spec.initContainers must be an array, not a string\n');
  });

  it('null is absent, as kubectl reads it: a pod whose volumeMounts and volumes are null is audited', async () => {
    const pod = basePod('sonarr');
    set(pod, ['spec', 'containers', 0, 'volumeMounts'], null);
    set(pod, ['spec', 'volumes'], null);
    const { code, err } = await audit(['-f', '-', '--fail-on', 'none'], JSON.stringify(pod));
    expect({ code, err }).toEqual({ code: 0, err: '' });
  });
});
