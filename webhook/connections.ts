import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';

export interface ConnectionDrain {
  /**
   * The grace period starts: clients are asked to move, but everything they send is answered.
   * HTTP/2 sessions get GOAWAY (a session opened from now on after its first request) and finish
   * their streams; each HTTP/1.1 answer carries `Connection: close`, so the client drops that
   * connection knowing nothing is in flight on it, instead of finding it closed under a request.
   */
  beginGrace(): void;
  /**
   * The grace period is over: HTTP/2 sessions get GOAWAY, HTTP/1.1 connections with a request in
   * flight close after its answer (with `Connection: close`), kept-alive idle ones close now,
   * and one that has not sent its first request yet gets a moment to send it.
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
// A client sends its request right after the handshake; closing a connection in that gap loses
// the request, so a connection with no request yet is closed only once it is this old.
const FIRST_REQUEST_MS = 1000;

export function trackConnections(server: Http2SecureServer): ConnectionDrain {
  const accepted = new Map<Socket, number>();
  const sockets = new Set<Socket>();
  const sessions = new Set<ServerHttp2Session>();
  const http1InFlight = new Map<Socket, number>();
  let grace = false;
  let draining = false;

  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    accepted.set(socket, Date.now());
    socket.once('close', () => {
      sockets.delete(socket);
      accepted.delete(socket);
      http1InFlight.delete(socket);
    });
  });

  function endWhenIdle(socket: Socket): void {
    const inFlight = http1InFlight.get(socket);
    if (inFlight === undefined) {
      // No request yet: wait for the first one (it is answered with Connection: close).
      const age = Date.now() - (accepted.get(socket) ?? 0);
      const timer = setTimeout(() => {
        if ((http1InFlight.get(socket) ?? 0) === 0) socket.end();
      }, Math.max(0, FIRST_REQUEST_MS - age));
      timer.unref();
      socket.once('close', () => clearTimeout(timer));
    } else if (inFlight === 0) {
      socket.end();
    }
  }

  server.on('session', (session: ServerHttp2Session) => {
    if (draining) {
      session.close();
      return;
    }
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // A client that reconnects during the grace period is served once, then told to go: closing
    // before its first stream could send it back here in a loop without progress.
    if (grace) session.once('stream', () => session.close());
  });

  // Before the admission handler, which may answer synchronously: the header must be set first.
  // HTTP/2 requests arrive as Http2ServerRequest on a session; only HTTP/1.1 needs this.
  server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.httpVersionMajor === 2) return;
    if (grace) response.setHeader('connection', 'close');
    const socket = request.socket;
    http1InFlight.set(socket, (http1InFlight.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (http1InFlight.get(socket) ?? 1) - 1;
      http1InFlight.set(socket, left);
      if (draining && left === 0) socket.end();
    });
  });

  return {
    beginGrace() {
      if (grace) return;
      grace = true;
      for (const session of sessions) session.close();
    },
    drain() {
      grace = true;
      draining = true;
      for (const session of sessions) session.close();
      for (const socket of sockets) {
        const isHttp1 = (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol !== 'h2';
        if (isHttp1) endWhenIdle(socket);
      }
    },
    destroyAll() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}
