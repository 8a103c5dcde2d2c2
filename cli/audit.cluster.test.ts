import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../lib/config.js';
import { injectDocument } from '../lib/inject.js';
import { captureIo } from '../test/support/cli-io.js';
import { serveClusterLists } from '../test/support/fake-apiserver-list.js';
import { startFakeApiServer, type FakeApiServer, type KubeObject } from '../test/support/fake-apiserver.js';
import { loadPod, type PodFixture } from '../test/support/fixtures.js';
import { run } from './audit.js';

let fake: FakeApiServer;
let kubeconfig: string;
let removeLists: () => void = () => undefined;

/** Interceptors answer in the order they were added: put `setup`'s ahead of the list extension. */
async function withFailure(setup: () => (() => void) | void, body: () => Promise<void>): Promise<void> {
  removeLists();
  const undo = setup();
  removeLists = serveClusterLists(fake);
  try {
    await body();
  } finally {
    if (undo !== undefined) undo();
  }
}

function pod(fixture: PodFixture, name: string, node: string, options: { inject?: boolean; namespace?: string; labels?: Record<string, string> } = {}): KubeObject {
  const source = loadPod(fixture);
  source.metadata.name = name;
  if (options.namespace !== undefined) source.metadata.namespace = options.namespace;
  if (options.labels !== undefined) source.metadata.labels = options.labels;
  const object = options.inject === false ? source : (injectDocument(source, defaultConfig).object as Record<string, any>);
  object.spec.nodeName = node;
  object.status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] };
  return object as KubeObject;
}

function mounter(name: string, node: string, ready: boolean): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'dfs-system',
      labels: { 'app.kubernetes.io/name': 'dfs-mounter' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'dfs-mounter', uid: 'b7d1c2e4-0f3a-4c5b-8e9d-1a2b3c4d5e6f', controller: true }],
    },
    spec: { nodeName: node, containers: [{ name: 'mounter', image: 'ghcr.io/dfs-injector/mounter:0.1.0' }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

function seed(): void {
  const ns = (name: string, labels: Record<string, string>): void => {
    fake.put(`/api/v1/namespaces/${name}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });
  };
  ns('media', { 'dfs-injector.io/injection': 'enabled' });
  ns('legacy', {});
  ns('dfs-system', {});
  const pods = [
    pod('sonarr', 'sonarr-a', 'node-a'),
    pod('radarr-native-sidecar', 'radarr-a', 'node-a'),
    pod('plex-multi-container', 'plex-0', 'node-b'),
    pod('decypharr-source', 'decypharr-0', 'node-a'),
    // Admitted while the webhook was down: labelled, not injected.
    pod('sonarr', 'sonarr-b', 'node-a', { inject: false }),
    // Labelled in a namespace that never opted in.
    pod('sonarr', 'sonarr-legacy', 'node-a', { inject: false, namespace: 'legacy' }),
    pod('sonarr', 'unrelated', 'node-b', { inject: false, labels: { app: 'unrelated' } }),
    mounter('dfs-mounter-a', 'node-a', true),
    mounter('dfs-mounter-b', 'node-b', false),
  ];
  for (const p of pods) fake.put(`/api/v1/namespaces/${String(p.metadata.namespace)}/pods/${p.metadata.name}`, p);
}

beforeAll(async () => {
  fake = await startFakeApiServer();
  removeLists = serveClusterLists(fake);
  kubeconfig = join(mkdtempSync(join(tmpdir(), 'dfs-audit-kube-')), 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{ name: fake, cluster: { server: "${fake.url}", insecure-skip-tls-verify: true } }]
users: [{ name: fake, user: { token: test-token } }]
contexts: [{ name: fake, context: { cluster: fake, user: fake } }]
current-context: fake
`,
  );
  seed();
});

afterAll(async () => {
  await fake.close();
});

let before = 0;
beforeEach(() => {
  before = fake.requests.length;
});

const requestsSince = (): typeof fake.requests => fake.requests.slice(before);

async function audit(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await run(['--kubeconfig', kubeconfig, ...argv], io);
  return { code, out: io.out(), err: io.err() };
}

describe('audit against an API server', () => {
  it('reads every list page by page with limit and continue, and reports what it found', async () => {
    const result = await audit(['--page-size', '2', '-o', 'json']);
    expect(result.err).toBe('');
    const report = JSON.parse(result.out);
    expect(report.findings.map((f: any) => `${f.rule} ${f.resource.kind} ${f.resource.namespace ?? '-'}/${f.resource.name}`)).toEqual([
      'DFS009 Node -/node-b',
      'DFS004 Pod media/sonarr-b',
      'DFS010 Pod legacy/sonarr-legacy',
    ]);
    expect(report.checked).toEqual({ pods: 7, namespaces: 2, nodes: 2 });
    expect(result.code).toBe(1);

    const pods = requestsSince().filter((r) => r.path === '/api/v1/pods');
    // 9 pods (mounters included) in pages of 2.
    expect(pods).toHaveLength(5);
    expect(pods.map((r) => r.query.get('limit'))).toEqual(['2', '2', '2', '2', '2']);
    expect(pods[0]?.query.get('continue')).toBeNull();
    for (const r of pods.slice(1)) expect(r.query.get('continue')).toMatch(/^[\w-]+$/);
    const namespaces = requestsSince().filter((r) => r.path === '/api/v1/namespaces');
    expect(namespaces.map((r) => [r.query.get('limit'), r.query.get('continue') !== null])).toEqual([
      ['2', false],
      ['2', true],
    ]);
    const mounters = requestsSince().filter((r) => r.path === '/api/v1/namespaces/dfs-system/pods');
    expect(mounters.map((r) => r.query.get('labelSelector'))).toEqual(['app.kubernetes.io/name=dfs-mounter']);
  });

  it('lists 500 objects per page by default', async () => {
    await audit([]);
    const pods = requestsSince().filter((r) => r.path === '/api/v1/pods');
    expect(pods.map((r) => r.query.get('limit'))).toEqual(['500']);
  });

  it('audits one namespace with a GET of the namespace and a paginated namespaced list', async () => {
    const result = await audit(['-n', 'media', '--page-size', '2', '-o', 'json']);
    const report = JSON.parse(result.out);
    expect(report.findings.map((f: any) => f.rule)).toEqual(['DFS009', 'DFS004']);
    const paths = requestsSince().map((r) => `${r.path}${r.query.get('continue') === null ? '' : ' +continue'}`);
    expect(paths).not.toContain('/api/v1/pods');
    expect(paths).toContain('/api/v1/namespaces/media');
    expect(paths.filter((p) => p.startsWith('/api/v1/namespaces/media/pods'))).toEqual([
      '/api/v1/namespaces/media/pods',
      '/api/v1/namespaces/media/pods +continue',
      '/api/v1/namespaces/media/pods +continue',
    ]);
  });

  it('skips the node rule, and says why, when the mounter pods may not be read', async () => {
    const forbidden = (): (() => void) =>
      fake.intercept((r) =>
        r.path === '/api/v1/namespaces/dfs-system/pods'
          ? { status: 403, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'pods is forbidden: User "auditor" cannot list resource "pods" in the namespace "dfs-system"' } }
          : undefined,
      );
    await withFailure(forbidden, async () => {
      const result = await audit(['-o', 'json']);
      const report = JSON.parse(result.out);
      expect(report.findings.map((f: any) => f.rule)).toEqual(['DFS004', 'DFS010']);
      expect(report.skipped).toEqual([
        { rules: ['DFS005'], reason: expect.stringContaining('no --config given') },
        {
          rules: ['DFS009'],
          reason: 'node state unknown: cannot list the dfs-mounter pods in namespace dfs-system: HTTP 403: pods is forbidden: User "auditor" cannot list resource "pods" in the namespace "dfs-system"',
        },
      ]);
    });
  });

  it('exits 3 and names the request when the API server refuses the pod list', async () => {
    await withFailure(
      () => fake.failNext(1, { path: '/api/v1/pods', status: 503 }),
      async () => {
        const result = await audit([]);
        expect(result.code).toBe(3);
        expect(result.err).toBe('error: cannot list pods in all namespaces: HTTP 503: injected failure (0 more to come)\n');
        expect(result.out).toBe('');
      },
    );
  });

  it('says to run again when a continue token has expired', async () => {
    const expired = (): (() => void) =>
      fake.intercept((r) =>
        r.path === '/api/v1/pods' && r.query.get('continue') !== null
          ? { status: 410, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'The provided continue parameter is too old' } }
          : undefined,
      );
    await withFailure(expired, async () => {
      const result = await audit(['--page-size', '2']);
      expect(result.code).toBe(3);
      expect(result.err).toContain('HTTP 410: The provided continue parameter is too old (the list changed for too long while it was read page by page; run the audit again)');
    });
  });

  it('exits 3 for a namespace that does not exist', async () => {
    const result = await audit(['-n', 'nope']);
    expect(result.code).toBe(3);
    expect(result.err).toBe('error: namespace "nope" does not exist\n');
  });

  it('exits 3 for a kubeconfig that cannot be read', async () => {
    const io = captureIo();
    const code = await run(['--kubeconfig', '/nonexistent/kubeconfig'], io);
    expect(code).toBe(3);
    expect(io.err()).toMatch(/^error: cannot load --kubeconfig \/nonexistent\/kubeconfig: /);
  });
});
