// The exec transport of `check`'s runtime steps: one command in one container over the API
// server's WebSocket exec (pods/exec), with a deadline and a cap on the output kept. What the
// command printed is judged in lib/check (pure); this only carries it.
import { Readable, Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';
// Not re-exported by the package's index; the handler is built here so that its stream table is
// this exec's own streams: its default is the process's stdin, stdout and stderr, which a v5
// close-stream frame from the server would end.
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import type { ExecOutcome } from '../lib/check/index.js';

export interface ExecRequest {
  namespace: string;
  pod: string;
  container: string;
  command: readonly string[];
}

/** Keeps the first `limit` bytes written to it and counts the rest. */
class BoundedSink extends Writable {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  overflow = false;

  constructor(
    private readonly limit: number,
    private readonly onOverflow: () => void,
  ) {
    super();
    // The client ends these streams itself (on the status frame, on a v5 close frame); a frame
    // after that must not become an unhandled 'error' that ends the process.
    this.on('error', () => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const room = this.limit - this.kept;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.chunks.push(Buffer.from(part));
      this.kept += part.length;
    }
    if (chunk.length > room && !this.overflow) {
      this.overflow = true;
      this.onOverflow();
    }
    callback();
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** The exit status the API server reports: Success, or NonZeroExitCode with an ExitCode cause. */
function exitCode(status: V1Status): number | undefined {
  if (status.status === 'Success') return 0;
  if (status.reason !== 'NonZeroExitCode') return undefined;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  return cause !== undefined && /^\d{1,3}$/.test(cause) ? Number(cause) : undefined;
}

/** A failed WebSocket handshake surfaces as an error event whose message carries the HTTP status. */
function describeConnectError(error: unknown): ExecOutcome {
  const message = error instanceof Error ? error.message : typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : String(error);
  if (/\b403\b/.test(message)) return { kind: 'forbidden', message: `${message}: needs get and create on pods/exec` };
  return { kind: 'error', message };
}

/** What this needs of the client's WebSocket (the `ws` package's, through isomorphic-ws). */
interface ExecSocket {
  close(): void;
  terminate?: () => void;
  on(event: 'close', listener: () => void): void;
}

export class KubePodExec {
  constructor(private readonly kc: KubeConfig) {}

  run(request: ExecRequest, timeoutMs: number, outputLimit: number): Promise<ExecOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      let socket: ExecSocket | undefined;
      const finish = (outcome: ExecOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stopReading();
        resolve(outcome);
      };
      // terminate, not close: a close handshake waits on a peer that may be the thing that hangs.
      const stopReading = (): void => {
        if (socket !== undefined) (socket.terminate ?? socket.close).call(socket);
      };
      const stdout = new BoundedSink(outputLimit, stopReading);
      const stderr = new BoundedSink(outputLimit, stopReading);
      const exited = (status: V1Status): void => {
        const code = exitCode(status);
        // The status frame comes after every output frame; let the sinks take the last writes first.
        setImmediate(() =>
          finish(
            code === undefined
              ? { kind: 'error', message: status.message ?? 'the exec failed without a message' }
              : { kind: 'exited', code, stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.overflow || stderr.overflow },
          ),
        );
      };
      const timer = setTimeout(() => finish({ kind: 'timeout', seconds: Math.round(timeoutMs / 100) / 10 }), timeoutMs);
      const handler = new WebSocketHandler(this.kc, undefined, { stdin: Readable.from([]), stdout, stderr });
      // Names and namespaces are DNS labels the API server validated; encoded anyway, since the
      // client pastes them into the request path as they are.
      new Exec(this.kc, handler)
        .exec(encodeURIComponent(request.namespace), encodeURIComponent(request.pod), request.container, [...request.command], stdout, stderr, null, false, exited)
        .then((ws: unknown) => {
          const opened = ws as ExecSocket;
          socket = opened;
          if (settled) {
            stopReading();
            return;
          }
          opened.on('close', () => {
            // Closed without a status frame: cut off (output limit) or the server went away.
            setImmediate(() => {
              if (stdout.overflow || stderr.overflow) finish({ kind: 'exited', code: -1, stdout: stdout.text(), stderr: stderr.text(), truncated: true });
              else finish({ kind: 'error', message: 'the exec connection closed without an exit status' });
            });
          });
        })
        .catch((error: unknown) => finish(describeConnectError(error)));
    });
  }
}
