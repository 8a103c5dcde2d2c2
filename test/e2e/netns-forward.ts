/**
 * A TCP port on the host's loopback that reaches HOST:PORT inside a network namespace. The test
 * process stays in the host's namespace (Node cannot enter another one), while the control plane
 * of a node test lives in a namespace of its own: a child in that namespace listens on a Unix
 * socket (file-system addressed, so visible from both sides) and this side accepts TCP on
 * 127.0.0.1 and pipes each connection into the socket.
 */
import { existsSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { waitFor } from './kube-client.js';
import { startProcess, type ManagedProcess } from './process.js';

// The namespace side, run with `node -e` inside the namespace: SOCKET HOST PORT as arguments.
const CHILD_SOURCE = `
const { connect, createServer } = require('node:net');
const [socketPath, host, port] = process.argv.slice(1);
createServer((client) => {
  const upstream = connect(Number(port), host);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen(socketPath, () => console.log('forwarding ' + socketPath + ' to ' + host + ':' + port));
`;

export interface NetnsForward {
  /** The port on 127.0.0.1. */
  readonly port: number;
  close(): Promise<void>;
}

export async function forwardFromNetns(netns: string, host: string, port: number, dir: string): Promise<NetnsForward> {
  const socketPath = join(dir, `forward-${host}-${port}.sock`);
  const child: ManagedProcess = startProcess({
    name: `forward ${netns}/${host}:${port}`,
    command: process.execPath,
    args: ['-e', CHILD_SOURCE, socketPath, host, String(port)],
    logPath: join(dir, `forward-${host}-${port}.log`),
    netns,
  });
  await waitFor(`forwarder socket ${socketPath}`, () => existsSync(socketPath), {
    timeoutMs: 15_000,
    intervalMs: 50,
    abort: () => (child.running() ? undefined : `forwarder exited: ${child.logTail()}`),
  });
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(socketPath);
    open.add(client);
    client.once('close', () => open.delete(client));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('forwarder: no TCP address');
  return {
    port: address.port,
    close: async () => {
      // Watches keep connections open for minutes: end them, or close() would wait for them.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of open) socket.destroy();
      await closed;
      await child.stop(2_000);
    },
  };
}
