import { generateKeyPairSync } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import { createServer, type Server } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GeneratedCertificates } from '../certs/generate.js';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { createSecretDir, type SecretDir } from '../test/support/secret-dir.js';
import { localCertificates } from '../test/support/tls.js';
import { get, post, type Json } from '../test/support/webhook-client.js';
import { serve, ServeError, type RunningServer, type ServeOptions } from './serve.js';

let certs: GeneratedCertificates;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  certs = await localCertificates();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function secretDir(files: Record<string, string>): Promise<SecretDir> {
  const dir = await createSecretDir(files);
  cleanups.push(() => dir.remove());
  return dir;
}

interface Started {
  running: RunningServer;
  signals: EventEmitter;
  logs: Record<string, Json>[];
  config: SecretDir;
}

async function start(overrides: Partial<ServeOptions> = {}): Promise<Started> {
  const tls = await secretDir({ 'tls.crt': certs.tlsCert, 'tls.key': certs.tlsKey });
  const config = await secretDir({ 'config.yaml': 'consumer:\n  mountPath: /media/dfs\n' });
  const logs: Record<string, Json>[] = [];
  const signals = new EventEmitter();
  const running = await serve({
    configPath: config.path('config.yaml'),
    tlsCertPath: tls.path('tls.crt'),
    tlsKeyPath: tls.path('tls.key'),
    port: 0,
    metricsPort: 0,
    host: '127.0.0.1',
    gracePeriodMs: 600,
    logger: pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) }),
    signals,
    reloadDebounceMs: 50,
    ...overrides,
  });
  cleanups.push(() => running.close());
  return { running, signals, logs, config };
}

function mountPathOf(res: { json(): Json }): string | undefined {
  const ops: { path: string; value?: { mountPath?: string } }[] = JSON.parse(Buffer.from(res.json().response.patch, 'base64').toString('utf8'));
  return ops.find((op) => op.path.startsWith('/spec/containers/0/volumeMounts'))?.value?.mountPath;
}

/** An HTTP/2 connection held open across requests, as the API server keeps one. */
function openSession(port: number): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: certs.caCert });
  session.on('error', () => undefined);
  return session;
}

function postOnSession(session: http2.ClientHttp2Session, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' });
    let status = 0;
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', () => undefined);
    stream.on('end', () => resolve(status));
    stream.on('error', reject);
    stream.end(JSON.stringify(body));
  });
}

describe('serve', () => {
  it('serves admissions with the config file and answers the probes', async () => {
    const { running } = await start();

    const res = await post(running.port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca: certs.caCert, protocol: 'h2' });

    expect(res.status).toBe(200);
    expect(mountPathOf(res)).toBe('/media/dfs');
    expect((await get(running.metricsPort, '/readyz')).status).toBe(200);
    expect((await get(running.metricsPort, '/healthz')).status).toBe(200);
    expect((await get(running.metricsPort, '/metrics')).text).toContain('process_cpu_seconds_total');
  });

  it('applies a config edit to the next admission', async () => {
    const { running, config } = await start();

    await config.update({ 'config.yaml': 'consumer:\n  mountPath: /srv/dfs\n' });

    await vi.waitFor(() => expect(running.getConfig().consumer.mountPath).toBe('/srv/dfs'), { timeout: 10_000, interval: 25 });
    const res = await post(running.port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca: certs.caCert });
    expect(mountPathOf(res)).toBe('/srv/dfs');
  });

  it('on SIGTERM turns not-ready, keeps serving for the grace period, then closes', async () => {
    const { running, signals, logs } = await start({ gracePeriodMs: 1500 });
    const session = openSession(running.port);
    expect(await postOnSession(session, admissionReviewFor(loadPod('sonarr')))).toBe(200);
    const goaway = once(session, 'goaway');
    let closedAt = 0;
    void running.closed.then(() => {
      closedAt = Date.now();
    });

    const signalledAt = Date.now();
    signals.emit('SIGTERM', 'SIGTERM');

    const readyz = await get(running.metricsPort, '/readyz');
    expect(readyz.status).toBe(503);
    expect(JSON.parse(readyz.text).checks['not-shutting-down']).toBe(false);
    expect((await get(running.metricsPort, '/healthz')).status).toBe(200);
    // The kept-alive HTTP/2 connection is asked to go (GOAWAY, no error) at once; new
    // connections are still answered during the grace period.
    const [code] = (await goaway) as [number];
    expect(code).toBe(http2.constants.NGHTTP2_NO_ERROR);
    const fresh = await post(running.port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca: certs.caCert });
    expect(fresh.status).toBe(200);
    expect(closedAt).toBe(0);

    await running.closed;

    // The open HTTP/2 session did not hold the close up until its idle timeout.
    expect(closedAt - signalledAt).toBeGreaterThanOrEqual(1400);
    expect(closedAt - signalledAt).toBeLessThan(6000);
    await expect(post(running.port, '/mutate', admissionReviewFor(loadPod('sonarr')), { ca: certs.caCert })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    await expect(get(running.metricsPort, '/healthz')).rejects.toThrow();
    expect(logs.map((line) => line.msg)).toEqual(expect.arrayContaining(['received signal', 'webhook closed']));
    session.destroy();
  });

  it('closes an idle HTTP/1.1 keep-alive connection instead of waiting for it', async () => {
    const { running } = await start({ gracePeriodMs: 0 });
    const agent = new https.Agent({ keepAlive: true, ca: certs.caCert });
    cleanups.push(() => Promise.resolve(agent.destroy()));
    await new Promise<void>((resolve, reject) => {
      const request = https.request(
        { host: '127.0.0.1', port: running.port, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      request.on('error', reject);
      request.end(JSON.stringify(admissionReviewFor(loadPod('sonarr'))));
    });

    const started = Date.now();
    await running.shutdown();

    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('skips the rest of the grace period on a second signal', async () => {
    const { running, signals } = await start({ gracePeriodMs: 60_000 });
    const started = Date.now();

    signals.emit('SIGTERM', 'SIGTERM');
    signals.emit('SIGINT', 'SIGINT');
    await running.closed;

    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('stops listening for signals once closed', async () => {
    const { running, signals } = await start();
    expect(signals.listenerCount('SIGTERM')).toBe(1);

    await running.close();

    expect(signals.listenerCount('SIGTERM')).toBe(0);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });
});

describe('serve start-up errors', () => {
  async function startError(options: Partial<ServeOptions>): Promise<ServeError> {
    const tls = await secretDir({ 'tls.crt': certs.tlsCert, 'tls.key': certs.tlsKey });
    try {
      const running = await serve({
        tlsCertPath: tls.path('tls.crt'),
        tlsKeyPath: tls.path('tls.key'),
        port: 0,
        metricsPort: 0,
        host: '127.0.0.1',
        logger: pino({ level: 'silent' }),
        signals: false,
        ...options,
      });
      await running.close();
    } catch (error) {
      expect(error).toBeInstanceOf(ServeError);
      return error as ServeError;
    }
    throw new Error('serve started although it should have refused');
  }

  it('names a missing certificate file', async () => {
    const error = await startError({ tlsCertPath: '/nonexistent/tls.crt' });
    expect(error.message).toBe('cannot read TLS certificate /nonexistent/tls.crt: no such file');
  });

  it('names a missing key file', async () => {
    const error = await startError({ tlsKeyPath: '/nonexistent/tls.key' });
    expect(error.message).toBe('cannot read TLS private key /nonexistent/tls.key: no such file');
  });

  it('names a missing config file', async () => {
    const error = await startError({ configPath: '/nonexistent/config.yaml' });
    expect(error.message).toBe('cannot read config file /nonexistent/config.yaml: no such file');
  });

  it('names the file, line and field of an invalid config', async () => {
    const config = await secretDir({ 'config.yaml': 'consumer:\n  mountPath: relative\n' });
    const error = await startError({ configPath: config.path('config.yaml') });
    expect(error.message).toMatch(new RegExp(`^${config.path('config.yaml')}:2: consumer.mountPath: must be an absolute path`));
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = await secretDir({ 'tls.key': privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
    const error = await startError({ tlsKeyPath: other.path('tls.key') });
    expect(error.message).toMatch(new RegExp(`^.*/tls.crt \\+ ${other.path('tls.key')}: the private key does not belong to the certificate`));
  });

  it('names the port that is already taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as { port: number }).port;

    const error = await startError({ port });

    expect(error.message).toBe(`cannot listen on 127.0.0.1:${port} (--port): the address is already in use`);
  });

  it('names an unknown log level', async () => {
    const error = await startError({ logger: undefined, logLevel: 'verbose' });
    expect(error.message).toMatch(/^--log-level "verbose" must be one of .*debug.*info/);
  });
});
