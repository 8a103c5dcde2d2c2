import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateCertificates, type GeneratedCertificates } from '../certs/generate.js';
import { defaultConfig } from '../lib/config.js';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { createSecretDir, type SecretDir } from '../test/support/secret-dir.js';
import { localCertificates } from '../test/support/tls.js';
import { certificateSerial, peerCertificate, post, type Json } from '../test/support/webhook-client.js';
import { buildServer, type WebhookServer } from './server.js';
import { watchTlsFiles, type TlsReloader } from './tls-reload.js';

function otherCertificates(): Promise<GeneratedCertificates> {
  return generateCertificates({ service: 'dfs-injector', namespace: 'dfs-system', dns: ['localhost'], ips: ['127.0.0.1'], days: 3 });
}

async function counterValue(webhook: WebhookServer, name: string): Promise<number> {
  const metric = await webhook.metrics.registry.getSingleMetric(name)!.get();
  return metric.values[0]?.value ?? 0;
}

let first: GeneratedCertificates;
let second: GeneratedCertificates;
let third: GeneratedCertificates;

beforeAll(async () => {
  [first, second, third] = await Promise.all([localCertificates(), otherCertificates(), otherCertificates()]);
});

describe('TLS reload', () => {
  let secret: SecretDir;
  let webhook: WebhookServer;
  let reloader: TlsReloader;
  let port: number;
  let logs: Record<string, Json>[];
  let trusted: string[];

  async function start(timings: { debounceMs: number; intervalMs: number }): Promise<void> {
    secret = await createSecretDir({ 'tls.crt': first.tlsCert, 'tls.key': first.tlsKey });
    logs = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const current = { cert: first.tlsCert, key: first.tlsKey };
    webhook = buildServer({ getConfig: () => defaultConfig, tls: current, logger });
    await webhook.admission.listen({ port: 0, host: '127.0.0.1' });
    port = (webhook.admission.server.address() as AddressInfo).port;
    reloader = watchTlsFiles({
      certPath: secret.path('tls.crt'),
      keyPath: secret.path('tls.key'),
      current,
      apply: (pair, source) => webhook.setTls(pair, source),
      metrics: webhook.metrics,
      logger,
      ...timings,
    });
    trusted = [first.caCert, second.caCert, third.caCert];
  }

  afterEach(async () => {
    reloader.close();
    await webhook.close();
    await secret.remove();
  });

  it('serves the new certificate to new connections after the kubelet swaps ..data', async () => {
    await start({ debounceMs: 50, intervalMs: 600_000 });
    expect((await peerCertificate(port, trusted)).serialNumber).toBe(certificateSerial(first.tlsCert));

    await secret.update({ 'tls.crt': second.tlsCert, 'tls.key': second.tlsKey });

    await vi.waitFor(async () => expect((await peerCertificate(port, trusted)).serialNumber).toBe(certificateSerial(second.tlsCert)), {
      timeout: 10_000,
      interval: 50,
    });
    // The reloaded context keeps ALPN and the TLS floor.
    const res = await post(port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca: second.caCert, protocol: 'h2' });
    expect(res.status).toBe(200);
    expect(res.alpn).toBe('h2');
    await expect(
      peerCertificate(port, trusted, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/) });

    const expiry = await webhook.metrics.registry.getSingleMetric('dfs_injector_certificate_expiry_timestamp_seconds')!.get();
    expect(expiry.values[0]?.value).toBe(Date.parse(new X509Certificate(second.tlsCert).validTo) / 1000);
    expect(logs.find((line) => line.msg === 'serving a reloaded TLS certificate')).toMatchObject({
      serialNumber: certificateSerial(second.tlsCert),
    });
    expect(await counterValue(webhook, 'dfs_injector_tls_reload_failures_total')).toBe(0);
  });

  it('keeps serving the old certificate when the new key does not match, and counts the failure', async () => {
    await start({ debounceMs: 50, intervalMs: 600_000 });

    await secret.update({ 'tls.crt': third.tlsCert, 'tls.key': second.tlsKey });

    await vi.waitFor(async () => expect(await counterValue(webhook, 'dfs_injector_tls_reload_failures_total')).toBeGreaterThanOrEqual(1), {
      timeout: 10_000,
      interval: 50,
    });
    expect((await peerCertificate(port, trusted)).serialNumber).toBe(certificateSerial(first.tlsCert));
    const error = logs.find((line) => line.level === 50);
    expect(error?.msg).toMatch(/still serving the previous certificate: .*private key does not belong to the certificate/);
    expect((await post(port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca: first.caCert, protocol: 'h2' })).status).toBe(200);
  });

  it('keeps serving the old certificate when the new one is not PEM', async () => {
    await start({ debounceMs: 50, intervalMs: 600_000 });

    await secret.update({ 'tls.crt': 'not a certificate\n', 'tls.key': second.tlsKey });

    await vi.waitFor(async () => expect(await counterValue(webhook, 'dfs_injector_tls_reload_failures_total')).toBeGreaterThanOrEqual(1), {
      timeout: 10_000,
      interval: 50,
    });
    expect((await peerCertificate(port, trusted)).serialNumber).toBe(certificateSerial(first.tlsCert));
  });

  it('picks up a change the watcher missed at the periodic re-check', async () => {
    // A debounce longer than the test leaves only the periodic re-check to notice the swap.
    await start({ debounceMs: 600_000, intervalMs: 100 });

    await secret.update({ 'tls.crt': second.tlsCert, 'tls.key': second.tlsKey });

    await vi.waitFor(async () => expect((await peerCertificate(port, trusted)).serialNumber).toBe(certificateSerial(second.tlsCert)), {
      timeout: 10_000,
      interval: 50,
    });
  });
});
