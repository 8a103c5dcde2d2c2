import type { Http2SecureServer, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteGenericInterface,
} from 'fastify';
import { pino, type LoggerOptions } from 'pino';
import { reviewAdmission, type Decision, type ReviewResult } from '../lib/admission.js';
import type { Config } from '../lib/config.js';
import { ENTRY_PATHS, entryForPath, type EntryContext } from '../lib/entry.js';
import { trackConnections } from './connections.js';
import { errorMessage } from './files.js';
import { createMetrics, type WebhookMetrics } from './metrics.js';
import { validateTlsPair, type TlsPair, type TlsPairInfo } from './tls-pair.js';

export type AdmissionServer = FastifyInstance<Http2SecureServer, Http2ServerRequest, Http2ServerResponse>;
type AdmissionRequest = FastifyRequest<RouteGenericInterface, Http2SecureServer>;
type AdmissionReply = FastifyReply<RouteGenericInterface, Http2SecureServer>;
export type ReviewFunction = (body: unknown, entry: EntryContext, config: Config) => ReviewResult;

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
const JSON_TYPE = 'application/json; charset=utf-8';

interface AdmissionRecord {
  readonly status: number;
  readonly role: string;
  readonly outcome: string;
  readonly reason: string;
  readonly decision?: Decision;
  readonly message?: string;
}

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

  const admission = fastify({
    http2: true,
    https: {
      allowHTTP1: true,
      cert: options.tls.cert,
      key: options.tls.key,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['h2', 'http/1.1'],
    },
    loggerInstance: logger,
    // One line per admission, written by logAndCount, instead of Fastify's two per request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // Requests that still arrive on open connections while draining are answered, not refused:
    // a 503 would fail the pod's admission under failurePolicy: Fail.
    return503OnClosing: false,
    forceCloseConnections: false,
  }) as unknown as AdmissionServer;
  const connections = trackConnections(admission.server);

  // text/plain is accepted by default; an AdmissionReview is always JSON.
  admission.removeContentTypeParser('text/plain');

  const records = new WeakMap<AdmissionRequest, AdmissionRecord>();

  admission.addHook('onResponse', (request, reply, done) => {
    const record = records.get(request);
    if (record !== undefined) logAndCount(request, reply, record);
    done();
  });

  function logAndCount(request: AdmissionRequest, reply: AdmissionReply, record: AdmissionRecord): void {
    const durationMs = reply.elapsedTime;
    metrics.recordAdmission({ role: record.role, outcome: record.outcome, reason: record.reason, seconds: durationMs / 1000 });
    const decision = record.decision;
    const fields = {
      path: request.routeOptions.url ?? request.url,
      status: record.status,
      uid: decision?.uid,
      namespace: decision?.namespace,
      pod: decision?.name,
      role: record.role,
      outcome: record.outcome,
      reason: record.reason,
      dryRun: decision?.dryRun,
      durationMs: Math.round(durationMs * 1000) / 1000,
      ...(record.message === undefined ? {} : { message: record.message }),
    };
    if (record.status >= 400) request.log.warn(fields, 'admission request rejected');
    else request.log.info(fields, 'admission');
  }

  function answerInternalError(request: AdmissionRequest, reply: AdmissionReply, error: unknown): void {
    metrics.recordInternalError();
    const uid = uidOf(request.body);
    request.log.error({ err: error, uid, path: request.routeOptions.url ?? request.url }, 'admission review failed unexpectedly; denying the request');
    if (uid === undefined) {
      const message = `dfs-injector could not process this request (${errorMessage(error)}), and it has no request.uid to deny`;
      sendError(request, reply, 400, 'invalid-review', message);
      return;
    }
    records.set(request, { status: 200, role: 'unknown', outcome: 'error', reason: 'internal-error' });
    reply.code(200).type(JSON_TYPE).send(JSON.stringify(internalErrorReview(uid)));
  }

  function sendError(request: AdmissionRequest, reply: AdmissionReply, status: number, reason: string, message: string): void {
    records.set(request, { status, role: 'unknown', outcome: 'bad-request', reason, message });
    reply.code(status).type(JSON_TYPE).send(JSON.stringify({ error: statusTitle(status), message }));
  }

  function handlerFor(entry: EntryContext) {
    return (request: AdmissionRequest, reply: AdmissionReply): void => {
      let result: ReviewResult;
      let payload: string;
      try {
        result = review(request.body, entry, getConfig());
        if (result.kind === 'bad-request') {
          sendError(request, reply, 400, 'invalid-review', result.message);
          return;
        }
        // Serialized here, not by Fastify, so a failure is still answered with a denial.
        payload = JSON.stringify(result.review);
      } catch (error) {
        answerInternalError(request, reply, error);
        return;
      }
      const { decision } = result;
      records.set(request, { status: 200, role: decision.role, outcome: decision.outcome, reason: decision.reason, decision });
      reply.code(200).type(JSON_TYPE).send(payload);
    };
  }

  for (const path of ENTRY_PATHS) {
    const entry = entryForPath(path);
    if (entry === undefined) throw new Error(`lib/entry.ts lists ${path} in ENTRY_PATHS but has no entry for it`);
    admission.post(path, handlerFor(entry));
  }

  admission.setErrorHandler((error: FastifyError, request, reply) => {
    const classified = classifyRequestError(error, request, bodyLimit);
    if (classified === undefined) {
      answerInternalError(request, reply, error);
      return;
    }
    // Fastify asks to close the connection after a body error; HTTP/2 has no such header and
    // Node warns about it, and a GOAWAY is not wanted for one bad stream.
    if (request.raw.httpVersionMajor === 2) reply.removeHeader('connection');
    sendError(request, reply, classified.status, classified.reason, classified.message);
  });

  admission.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .type(JSON_TYPE)
      .send(
        JSON.stringify({
          error: 'Not Found',
          message: `no webhook at ${request.method} ${request.url.split('?')[0] ?? ''}; POST an AdmissionReview to one of ${ENTRY_PATHS.join(', ')}`,
        }),
      );
  });

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
        const closed = admission.close();
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
      admission.server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' });
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

interface ClassifiedError {
  readonly status: number;
  readonly reason: string;
  readonly message: string;
}

function classifyRequestError(error: FastifyError, request: AdmissionRequest, bodyLimit: number): ClassifiedError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        reason: 'unsupported-media-type',
        message: `Content-Type ${JSON.stringify(request.headers['content-type'] ?? '(none)')} is not supported: send the AdmissionReview as application/json`,
      };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        reason: 'body-too-large',
        message: `request body is larger than the ${formatBytes(bodyLimit)} limit`,
      };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, reason: 'malformed-json', message: 'request body is not valid JSON' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, reason: 'empty-body', message: 'request body is empty; expected an AdmissionReview' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, reason: 'bad-content-length', message: 'request body length does not match Content-Length' };
    default:
      break;
  }
  // Other client errors (a poisoned __proto__ key, an aborted upload) keep their own status.
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, reason: 'bad-request', message: errorMessage(error) };
  }
  return undefined;
}

function formatBytes(bytes: number): string {
  return bytes % MIB === 0 ? `${bytes / MIB} MiB` : `${bytes} byte`;
}

function statusTitle(status: number): string {
  switch (status) {
    case 400:
      return 'Bad Request';
    case 413:
      return 'Payload Too Large';
    case 415:
      return 'Unsupported Media Type';
    default:
      return 'Client Error';
  }
}

function uidOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const request = (body as { request?: unknown }).request;
  if (typeof request !== 'object' || request === null) return undefined;
  const uid = (request as { uid?: unknown }).uid;
  return typeof uid === 'string' ? uid : undefined;
}

function internalErrorReview(uid: string): object {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: false,
      status: {
        code: 500,
        reason: 'InternalError',
        message: `dfs-injector hit an internal error and left this pod unchanged; the webhook log has the details (request uid ${uid})`,
      },
    },
  };
}
