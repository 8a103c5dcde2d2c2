import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { EntryContext } from '../lib/entry.js';

export type AdmissionRequest = IncomingMessage | Http2ServerRequest;
export type HttpResponse = ServerResponse | Http2ServerResponse;

/** One request in flight: what every answer needs to know about it. */
export interface Exchange {
  readonly req: AdmissionRequest;
  readonly res: HttpResponse;
  /** The entry path, without the query (the API server adds ?timeout=10s). */
  readonly path: string;
  readonly entry: EntryContext;
  /** performance.now() when the request arrived. */
  readonly started: number;
  /** Body bytes held for this request, counted in the handler's buffered total. */
  buffered: number;
  /** Answered, refused or abandoned: nothing more is done for it. */
  done: boolean;
}

/**
 * The requests not answered yet and the body bytes they hold, across every connection: the two
 * totals the handler's limits are checked against.
 */
export class ExchangesInFlight {
  private readonly open = new Set<Exchange>();
  private bytes = 0;

  get size(): number {
    return this.open.size;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  add(x: Exchange): void {
    this.open.add(x);
  }

  hold(x: Exchange, bytes: number): void {
    this.bytes += bytes;
    x.buffered += bytes;
  }

  /** Nothing more is done for `x`: it leaves the totals. */
  settle(x: Exchange): void {
    x.done = true;
    this.open.delete(x);
    this.bytes -= x.buffered;
    x.buffered = 0;
  }

  /**
   * Calls `late` for every request whose body has not fully arrived `timeoutMs` after its headers.
   * One timer for every request, not one per request: the deadline is coarse (a sweep every
   * quarter of it, at most a second), and the hot path only adds to and deletes from a Set.
   */
  sweepLate(timeoutMs: number, late: (x: Exchange) => void): NodeJS.Timeout {
    const sweep = setInterval(
      () => {
        const cutoff = performance.now() - timeoutMs;
        for (const x of this.open) {
          if (x.started > cutoff) continue;
          late(x);
        }
      },
      Math.min(1000, Math.max(25, timeoutMs / 4)),
    );
    sweep.unref();
    return sweep;
  }
}

/** Whether the client has already reset the HTTP/2 stream or closed the connection. */
export function isGone(req: AdmissionRequest, res: HttpResponse): boolean {
  const stream = (res as Http2ServerResponse).stream as Http2ServerResponse['stream'] | undefined;
  if (stream !== undefined) return stream.destroyed || stream.closed;
  return req.socket.destroyed;
}
