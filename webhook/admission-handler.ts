import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ReviewResult } from '../lib/admission.js';
import type { Config } from '../lib/config.js';
import { entryForPath, type EntryContext } from '../lib/entry.js';
import { admitBodyHeaders, parseBody, readBody } from './admission-body.js';
import { ExchangesInFlight, isGone, type AdmissionRequest, type Exchange, type HttpResponse } from './admission-exchange.js';
import { AdmissionReplies, notFound } from './admission-replies.js';
import type { LogLimiter } from './log-limiter.js';
import type { WebhookMetrics } from './metrics.js';

export type { AdmissionRequest, HttpResponse } from './admission-exchange.js';
export type ReviewFunction = (body: unknown, entry: EntryContext, config: Config) => ReviewResult;

export interface AdmissionHandlerOptions {
  readonly getConfig: () => Config;
  readonly review: ReviewFunction;
  readonly logger: Logger;
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
  const exchanges = new ExchangesInFlight();
  const replies = new AdmissionReplies({ exchanges, logger, metrics, warnings, requestTimeoutMs: limits.requestTimeoutMs });
  const sweep = exchanges.sweepLate(limits.requestTimeoutMs, (x) => replies.timedOut(x));

  /** The request as an Exchange counted in flight, or undefined once it has been answered. */
  function admit(req: AdmissionRequest, res: HttpResponse, started: number): Exchange | undefined {
    // A stream the client reset before its request was dispatched (an HTTP/2 rapid reset) is
    // neither processed nor logged line by line.
    if (isGone(req, res)) {
      metrics.recordAbandoned();
      return undefined;
    }
    const path = pathOf(req.url);
    const entry = entryForPath(path);
    if (entry === undefined || req.method !== 'POST') {
      notFound(req, res, path);
      return undefined;
    }
    const x: Exchange = { req, res, path, entry, started, buffered: 0, done: false };
    if (exchanges.size >= limits.maxInFlight) {
      replies.overloaded(x, 'too-many-requests', `dfs-injector is answering ${limits.maxInFlight} requests already, its limit; retry shortly`);
      return undefined;
    }
    exchanges.add(x);
    return x;
  }

  function answer(x: Exchange, text: string): void {
    const parsed = parseBody(text);
    if ('rejected' in parsed) {
      replies.reject(x, 400, parsed.rejected.reason, parsed.rejected.message);
      return;
    }
    let result: ReviewResult;
    let payload: string;
    try {
      result = review(parsed.body, x.entry, getConfig());
      if (result.kind === 'bad-request') {
        replies.reject(x, 400, 'invalid-review', result.message);
        return;
      }
      // Serialized inside the try: a failure here is still answered with a denial.
      payload = JSON.stringify(result.review);
    } catch (error) {
      replies.internalError(x, parsed.body, error);
      return;
    }
    replies.reviewed(x, payload, result.decision);
  }

  function handle(req: AdmissionRequest, res: HttpResponse): void {
    const x = admit(req, res, performance.now());
    if (x === undefined) return;
    const declaredLength = admitBodyHeaders(x, limits.bodyLimit, replies);
    if (declaredLength === false) return;
    readBody(x, declaredLength, limits, exchanges, replies, (text) => answer(x, text));
  }

  return {
    handle,
    inFlight: () => exchanges.size,
    bufferedBytes: () => exchanges.bufferedBytes,
    close: () => clearInterval(sweep),
  };
}

/** The entry path without the query (the API server adds ?timeout=10s). */
function pathOf(url: string | undefined): string {
  const whole = url ?? '/';
  const query = whole.indexOf('?');
  return query === -1 ? whole : whole.slice(0, query);
}
