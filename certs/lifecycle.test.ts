import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig } from '../lib/config.js';
import { startFakeApiServer, type FakeApiServer, type KubeObject } from '../test/support/fake-apiserver.js';
import { localCertificates } from '../test/support/tls.js';
import { get } from '../test/support/webhook-client.js';
import { buildServer } from '../webhook/server.js';
import { reportCertificatesTo } from './cluster.js';
import type { EndpointSource } from './endpoints.js';
import { issueCertificateAuthority } from './issue.js';
import { KubeCertStore } from './kube-store.js';
import { startCertLifecycle, SYNC_ERRORS_METRIC, UNCONFIRMED_METRIC, type CertLifecycle, type CertLifecycleOptions } from './lifecycle.js';
import { splitCertificates } from './pem.js';
import { decodeCertState, encodeCertState, type CertState } from './tls-secret.js';

const NS = 'dfs-system';
const SECRET = 'dfs-injector-tls';
const CONFIG = 'dfs-injector';
const SECRET_PATH = `/api/v1/namespaces/${NS}/secrets/${SECRET}`;
const SECRETS_PATH = `/api/v1/namespaces/${NS}/secrets`;
const CONFIG_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${CONFIG}`;
const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

interface WebhookConfig extends KubeObject {
  webhooks: { name: string; clientConfig: { caBundle?: string; service: Record<string, unknown> } }[];
}

let api: FakeApiServer;
let clock: number;
let registry: Registry;
const dirs: string[] = [];
const running: CertLifecycle[] = [];

beforeEach(async () => {
  api = await startFakeApiServer();
  clock = Date.now();
  registry = new Registry();
  // Two entries, as the API server returns them: the caBundle goes on every one.
  api.put<WebhookConfig>(CONFIG_PATH, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: CONFIG },
    webhooks: ['consumer', 'source'].map((role) => ({
      name: `${role}.dfs-injector.io`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      clientConfig: { service: { namespace: NS, name: 'dfs-injector', path: `/mutate/${role}`, port: 443 } },
    })),
  });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((lifecycle) => lifecycle.stop()));
  await api.close();
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function replica(extra: Partial<CertLifecycleOptions> = {}): Promise<{ lifecycle: CertLifecycle; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-tls-'));
  dirs.push(dir);
  const store = new KubeCertStore(api.endpoint(), { namespace: NS, secretName: SECRET, webhookConfigName: CONFIG });
  const lifecycle = startCertLifecycle({
    store,
    tlsDir: dir,
    service: 'dfs-injector',
    namespace: NS,
    now: () => clock,
    registry,
    retry: { initialMs: 20, maxMs: 80 },
    ...extra,
  });
  running.push(lifecycle);
  return { lifecycle, dir };
}

function secretState(): CertState {
  const secret = api.get(SECRET_PATH);
  if (secret === undefined) throw new Error('no Secret');
  const data = Object.fromEntries(
    Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
  );
  const decoded = decodeCertState(data);
  if (!decoded.ok) throw new Error(decoded.reason);
  return decoded.state;
}

function bundles(): (string | undefined)[] {
  return api
    .get<WebhookConfig>(CONFIG_PATH)!
    .webhooks.map((w) => (w.clientConfig.caBundle === undefined ? undefined : Buffer.from(w.clientConfig.caBundle, 'base64').toString()));
}

/** The one caBundle every entry carries, as certificates. */
function publishedCas(): X509Certificate[] {
  const all = bundles();
  expect(new Set(all).size).toBe(1);
  return splitCertificates(all[0] ?? '').map((pem) => new X509Certificate(pem));
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

async function served(dir: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(join(dir, 'tls.crt'), 'utf8'));
}

/** What the API server checks: the served leaf chains to a CA in the caBundle. */
async function expectTrusted(dir: string): Promise<void> {
  const leaf = await served(dir);
  expect(publishedCas().some((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey))).toBe(true);
}

function countRequests(method: string, path: string): number {
  return api.requests.filter((r) => r.method === method && r.path === path).length;
}

describe('certificate lifecycle', () => {
  it('creates the Secret at first start, publishes its CA on every webhook entry and serves its certificate', async () => {
    const onReady = vi.fn();
    const { lifecycle, dir } = await replica({ onReady });
    expect(lifecycle.ready()).toBe(false);
    await lifecycle.syncNow();
    await lifecycle.whenServable();

    const secret = api.get(SECRET_PATH)!;
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data as object).sort()).toEqual(['ca.crt', 'ca.key', 'rotation-phase', 'tls.crt', 'tls.key']);
    const state = secretState();
    expect(publishedCas().map((ca) => ca.fingerprint256)).toEqual([fingerprint(state.caCert)]);
    expect(bundles()).toHaveLength(2);
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe(state.tlsCert);
    expect(await readFile(join(dir, 'tls.key'), 'utf8')).toBe(state.tlsKey);
    await expectTrusted(dir);
    expect((await served(dir)).subjectAltName).toContain('DNS:dfs-injector.dfs-system.svc');
    expect(lifecycle.ready()).toBe(true);
    expect(onReady).toHaveBeenCalledTimes(1);
    expect(lifecycle.status()).toMatchObject({ ready: true, phase: 'steady', consecutiveFailures: 0, lastError: undefined });

    // A second pass with nothing to do writes nothing.
    const writes = api.requests.filter((r) => r.method !== 'GET').length;
    await lifecycle.syncNow();
    expect(api.requests.filter((r) => r.method !== 'GET').length).toBe(writes);
    expect(onReady).toHaveBeenCalledTimes(1);
  });

  it('leaves two replicas racing at first start with one Secret and one CA', async () => {
    // Hold the first create until the second arrives, so both really race.
    let arrived = 0;
    let releaseFirst: () => void = () => undefined;
    const bothArrived = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    api.intercept(async (request) => {
      if (request.method !== 'POST' || request.path !== SECRETS_PATH) return undefined;
      arrived += 1;
      if (arrived === 1) await Promise.race([bothArrived, new Promise((resolve) => setTimeout(resolve, 20_000))]);
      else releaseFirst();
      return undefined;
    });

    const [a, b] = await Promise.all([replica(), replica()]);
    await Promise.all([a.lifecycle.syncNow(), b.lifecycle.syncNow()]);

    const creates = api.requests.filter((r) => r.method === 'POST' && r.path === SECRETS_PATH).map((r) => r.status);
    expect(creates.sort()).toEqual([201, 409]);
    const state = secretState();
    expect(await readFile(join(a.dir, 'tls.crt'), 'utf8')).toBe(state.tlsCert);
    expect(await readFile(join(b.dir, 'tls.crt'), 'utf8')).toBe(state.tlsCert);
    expect(publishedCas().map((ca) => ca.fingerprint256)).toEqual([fingerprint(state.caCert)]);
    expect(a.lifecycle.ready() && b.lifecycle.ready()).toBe(true);
  });

  it('re-reads the Secret when its caBundle patch fails a test, instead of overwriting a newer bundle', async () => {
    // A bundle from an earlier install, so the first replica has to patch.
    const stale = await issueCertificateAuthority({ service: 'old', namespace: NS, lifetimeMs: DAY, now: clock });
    api.modify<WebhookConfig>(CONFIG_PATH, (config) => {
      for (const webhook of config.webhooks) webhook.clientConfig.caBundle = Buffer.from(stale.cert).toString('base64');
    });
    const first = await replica();
    await first.lifecycle.syncNow();
    const steady = secretState();

    // Put the stale bundle back; just before this replica's patch lands, another replica starts
    // a CA rotation: its Secret and its bundle (both CAs) are newer than what this one read.
    api.modify<WebhookConfig>(CONFIG_PATH, (config) => {
      for (const webhook of config.webhooks) webhook.clientConfig.caBundle = Buffer.from(stale.cert).toString('base64');
    });
    const next = await issueCertificateAuthority({ service: 'dfs-injector', namespace: NS, lifetimeMs: 10 * DAY, now: clock });
    const publishing: CertState = { ...steady, phase: 'publishing', nextCaCert: next.cert, nextCaKey: next.key, since: clock };
    const bothCas = Buffer.from(steady.caCert + next.cert).toString('base64');
    let raced = false;
    api.intercept((request) => {
      if (raced || request.method !== 'PATCH' || request.path !== CONFIG_PATH) return undefined;
      raced = true;
      api.modify(SECRET_PATH, (secret) => {
        secret.data = Object.fromEntries(Object.entries(encodeCertState(publishing)).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
      });
      api.modify<WebhookConfig>(CONFIG_PATH, (config) => {
        for (const webhook of config.webhooks) webhook.clientConfig.caBundle = bothCas;
      });
      return undefined;
    });

    await first.lifecycle.syncNow();

    const patches = api.requests.filter((r) => r.method === 'PATCH' && r.path === CONFIG_PATH).map((r) => r.status);
    expect(patches.at(-1)).toBe(422);
    expect(publishedCas().map((ca) => ca.fingerprint256)).toEqual([fingerprint(steady.caCert), fingerprint(next.cert)]);
    expect(first.lifecycle.status()).toMatchObject({ phase: 'publishing', consecutiveFailures: 0 });
  });

  it('renews the serving certificate under the same CA when less than a third of its lifetime is left', async () => {
    const { lifecycle, dir } = await replica({ leafDays: 3, caDays: 30 });
    await lifecycle.syncNow();
    const before = secretState();
    const dataBefore = await readlink(join(dir, '..data'));
    const bundlePatches = countRequests('PATCH', CONFIG_PATH);

    clock += 1.9 * DAY;
    await lifecycle.syncNow();
    expect(secretState().tlsCert).toBe(before.tlsCert);

    clock += 0.2 * DAY;
    await lifecycle.syncNow();
    const after = secretState();
    expect(after.tlsCert).not.toBe(before.tlsCert);
    expect(after.caCert).toBe(before.caCert);
    expect(Date.parse((await served(dir)).validTo)).toBeGreaterThan(clock + 2.9 * DAY);
    // Same CA: the caBundle is not touched.
    expect(countRequests('PATCH', CONFIG_PATH)).toBe(bundlePatches);
    // The new pair arrived through a new ..data version, under the same stable names.
    expect(await readlink(join(dir, '..data'))).not.toBe(dataBefore);
    expect(await readlink(join(dir, 'tls.crt'))).toBe(join('..data', 'tls.crt'));
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe(after.tlsCert);
    await expectTrusted(dir);

    // A replica whose served certificate has expired is not ready.
    clock += 10 * DAY;
    expect(lifecycle.ready()).toBe(false);
  });

  it('rotates the CA keeping the old CA published until every replica serves the new one', async () => {
    const timing = { leafDays: 3, caDays: 3, propagationMs: 10 * MINUTE, drainMs: 2 * HOUR };
    const one = await replica(timing);
    const two = await replica(timing);
    await one.lifecycle.syncNow();
    await two.lifecycle.syncNow();
    const old = secretState();

    // Less than a third of the CA's life left: publish a new CA next to the old one.
    clock += 2.1 * DAY;
    await one.lifecycle.syncNow();
    const publishing = secretState();
    expect(publishing.phase).toBe('publishing');
    if (publishing.phase !== 'publishing') return;
    expect(publishedCas().map((ca) => ca.fingerprint256)).toEqual([fingerprint(old.caCert), fingerprint(publishing.nextCaCert)]);
    expect(await readFile(join(one.dir, 'tls.crt'), 'utf8')).toBe(old.tlsCert);
    await expectTrusted(one.dir);
    await expectTrusted(two.dir);

    // Before the propagation delay nothing switches.
    clock += 5 * MINUTE;
    await one.lifecycle.syncNow();
    await two.lifecycle.syncNow();
    expect(secretState().phase).toBe('publishing');

    // After it, the serving certificate switches to the new CA; the old CA stays published, so
    // the replica that has not re-read the Secret yet is still trusted.
    clock += 6 * MINUTE;
    await one.lifecycle.syncNow();
    const draining = secretState();
    expect(draining.phase).toBe('draining');
    expect(draining.caCert).toBe(publishing.nextCaCert);
    expect((await served(one.dir)).checkIssued(new X509Certificate(publishing.nextCaCert))).toBe(true);
    expect((await served(two.dir)).checkIssued(new X509Certificate(old.caCert))).toBe(true);
    expect(publishedCas()).toHaveLength(2);
    await expectTrusted(one.dir);
    await expectTrusted(two.dir);

    await two.lifecycle.syncNow();
    expect((await served(two.dir)).checkIssued(new X509Certificate(publishing.nextCaCert))).toBe(true);

    clock += HOUR;
    await one.lifecycle.syncNow();
    expect(publishedCas()).toHaveLength(2);

    // After the drain period only the new CA is published.
    clock += HOUR + MINUTE;
    await two.lifecycle.syncNow();
    expect(secretState().phase).toBe('steady');
    expect(publishedCas().map((ca) => ca.fingerprint256)).toEqual([fingerprint(publishing.nextCaCert)]);
    await one.lifecycle.syncNow();
    await expectTrusted(one.dir);
    await expectTrusted(two.dir);
    expect(Object.keys(api.get(SECRET_PATH)!.data as object)).not.toContain('previous-ca.crt');
  });

  it('keeps the old CA published after the drain time until every ready endpoint presents a certificate of the new CA', async () => {
    // Each replica's server: a real TLS listener serving the pair in that replica's directory,
    // re-read on demand (as serve's file watch does).
    const listeners: TlsServer[] = [];
    async function listen(dir: string): Promise<{ port: number; reload: () => Promise<void> }> {
      const pair = async (): Promise<{ cert: string; key: string }> => ({
        cert: await readFile(join(dir, 'tls.crt'), 'utf8'),
        key: await readFile(join(dir, 'tls.key'), 'utf8'),
      });
      const server = createTlsServer(await pair());
      listeners.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { port: (server.address() as AddressInfo).port, reload: async () => server.setSecureContext(await pair()) };
    }
    let endpoints: { address: string; port: number; pod: string }[] = [];
    const source: EndpointSource = { readyEndpoints: () => Promise.resolve(endpoints) };
    try {
      const timing = { leafDays: 3, caDays: 3, propagationMs: 10 * MINUTE, drainMs: 2 * HOUR, endpoints: source, confirmTimeoutMs: 2000 };
      const one = await replica(timing);
      const two = await replica(timing);
      await one.lifecycle.syncNow();
      await two.lifecycle.syncNow();
      const a = await listen(one.dir);
      const b = await listen(two.dir);
      endpoints = [
        { address: '127.0.0.1', port: a.port, pod: 'dfs-injector-a' },
        { address: '127.0.0.1', port: b.port, pod: 'dfs-injector-b' },
      ];
      const old = secretState();

      clock += 2.1 * DAY;
      await one.lifecycle.syncNow();
      clock += 11 * MINUTE;
      await one.lifecycle.syncNow();
      expect(secretState().phase).toBe('draining');
      await a.reload();
      // Replica b has not re-read the Secret (stuck, or cut off from the API server): it still
      // presents the old CA's leaf.

      clock += 2 * HOUR + MINUTE;
      await one.lifecycle.syncNow();
      expect(secretState().phase).toBe('draining');
      expect(publishedCas()).toHaveLength(2);
      expect(publishedCas().some((ca) => ca.fingerprint256 === fingerprint(old.caCert))).toBe(true);
      const waiting = one.lifecycle.status().caRotationWaiting;
      expect(waiting).toMatch(/^1 of 2 ready endpoints not confirmed .*dfs-injector-b\) presents a certificate issued by/);
      expect((await registry.getSingleMetric(UNCONFIRMED_METRIC)!.get()).values[0]?.value).toBe(1);
      expect(one.lifecycle.ready()).toBe(true);
      // The webhook's /readyz says why, and stays 200: pulling every replica out of the Service
      // over a rotation that waits would refuse every pod under failurePolicy Fail.
      const served = await localCertificates();
      const webhook = buildServer({ getConfig: () => defaultConfig, tls: { cert: served.tlsCert, key: served.tlsKey }, logger: false });
      reportCertificatesTo(one.lifecycle, webhook);
      await webhook.probes.listen({ port: 0, host: '127.0.0.1' });
      const probesPort = (webhook.probes.server.address() as AddressInfo).port;
      try {
        const readyz = await get(probesPort, '/readyz');
        expect(readyz.status).toBe(200);
        const report = JSON.parse(readyz.text);
        expect(report.checks).toMatchObject({ certificate: true, 'ca-rotation-confirmed': false });
        expect(report.notes['ca-rotation-confirmed']).toBe(waiting);
        expect((await get(probesPort, '/metrics')).text).toContain(`${UNCONFIRMED_METRIC} 1`);
      } finally {
        await webhook.close();
      }

      // An endpoint that does not answer TLS at all is not confirmed either, within the bound;
      // and every one counts, also past the ten the log and the note name.
      const silent = Array.from({ length: 11 }, (_, i) => ({ address: '127.0.0.1', port: 1, pod: `dfs-injector-c${i}` }));
      endpoints.push(...silent);
      await one.lifecycle.syncNow();
      expect(one.lifecycle.status().caRotationWaiting).toMatch(/^12 of 13 ready endpoints/);
      expect((await registry.getSingleMetric(UNCONFIRMED_METRIC)!.get()).values[0]?.value).toBe(12);
      endpoints.splice(-silent.length);

      // b catches up and serves the new leaf: now the old CA goes.
      await two.lifecycle.syncNow();
      await b.reload();
      await one.lifecycle.syncNow();
      expect(secretState().phase).toBe('steady');
      expect(publishedCas().map((ca) => ca.fingerprint256)).toEqual([fingerprint(secretState().caCert)]);
      expect(one.lifecycle.status().caRotationWaiting).toBeUndefined();
      expect((await registry.getSingleMetric(UNCONFIRMED_METRIC)!.get()).values[0]?.value).toBe(0);
    } finally {
      await Promise.all(listeners.map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });

  it('retries API failures with growing delays, and shows them in readiness and metrics', async () => {
    api.failNext(3, { path: SECRET_PATH, method: 'GET' });
    const { lifecycle } = await replica({ random: () => 0 });

    await vi.waitFor(() => expect(lifecycle.status().consecutiveFailures).toBeGreaterThanOrEqual(1));
    expect(lifecycle.ready()).toBe(false);
    expect(lifecycle.status().lastError).toMatch(/cannot read Secret dfs-system\/dfs-injector-tls: HTTP 500/);

    await lifecycle.whenServable();
    await vi.waitFor(() => expect(lifecycle.ready()).toBe(true), { timeout: 20_000 });
    expect(lifecycle.status()).toMatchObject({ consecutiveFailures: 0, lastError: undefined });
    expect(await registry.getSingleMetricAsString(SYNC_ERRORS_METRIC)).toContain(`${SYNC_ERRORS_METRIC} 3`);

    // With no jitter the delays are exactly 10, 20 and 40 ms: half of 20, 40, 80.
    const attempts = api.requests.filter((r) => r.method === 'GET' && r.path === SECRET_PATH).slice(0, 4);
    // The fourth read succeeds: the Secret does not exist yet, so it is created.
    expect(attempts.map((r) => r.status)).toEqual([500, 500, 500, 404]);
    const times = attempts.map((r) => r.receivedAt);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(9);
    expect(gaps[1]).toBeGreaterThanOrEqual(19);
    expect(gaps[2]).toBeGreaterThanOrEqual(39);
  });

  it('replaces a Secret it cannot use', async () => {
    api.put(SECRET_PATH, { apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET, namespace: NS }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'bm9wZQ==', 'tls.key': 'bm9wZQ==' } });
    const { lifecycle, dir } = await replica();
    await lifecycle.syncNow();
    expect(lifecycle.ready()).toBe(true);
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe(secretState().tlsCert);
  });

  it('rejects whenServable when stopped before any certificate was in place', async () => {
    api.failNext(1000);
    const { lifecycle } = await replica();
    const servable = lifecycle.whenServable();
    await lifecycle.stop();
    await expect(servable).rejects.toThrow(/stopped before a certificate was in place/);
  });
});
