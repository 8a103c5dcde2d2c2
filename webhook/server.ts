import { createSecureServer, type Http2SecureServer } from 'node:http2';
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino, type LoggerOptions } from 'pino';
import { reviewAdmission } from '../lib/admission.js';
import type { Config } from '../lib/config.js';
import { createAdmissionHandler, type ReviewFunction } from './admission-handler.js';
import { trackConnections } from './connections.js';
import { createMetrics, type WebhookMetrics } from './metrics.js';
import { validateTlsPair, type TlsPair, type TlsPairInfo } from './tls-pair.js';

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
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, boolean>>;
}

export interface ServerOptions {
  /** Read on every request, so a reload only has to swap what this returns. */
  readonly getConfig: () => Config;
  readonly tls: TlsPair;
  /** A pino (or Fastify) logger, pino options, or false for silence. Default: pino at info. */
  readonly logger?: FastifyBaseLogger | LoggerOptions | false;
  /** Default: a fresh registry without process metrics. */
  readonly metrics?: WebhookMetrics;
  /** How long `shutdown()` keeps serving after turning not-ready. Default 5000. */
  readonly gracePeriodMs?: number;
  /** How long closing waits for in-flight requests before cutting connections. Default 10000. */
  readonly drainTimeoutMs?: number;
  readonly readinessChecks?: readonly ReadinessCheck[];
  /** The decision function; tests pass one that throws. Default: lib's reviewAdmission. */
  readonly review?: ReviewFunction;
  /** Default 7 MiB. */
  readonly bodyLimit?: number;
  /** A connection idle this long is closed. Default 72000. */
  readonly idleTimeoutMs?: number;
}

export interface WebhookServer {
  /** HTTPS, HTTP/2 with HTTP/1.1 fallback via ALPN. Not listening yet. */
  readonly admission: AdmissionServer;
  /** Plain HTTP: /healthz, /readyz, /metrics. Not listening yet. */
  readonly probes: FastifyInstance;
  readonly metrics: WebhookMetrics;
  readonly logger: FastifyBaseLogger;
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
const DEFAULT_BODY_LIMIT = 7 * MIB;
const DEFAULT_GRACE_PERIOD_MS = 5000;
const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
// A connection with no traffic for this long is closed (HTTP/2: the session). The API server
// reconnects when it needs to; without a limit an abandoned connection stays open for ever.
// 72 s, Fastify's default, which this server used before: above the usual 60 s proxy idle timeout.
const DEFAULT_IDLE_TIMEOUT_MS = 72_000;

export function buildServer(options: ServerOptions): WebhookServer {
  const logger = resolveLogger(options.logger);
  const metrics = options.metrics ?? createMetrics();
  const review = options.review ?? reviewAdmission;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const readinessChecks = [...(options.readinessChecks ?? [])];
  const { getConfig } = options;

  const initialTls = validateTlsPair(options.tls, 'the TLS certificate and key');
  metrics.setCertificateExpiry(initialTls.notAfter);
  let tlsLoaded = true;
  let shuttingDown = false;

  const server = createSecureServer(
    {
      allowHTTP1: true,
      cert: options.tls.cert,
      key: options.tls.key,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['h2', 'http/1.1'],
    },
    createAdmissionHandler({ getConfig, review, logger, metrics, bodyLimit }),
  );
  server.setTimeout(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  const connections = trackConnections(server);
  const admission: AdmissionServer = {
    server,
    listen: ({ port, host }) =>
      new Promise<void>((resolve, reject) => {
        const onError = (error: Error): void => reject(error);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve();
        });
      }),
  };

  async function readiness(): Promise<ReadinessReport> {
    const checks: Record<string, boolean> = {
      tls: tlsLoaded,
      config: configLoaded(getConfig),
      'not-shutting-down': !shuttingDown,
    };
    for (const check of readinessChecks) {
      try {
        checks[check.name] = await check.ready();
      } catch (error) {
        logger.warn({ err: error, check: check.name }, 'readiness check threw; reporting not ready');
        checks[check.name] = false;
      }
    }
    return { ready: Object.values(checks).every(Boolean), checks };
  }

  const probes = buildProbes(logger, metrics, readiness);

  let closing: Promise<void> | undefined;
  let shutdownRun: Promise<void> | undefined;
  let endGrace: (() => void) | undefined;
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;

  function close(): Promise<void> {
    shuttingDown = true;
    endGrace?.();
    closing ??= (async () => {
      const deadline = setTimeout(() => {
        logger.warn({ drainTimeoutMs }, 'connections still open after the drain timeout; closing them');
        connections.destroyAll();
      }, drainTimeoutMs);
      deadline.unref();
      try {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        connections.drain();
        await closed;
      } finally {
        clearTimeout(deadline);
      }
      await probes.close();
      logger.info('webhook closed');
    })();
    return closing;
  }

  function shutdown(): Promise<void> {
    shutdownRun ??= (async () => {
      shuttingDown = true;
      const gracePeriodMs = options.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;
      logger.info({ gracePeriodMs }, 'shutting down: not ready, still serving during the grace period');
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

  return {
    admission,
    probes,
    metrics,
    logger,
    setTls(pair, source = 'the TLS certificate and key') {
      const info = validateTlsPair(pair, source);
      // setSecureContext replaces every context option, so the minimum version goes in again.
      server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
      metrics.setCertificateExpiry(info.notAfter);
      tlsLoaded = true;
      return info;
    },
    addReadinessCheck(check) {
      readinessChecks.push(check);
    },
    readiness,
    get shuttingDown() {
      return shuttingDown;
    },
    shutdown,
    close,
  };
}

function buildProbes(
  logger: FastifyBaseLogger,
  metrics: WebhookMetrics,
  readiness: () => Promise<ReadinessReport>,
): FastifyInstance {
  const probes = fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  probes.get('/healthz', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok\n'));
  probes.get('/readyz', async (_request, reply) => {
    const report = await readiness();
    return reply.code(report.ready ? 200 : 503).send(report);
  });
  probes.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  return probes;
}

function resolveLogger(option: ServerOptions['logger']): FastifyBaseLogger {
  if (option === false) return pino({ level: 'silent' });
  if (option === undefined) return pino({ level: 'info' });
  if (isLogger(option)) return option;
  return pino(option);
}

function isLogger(value: FastifyBaseLogger | LoggerOptions): value is FastifyBaseLogger {
  return typeof (value as Partial<FastifyBaseLogger>).child === 'function' && typeof (value as Partial<FastifyBaseLogger>).info === 'function';
}

function configLoaded(getConfig: () => Config): boolean {
  try {
    const config: unknown = getConfig();
    return typeof config === 'object' && config !== null;
  } catch {
    return false;
  }
}
