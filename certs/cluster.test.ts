import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeApiKubeconfig, putWebhookConfiguration, startFakeApiServer, WEBHOOK_CONFIGURATION_PATH, type FakeApiServer, type KubeObject } from '../test/support/fake-apiserver.js';
import { get } from '../test/support/webhook-client.js';
import { serve } from '../webhook/serve.js';
import { ClusterCertificateError, reportCertificatesTo, startClusterCertificates } from './cluster.js';
import { KubeCertStore } from './kube-store.js';
import { startCertLifecycle, SYNC_ERRORS_METRIC, type CertLifecycle } from './lifecycle.js';

const NS = 'dfs-system';
const DAY = 24 * 60 * 60 * 1000;

let api: FakeApiServer;
let dir: string;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(async () => {
  api = await startFakeApiServer();
  dir = await mkdtemp(join(tmpdir(), 'dfs-cluster-'));
  putWebhookConfiguration(api, NS);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

function caBundle(): string {
  const config = api.get<KubeObject & { webhooks: { clientConfig: { caBundle: string } }[] }>(WEBHOOK_CONFIGURATION_PATH)!;
  return Buffer.from(config.webhooks[0]!.clientConfig.caBundle, 'base64').toString();
}

/** Fingerprint of the certificate a client that trusts only the published caBundle gets. */
function servedCertificate(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'dfs-injector.dfs-system.svc', ca: caBundle(), ALPNProtocols: ['h2'] }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.end();
    });
    socket.on('error', reject);
  });
}

async function fingerprintOf(path: string): Promise<string> {
  return new X509Certificate(await readFile(path, 'utf8')).fingerprint256;
}

describe('startClusterCertificates', () => {
  it('loads the kubeconfig, bootstraps the Secret and settles once the pair is on disk', async () => {
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, fakeApiKubeconfig(api));
    const lifecycle = await startClusterCertificates({
      secretName: 'dfs-injector-tls',
      webhookConfigName: 'dfs-injector',
      namespace: NS,
      kubeconfig,
      tlsCertPath: join(dir, 'tls', 'tls.crt'),
      tlsKeyPath: join(dir, 'tls', 'tls.key'),
    });
    cleanups.push(() => lifecycle.stop());
    const leaf = new X509Certificate(await readFile(join(dir, 'tls', 'tls.crt'), 'utf8'));
    expect(leaf.subjectAltName).toContain('DNS:dfs-injector.dfs-system.svc');
    expect(api.get(`/api/v1/namespaces/${NS}/secrets/dfs-injector-tls`)).toBeDefined();
    expect(lifecycle.ready()).toBe(true);
  });

  it('refuses a certificate and key in different directories', async () => {
    await expect(
      startClusterCertificates({
        secretName: 's',
        webhookConfigName: 'w',
        namespace: NS,
        tlsCertPath: '/a/tls.crt',
        tlsKeyPath: '/b/tls.key',
      }),
    ).rejects.toThrow(ClusterCertificateError);
  });
});

describe('the lifecycle behind serve()', () => {
  it('swaps a renewed certificate into the running server, and reports into its /readyz and /metrics', async () => {
    // Start in the past, so that the renewal happens at the real time a TLS client checks against.
    let clock = Date.now() - 2.1 * DAY;
    const store = new KubeCertStore(api.endpoint(), { namespace: NS, secretName: 'dfs-injector-tls', webhookConfigName: 'dfs-injector' });
    const lifecycle: CertLifecycle = startCertLifecycle({
      store,
      tlsDir: dir,
      service: 'dfs-injector',
      namespace: NS,
      leafDays: 3,
      caDays: 30,
      now: () => clock,
    });
    cleanups.push(() => lifecycle.stop());
    await lifecycle.whenServable();

    const running = await serve({
      tlsCertPath: join(dir, 'tls.crt'),
      tlsKeyPath: join(dir, 'tls.key'),
      port: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      signals: false,
      reloadDebounceMs: 50,
    });
    cleanups.push(() => running.close());
    reportCertificatesTo(lifecycle, running.server);

    const first = await servedCertificate(running.port);
    expect(first).toBe(await fingerprintOf(join(dir, 'tls.crt')));
    const readyz = await get(running.metricsPort, '/readyz');
    expect(readyz.status).toBe(200);
    expect(JSON.parse(readyz.text).checks).toMatchObject({ certificate: true });
    expect((await get(running.metricsPort, '/metrics')).text).toContain(`${SYNC_ERRORS_METRIC} 0`);

    clock = Date.now();
    await lifecycle.syncNow();
    const renewed = await fingerprintOf(join(dir, 'tls.crt'));
    expect(renewed).not.toBe(first);
    await vi.waitFor(async () => expect(await servedCertificate(running.port)).toBe(renewed), { timeout: 10_000, interval: 100 });

    // Past the served certificate's end, /readyz says so.
    clock += 10 * DAY;
    const late = await get(running.metricsPort, '/readyz');
    expect(late.status).toBe(503);
    expect(JSON.parse(late.text).checks).toMatchObject({ certificate: false });
  });
});
