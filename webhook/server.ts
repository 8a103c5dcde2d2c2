import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { Server as NetServer } from 'node:net';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { reviewAdmission } from '../lib/admission.js';
import type { Config } from '../lib/config.js';
import { createAdmissionHandler, type AdmissionHandler, type AdmissionLimits, type ReviewFunction } from './admission-handler.js';
import { trackConnections } from './connections.js';
import { createLogLimiter } from './log-limiter.js';
import { listenOn } from './listen.js';
import { createMetrics, type WebhookMetrics } from './metrics.js';
import { createProbeServer, type ProbeServer } from './probes.js';
import { TlsPairError, validateTlsPair, validityProblem, type TlsPair, type TlsPairInfo } from './tls-pair.js';

export type { ReviewFunction } from './admission-handler.js';

/** The HTTPS admission endpoint: a plain node:http2 server (see admission-handler.ts for why). */
export interface AdmissionServer {
  readonly server: Http2SecureServer;
  listen(options: { port: number; host: string }): Promise<void>;
}

/** An extra condition for /readyz, e.g. "the CA bundle has been published". */
export interface ReadinessCheck {
  readonly name: string;
  ready(): boolean | Promise<boolean>;
  /** Words for /readyz about the check's state, e.g. what it waits for. */
  note?(): string | undefined;
  /** False: reported in /readyz, but does not make it fail. Default true. */
  readonly gating?: boolean;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, boolean>>;
  /** Present when a check has something to say (see ReadinessCheck.note). */
  readonly notes?: Readonly<Record<string, string>>;
}

export interface ServerOptions {
  /** Read on every request, so a reload only has to swap what this returns. */
  readonly getConfig: () => Config;
  readonly tls: TlsPair;
  /** A pino logger, pino options, or false for silence. Default: pino at info. */
  readonly logger?: Logger | LoggerOptions | false;
  /** Default: a fresh registry without process metrics. */
  readonly metrics?: WebhookMetrics;
  /** How long `shutdown()` keeps serving after turning not-ready. Default 5000. */
  readonly gracePeriodMs?: number;
  /** How long closing waits for in-flight requests before cutting connections. Default 10000. */
  readonly drainTimeoutMs?: number;
  readonly readinessChecks?: readonly ReadinessCheck[];
  /** The decision function; tests pass one that throws. Default: lib's reviewAdmission. */
  readonly review?: ReviewFunction;
  /** Largest request body. Default 4 MiB. */
  readonly bodyLimit?: number;
  /** Requests answered at once, across connections; more are refused with 429. Default 256. */
  readonly maxInFlight?: number;
  /** Request body bytes held at once; past it a request is refused with 429. Default 32 MiB. */
  readonly maxBufferedBytes?: number;
  /** Headers and body must have arrived this long after the request started. Default 10000. */
  readonly requestTimeoutMs?: number;
  /** Warning lines (rejected, abandoned requests) per second; the rest are summarised. Default 50. */
  readonly warnLinesPerSecond?: number;
  /** A connection idle this long is closed. Default 72000. */
  readonly idleTimeoutMs?: number;
  /** Milliseconds since the epoch; the certificate validity checks read it. Default Date.now. */
  readonly now?: () => number;
}

export interface WebhookServer {
  /** HTTPS, HTTP/2 with HTTP/1.1 fallback via ALPN. Not listening yet. */
  readonly admission: AdmissionServer;
  /** Plain HTTP: /healthz, /readyz, /metrics. Not listening yet. */
  readonly probes: ProbeServer;
  readonly metrics: WebhookMetrics;
  readonly logger: Logger;
  /** Validates a new pair and serves it to new connections; throws TlsPairError if unusable. */
  setTls(pair: TlsPair, source?: string): TlsPairInfo;
  addReadinessCheck(check: ReadinessCheck): void;
  readiness(): Promise<ReadinessReport>;
  readonly shuttingDown: boolean;
  /** Turns /readyz to 503 and keeps serving for the grace period, then drains and closes. */
  shutdown(): Promise<void>;
  /** Drains and closes both servers now (ends a running grace period early). */
  close(): Promise<void>;
}

const MIB = 1024 * 1024;
// The API server refuses request bodies over 3 MiB (MaxRequestBodyBytes), so a pod in a CREATE
// review is at most about that; 1 MiB more covers the review around it and defaulted fields.
const DEFAULT_BODY_LIMIT = 4 * MIB;
// A replica answers a review in well under a millisecond: 256 unanswered requests means a
// flood or slow clients, not load. The bodies they hold are bounded separately, so 256 × 4 MiB
// is never reached: 32 MiB of bodies (plus parsing) stays well inside the 320 MiB memory limit
// of manifests/base.
const DEFAULT_MAX_IN_FLIGHT = 256;
const DEFAULT_MAX_BUFFERED_BYTES = 32 * MIB;
// The API server's webhook timeout is at most 30 s and ours 5 s; a body still arriving after
// 10 s has no one waiting for its answer.
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_WARN_LINES_PER_SECOND = 50;
// HTTP/2: streams per connection (the API server's Go client queues beyond it), header pairs
// and header bytes per request (an admission request has about ten small headers).
const MAX_CONCURRENT_STREAMS = 100;
const MAX_HEADER_LIST_PAIRS = 64;
const MAX_HEADER_LIST_SIZE = 16 * 1024;
// MB of outstanding frames per HTTP/2 session before Node refuses new streams with
// ENHANCE_YOUR_CALM; Node's default, stated so it is a decision.
const MAX_SESSION_MEMORY_MB = 10;

/**
 * TLS 1.2 with forward secrecy and AEAD only: ECDHE key exchange with AES-GCM or ChaCha20
 * (what Go's crypto/tls, the API server's client, prefers), plus the TLS 1.3 suites, which all
 * have both. Node's default list also allows RSA key exchange and CBC suites on TLS 1.2.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
const TLS_OPTIONS = { minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true } as const;
const DEFAULT_GRACE_PERIOD_MS = 5000;
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
// A connection with no traffic for this long is closed (HTTP/2: the session). The API server
// reconnects when it needs to; without a limit an abandoned connection stays open for ever.
// 72 s, Fastify's default, which this server used before: above the usual 60 s proxy idle timeout.
const DEFAULT_IDLE_TIMEOUT_MS = 72_000;

export function buildServer(options: ServerOptions): WebhookServer {
  const logger = resolveLogger(options.logger);
  const metrics = options.metrics ?? createMetrics();
  const limits = admissionLimits(options);
  const readinessChecks = [...(options.readinessChecks ?? [])];
  const { getConfig } = options;
  const certificate = servedCertificate(options.tls, metrics, logger, options.now ?? Date.now);
  let shuttingDown = false;

  const warnings = createLogLimiter({
    logger,
    perSecond: options.warnLinesPerSecond ?? DEFAULT_WARN_LINES_PER_SECOND,
    onSuppressed: () => metrics.recordLogLineSuppressed(),
  });
  const handler = createAdmissionHandler({ getConfig, review: options.review ?? reviewAdmission, logger, metrics, limits, warnings });
  metrics.observeLoad(handler);
  const server = createAdmissionTlsServer(options.tls, handler.handle, limits, options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  const connections = trackConnections(server);
  const admission: AdmissionServer = {
    server,
    listen: ({ port, host }) => listenOn(server, port, host),
  };

  const readiness = (): Promise<ReadinessReport> =>
    readinessReport({ tls: certificate.valid(), config: configLoaded(getConfig), 'not-shutting-down': !shuttingDown }, readinessChecks, logger);
  const probes = createProbeServer(logger, {
    readiness,
    metrics: async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() }),
  });

  const stop = stopSequence({
    logger,
    gracePeriodMs: options.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS,
    drainTimeoutMs: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    markShuttingDown: () => {
      shuttingDown = true;
    },
    beginGrace: () => connections.beginGrace(),
    closeServers: async () => {
      handler.close();
      warnings.flush();
      warnings.close();
      // net.Server's close, not Http2SecureServer's: with allowHTTP1 the latter first destroys
      // every HTTP/1.1 connection without a request in flight (closeIdleConnections), among
      // them one whose request is on its way, and that request is lost. The connections are
      // drained instead; this only stops accepting and waits for them.
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      connections.drain();
      await closed;
    },
    cutConnections: () => connections.destroyAll(),
    closeProbes: () => probes.close(),
  });

  return {
    admission,
    probes,
    metrics,
    logger,
    setTls(pair, source = 'the TLS certificate and key') {
      const info = certificate.replace(pair, source);
      // setSecureContext replaces every context option, so the version and ciphers go in again.
      server.setSecureContext({ cert: pair.cert, key: pair.key, ...TLS_OPTIONS });
      certificate.served(info);
      return info;
    },
    addReadinessCheck(check) {
      readinessChecks.push(check);
    },
    readiness,
    get shuttingDown() {
      return shuttingDown;
    },
    shutdown: stop.shutdown,
    close: stop.close,
  };
}

function admissionLimits(options: ServerOptions): AdmissionLimits {
  return {
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  };
}

/**
 * The certificate being served and whether it is valid now. The first pair is served even outside
 * its validity (there is nothing else to serve), but /readyz fails until a valid one is loaded or
 * this one becomes valid; a reload refuses a pair that is not valid.
 */
function servedCertificate(
  first: TlsPair,
  metrics: WebhookMetrics,
  logger: Logger,
  now: () => number,
): { valid(): boolean; replace(pair: TlsPair, source: string): TlsPairInfo; served(info: TlsPairInfo): void } {
  let served = validateTlsPair(first, 'the TLS certificate and key');
  metrics.setCertificateExpiry(served.notAfter);
  const startProblem = validityProblem(served, now());
  if (startProblem !== undefined) logger.error(`serving ${startProblem}; /readyz fails until a valid certificate is loaded`);
  const valid = (): boolean => validityProblem(served, now()) === undefined;
  metrics.observeCertificateValidity(valid);
  return {
    valid,
    /** Checks a new pair; throws TlsPairError, keeping the served one, when it is unusable. */
    replace(pair, source) {
      const info = validateTlsPair(pair, source);
      const problem = validityProblem(info, now());
      if (problem !== undefined) throw new TlsPairError(`${source}: ${problem}; keeping the certificate being served`);
      return info;
    },
    served(info) {
      metrics.setCertificateExpiry(info.notAfter);
      served = info;
    },
  };
}

/** The HTTPS admission server: HTTP/2 with HTTP/1.1 by ALPN, its TLS settings, bounds and timeouts. */
function createAdmissionTlsServer(
  tls: TlsPair,
  handle: AdmissionHandler['handle'],
  limits: AdmissionLimits,
  idleTimeoutMs: number,
): Http2SecureServer {
  const server = createSecureServer(
    {
      allowHTTP1: true,
      cert: tls.cert,
      key: tls.key,
      ...TLS_OPTIONS,
      ALPNProtocols: ['h2', 'http/1.1'],
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: MAX_HEADER_LIST_SIZE },
      maxHeaderListPairs: MAX_HEADER_LIST_PAIRS,
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
    },
    handle,
  );
  server.setTimeout(idleTimeoutMs);
  // HTTP/1.1 (allowHTTP1 uses node:http's parser and its timeouts): headers and the whole
  // request must arrive in time, checked every second instead of Node's default 30 s.
  const http1 = server as unknown as { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
  http1.requestTimeout = limits.requestTimeoutMs;
  http1.headersTimeout = limits.requestTimeoutMs;
  http1.connectionsCheckingInterval = Math.min(1000, Math.max(25, limits.requestTimeoutMs / 4));
  return server;
}

/** /readyz: the server's own checks and the added ones; a check that throws counts as not ready. */
async function readinessReport(own: Record<string, boolean>, added: readonly ReadinessCheck[], logger: Logger): Promise<ReadinessReport> {
  const checks: Record<string, boolean> = { ...own };
  let ready = Object.values(checks).every(Boolean);
  const notes: Record<string, string> = {};
  for (const check of added) {
    let ok: boolean;
    try {
      ok = await check.ready();
      const note = check.note?.();
      if (note !== undefined) notes[check.name] = note;
    } catch (error) {
      logger.warn({ err: error, check: check.name }, 'readiness check threw; reporting not ready');
      ok = false;
    }
    checks[check.name] = ok;
    if (!ok && check.gating !== false) ready = false;
  }
  return Object.keys(notes).length === 0 ? { ready, checks } : { ready, checks, notes };
}

interface StopSteps {
  readonly logger: Logger;
  readonly gracePeriodMs: number;
  readonly drainTimeoutMs: number;
  readonly markShuttingDown: () => void;
  /** Asks clients to go elsewhere: GOAWAY on HTTP/2, Connection: close on each HTTP/1.1 answer. */
  readonly beginGrace: () => void;
  /** Stops accepting and waits for the connections to drain. */
  readonly closeServers: () => Promise<void>;
  /** Past the drain timeout: ends the connections still open. */
  readonly cutConnections: () => void;
  readonly closeProbes: () => Promise<void>;
}

/**
 * shutdown(): not ready, still serving for the grace period, then close(). close(): drain with a
 * deadline, then close the probes. Each runs once; close() ends a running grace period early.
 */
function stopSequence(steps: StopSteps): { shutdown(this: void): Promise<void>; close(this: void): Promise<void> } {
  const { logger, drainTimeoutMs } = steps;
  let closing: Promise<void> | undefined;
  let shutdownRun: Promise<void> | undefined;
  let endGrace: (() => void) | undefined;

  function close(): Promise<void> {
    steps.markShuttingDown();
    endGrace?.();
    closing ??= (async () => {
      const deadline = setTimeout(() => {
        logger.warn({ drainTimeoutMs }, 'connections still open after the drain timeout; closing them');
        steps.cutConnections();
      }, drainTimeoutMs);
      deadline.unref();
      try {
        await steps.closeServers();
      } finally {
        clearTimeout(deadline);
      }
      await steps.closeProbes();
      logger.info('webhook closed');
    })();
    return closing;
  }

  function shutdown(): Promise<void> {
    shutdownRun ??= (async () => {
      steps.markShuttingDown();
      const { gracePeriodMs } = steps;
      logger.info({ gracePeriodMs }, 'shutting down: not ready, still serving during the grace period');
      // What clients send meanwhile is still answered.
      steps.beginGrace();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, gracePeriodMs);
        endGrace = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      await close();
    })();
    return shutdownRun;
  }

  return { shutdown, close };
}

function resolveLogger(option: ServerOptions['logger']): Logger {
  if (option === false) return pino({ level: 'silent' });
  if (option === undefined) return pino({ level: 'info' });
  if (isLogger(option)) return option;
  return pino(option);
}

function isLogger(value: Logger | LoggerOptions): value is Logger {
  return typeof (value as Partial<Logger>).child === 'function' && typeof (value as Partial<Logger>).info === 'function';
}

function configLoaded(getConfig: () => Config): boolean {
  try {
    const config: unknown = getConfig();
    return typeof config === 'object' && config !== null;
  } catch {
    return false;
  }
}
