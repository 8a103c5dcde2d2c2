import type { Server } from 'node:net';

/**
 * Resolves once the server listens. A bind error (EADDRINUSE, EACCES) rejects the promise, so the
 * caller reports it, instead of being an unhandled 'error' event that ends the process.
 */
export function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
