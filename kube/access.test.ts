import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterAccessError, resolveClusterAccess, type ClusterAccess, type KubeconfigAccess } from './access.js';
import { kubeConfigFor } from './client-node.js';
import { kubeEndpoint } from './endpoint.js';

// Kubeconfigs as kind and `aws eks update-kubeconfig` write them, and a second file to merge.
const FIXTURES = resolve(import.meta.dirname, '../test/fixtures/kubeconfig');
const KIND = join(FIXTURES, 'kind.yaml');
const EKS = join(FIXTURES, 'eks.yaml');
const SHARED = join(FIXTURES, 'team/shared.yaml');

let dir: string;
let home: string;
let serviceAccountDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dfs-kube-access-'));
  home = join(dir, 'home');
  serviceAccountDir = join(dir, 'serviceaccount');
  await mkdir(join(home, '.kube'), { recursive: true });
  await mkdir(serviceAccountDir);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function asKubeconfig(access: ClusterAccess): KubeconfigAccess {
  if (access.kind !== 'kubeconfig') throw new Error(`expected a kubeconfig, got ${access.kind}`);
  return access;
}

async function inPod(): Promise<NodeJS.ProcessEnv> {
  await writeFile(join(serviceAccountDir, 'token'), 'sa-token');
  await writeFile(join(serviceAccountDir, 'ca.crt'), 'pod CA');
  return { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
}

describe('resolveClusterAccess: where the cluster comes from', () => {
  it('takes --kubeconfig, then KUBECONFIG, then ~/.kube/config, then the pod\'s ServiceAccount, as kubectl does', async () => {
    const podEnv = await inPod();
    const homeConfig = join(home, '.kube', 'config');
    await writeFile(homeConfig, 'current-context: home\ncontexts: [{ name: home, context: { cluster: home } }]\nclusters: [{ name: home, cluster: { server: "https://home.example:6443" } }]\n');
    const base = { home, serviceAccountDir };
    const all = await resolveClusterAccess({ ...base, kubeconfig: EKS, env: { ...podEnv, KUBECONFIG: KIND } });
    expect(all).toMatchObject({ kind: 'kubeconfig', source: `--kubeconfig ${EKS}`, clusterName: 'arn:aws:eks:eu-west-1:111122223333:cluster/media' });
    const fromEnv = await resolveClusterAccess({ ...base, env: { ...podEnv, KUBECONFIG: KIND } });
    expect(fromEnv).toMatchObject({ source: `KUBECONFIG=${KIND}`, context: 'kind-dfs' });
    const fromHome = await resolveClusterAccess({ ...base, env: podEnv });
    expect(fromHome).toMatchObject({ source: homeConfig, context: 'home', userName: '', user: {} });
    await rm(join(home, '.kube', 'config'));
    expect(await resolveClusterAccess({ ...base, env: podEnv })).toEqual({
      kind: 'in-cluster',
      source: `the ServiceAccount in ${serviceAccountDir}`,
      server: 'https://10.96.0.1:443',
      ca: 'pod CA',
      caFile: join(serviceAccountDir, 'ca.crt'),
      tokenFile: join(serviceAccountDir, 'token'),
    });
  });

  it('reads the current context, or the one --context names, with relative file references made absolute', async () => {
    const current = asKubeconfig(await resolveClusterAccess({ kubeconfig: KIND }));
    expect(current).toMatchObject({ context: 'kind-dfs', clusterName: 'kind-dfs', userName: 'kind-dfs' });
    expect(current.cluster.server).toBe('https://127.0.0.1:37011');
    const staging = asKubeconfig(await resolveClusterAccess({ kubeconfig: KIND, context: 'staging' }));
    expect(staging).toMatchObject({ context: 'staging', clusterName: 'staging', userName: 'staging-admin' });
    expect(staging.cluster['certificate-authority']).toBe(join(FIXTURES, 'pki/ca.crt'));
    expect(staging.user.tokenFile).toBe(join(FIXTURES, 'pki/token'));
  });

  it('merges several KUBECONFIG files as kubectl does: the first to set current-context or define a name wins, paths stay relative to their own file', async () => {
    const env = { KUBECONFIG: [KIND, SHARED].join(delimiter) };
    const merged = asKubeconfig(await resolveClusterAccess({ env, home }));
    expect(merged).toMatchObject({ source: `KUBECONFIG=${KIND}${delimiter}${SHARED}`, context: 'kind-dfs' });
    expect(merged.cluster.server).toBe('https://127.0.0.1:37011');
    // A context of the second file, with its cluster from there and its user from the first.
    const shared = asKubeconfig(await resolveClusterAccess({ env, home, context: 'shared' }));
    expect(shared).toMatchObject({ clusterName: 'shared', userName: 'kind-dfs' });
    expect(shared.cluster['certificate-authority']).toBe(join(FIXTURES, 'team/ca.crt'));
    expect(shared.user['client-key-data']).toBeTypeOf('string');
  });

  it('names the source and the rule when it cannot resolve', async () => {
    await expect(resolveClusterAccess({ kubeconfig: KIND, context: 'prod' })).rejects.toThrow(`--kubeconfig ${KIND}: no context named prod (--context)`);
    const path = join(dir, 'broken');
    await writeFile(path, 'current-context: a\ncontexts: [{ name: a, context: { cluster: c, user: gone } }]\nclusters: [{ name: c, cluster: { insecure-skip-tls-verify: true } }]\n');
    await expect(resolveClusterAccess({ kubeconfig: path })).rejects.toThrow(`--kubeconfig ${path}: cluster c has no server`);
    await writeFile(path, 'current-context: a\ncontexts: [{ name: a, context: { cluster: c, user: gone } }]\nclusters: [{ name: c, cluster: { server: "https://h:1" } }]\n');
    await expect(resolveClusterAccess({ kubeconfig: path })).rejects.toThrow(`--kubeconfig ${path}: no user named gone`);
    await writeFile(path, 'current-context: a\ncontexts: [{ name: a, context: { user: u } }]\n');
    await expect(resolveClusterAccess({ kubeconfig: path })).rejects.toThrow(`--kubeconfig ${path}: context a names no cluster`);
    const missing = join(dir, 'missing');
    await expect(resolveClusterAccess({ env: { KUBECONFIG: [KIND, missing].join(delimiter) }, home })).rejects.toThrow(
      `cannot load ${missing} (of KUBECONFIG=${KIND}${delimiter}${missing}): ENOENT`,
    );
    const podEnv = await inPod();
    await expect(resolveClusterAccess({ env: podEnv, home, serviceAccountDir, context: 'prod' })).rejects.toThrow(ClusterAccessError);
    await expect(resolveClusterAccess({ env: podEnv, home, serviceAccountDir, context: 'prod' })).rejects.toThrow(/--context prod: no kubeconfig found/);
  });
});

describe('one resolution, two clients', () => {
  it('gives @kubernetes/client-node the selected context whole: an EKS exec plugin stays client-node\'s to run', async () => {
    const kc = kubeConfigFor(await resolveClusterAccess({ kubeconfig: EKS }));
    expect(kc.getCurrentCluster()?.server).toBe('https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com');
    expect(kc.getCurrentUser()?.exec).toMatchObject({ command: 'aws', args: ['--region', 'eu-west-1', 'eks', 'get-token', '--cluster-name', 'media', '--output', 'json'] });
    expect(kc.getContexts().map((c) => c.name)).toEqual(['arn:aws:eks:eu-west-1:111122223333:cluster/media']);
  });

  it('gives both clients the same server, CA and credentials for a plain kubeconfig', async () => {
    const access = await resolveClusterAccess({ kubeconfig: KIND, context: 'staging' });
    const endpoint = await kubeEndpoint(access);
    expect(endpoint.server).toBe('https://staging.example:6443');
    expect(String(endpoint.ca)).toContain('c3RhZ2luZyBDQQ==');
    expect(endpoint.tlsServerName).toBe('kubernetes');
    await expect(endpoint.headers()).resolves.toEqual({ authorization: 'Bearer staging-token' });
    const kc = kubeConfigFor(access);
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://staging.example:6443', caFile: join(FIXTURES, 'pki/ca.crt'), tlsServerName: 'kubernetes' });
    const kind = kubeConfigFor(await resolveClusterAccess({ kubeconfig: KIND }));
    const options: { ca?: unknown; cert?: unknown; key?: unknown } = {};
    await kind.applyToHTTPSOptions(options);
    expect(String(options.cert)).toBe('kind client certificate');
    expect(String(options.key)).toBe('kind client key');
  });

  it('gives client-node the pod\'s ServiceAccount as it would load it itself', async () => {
    const env = await inPod();
    const kc = kubeConfigFor(await resolveClusterAccess({ env, home, serviceAccountDir }));
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://10.96.0.1:443', caFile: join(serviceAccountDir, 'ca.crt') });
    const options: { ca?: unknown; headers?: Record<string, unknown> } = { headers: {} };
    await kc.applyToHTTPSOptions(options);
    expect(String(options.ca)).toBe('pod CA');
    expect(options.headers?.Authorization).toBe('Bearer sa-token');
  });
});
