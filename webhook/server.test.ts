import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../lib/config.js';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { localCertificates } from '../test/support/tls.js';
import { get, peerCertificate, post, type Json } from '../test/support/webhook-client.js';
import { buildServer, type ServerOptions, type WebhookServer } from './server.js';

interface Running {
  webhook: WebhookServer;
  port: number;
  probesPort: number;
  logs: Record<string, Json>[];
}

async function start(overrides: Partial<ServerOptions> = {}): Promise<Running> {
  const certs = await localCertificates();
  const logs: Record<string, Json>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const webhook = buildServer({
    getConfig: () => defaultConfig,
    tls: { cert: certs.tlsCert, key: certs.tlsKey },
    logger,
    ...overrides,
  });
  await webhook.admission.listen({ port: 0, host: '127.0.0.1' });
  await webhook.probes.listen({ port: 0, host: '127.0.0.1' });
  return {
    webhook,
    port: (webhook.admission.server.address() as AddressInfo).port,
    probesPort: (webhook.probes.server.address() as AddressInfo).port,
    logs,
  };
}

function decodePatch(response: { patch?: string }): { op: string; path: string; value?: Json }[] {
  return JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8'));
}

function unprivilegedSource(): Record<string, Json> {
  const pod = loadPod('decypharr-source');
  delete pod.spec.containers[0].securityContext.privileged;
  return pod;
}

let ca: string;
let app: Running;

beforeAll(async () => {
  ca = (await localCertificates()).caCert;
  app = await start();
});

afterAll(async () => {
  await app.webhook.close();
});

describe('admission over real TLS', () => {
  it.each(['h2', 'http/1.1'] as const)('injects a consumer pod and answers 200 with a JSON patch (%s)', async (protocol) => {
    const review = admissionReviewFor(loadPod('sonarr'), { uid: `uid-consumer-${protocol}` });
    const res = await post(app.port, '/mutate', review, { ca, protocol });

    expect(res.status).toBe(200);
    expect(res.alpn).toBe(protocol);
    expect(res.contentType).toMatch(/^application\/json/);
    const body = res.json();
    expect(body).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
    expect(body.response).toMatchObject({ uid: `uid-consumer-${protocol}`, allowed: true, patchType: 'JSONPatch' });
    const ops = decodePatch(body.response);
    const volume = ops.find((op) => op.path.startsWith('/spec/volumes'));
    expect(volume?.value).toMatchObject({ hostPath: { path: '/mnt/decypharr-dfs', type: 'Directory' } });
    const mount = ops.find((op) => op.path.startsWith('/spec/containers/0/volumeMounts'));
    expect(mount?.value).toMatchObject({ mountPath: '/mnt/dfs', readOnly: true, mountPropagation: 'HostToContainer' });
  });

  it('denies a source whose container is not privileged, with 200 and the reason', async () => {
    const res = await post(app.port, '/mutate', admissionReviewFor(unprivilegedSource(), { uid: 'uid-source' }), { ca, protocol: 'h2' });

    expect(res.status).toBe(200);
    const { response } = res.json();
    expect(response).toMatchObject({ uid: 'uid-source', allowed: false });
    expect(response.patch).toBeUndefined();
    expect(response.status.message).toMatch(/privileged/);
  });

  it('serves every entry path of lib/entry.ts', async () => {
    const res = await post(app.port, '/mutate/namespace-consumer', admissionReviewFor(loadPod('sonarr')), { ca });
    expect(res.status).toBe(200);
    expect(res.json().response.allowed).toBe(true);
  });

  it('answers 400 to malformed JSON', async () => {
    const res = await post(app.port, '/mutate', '{"apiVersion": "admission.k8s.io/v1", ', { ca });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: 'Bad Request', message: 'request body is not valid JSON' });
  });

  it.each(['text/plain', 'application/yaml'])('answers 415 to Content-Type %s', async (contentType) => {
    const res = await post(app.port, '/mutate', JSON.stringify(admissionReviewFor(loadPod('sonarr'))), { ca, contentType });
    expect(res.status).toBe(415);
    expect(res.json()).toMatchObject({ error: 'Unsupported Media Type' });
    expect(res.json().message).toContain(contentType);
    expect(res.json().message).toContain('application/json');
  });

  it('answers 413 to a body over 4 MiB', async () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations = { padding: 'x'.repeat(4 * 1024 * 1024) };
    const res = await post(app.port, '/mutate', admissionReviewFor(pod), { ca, protocol: 'h2' });
    expect(res.status).toBe(413);
    expect(res.json()).toEqual({ error: 'Payload Too Large', message: 'request body is larger than the 4 MiB limit' });
  });

  it('accepts a 3.5 MiB body: above the API server\'s 3 MiB request limit, with room for the review around the pod', async () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations = { padding: 'x'.repeat(3.5 * 1024 * 1024) };
    const res = await post(app.port, '/mutate', admissionReviewFor(pod), { ca, protocol: 'h2' });
    expect(res.status).toBe(200);
  });

  it('answers 400 naming the missing field when the JSON is not an AdmissionReview', async () => {
    const review = admissionReviewFor(loadPod('sonarr'));
    delete review.request.uid;
    const res = await post(app.port, '/mutate', review, { ca });
    expect(res.status).toBe(400);
    expect(res.json().error).toBe('Bad Request');
    expect(res.json().message).toContain('request.uid');
  });

  it('serves the path the API server calls, with its ?timeout query, and logs the path without it', async () => {
    const before = app.logs.length;
    const res = await post(app.port, '/mutate?timeout=10s', admissionReviewFor(loadPod('sonarr'), { uid: 'uid-query' }), { ca, protocol: 'h2' });
    expect(res.status).toBe(200);
    expect(app.logs.slice(before).find((line) => line.uid === 'uid-query')).toMatchObject({ path: '/mutate', status: 200 });
  });

  it.each(['h2', 'http/1.1'] as const)('answers 405 with Allow: POST to a GET of an entry path (%s)', async (protocol) => {
    const res = await post(app.port, '/mutate', '', { ca, protocol, method: 'GET', contentType: null });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(res.json()).toMatchObject({ error: 'Method Not Allowed' });
    expect(res.json().message).toContain('POST an AdmissionReview');
  });

  it('answers 415 naming "(none)" when there is no Content-Type', async () => {
    const res = await post(app.port, '/mutate', JSON.stringify(admissionReviewFor(loadPod('sonarr'))), { ca, contentType: null });
    expect(res.status).toBe(415);
    expect(res.json().message).toContain('"(none)"');
  });

  it('accepts application/json with charset=utf-8 and refuses another charset', async () => {
    const body = JSON.stringify(admissionReviewFor(loadPod('sonarr')));
    expect((await post(app.port, '/mutate', body, { ca, contentType: 'Application/JSON; charset="UTF-8"' })).status).toBe(200);
    const res = await post(app.port, '/mutate', body, { ca, contentType: 'application/json; charset=utf-16' });
    expect(res.status).toBe(415);
    expect(res.json().message).toContain('UTF-8');
  });

  it('answers 400 to an empty body', async () => {
    const res = await post(app.port, '/mutate', '', { ca });
    expect(res.status).toBe(400);
    expect(res.json().message).toBe('request body is empty; expected an AdmissionReview');
  });

  it('refuses a body with a "__proto__" key with 400, and counts it', async () => {
    const text = JSON.stringify(admissionReviewFor(loadPod('sonarr'))).replace('{"apiVersion"', '{"__proto__":{"polluted":true},"apiVersion"');
    const res = await post(app.port, '/mutate', text, { ca, protocol: 'h2' });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: 'Bad Request', message: 'request body has a "__proto__" key, which is refused' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const metric = await app.webhook.metrics.registry.getSingleMetric('dfs_injector_admissions_total')!.get();
    expect(metric.values.find((v) => v.labels.reason === 'prototype-poisoning')?.value).toBe(1);
  });

  it('refuses a "__proto__" key spelt with \\u escapes, and still parses other escapes', async () => {
    const review = JSON.stringify(admissionReviewFor(loadPod('sonarr')));
    const escaped = review.replace('{"apiVersion"', '{"\\u005f_proto\\u005F_":{"polluted":true},"apiVersion"');
    const refused = await post(app.port, '/mutate', escaped, { ca });
    expect(refused.status).toBe(400);
    expect(refused.json().message).toBe('request body has a "__proto__" key, which is refused');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // Go's encoder writes <, > and & as \u003c, \u003e and \u0026: such a body is answered.
    const harmless = review.replace('"namespace":', '"note":"a \\u003c b","namespace":');
    const answered = await post(app.port, '/mutate', harmless, { ca });
    expect(answered.status).toBe(200);
    expect(answered.json().response.allowed).toBe(true);
  });

  it('answers 413 over HTTP/1.1 from Content-Length alone, before the body is read', async () => {
    const pod = loadPod('sonarr');
    pod.metadata.annotations = { padding: 'x'.repeat(4 * 1024 * 1024) };
    const before = app.logs.length;
    const res = await post(app.port, '/mutate', admissionReviewFor(pod), { ca, protocol: 'http/1.1' });
    expect(res.status).toBe(413);
    expect(res.json().message).toBe('request body is larger than the 4 MiB limit');
    const line = app.logs.slice(before).find((l) => l.reason === 'body-too-large');
    expect(line).toMatchObject({ status: 413, outcome: 'bad-request' });
  });

  it('answers 404 with the entry paths for an unknown path', async () => {
    const res = await post(app.port, '/validate', admissionReviewFor(loadPod('sonarr')), { ca });
    expect(res.status).toBe(404);
    expect(res.json().message).toContain('/mutate');
  });
});

describe('TLS', () => {
  it('negotiates TLS 1.2 when that is all the client offers', async () => {
    const peer = await peerCertificate(app.port, ca, { maxVersion: 'TLSv1.2' });
    expect(peer.protocol).toBe('TLSv1.2');
  });

  it('refuses TLS 1.1', async () => {
    const attempt = peerCertificate(app.port, ca, {
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      // OpenSSL 3 disables TLS 1.1 at the default security level; lower it so the client offers it.
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    await expect(attempt).rejects.toMatchObject({ code: expect.stringMatching(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/) });
  });
});

describe('internal errors', () => {
  let broken: Running;

  beforeAll(async () => {
    broken = await start({
      review: () => {
        throw new TypeError("Cannot read properties of undefined (reading 'containers')");
      },
    });
  });

  afterAll(async () => {
    await broken.webhook.close();
  });

  it('denies with 200 instead of failing, logs the error and counts it', async () => {
    const res = await post(broken.port, '/mutate', admissionReviewFor(loadPod('sonarr'), { uid: 'uid-boom' }), { ca, protocol: 'h2' });

    expect(res.status).toBe(200);
    const { response } = res.json();
    expect(response).toMatchObject({ uid: 'uid-boom', allowed: false, status: { code: 500, reason: 'InternalError' } });
    expect(response.status.message).toMatch(/internal error.*unchanged/);
    expect(response.patch).toBeUndefined();

    const errorLine = broken.logs.find((line) => line.level === 50);
    expect(errorLine).toMatchObject({ uid: 'uid-boom', err: { type: 'TypeError' } });
    const metrics = await broken.webhook.metrics.registry.getSingleMetric('dfs_injector_internal_errors_total')!.get();
    expect(metrics.values[0]?.value).toBe(1);
  });
});

describe('logs and metrics', () => {
  let own: Running;

  beforeAll(async () => {
    own = await start();
  });

  afterAll(async () => {
    await own.webhook.close();
  });

  it('writes one info line per admission with its fields and without the pod spec', async () => {
    const before = own.logs.length;
    await post(own.port, '/mutate', admissionReviewFor(loadPod('sonarr'), { uid: 'uid-log', dryRun: true }), { ca, protocol: 'h2' });

    const lines = own.logs.slice(before);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatchObject({
      level: 30,
      msg: 'admission',
      uid: 'uid-log',
      namespace: 'media',
      pod: 'sonarr-7d9f8b6c5d-',
      role: 'consumer',
      outcome: 'injected',
      dryRun: true,
      status: 200,
    });
    expect(typeof line.reason).toBe('string');
    expect(typeof line.durationMs).toBe('number');
    const text = JSON.stringify(line);
    expect(text).not.toContain('containers');
    expect(text).not.toContain('lscr.io');
  });

  it('exposes the admission metrics with role, outcome and reason labels on /metrics', async () => {
    await post(own.port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca });
    await post(own.port, '/mutate', admissionReviewFor(unprivilegedSource()), { ca });
    await post(own.port, '/mutate', '{', { ca });

    const res = await get(own.probesPort, '/metrics');
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/^dfs_injector_admissions_total\{role="consumer",outcome="injected",reason="[a-z-]+"\} [1-9]/m);
    expect(res.text).toMatch(/^dfs_injector_admissions_total\{role="source",outcome="denied",reason="[a-z-]+"\} 1$/m);
    expect(res.text).toMatch(/^dfs_injector_admissions_total\{role="unknown",outcome="bad-request",reason="malformed-json"\} 1$/m);
    expect(res.text).toMatch(/^dfs_injector_admission_duration_seconds_bucket\{le="0.001"\} \d+$/m);
    expect(res.text).toMatch(/^dfs_injector_admission_duration_seconds_count [1-9]/m);
    for (const name of [
      'dfs_injector_config_reload_failures_total',
      'dfs_injector_tls_reload_failures_total',
      'dfs_injector_internal_errors_total',
    ]) {
      expect(res.text).toMatch(new RegExp(`^${name} 0$`, 'm'));
    }
    const notAfter = Date.parse(new X509Certificate((await localCertificates()).tlsCert).validTo) / 1000;
    expect(res.text).toContain(`dfs_injector_certificate_expiry_timestamp_seconds ${notAfter}`);
  });
});

describe('probes', () => {
  let own: Running;
  let extraReady = true;

  beforeAll(async () => {
    own = await start({ readinessChecks: [{ name: 'ca-bundle', ready: () => extraReady }], gracePeriodMs: 300 });
  });

  afterAll(async () => {
    await own.webhook.close();
  });

  it('reports alive on /healthz and ready on /readyz', async () => {
    expect((await get(own.probesPort, '/healthz')).status).toBe(200);
    const ready = await get(own.probesPort, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ ready: true, checks: { tls: true, config: true, 'not-shutting-down': true, 'ca-bundle': true } });
  });

  it('reports not ready while an extra readiness check fails', async () => {
    extraReady = false;
    const ready = await get(own.probesPort, '/readyz');
    extraReady = true;
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text).checks['ca-bundle']).toBe(false);
  });
});

describe('idle connections', () => {
  let own: Running;

  beforeAll(async () => {
    own = await start({ idleTimeoutMs: 300 });
  });

  afterAll(async () => {
    await own.webhook.close();
  });

  it.each(['h2', 'http/1.1'] as const)('closes a %s connection that has been idle for the idle timeout', async (protocol) => {
    // Timed from before the connection opens: the server's clock starts at accept, before the
    // handshake, and a slow handshake must not make the connection look closed early.
    const opened = Date.now();
    const socket = tls.connect({ host: '127.0.0.1', port: own.port, ca, ALPNProtocols: [protocol] });
    await once(socket, 'secureConnect');
    // Read (and drop) the server's HTTP/2 SETTINGS, or the end of the stream is never seen.
    socket.resume();
    await once(socket, 'close');
    expect(Date.now() - opened).toBeGreaterThanOrEqual(250);
  });
});
