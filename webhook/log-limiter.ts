/** The part of a pino logger the limiter writes to. */
export interface LimitedLogger {
  warn(fields: object, message: string): void;
}

export interface LogLimiterOptions {
  readonly logger: LimitedLogger;
  /** Lines let through per one-second window. */
  readonly perSecond: number;
  /** Called once per suppressed line (a metric). */
  readonly onSuppressed?: () => void;
  /** Milliseconds, monotonic. Default performance.now. */
  readonly now?: () => number;
}

export interface LogLimiter {
  /** True when a line may be written now; false (and counted) when the window's budget is spent. */
  allow(): boolean;
  /** Writes the summary of a window that ended with lines suppressed, if any is pending. */
  flush(): void;
  /** Stops the summary timer. */
  close(): void;
}

const WINDOW_MS = 1000;

/**
 * Bounds the lines a flood of hostile requests can write: a client resetting 10,000 HTTP/2
 * streams a second, or sending 10,000 malformed bodies, must not turn into 10,000 lines a second
 * filling the node's disk and the log pipeline. The first `perSecond` lines of each second go
 * out; the rest are counted and summarised in one line ("suppressed N lines") when the window
 * ends, so the log still says that it happened and how much.
 */
export function createLogLimiter(options: LogLimiterOptions): LogLimiter {
  const { logger, perSecond, onSuppressed } = options;
  const now = options.now ?? (() => performance.now());
  let windowStart = -Infinity;
  let written = 0;
  let suppressed = 0;
  let timer: NodeJS.Timeout | undefined;

  function flush(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (suppressed === 0) return;
    const count = suppressed;
    suppressed = 0;
    logger.warn({ suppressed: count, limitPerSecond: perSecond }, `suppressed ${count} log lines: more than ${perSecond} a second`);
  }

  return {
    allow() {
      const t = now();
      if (t - windowStart >= WINDOW_MS) {
        flush();
        windowStart = t;
        written = 0;
      }
      if (written < perSecond) {
        written += 1;
        return true;
      }
      suppressed += 1;
      onSuppressed?.();
      // The summary must appear even if the flood stops here and no later line rolls the window.
      if (timer === undefined) {
        timer = setTimeout(flush, Math.max(0, WINDOW_MS - (t - windowStart)));
        timer.unref();
      }
      return false;
    },
    flush,
    close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
