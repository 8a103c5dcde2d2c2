import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';

export interface ConnectionDrain {
  /**
   * Asks every client to go away without cutting a request short: HTTP/2 sessions get GOAWAY and
   * finish their streams; idle HTTP/1.1 connections close now, busy ones after their response.
   */
  drain(): void;
  /** Cuts every remaining connection: the drain deadline has passed. */
  destroyAll(): void;
}

/**
 * Node's HTTP/2 server (with allowHTTP1) has neither closeIdleConnections nor a graceful close for
 * its sessions, and server.close() waits for every connection, so keep-alive clients such as the
 * API server would hold shutdown open until their idle timeout. This tracks them so they can be
 * drained.
 */
export function trackConnections(server: Http2SecureServer): ConnectionDrain {
  const sockets = new Set<Socket>();
  const sessions = new Set<ServerHttp2Session>();
  const http1InFlight = new Map<Socket, number>();
  let draining = false;

  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      http1InFlight.delete(socket);
    });
  });

  server.on('session', (session: ServerHttp2Session) => {
    if (draining) {
      session.close();
      return;
    }
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });

  // HTTP/2 requests arrive as Http2ServerRequest on a session; only HTTP/1.1 needs counting.
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.httpVersionMajor === 2) return;
    const socket = request.socket;
    http1InFlight.set(socket, (http1InFlight.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (http1InFlight.get(socket) ?? 1) - 1;
      http1InFlight.set(socket, left);
      if (draining && left === 0) socket.end();
    });
  });

  return {
    drain() {
      draining = true;
      for (const session of sessions) session.close();
      for (const socket of sockets) {
        const isHttp1 = (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol !== 'h2';
        if (isHttp1 && (http1InFlight.get(socket) ?? 0) === 0) socket.end();
      }
    },
    destroyAll() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
