import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GeneratedCertificates } from '../certs/generate.js';
import { defaultConfig } from '../lib/config.js';
import { admissionReviewFor, loadPod } from '../test/support/fixtures.js';
import { createSecretDir, type SecretDir } from '../test/support/secret-dir.js';
import { localCertificates } from '../test/support/tls.js';
import { serve, type RunningServer } from './serve.js';
import { buildServer, type WebhookServer } from './server.js';

/*
 * A roll-out as the API server lives through it: a replica gets SIGTERM while clients with
 * keep-alive pools send admissions to it without pause, and move to the other replica only when
 * the old one stops accepting connections (the harshest case: in a cluster the endpoint is
 * removed during the grace period). No request may be lost: every one is answered, or refused
 * before the server read it (connection refused, HTTP/2 REFUSED_STREAM or beyond GOAWAY), which
 * is what a client may safely retry and Go's HTTP client, the API server's, does.
 */

const LOOPS = 6;
const GRACE_MS = 1500;

let certs: GeneratedCertificates;
let body: string;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  certs = await localCertificates();
  body = JSON.stringify(admissionReviewFor(loadPod('sonarr')));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Replicas {
  old: RunningServer;
  signals: EventEmitter;
  other: WebhookServer;
  oldPort: number;
  otherPort: number;
}

async function startReplicas(): Promise<Replicas> {
  const dir: SecretDir = await createSecretDir({ 'tls.crt': certs.tlsCert, 'tls.key': certs.tlsKey });
  cleanups.push(() => dir.remove());
  const signals = new EventEmitter();
  const old = await serve({
    tlsCertPath: dir.path('tls.crt'),
    tlsKeyPath: dir.path('tls.key'),
    port: 0,
    metricsPort: 0,
    host: '127.0.0.1',
    gracePeriodMs: GRACE_MS,
    logger: pino({ level: 'silent' }),
    signals,
  });
  cleanups.push(() => old.close());
  const other = buildServer({ getConfig: () => defaultConfig, tls: { cert: certs.tlsCert, key: certs.tlsKey }, logger: false });
  await other.admission.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => other.close());
  return { old, signals, other, oldPort: old.port, otherPort: (other.admission.server.address() as AddressInfo).port };
}

interface Tally {
  answered: { old: number; other: number };
  lost: string[];
  /** Answers from the old replica after SIGTERM that told the client to close the connection. */
  closeDuringGrace: number;
  /** GOAWAYs received from the old replica in the first half of its grace period. */
  goawayDuringGrace: number;
}

function newTally(): Tally {
  return { answered: { old: 0, other: 0 }, lost: [], closeDuringGrace: 0, goawayDuringGrace: 0 };
}

/** The shared routing state: which replica clients send to, and when the old one got SIGTERM. */
interface Routing {
  oldGone: boolean;
  signalledAt: number | undefined;
  closedAt: number | undefined;
  stop: boolean;
}

async function http1Client(r: Replicas, routing: Routing, tally: Tally): Promise<void> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: LOOPS, ca: certs.caCert });
  const send = (port: number): Promise<{ status: number; connection: string | undefined }> =>
    new Promise((resolve, reject) => {
      // Whether the request could have reached the server: only over an established TLS session.
      let sent = false;
      const request = https.request(
        {
          host: '127.0.0.1',
          port,
          path: '/mutate',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          ALPNProtocols: ['http/1.1'],
        } as https.RequestOptions,
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
          res.on('error', reject);
        },
      );
      request.on('socket', (socket) => {
        if (request.reusedSocket) sent = true;
        else socket.once('secureConnect', () => (sent = true));
      });
      request.on('error', (error: Error) => reject(Object.assign(error, { sent })));
      request.end(body);
    });
  const loop = async (): Promise<void> => {
    while (!routing.stop) {
      const toOld = !routing.oldGone;
      try {
        const res = await send(toOld ? r.oldPort : r.otherPort);
        if (res.status !== 200) tally.lost.push(`http/1.1 answered ${res.status}`);
        else if (toOld) tally.answered.old += 1;
        else tally.answered.other += 1;
        if (toOld && routing.signalledAt !== undefined && res.connection === 'close') tally.closeDuringGrace += 1;
      } catch (error) {
        const { code, sent } = error as NodeJS.ErrnoException & { sent: boolean };
        // Nothing was sent: the old replica no longer listens, or stopped listening while this
        // connection waited in its accept queue (reset before the TLS handshake). Go elsewhere.
        if (toOld && (code === 'ECONNREFUSED' || !sent)) routing.oldGone = true;
        else tally.lost.push(`http/1.1 ${code ?? ''} ${(error as Error).message} at +${Date.now() - (routing.signalledAt ?? 0)} ms (closed ${routing.closedAt === undefined ? 'no' : 'yes'})`);
      }
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, loop));
  agent.destroy();
}

const RETRYABLE_H2 = new Set(['ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_STREAM_CANCEL']);

async function http2Client(r: Replicas, routing: Routing, tally: Tally): Promise<void> {
  // One connection per replica, shared by every loop, replaced after GOAWAY: as Go's transport.
  const sessions = new Map<number, http2.ClientHttp2Session>();
  const sessionFor = (port: number): http2.ClientHttp2Session => {
    let session = sessions.get(port);
    if (session !== undefined && !session.closed && !session.destroyed) return session;
    session = http2.connect(`https://127.0.0.1:${port}`, { ca: certs.caCert });
    const own = session;
    own.on('error', () => undefined);
    own.on('goaway', () => {
      const early = routing.signalledAt !== undefined && Date.now() - routing.signalledAt < GRACE_MS / 2;
      if (port === r.oldPort && early) tally.goawayDuringGrace += 1;
      if (sessions.get(port) === own) sessions.delete(port);
    });
    own.on('close', () => {
      if (sessions.get(port) === own) sessions.delete(port);
    });
    sessions.set(port, own);
    return own;
  };
  const send = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = sessionFor(port).request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      let status = 0;
      stream.on('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('data', () => undefined);
      stream.on('end', () => resolve(status));
      stream.on('close', () => {
        if (status === 0) {
          const error = Object.assign(new Error(`stream closed with code ${stream.rstCode}`), { rstCode: stream.rstCode });
          reject(error);
        }
      });
      stream.on('error', (error: Error) => reject(Object.assign(error, { rstCode: stream.rstCode })));
      stream.end(body);
    });
  const loop = async (): Promise<void> => {
    while (!routing.stop) {
      const toOld = !routing.oldGone;
      try {
        const status = await send(toOld ? r.oldPort : r.otherPort);
        if (status !== 200) tally.lost.push(`h2 answered ${status}`);
        else if (toOld) tally.answered.old += 1;
        else tally.answered.other += 1;
      } catch (error) {
        const { code, rstCode, cause } = error as NodeJS.ErrnoException & { rstCode?: number; cause?: NodeJS.ErrnoException };
        // A stream queued on a connection that was refused is cancelled with that as its cause.
        if (toOld && (code === 'ECONNREFUSED' || cause?.code === 'ECONNREFUSED')) routing.oldGone = true;
        else if (RETRYABLE_H2.has(code ?? '') || rstCode === http2.constants.NGHTTP2_REFUSED_STREAM) continue;
        else tally.lost.push(`h2 ${code ?? ''} rst=${rstCode ?? '-'} ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, loop));
  for (const session of sessions.values()) session.destroy();
}

describe('a roll-out under load', () => {
  it.each(['http/1.1', 'h2'] as const)(
    'loses no %s request from SIGTERM to exit, telling clients to move during the grace period',
    async (protocol) => {
      const r = await startReplicas();
      const routing: Routing = { oldGone: false, signalledAt: undefined, closedAt: undefined, stop: false };
      const tally = newTally();
      const client = protocol === 'h2' ? http2Client(r, routing, tally) : http1Client(r, routing, tally);

      await new Promise((resolve) => setTimeout(resolve, 400));
      routing.signalledAt = Date.now();
      r.signals.emit('SIGTERM', 'SIGTERM');
      await r.old.closed;
      routing.closedAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 300));
      routing.stop = true;
      await client;

      expect(tally.lost).toEqual([]);
      expect(routing.closedAt - routing.signalledAt).toBeGreaterThanOrEqual(GRACE_MS - 100);
      expect(tally.answered.old).toBeGreaterThan(20);
      expect(tally.answered.other).toBeGreaterThan(0);
      if (protocol === 'h2') expect(tally.goawayDuringGrace).toBeGreaterThan(0);
      else expect(tally.closeDuringGrace).toBeGreaterThan(0);
    },
    30_000,
  );
});
