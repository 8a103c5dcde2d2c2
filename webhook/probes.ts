import type * as Http from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { listenOn } from './listen.js';

// Required, not imported: as an ES module node:http's namespace is built eagerly, which runs its
// lazy WebSocket getter and loads undici, about 10 ms of every start (docs/benchmarks.md).
const { createServer } = createRequire(import.meta.url)('node:http') as typeof Http;

/**
 * The plain-HTTP probe and metrics port: three fixed GET routes, so a bare node:http server.
 * A framework here cost about 5 MiB of RSS and a tenth of the start-up (docs/benchmarks.md).
 */
export interface ProbeServer {
  readonly server: Server;
  listen(options: { port: number; host: string }): Promise<void>;
  /** Stops accepting, closes idle keep-alive connections and waits for the rest. */
  close(): Promise<void>;
}

export interface ProbeRoutes {
  readiness(): Promise<{ readonly ready: boolean }>;
  metrics(): Promise<{ readonly contentType: string; readonly text: string }>;
}

// Probes and scrapes are a few small headers and no body; anything slower or larger is not one.
const REQUEST_TIMEOUT_MS = 10_000;
const MAX_HEADER_BYTES = 16 * 1024;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export function createProbeServer(logger: Logger, routes: ProbeRoutes): ProbeServer {
  const server = createServer(
    { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, maxHeaderSize: MAX_HEADER_BYTES },
    (request, response) => {
      // A body is never read: discard whatever comes, so the connection can be reused.
      request.resume();
      answer(request, response, routes).catch((error: unknown) => {
        logger.error({ err: error, url: request.url }, 'probe request failed');
        if (!response.headersSent) send(response, 500, 'application/json; charset=utf-8', '{"error":"internal error"}\n');
        else response.destroy();
      });
    },
  );
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  let closing: Promise<void> | undefined;
  return {
    server,
    listen: async ({ port, host }) => {
      await listenOn(server, port, host);
      logger.info({ url: `http://${host}:${(server.address() as { port: number }).port}` }, 'probes server listening');
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

async function answer(request: IncomingMessage, response: ServerResponse, routes: ProbeRoutes): Promise<void> {
  const path = (request.url ?? '/').split('?', 1)[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(response, 405, 'application/json; charset=utf-8', '{"error":"only GET and HEAD"}\n');
    return;
  }
  switch (path) {
    case '/healthz':
      send(response, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz': {
      const report = await routes.readiness();
      send(response, report.ready ? 200 : 503, 'application/json; charset=utf-8', JSON.stringify(report));
      return;
    }
    case '/metrics': {
      const { contentType, text } = await routes.metrics();
      send(response, 200, contentType, text);
      return;
    }
    default:
      send(response, 404, 'application/json; charset=utf-8', '{"error":"not found: the probe port serves /healthz, /readyz and /metrics"}\n');
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
