import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer, type KubeObject } from '../test/support/fake-apiserver.js';
import { CertStoreError, KubeCertStore } from './kube-store.js';

const NS = 'dfs-system';
const SECRET = 'dfs-injector-tls';
const CONFIG = 'dfs-injector';
const SECRET_PATH = `/api/v1/namespaces/${NS}/secrets/${SECRET}`;
const CONFIG_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${CONFIG}`;
const PEM_A = '-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----\n';
const PEM_B = '-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----\n';

interface WebhookConfig extends KubeObject {
  webhooks: { name: string; clientConfig: { caBundle?: string; service: Record<string, unknown> } }[];
}

let api: FakeApiServer;
let store: KubeCertStore;

beforeEach(async () => {
  api = await startFakeApiServer();
  store = new KubeCertStore(api.endpoint(), { namespace: NS, secretName: SECRET, webhookConfigName: CONFIG });
});

afterEach(async () => {
  await api.close();
});

function seedConfig(...bundles: (string | undefined)[]): void {
  api.put<WebhookConfig>(CONFIG_PATH, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: CONFIG },
    webhooks: bundles.map((bundle, i) => ({
      name: `hook-${i}.dfs-injector.io`,
      clientConfig: {
        service: { namespace: NS, name: 'dfs-injector', path: `/mutate-${i}`, port: 443 },
        ...(bundle === undefined ? {} : { caBundle: Buffer.from(bundle).toString('base64') }),
      },
    })),
  });
}

function storedBundles(): (string | undefined)[] {
  return api
    .get<WebhookConfig>(CONFIG_PATH)!
    .webhooks.map((w) => (w.clientConfig.caBundle === undefined ? undefined : Buffer.from(w.clientConfig.caBundle, 'base64').toString()));
}

describe('KubeCertStore Secret', () => {
  it('reads a missing Secret as undefined', async () => {
    await expect(store.readSecret()).resolves.toBeUndefined();
  });

  it('creates a kubernetes.io/tls Secret with base64 data and reads it back decoded', async () => {
    const created = await store.createSecret({ 'tls.crt': PEM_A, 'tls.key': 'key' });
    expect(created).not.toBe('conflict');
    const stored = api.get(SECRET_PATH)!;
    expect(stored.type).toBe('kubernetes.io/tls');
    expect(stored.data).toEqual({ 'tls.crt': Buffer.from(PEM_A).toString('base64'), 'tls.key': 'a2V5' });
    expect(api.requests.find((r) => r.method === 'POST')?.query.get('fieldManager')).toBe('dfs-injector');
    await expect(store.readSecret()).resolves.toEqual({
      data: { 'tls.crt': PEM_A, 'tls.key': 'key' },
      resourceVersion: (created as { resourceVersion: string }).resourceVersion,
    });
  });

  it('answers conflict when another replica created the Secret first', async () => {
    await store.createSecret({ 'tls.crt': PEM_A });
    await expect(store.createSecret({ 'tls.crt': PEM_B })).resolves.toBe('conflict');
    expect((await store.readSecret())?.data['tls.crt']).toBe(PEM_A);
  });

  it('updates only with the resourceVersion it read, and keeps labels others added', async () => {
    const created = await store.createSecret({ 'tls.crt': PEM_A, 'old-key': 'x' });
    if (created === 'conflict') throw new Error('unexpected conflict');
    api.modify(SECRET_PATH, (secret) => {
      secret.metadata.labels = { ...secret.metadata.labels, team: 'media' };
    });
    await expect(store.updateSecret({ 'tls.crt': PEM_B }, created.resourceVersion)).resolves.toBe('conflict');

    const fresh = (await store.readSecret())!;
    const updated = await store.updateSecret({ 'tls.crt': PEM_B }, fresh.resourceVersion);
    expect(updated).not.toBe('conflict');
    const stored = api.get(SECRET_PATH)!;
    expect(stored.metadata.labels).toMatchObject({ team: 'media', 'app.kubernetes.io/name': 'dfs-injector' });
    // data is replaced as a whole: keys the new state no longer has are gone.
    expect((await store.readSecret())?.data).toEqual({ 'tls.crt': PEM_B });
  });

  it('answers conflict when the Secret was deleted after it was read', async () => {
    const created = await store.createSecret({ 'tls.crt': PEM_A });
    api.remove(SECRET_PATH);
    await expect(store.updateSecret({ 'tls.crt': PEM_B }, (created as { resourceVersion: string }).resourceVersion)).resolves.toBe(
      'conflict',
    );
  });

  it('reports other API errors with the object, the status and the server’s message', async () => {
    api.failNext(1, { status: 403 });
    const error = await store.readSecret().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CertStoreError);
    expect((error as CertStoreError).status).toBe(403);
    expect((error as Error).message).toMatch(/^cannot read Secret dfs-system\/dfs-injector-tls: HTTP 403: injected failure/);
    expect((error as Error).message).toContain('RBAC');
  });

  it('gives up on a request that hangs', async () => {
    const slow = new KubeCertStore(api.endpoint(), {
      namespace: NS,
      secretName: SECRET,
      webhookConfigName: CONFIG,
      requestTimeoutMs: 200,
    });
    const release = api.intercept(() => new Promise((resolve) => setTimeout(() => resolve(undefined), 2000)));
    const started = Date.now();
    await expect(slow.readSecret()).rejects.toThrow(CertStoreError);
    expect(Date.now() - started).toBeLessThan(1900);
    release();
  });
});

describe('KubeCertStore caBundle', () => {
  it('reads every entry’s caBundle decoded, in order', async () => {
    seedConfig(PEM_A, undefined);
    const read = await store.readWebhookCaBundles();
    expect(read.webhooks).toEqual([
      { name: 'hook-0.dfs-injector.io', caBundle: PEM_A },
      { name: 'hook-1.dfs-injector.io', caBundle: undefined },
    ]);
    expect(read.resourceVersion).toBe(api.get(CONFIG_PATH)!.metadata.resourceVersion);
  });

  it('sets the bundle on every entry with a JSON patch that tests each old value', async () => {
    seedConfig(PEM_A, PEM_A, PEM_A);
    const read = await store.readWebhookCaBundles();
    await expect(store.patchWebhookCaBundles(PEM_A + PEM_B, read)).resolves.toBe('patched');
    expect(storedBundles()).toEqual([PEM_A + PEM_B, PEM_A + PEM_B, PEM_A + PEM_B]);

    const patch = api.requests.find((r) => r.method === 'PATCH')!;
    expect(patch.contentType).toBe('application/json-patch+json');
    expect(patch.query.get('fieldManager')).toBe('dfs-injector');
    const ops = patch.body as { op: string; path: string }[];
    expect(ops.filter((op) => op.op === 'test' && op.path.endsWith('/caBundle'))).toHaveLength(3);
    // Entries that already have a bundle do not pin the whole object.
    expect(ops.some((op) => op.path === '/metadata/resourceVersion')).toBe(false);
  });

  it('writes nothing when one entry changed since the read', async () => {
    seedConfig(PEM_A, PEM_A);
    const read = await store.readWebhookCaBundles();
    api.modify<WebhookConfig>(CONFIG_PATH, (config) => {
      config.webhooks[1]!.clientConfig.caBundle = Buffer.from(PEM_B).toString('base64');
    });
    await expect(store.patchWebhookCaBundles(PEM_A + PEM_B, read)).resolves.toBe('conflict');
    expect(storedBundles()).toEqual([PEM_A, PEM_B]);
  });

  it('writes nothing when the entries were reordered since the read', async () => {
    seedConfig(PEM_A, PEM_A);
    const read = await store.readWebhookCaBundles();
    api.modify<WebhookConfig>(CONFIG_PATH, (config) => {
      config.webhooks.reverse();
    });
    await expect(store.patchWebhookCaBundles(PEM_B, read)).resolves.toBe('conflict');
    expect(storedBundles()).toEqual([PEM_A, PEM_A]);
  });

  it('adds a missing caBundle only if the object is unchanged since the read', async () => {
    seedConfig(undefined, undefined);
    const stale = await store.readWebhookCaBundles();
    api.modify<WebhookConfig>(CONFIG_PATH, (config) => {
      config.webhooks[0]!.clientConfig.caBundle = Buffer.from(PEM_B).toString('base64');
    });
    await expect(store.patchWebhookCaBundles(PEM_A, stale)).resolves.toBe('conflict');
    expect(storedBundles()).toEqual([PEM_B, undefined]);

    const fresh = await store.readWebhookCaBundles();
    await expect(store.patchWebhookCaBundles(PEM_A, fresh)).resolves.toBe('patched');
    expect(storedBundles()).toEqual([PEM_A, PEM_A]);
  });

  it('names the configuration when it does not exist', async () => {
    await expect(store.readWebhookCaBundles()).rejects.toThrow(
      /cannot read MutatingWebhookConfiguration dfs-injector: HTTP 404: mutatingwebhookconfigurations "dfs-injector" not found/,
    );
  });
});
