import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from '../test/support/fake-apiserver.js';
import { ClusterAccessError } from './access.js';
import { kubeApi } from './api.js';
import { loadKubeEndpoint } from './endpoint.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dfs-kubecreds-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CA = '-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'other', cluster: { server: 'https://wrong.example:6443' } }, { name: 'c', cluster }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  });
}

async function write(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('loadKubeEndpoint from a kubeconfig', () => {
  it('reads the current context: server, CA data, client certificate and key, and a bearer token', async () => {
    const path = await write(
      'config',
      kubeconfig(
        { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64(CA), 'tls-server-name': 'kubernetes' },
        { 'client-certificate-data': b64('cert'), 'client-key-data': b64('key'), token: 'abc' },
      ),
    );
    const endpoint = await loadKubeEndpoint({ kubeconfig: path });
    expect(endpoint.server).toBe('https://10.0.0.1:6443');
    expect(String(endpoint.ca)).toBe(CA);
    expect(String(endpoint.cert)).toBe('cert');
    expect(String(endpoint.key)).toBe('key');
    expect(endpoint.tlsServerName).toBe('kubernetes');
    expect(endpoint.insecureSkipTlsVerify).toBeUndefined();
    await expect(endpoint.headers()).resolves.toEqual({ authorization: 'Bearer abc' });
  });

  it('resolves file references relative to the kubeconfig, and re-reads a tokenFile', async () => {
    await mkdir(join(dir, 'pki'));
    await write('pki/ca.crt', CA);
    await write('token', 'first\n');
    const path = await write('config', kubeconfig({ server: 'https://h:1', 'certificate-authority': 'pki/ca.crt' }, { tokenFile: 'token' }));
    const endpoint = await loadKubeEndpoint({ kubeconfig: path });
    expect(String(endpoint.ca)).toBe(CA);
    await expect(endpoint.headers()).resolves.toEqual({ authorization: 'Bearer first' });
  });

  it('takes $KUBECONFIG before ~/.kube/config', async () => {
    await mkdir(join(dir, 'home/.kube'), { recursive: true });
    await write('home/.kube/config', kubeconfig({ server: 'https://home:1' }, {}));
    const fromEnv = await write('env-config', kubeconfig({ server: 'https://env:1' }, {}));
    expect((await loadKubeEndpoint({ env: { KUBECONFIG: fromEnv }, home: join(dir, 'home') })).server).toBe('https://env:1');
    expect((await loadKubeEndpoint({ env: {}, home: join(dir, 'home') })).server).toBe('https://home:1');
  });

  it('names the source and the rule when the kubeconfig is unusable', async () => {
    const missing = join(dir, 'nope');
    await expect(loadKubeEndpoint({ kubeconfig: missing })).rejects.toThrow(`cannot load --kubeconfig ${missing}`);
    const noContext = await write('no-context', JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [] }));
    await expect(loadKubeEndpoint({ kubeconfig: noContext })).rejects.toThrow(/no current-context set/);
    const noCluster = await write('no-cluster', JSON.stringify({ 'current-context': 'x', contexts: [{ name: 'x', context: { cluster: 'gone', user: 'u' } }] }));
    await expect(loadKubeEndpoint({ kubeconfig: noCluster })).rejects.toThrow(/no cluster named gone/);
    const badFile = await write('bad-ca', kubeconfig({ server: 'https://h:1', 'certificate-authority': '/nonexistent/ca.crt' }, {}));
    await expect(loadKubeEndpoint({ kubeconfig: badFile })).rejects.toThrow(/cannot read certificate-authority \/nonexistent\/ca\.crt/);
    await expect(loadKubeEndpoint({ kubeconfig: await write('list', '[1, 2]') })).rejects.toThrow(ClusterAccessError);
  });

  it('hands an exec-plugin user to @kubernetes/client-node and sends the token the plugin prints', async () => {
    const plugin = await write(
      'plugin.sh',
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}'\n`,
    );
    await chmod(plugin, 0o755);
    const api: FakeApiServer = await startFakeApiServer();
    try {
      const path = await write(
        'exec-config',
        kubeconfig({ server: api.url, 'insecure-skip-tls-verify': true }, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }),
      );
      const endpoint = await loadKubeEndpoint({ kubeconfig: path });
      await expect(endpoint.headers()).resolves.toMatchObject({ authorization: 'Bearer from-exec' });
      api.put('/api/v1/namespaces/ns/secrets/s', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'ns' } });
      const client = kubeApi(endpoint);
      const secret = await client.call<{ metadata: { name: string } }>({ method: 'GET', path: '/api/v1/namespaces/ns/secrets/s', timeoutMs: 5000 });
      expect(secret.metadata.name).toBe('s');
      client.close();
    } finally {
      await api.close();
    }
  });
});

describe('loadKubeEndpoint in a pod', () => {
  it('uses the ServiceAccount token and CA with the API server from the kubelet-set environment', async () => {
    const sa = join(dir, 'sa');
    await mkdir(sa);
    await writeFile(join(sa, 'token'), 'sa-token');
    await writeFile(join(sa, 'ca.crt'), CA);
    const endpoint = await loadKubeEndpoint({
      env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
      home: join(dir, 'no-home'),
      serviceAccountDir: sa,
    });
    expect(endpoint.server).toBe('https://[fd00::1]:443');
    expect(endpoint.ca).toBe(CA);
    await expect(endpoint.headers()).resolves.toEqual({ authorization: 'Bearer sa-token' });
  });

  it('says what is missing', async () => {
    const sa = join(dir, 'sa');
    await mkdir(sa);
    await expect(loadKubeEndpoint({ env: {}, home: join(dir, 'no-home'), serviceAccountDir: sa })).rejects.toThrow(
      'no Kubernetes cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod',
    );
    await writeFile(join(sa, 'token'), 't');
    await expect(loadKubeEndpoint({ env: {}, home: join(dir, 'no-home'), serviceAccountDir: sa })).rejects.toThrow(
      /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/,
    );
    await expect(
      loadKubeEndpoint({ env: { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }, home: join(dir, 'no-home'), serviceAccountDir: sa }),
    ).rejects.toThrow(/cannot read .*ca\.crt/);
  });
});
