import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { issueCertificateAuthority, issueServingCertificate, type KeyPair } from '../certs/issue.js';
import { reviewAdmission } from '../lib/admission.js';
import { defaultConfig } from '../lib/config.js';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { createSecretDir, type SecretDir } from '../test/support/secret-dir.js';
import { localCertificates } from '../test/support/tls.js';
import { certificateSerial, get, peerCertificate, post, type Json } from '../test/support/webhook-client.js';
import { buildServer, type ServerOptions, type WebhookServer } from './server.js';
import { watchTlsFiles } from './tls-reload.js';

/*
 * What a hostile or broken client can do to the webhook over real TLS: hold requests open, send
 * bodies without end, reset streams by the thousand, offer weak ciphers, and what an expired
 * certificate does to readiness. Each test here failed before the limits existed.
 */

interface Running {
  webhook: WebhookServer;
  port: number;
  probesPort: number;
  logs: Record<string, Json>[];
}

const running: Running[] = [];

async function start(overrides: Partial<ServerOptions> = {}): Promise<Running> {
  const certs = await localCertificates();
  const logs: Record<string, Json>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const webhook = buildServer({ getConfig: () => defaultConfig, tls: { cert: certs.tlsCert, key: certs.tlsKey }, logger, ...overrides });
  await webhook.admission.listen({ port: 0, host: '127.0.0.1' });
  await webhook.probes.listen({ port: 0, host: '127.0.0.1' });
  const app = {
    webhook,
    port: (webhook.admission.server.address() as AddressInfo).port,
    probesPort: (webhook.probes.server.address() as AddressInfo).port,
    logs,
  };
  running.push(app);
  return app;
}

async function metricValue(webhook: WebhookServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await webhook.metrics.registry.getSingleMetric(name)!.get();
  const sample = metric.values.find((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value));
  return sample?.value ?? 0;
}

function connectH2(port: number, ca: string): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca });
  session.on('error', () => undefined);
  return session;
}

/** A stream whose headers are sent and whose body is left open; resolves with its answer. */
function openStream(session: http2.ClientHttp2Session, declaredLength?: number): { stream: http2.ClientHttp2Stream; answer: Promise<{ status: number; headers: http2.IncomingHttpHeaders; text: string }> } {
  const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' };
  if (declaredLength !== undefined) headers['content-length'] = declaredLength;
  const stream = session.request(headers, { endStream: false });
  const answer = new Promise<{ status: number; headers: http2.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    let received: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      received = h;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status: Number(received[':status']), headers: received, text: Buffer.concat(chunks).toString('utf8') }));
    stream.on('error', reject);
  });
  answer.catch(() => undefined);
  return { stream, answer };
}

let ca: string;

beforeAll(async () => {
  ca = (await localCertificates()).caCert;
});

afterAll(async () => {
  await Promise.all(running.map((app) => app.webhook.close()));
});

describe('work in flight is bounded', () => {
  it('refuses requests past the in-flight limit with 429 and a Status body the API server passes on', async () => {
    const app = await start({ maxInFlight: 4 });
    const session = connectH2(app.port, ca);
    const held = Array.from({ length: 4 }, () => openStream(session));
    // The four held requests are in flight once the server has seen their headers.
    await vi.waitFor(async () => expect(await metricValue(app.webhook, 'dfs_injector_requests_in_flight')).toBe(4), { timeout: 5000, interval: 20 });

    const res = await post(app.port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca, protocol: 'h2' });
    expect(res.status).toBe(429);
    // No Retry-After: the API server would retry until its timeout and hide this message.
    expect(res.headers['retry-after']).toBeUndefined();
    expect(res.json()).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'TooManyRequests', code: 429 });
    expect(res.json().message).toContain('4 requests');
    expect(await metricValue(app.webhook, 'dfs_injector_admissions_total', { outcome: 'overloaded', reason: 'too-many-requests' })).toBe(1);

    // The held ones are still answered once their bodies arrive.
    const body = JSON.stringify(admissionReviewFor(loadPod('sonarr')));
    for (const h of held) h.stream.end(body);
    for (const h of held) expect((await h.answer).status).toBe(200);
    session.close();
  });

  it('with the defaults, holds at most 32 MiB of unfinished bodies and refuses the rest with 429', async () => {
    const app = await start();
    const sessions = [connectH2(app.port, ca), connectH2(app.port, ca)];
    // 16 bodies of 3 MiB, each left one byte short: 48 MiB if all were held.
    const piece = Buffer.alloc(3 * 1024 * 1024 - 1, 0x20);
    const streams = Array.from({ length: 16 }, (_, i) => {
      const s = openStream(sessions[i % 2]!, piece.length + 1);
      s.stream.write(piece);
      return s;
    });
    // At most 10 bodies of 3 MiB fit under 32 MiB: the other 6 or more are refused as they come.
    await vi.waitFor(async () => expect(await metricValue(app.webhook, 'dfs_injector_admissions_total', { reason: 'buffer-full' })).toBeGreaterThanOrEqual(6), {
      timeout: 25_000,
      interval: 100,
    });
    expect(await metricValue(app.webhook, 'dfs_injector_request_buffered_bytes')).toBeLessThanOrEqual(32 * 1024 * 1024);
    const answers = await Promise.all(
      streams.map((s) => Promise.race([s.answer.then((a) => a.status), new Promise<number>((resolve) => setTimeout(() => resolve(0), 500))])),
    );
    expect(answers.filter((status) => status === 429).length).toBeGreaterThanOrEqual(6);
    expect(answers.filter((status) => status !== 429).every((status) => status === 0)).toBe(true);
    for (const s of sessions) s.destroy();
  }, 40_000);

  it('advertises 100 concurrent streams per HTTP/2 connection', async () => {
    const app = await start();
    const session = connectH2(app.port, ca);
    await once(session, 'remoteSettings');
    expect(session.remoteSettings.maxConcurrentStreams).toBe(100);
    expect(session.remoteSettings.maxHeaderListSize).toBe(16 * 1024);
    session.close();
  });

  it('refuses an HTTP/2 request with more than 64 header pairs, and the connection goes on', async () => {
    const app = await start();
    const session = connectH2(app.port, ca);
    const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' };
    for (let i = 0; i < 100; i++) headers[`x-pad-${i}`] = 'x';
    const stream = session.request(headers);
    const closed = await new Promise<number>((resolve) => {
      stream.on('error', () => undefined);
      stream.on('response', () => resolve(-1));
      stream.on('close', () => resolve(stream.rstCode ?? -2));
      stream.end('{}');
    });
    expect(closed).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(app.logs.filter((line) => line.msg === 'admission')).toEqual([]);
    session.close();
    expect((await post(app.port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca, protocol: 'h2' })).status).toBe(200);
  });
});

describe('log lines', () => {
  it('quote a bounded part of a pod name the API server has not validated yet', async () => {
    const app = await start();
    // The API server calls the webhook before it validates the pod: its name can be megabytes.
    const pod = loadPod('sonarr');
    pod.metadata.generateName = `${'x'.repeat(1024 * 1024)}-`;
    const res = await post(app.port, '/mutate', admissionReviewFor(pod), { ca, protocol: 'h2' });
    expect(res.status).toBe(200);
    const line = app.logs.find((l) => l.msg === 'admission');
    expect(line?.pod).toBe(`${'x'.repeat(253)}… (${1024 * 1024 + 1 - 253} more characters)`);
    expect(JSON.stringify(line).length).toBeLessThan(1024);
  });
});

describe('slow clients get a deadline (defaults)', () => {
  it('answers 408 and closes an HTTP/1.1 connection whose headers trickle in, and an HTTP/2 body that never ends', async () => {
    const app = await start();
    const started = Date.now();

    // HTTP/1.1: one header byte every 500 ms, never finishing the headers.
    const slowHeaders = (async () => {
      const socket = tls.connect({ host: '127.0.0.1', port: app.port, ca, ALPNProtocols: ['http/1.1'] });
      await once(socket, 'secureConnect');
      const text = 'POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ' + 'a'.repeat(100);
      let i = 0;
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write(text[i++ % text.length]!);
      }, 500);
      let answer = '';
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString('latin1');
      });
      socket.on('error', () => undefined);
      await once(socket, 'close');
      clearInterval(timer);
      return { answer, seconds: (Date.now() - started) / 1000 };
    })();

    // HTTP/2: a body declared as 1000 bytes, sent one byte every 500 ms.
    const slowBody = (async () => {
      const session = connectH2(app.port, ca);
      const { stream, answer } = openStream(session, 1000);
      const timer = setInterval(() => {
        if (!stream.destroyed) stream.write('{');
      }, 500);
      const result = await answer.catch(() => ({ status: 0, headers: {}, text: '' }));
      clearInterval(timer);
      session.destroy();
      return { ...result, seconds: (Date.now() - started) / 1000 };
    })();

    const [h1, h2] = await Promise.all([slowHeaders, slowBody]);
    expect(h1.answer).toMatch(/^HTTP\/1\.1 408/);
    expect(h1.seconds).toBeLessThan(13);
    expect(h2.status).toBe(408);
    expect(JSON.parse(h2.text).message).toContain('did not arrive within 10000 ms');
    expect(h2.seconds).toBeLessThan(13);
  }, 30_000);
});

describe('reset HTTP/2 streams', () => {
  it('are skipped: one reset before its body is complete is not reviewed nor logged as an admission, and frees its slot and bytes', async () => {
    let reviews = 0;
    const app = await start({
      review: (...args) => {
        reviews += 1;
        return reviewAdmission(...args);
      },
    });
    const session = connectH2(app.port, ca);
    const body = JSON.stringify(admissionReviewFor(loadPod('sonarr')));
    const { stream } = openStream(session, Buffer.byteLength(body));
    stream.write(body.slice(0, 100));
    await vi.waitFor(async () => expect(await metricValue(app.webhook, 'dfs_injector_request_buffered_bytes')).toBe(100), { timeout: 5000, interval: 20 });
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await vi.waitFor(async () => expect(await metricValue(app.webhook, 'dfs_injector_requests_abandoned_total')).toBe(1), { timeout: 5000, interval: 20 });
    expect(await metricValue(app.webhook, 'dfs_injector_requests_in_flight')).toBe(0);
    expect(await metricValue(app.webhook, 'dfs_injector_request_buffered_bytes')).toBe(0);
    expect(reviews).toBe(0);
    expect(app.logs.filter((line) => line.msg === 'admission' || line.msg === 'admission request rejected')).toEqual([]);
    // The session goes on: the next request on it is reviewed and answered.
    const next = openStream(session, Buffer.byteLength(body));
    next.stream.end(body);
    expect((await next.answer).status).toBe(200);
    expect(reviews).toBe(1);
    session.close();
  });

  it('are not processed or logged one by one; the warnings are capped per second with a summary', async () => {
    const app = await start();
    const body = JSON.stringify(admissionReviewFor(loadPod('sonarr')));
    const t0 = Date.now();
    // A rapid-reset client: open a stream, send its body, cancel it at once; 90 at a time,
    // under the 100 streams the server allows, for 2000 streams in all. Node 22 and later end
    // such a session themselves after a burst of resets; the client then reconnects, as an
    // attacker would.
    const connected = async (): Promise<http2.ClientHttp2Session> => {
      const fresh = connectH2(app.port, ca);
      await once(fresh, 'connect').catch(() => undefined);
      return fresh;
    };
    let session = await connected();
    let sessionsCut = 0;
    for (let round = 0; round < 22; round++) {
      if (session.closed || session.destroyed) {
        sessionsCut += 1;
        session = await connected();
      }
      const open = session;
      // A stream of a session the server cut may never report its own close (Node 22).
      const cut = new Promise<void>((resolve) => {
        open.once('close', () => resolve());
        open.once('goaway', () => resolve());
      });
      const batch = Array.from({ length: 90 }, () => {
        try {
          const stream = open.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' }, { endStream: false });
          stream.on('error', () => undefined);
          stream.end(body);
          stream.close(http2.constants.NGHTTP2_CANCEL);
          return Promise.race([new Promise<void>((resolve) => stream.on('close', () => resolve())), cut]);
        } catch {
          return Promise.resolve();
        }
      });
      // Node 22 stops opening streams on a session that keeps resetting them without closing
      // it: the client gives up on it after a while and reconnects.
      const stalled = await Promise.race([
        Promise.all(batch).then(() => false),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 3000)),
      ]);
      if (stalled) open.destroy();
    }
    session.destroy();
    // The server still answers.
    expect((await post(app.port, '/mutate', body, { ca, protocol: 'h2' })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1200));

    const warnings = app.logs.filter((line) => line.level === 40);
    // 50 lines in each one-second window the flood touched, plus one summary line per window.
    const windows = Math.ceil((Date.now() - t0) / 1000) + 1;
    expect(warnings.length, `${warnings.length} warning lines, ${sessionsCut} sessions cut by the server`).toBeLessThanOrEqual(51 * windows);
    const answered = app.logs.filter((line) => line.msg === 'admission').length;
    const abandoned = await metricValue(app.webhook, 'dfs_injector_requests_abandoned_total');
    // Reset streams reach the handler (some after their answer was sent: those were admissions).
    expect(abandoned + answered).toBeGreaterThan(0);
    const suppressed = await metricValue(app.webhook, 'dfs_injector_log_lines_suppressed_total');
    if (suppressed > 0) expect(warnings.some((line) => /^suppressed \d+ log lines/.test(line.msg))).toBe(true);
  }, 60_000);
});

describe('TLS 1.2 offers forward secrecy only', () => {
  let app: Running;
  beforeAll(async () => {
    app = await start();
  });

  it.each(['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'])('accepts %s', async (cipher) => {
    const peer = await peerCertificate(app.port, ca, { maxVersion: 'TLSv1.2', ciphers: cipher });
    expect(peer.protocol).toBe('TLSv1.2');
  });

  it.each(['AES128-GCM-SHA256', 'AES256-SHA256', 'AES128-SHA', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA256', 'ECDHE-RSA-AES128-SHA'])(
    'refuses a client offering only %s',
    async (cipher) => {
      await expect(peerCertificate(app.port, ca, { maxVersion: 'TLSv1.2', ciphers: cipher })).rejects.toMatchObject({
        code: expect.stringMatching(/HANDSHAKE_FAILURE|NO_SHARED_CIPHER|SSLV3_ALERT/),
      });
    },
  );

  it('still negotiates TLS 1.3', async () => {
    expect((await peerCertificate(app.port, ca)).protocol).toBe('TLSv1.3');
  });
});

describe('certificate validity', () => {
  const DAY = 24 * 60 * 60 * 1000;
  let current: KeyPair & { ca: string };
  let expired: KeyPair;
  let future: KeyPair;

  beforeAll(async () => {
    const now = Date.now();
    const authority = await issueCertificateAuthority({ service: 'dfs-injector', namespace: 'dfs-system', lifetimeMs: 3650 * DAY, now: now - 30 * DAY });
    const leaf = (at: number, lifetimeMs: number): Promise<KeyPair> =>
      issueServingCertificate(authority, { service: 'dfs-injector', namespace: 'dfs-system', ips: ['127.0.0.1'], lifetimeMs, now: at });
    const [c, e, f] = await Promise.all([leaf(now, 10 * DAY), leaf(now - 20 * DAY, 10 * DAY), leaf(now + 5 * DAY, 10 * DAY)]);
    current = { ...c, ca: authority.cert };
    expired = e;
    future = f;
  });

  let secret: SecretDir | undefined;
  afterEach(async () => {
    await secret?.remove();
    secret = undefined;
  });

  it('refuses to load an expired or not-yet-valid pair, keeps serving the old one, logs and counts it', async () => {
    secret = await createSecretDir({ 'tls.crt': current.cert, 'tls.key': current.key });
    const app = await start({ tls: { cert: current.cert, key: current.key } });
    const reloader = watchTlsFiles({
      certPath: secret.path('tls.crt'),
      keyPath: secret.path('tls.key'),
      current: { cert: current.cert, key: current.key },
      apply: (pair, source) => app.webhook.setTls(pair, source),
      metrics: app.webhook.metrics,
      logger: app.webhook.logger,
      debounceMs: 50,
      intervalMs: 600_000,
    });
    try {
      await secret.update({ 'tls.crt': expired.cert, 'tls.key': expired.key });
      await vi.waitFor(async () => expect(await metricValue(app.webhook, 'dfs_injector_tls_reload_failures_total')).toBe(1), { timeout: 10_000, interval: 50 });
      expect(app.logs.find((line) => line.level === 50)?.msg).toMatch(/still serving the previous certificate: .*expired at/);

      await secret.update({ 'tls.crt': future.cert, 'tls.key': future.key });
      await vi.waitFor(async () => expect(await metricValue(app.webhook, 'dfs_injector_tls_reload_failures_total')).toBe(2), { timeout: 10_000, interval: 50 });
      expect(app.logs.filter((line) => line.level === 50)[1]?.msg).toMatch(/is not valid before/);

      // Handshakes keep working with the certificate that was there.
      expect((await peerCertificate(app.port, current.ca)).serialNumber).toBe(certificateSerial(current.cert));
      expect((await get(app.probesPort, '/readyz')).status).toBe(200);
    } finally {
      reloader.close();
    }
  });

  it('fails /readyz and reports the certificate invalid once the served one has expired', async () => {
    let clock = Date.now();
    const app = await start({ tls: { cert: current.cert, key: current.key }, now: () => clock });
    expect((await get(app.probesPort, '/readyz')).status).toBe(200);
    expect(await metricValue(app.webhook, 'dfs_injector_certificate_valid')).toBe(1);

    clock += 11 * DAY;
    const ready = await get(app.probesPort, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text).checks.tls).toBe(false);
    expect(await metricValue(app.webhook, 'dfs_injector_certificate_valid')).toBe(0);
  });

  it('starts with a not-yet-valid pair but is not ready until it becomes valid', async () => {
    let clock = Date.now();
    const app = await start({ tls: { cert: future.cert, key: future.key }, now: () => clock });
    expect((await get(app.probesPort, '/readyz')).status).toBe(503);
    expect(app.logs.find((line) => line.level === 50)?.msg).toMatch(/not valid before .*\/readyz fails/);
    clock += 6 * DAY;
    expect((await get(app.probesPort, '/readyz')).status).toBe(200);
  });
});
