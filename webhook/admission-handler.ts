import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import sjson from 'secure-json-parse';
import { internalErrorReview, type Decision, type ReviewResult } from '../lib/admission.js';
import type { Config } from '../lib/config.js';
import { ENTRY_PATHS, entryForPath, type EntryContext } from '../lib/entry.js';
import { isRecord } from '../lib/k8s.js';
import { errorMessage } from './files.js';
import type { LogLimiter } from './log-limiter.js';
import type { WebhookMetrics } from './metrics.js';

export type ReviewFunction = (body: unknown, entry: EntryContext, config: Config) => ReviewResult;
export type AdmissionRequest = IncomingMessage | Http2ServerRequest;
export type HttpResponse = ServerResponse | Http2ServerResponse;

export interface AdmissionHandlerOptions {
  readonly getConfig: () => Config;
  readonly review: ReviewFunction;
  readonly logger: FastifyBaseLogger;
  readonly metrics: WebhookMetrics;
  readonly limits: AdmissionLimits;
  /** Bounds the warning lines rejected and abandoned requests write. */
  readonly warnings: LogLimiter;
}

/** What one replica takes on at once; past these a request is refused, never queued. */
export interface AdmissionLimits {
  /** Largest request body, bytes. */
  readonly bodyLimit: number;
  /** Requests whose answer has not been sent yet, across every connection. */
  readonly maxInFlight: number;
  /** Bytes of request bodies held in memory at once, across every request. */
  readonly maxBufferedBytes: number;
  /** A request whose body has not fully arrived this long after its headers is answered 408. */
  readonly requestTimeoutMs: number;
}

/** The handler and what the server reads from it (metrics, shutdown). */
export interface AdmissionHandler {
  readonly handle: (req: AdmissionRequest, res: HttpResponse) => void;
  /** Requests not answered yet. */
  inFlight(): number;
  /** Bytes of request bodies buffered now. */
  bufferedBytes(): number;
  /** Stops the deadline sweep. */
  close(): void;
}

const MIB = 1024 * 1024;
const JSON_TYPE = 'application/json; charset=utf-8';
const PROTO_POISONING = 'Object contains forbidden prototype property';

/** One request in flight: what every answer needs to know about it. */
interface Exchange {
  readonly req: AdmissionRequest;
  readonly res: HttpResponse;
  /** The entry path, without the query (the API server adds ?timeout=10s). */
  readonly path: string;
  /** performance.now() when the request arrived. */
  readonly started: number;
  /** Body bytes held for this request, counted in the handler's buffered total. */
  buffered: number;
  /** Answered, refused or abandoned: nothing more is done for it. */
  done: boolean;
}

/** What one admission request came to: the log line and the metrics are written from this. */
interface Outcome {
  readonly status: number;
  readonly role: string;
  readonly outcome: string;
  readonly reason: string;
  readonly decision: Decision | undefined;
  readonly message: string | undefined;
}

/**
 * The admission endpoint as a plain Node request listener, for HTTP/1.1 and HTTP/2 alike.
 *
 * Not a Fastify route: Fastify alone, answering a constant, measured 0.90 × a bare node:http2
 * server, most of the 15 % the performance target leaves for the whole webhook; this listener and
 * batched log writes took 4–21 % off the CPU per request (docs/benchmarks.md). What Fastify did
 * for this endpoint (routing four fixed paths, the content-type check, the body limit, safe JSON
 * parsing) is here, and so are the limits that keep a flood of requests from exhausting memory:
 * requests in flight, body bytes buffered, and a deadline for a body to arrive.
 */
export function createAdmissionHandler(options: AdmissionHandlerOptions): AdmissionHandler {
  const { getConfig, review, logger, metrics, limits, warnings } = options;
  const { bodyLimit, maxInFlight, maxBufferedBytes, requestTimeoutMs } = limits;
  const tooLarge = `request body is larger than the ${formatBytes(bodyLimit)} limit`;
  const inFlight = new Set<Exchange>();
  let buffered = 0;

  // One timer for every request, not one per request: the deadline is coarse (a sweep every
  // quarter of it, at most a second), and the hot path only adds to and deletes from a Set.
  const sweep = setInterval(
    () => {
      const cutoff = performance.now() - requestTimeoutMs;
      for (const x of inFlight) {
        if (x.started > cutoff) continue;
        timeOut(x);
      }
    },
    Math.min(1000, Math.max(25, requestTimeoutMs / 4)),
  );
  sweep.unref();

  function settle(x: Exchange): void {
    x.done = true;
    inFlight.delete(x);
    buffered -= x.buffered;
    x.buffered = 0;
  }

  function finish(x: Exchange, status: number, payload: string, outcome: Outcome, extraHeaders?: Record<string, string>): void {
    settle(x);
    if (isGone(x.req, x.res)) {
      abandoned(x, 'the client reset the request before it was answered');
      return;
    }
    const headers: Record<string, string | number> = { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(payload) };
    if (extraHeaders !== undefined) Object.assign(headers, extraHeaders);
    x.res.writeHead(status, headers);
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

  /** The client went away first (a reset stream, a closed connection): nobody to answer. */
  function abandoned(x: Exchange, why: string): void {
    settle(x);
    metrics.recordAbandoned();
    if (warnings.allow()) logger.warn({ path: x.path, reason: why }, 'admission request abandoned by the client');
  }

  function reject(x: Exchange, status: number, reason: string, message: string): void {
    // The rest of a body answered before it was read is read and dropped: an HTTP/1.1 client can
    // then read the answer and go on (closing instead can reset the connection under a client
    // still sending, and lose the answer), and HTTP/2 flow control stays open.
    if (!x.req.complete) x.req.resume();
    const payload = JSON.stringify({ error: statusTitle(status), message });
    finish(x, status, payload, { status, role: 'unknown', outcome: 'bad-request', reason, decision: undefined, message });
  }

  /**
   * Over a limit: 429 with a metav1.Status body, answered at once. Under failurePolicy Fail the
   * API server refuses the pod with "failed calling webhook …: <this message>" (the pod's
   * controller retries with its own backoff). No Retry-After: with it, kube-apiserver 1.35's
   * client retried every second until the webhook timeout and the user saw only "context
   * deadline exceeded" (test/e2e/webhook-overload.e2e.test.ts).
   */
  function overloaded(x: Exchange, reason: string, message: string): void {
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
    finish(x, 429, payload, { status: 429, role: 'unknown', outcome: 'overloaded', reason, decision: undefined, message });
  }

  function timeOut(x: Exchange): void {
    const message = `the request body did not arrive within ${requestTimeoutMs} ms`;
    const payload = JSON.stringify({ error: 'Request Timeout', message });
    settle(x);
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

  function answer(x: Exchange, entry: EntryContext, text: string): void {
    let body: unknown;
    try {
      if (text.length === 0) {
        reject(x, 400, 'empty-body', 'request body is empty; expected an AdmissionReview');
        return;
      }
      body = mayHaveProtoKey(text) ? sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'ignore' }) : JSON.parse(text);
    } catch (error) {
      // secure-json-parse throws a SyntaxError of its own for a parsed "__proto__" key.
      const poisoned = error instanceof Error && error.message === PROTO_POISONING;
      if (poisoned) reject(x, 400, 'prototype-poisoning', 'request body has a "__proto__" key, which is refused');
      else reject(x, 400, 'malformed-json', 'request body is not valid JSON');
      return;
    }

    let result: ReviewResult;
    let payload: string;
    try {
      result = review(body, entry, getConfig());
      if (result.kind === 'bad-request') {
        reject(x, 400, 'invalid-review', result.message);
        return;
      }
      // Serialized inside the try: a failure here is still answered with a denial.
      payload = JSON.stringify(result.review);
    } catch (error) {
      answerInternalError(x, body, error);
      return;
    }
    const { decision } = result;
    finish(x, 200, payload, {
      status: 200,
      role: decision.role,
      outcome: decision.outcome,
      reason: decision.reason,
      decision,
      message: undefined,
    });
  }

  function answerInternalError(x: Exchange, body: unknown, error: unknown): void {
    metrics.recordInternalError();
    const uid = uidOf(body);
    logger.error({ err: error, uid, path: x.path }, 'admission review failed unexpectedly; denying the request');
    if (uid === undefined) {
      reject(x, 400, 'invalid-review', `dfs-injector could not process this request (${errorMessage(error)}), and it has no request.uid to deny`);
      return;
    }
    finish(x, 200, JSON.stringify(internalErrorReview(uid)), {
      status: 200,
      role: 'unknown',
      outcome: 'error',
      reason: 'internal-error',
      decision: undefined,
      message: undefined,
    });
  }

  function handle(req: AdmissionRequest, res: HttpResponse): void {
    const started = performance.now();
    // A stream the client reset before its request was dispatched (an HTTP/2 rapid reset) is
    // neither processed nor logged line by line.
    if (isGone(req, res)) {
      metrics.recordAbandoned();
      return;
    }
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const entry = entryForPath(path);
    if (entry === undefined || req.method !== 'POST') {
      notFound(req, res, path);
      return;
    }

    const x: Exchange = { req, res, path, started, buffered: 0, done: false };
    if (inFlight.size >= maxInFlight) {
      overloaded(x, 'too-many-requests', `dfs-injector is answering ${maxInFlight} requests already, its limit; retry shortly`);
      return;
    }
    inFlight.add(x);
    const mediaTypeProblem = checkMediaType(req.headers['content-type']);
    if (mediaTypeProblem !== undefined) {
      reject(x, 415, 'unsupported-media-type', mediaTypeProblem);
      return;
    }
    const declared = req.headers['content-length'];
    const declaredLength = declared === undefined ? undefined : Number(declared);
    if (declaredLength !== undefined && declaredLength > bodyLimit) {
      reject(x, 413, 'body-too-large', tooLarge);
      return;
    }

    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer): void => {
      if (x.done) return;
      received += chunk.length;
      if (received > bodyLimit) {
        req.off('data', onData);
        chunks.length = 0;
        reject(x, 413, 'body-too-large', tooLarge);
        return;
      }
      if (buffered + chunk.length > maxBufferedBytes) {
        req.off('data', onData);
        chunks.length = 0;
        overloaded(
          x,
          'buffer-full',
          `dfs-injector holds ${formatBytes(maxBufferedBytes)} of request bodies already, its limit; retry shortly`,
        );
        return;
      }
      buffered += chunk.length;
      x.buffered += chunk.length;
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (x.done) return;
      if (declaredLength !== undefined && received !== declaredLength) {
        reject(x, 400, 'bad-content-length', 'request body length does not match Content-Length');
        return;
      }
      const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks, received).toString('utf8');
      chunks.length = 0;
      answer(x, entry, text);
    });
    const onGone = (): void => {
      if (x.done) return;
      chunks.length = 0;
      abandoned(x, 'the client went away while the body was being read');
    };
    req.once('error', onGone);
    req.once('aborted', onGone);
  }

  return {
    handle,
    inFlight: () => inFlight.size,
    bufferedBytes: () => buffered,
    close: () => clearInterval(sweep),
  };
}

/** Whether the client has already reset the HTTP/2 stream or closed the connection. */
function isGone(req: AdmissionRequest, res: HttpResponse): boolean {
  const stream = (res as Http2ServerResponse).stream as Http2ServerResponse['stream'] | undefined;
  if (stream !== undefined) return stream.destroyed || stream.closed;
  return req.socket.destroyed;
}

function notFound(req: AdmissionRequest, res: HttpResponse, path: string): void {
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

/** Why the Content-Type is not JSON in UTF-8, or undefined if it is. */
function checkMediaType(header: string | undefined): string | undefined {
  if (header !== undefined) {
    const semicolon = header.indexOf(';');
    const type = (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase();
    if (type === 'application/json') {
      if (semicolon === -1) return undefined;
      const charset = /(?:^|;)\s*charset\s*=\s*"?([^";\s]+)/i.exec(header.slice(semicolon))?.[1]?.toLowerCase();
      if (charset === undefined || charset === 'utf-8' || charset === 'utf8') return undefined;
      return `Content-Type ${JSON.stringify(header)} is not supported: send the AdmissionReview as application/json in UTF-8`;
    }
  }
  return `Content-Type ${JSON.stringify(header ?? '(none)')} is not supported: send the AdmissionReview as application/json`;
}

/**
 * Whether the JSON text could have a key that decodes to "__proto__". A key spells it out or uses
 * a \u escape, so a body with neither needs no further look. secure-json-parse runs a regex over
 * the whole body for every spelling; on the 3.5 KB Sonarr review that cost 3 µs a request, two
 * substring searches 0.06 µs.
 */
function mayHaveProtoKey(text: string): boolean {
  return text.includes('__proto__') || text.includes('\\u');
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
