import { pino } from 'pino';

/** A pino destination: `write` takes one serialized line, `flush` writes out what is pending. */
export interface LogDestination {
  write(line: string): void;
  flush(callback?: (error?: Error) => void): void;
  /** Writes what is pending before returning: for process exit. */
  flushSync(): void;
}

/**
 * Log lines collected for one turn of the event loop and written with one write(2) at its end.
 *
 * Every admission logs a line, so getting lines out is part of every request's cost. Against
 * pino's asynchronous destination (a thread-pool write per line) this measured 8–12 µs less per
 * request on HTTP/2 and the same on HTTP/1.1; against one synchronous write per line, about 20 µs
 * less (docs/benchmarks.md). A line is never held back longer than the turn that produced it.
 */
export function createLogDestination(fd = 1): LogDestination {
  // sonic-boom in sync mode: retries EAGAIN on a non-blocking pipe and finishes partial writes.
  const out = pino.destination({ dest: fd, sync: true });
  let pending: string[] = [];
  let scheduled = false;
  let failed = false;

  function flushSync(): void {
    scheduled = false;
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    out.write(lines.length === 1 ? (lines[0] as string) : lines.join(''));
  }

  function flushInBackground(): void {
    try {
      flushSync();
    } catch (error) {
      // Standard output is gone (EPIPE, a full disk): the lines cannot be written anywhere, and
      // the webhook must go on answering admissions. Say so once, where it may still be seen.
      if (!failed) {
        failed = true;
        process.stderr.write(`dfs-injector: cannot write log lines to fd ${fd}: ${(error as Error).message}; dropping them\n`);
      }
    }
  }

  return {
    write(line) {
      pending.push(line);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flushInBackground);
      }
    },
    flush(callback) {
      try {
        flushSync();
        callback?.();
      } catch (error) {
        callback?.(error as Error);
      }
    },
    flushSync,
  };
}
