import type { Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { internalErrorReview, type Decision } from '../lib/admission.js';
import { ENTRY_PATHS, entryForPath } from '../lib/entry.js';
import { isRecord } from '../lib/k8s.js';
import { isGone, type AdmissionRequest, type Exchange, type ExchangesInFlight, type HttpResponse } from './admission-exchange.js';
import { errorMessage } from './files.js';
import type { LogLimiter } from './log-limiter.js';
import type { WebhookMetrics } from './metrics.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** What one admission request came to: the log line and the metrics are written from this. */
interface Outcome {
  readonly role: string;
  readonly outcome: string;
  readonly reason: string;
  readonly decision: Decision | undefined;
  readonly message: string | undefined;
}

export interface ReplyContext {
  readonly exchanges: ExchangesInFlight;
  readonly logger: Logger;
  readonly metrics: WebhookMetrics;
  readonly warnings: LogLimiter;
  readonly requestTimeoutMs: number;
}

/**
 * Every way a request in flight ends: answered, refused, timed out or abandoned. Each takes it
 * out of the in-flight totals first, then writes the answer, the metric and the log line.
 */
export class AdmissionReplies {
  constructor(private readonly context: ReplyContext) {}

  /** The AdmissionReview the review produced, with its decision logged and counted. */
  reviewed(x: Exchange, payload: string, decision: Decision): void {
    this.finish(x, 200, payload, { role: decision.role, outcome: decision.outcome, reason: decision.reason, decision, message: undefined });
  }

  /** The review threw: the pod is denied (an internal-error review) if the request has a uid to deny. */
  internalError(x: Exchange, body: unknown, error: unknown): void {
    const { metrics, logger } = this.context;
    metrics.recordInternalError();
    const uid = uidOf(body);
    logger.error({ err: error, uid, path: x.path }, 'admission review failed unexpectedly; denying the request');
    if (uid === undefined) {
      this.reject(x, 400, 'invalid-review', `dfs-injector could not process this request (${errorMessage(error)}), and it has no request.uid to deny`);
      return;
    }
    this.finish(x, 200, JSON.stringify(internalErrorReview(uid)), {
      role: 'unknown',
      outcome: 'error',
      reason: 'internal-error',
      decision: undefined,
      message: undefined,
    });
  }

  reject(x: Exchange, status: number, reason: string, message: string): void {
    // The rest of a body answered before it was read is read and dropped: an HTTP/1.1 client can
    // then read the answer and go on (closing instead can reset the connection under a client
    // still sending, and lose the answer), and HTTP/2 flow control stays open.
    if (!x.req.complete) x.req.resume();
    const payload = JSON.stringify({ error: statusTitle(status), message });
    this.finish(x, status, payload, { role: 'unknown', outcome: 'bad-request', reason, decision: undefined, message });
  }

  /**
   * Over a limit: 429 with a metav1.Status body, answered at once. Under failurePolicy Fail the
   * API server refuses the pod with "failed calling webhook …: <this message>" (the pod's
   * controller retries with its own backoff). No Retry-After: with it, kube-apiserver 1.35's
   * client retried every second until the webhook timeout and the user saw only "context
   * deadline exceeded" (test/e2e/webhook-overload.e2e.test.ts).
   */
  overloaded(x: Exchange, reason: string, message: string): void {
    if (!x.req.complete) x.req.resume();
    const payload = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason: 'TooManyRequests',
      code: 429,
    });
    this.finish(x, 429, payload, { role: 'unknown', outcome: 'overloaded', reason, decision: undefined, message });
  }

  timedOut(x: Exchange): void {
    const { exchanges, metrics, logger, warnings, requestTimeoutMs } = this.context;
    const message = `the request body did not arrive within ${requestTimeoutMs} ms`;
    const payload = JSON.stringify({ error: 'Request Timeout', message });
    exchanges.settle(x);
    // A client this slow is not read to the end: its connection (HTTP/1.1) or stream (HTTP/2)
    // is closed once the answer is out.
    if (!isGone(x.req, x.res)) {
      const h2 = (x.res as Http2ServerResponse).stream;
      const headers: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(payload) };
      if (h2 === undefined) headers.connection = 'close';
      x.res.writeHead(408, headers);
      x.res.end(payload, () => {
        if (h2 !== undefined) h2.close();
        else x.req.socket.destroy();
      });
    }
    metrics.recordAdmission({ role: 'unknown', outcome: 'bad-request', reason: 'request-timeout', seconds: (performance.now() - x.started) / 1000 });
    if (warnings.allow()) logger.warn({ path: x.path, status: 408, reason: 'request-timeout', message }, 'admission request rejected');
  }

  /** The client went away first (a reset stream, a closed connection): nobody to answer. */
  abandoned(x: Exchange, why: string): void {
    const { exchanges, metrics, logger, warnings } = this.context;
    exchanges.settle(x);
    metrics.recordAbandoned();
    if (warnings.allow()) logger.warn({ path: x.path, reason: why }, 'admission request abandoned by the client');
  }

  private finish(x: Exchange, status: number, payload: string, outcome: Outcome): void {
    const { exchanges, metrics, logger, warnings } = this.context;
    exchanges.settle(x);
    if (isGone(x.req, x.res)) {
      this.abandoned(x, 'the client reset the request before it was answered');
      return;
    }
    x.res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(payload) });
    x.res.end(payload);
    const durationMs = performance.now() - x.started;
    metrics.recordAdmission({ role: outcome.role, outcome: outcome.outcome, reason: outcome.reason, seconds: durationMs / 1000 });
    if (status >= 400 && !warnings.allow()) return;
    const decision = outcome.decision;
    // One object shape for every line: pino serializes it without surprises, and the optional
    // fields are simply absent from the JSON when undefined.
    const fields = {
      path: x.path,
      status,
      uid: decision?.uid,
      namespace: decision?.namespace,
      pod: decision?.name,
      role: outcome.role,
      outcome: outcome.outcome,
      reason: outcome.reason,
      dryRun: decision?.dryRun,
      durationMs: Math.round(durationMs * 1000) / 1000,
      message: outcome.message,
    };
    if (status >= 400) logger.warn(fields, 'admission request rejected');
    else logger.info(fields, 'admission');
  }
}

/** Not an entry, or not a POST: answered before any limit is counted, and not logged. */
export function notFound(req: AdmissionRequest, res: HttpResponse, path: string): void {
  const wrongMethod = entryForPath(path) !== undefined;
  const payload = JSON.stringify({
    error: wrongMethod ? 'Method Not Allowed' : 'Not Found',
    message: `no webhook at ${req.method ?? ''} ${path}; POST an AdmissionReview to one of ${ENTRY_PATHS.join(', ')}`,
  });
  const headers: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(payload) };
  if (wrongMethod) headers.allow = 'POST';
  res.writeHead(wrongMethod ? 405 : 404, headers);
  res.end(payload);
  // Whatever body came with it is not wanted; reading it keeps the connection usable.
  req.resume();
}

function statusTitle(status: number): string {
  switch (status) {
    case 400:
      return 'Bad Request';
    case 413:
      return 'Payload Too Large';
    case 415:
      return 'Unsupported Media Type';
    case 429:
      return 'Too Many Requests';
    default:
      return 'Client Error';
  }
}

function uidOf(body: unknown): string | undefined {
  if (!isRecord(body) || !isRecord(body.request)) return undefined;
  const uid = body.request.uid;
  return typeof uid === 'string' ? uid : undefined;
}
