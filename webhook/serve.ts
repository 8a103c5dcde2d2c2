import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { configHash, defaultConfig, type Config } from '../lib/config.js';
import { readConfigFile, watchConfigFile, type ConfigReloader } from './config-reload.js';
import { errorMessage } from './files.js';
import { createLogDestination } from './log-destination.js';
import { createMetrics } from './metrics.js';
import { buildServer, type WebhookServer } from './server.js';
import { validateTlsPair, type TlsPair } from './tls-pair.js';
import { readTlsPair, watchTlsFiles, type TlsReloader } from './tls-reload.js';

export interface ServeOptions {
  /** Without one, the embedded defaults apply and nothing is watched. */
  readonly configPath?: string;
  readonly tlsCertPath: string;
  readonly tlsKeyPath: string;
  /** HTTPS admission port; 0 picks a free one. */
  readonly port: number;
  /** Plain-HTTP port for /healthz, /readyz and /metrics; 0 picks a free one. */
  readonly metricsPort: number;
  /** Default 0.0.0.0: a pod is reached on its own IP. */
  readonly host?: string;
  /** How long SIGTERM keeps serving before closing. Default 5000. */
  readonly gracePeriodMs?: number;
  /** Default "info". */
  readonly logLevel?: string;
  /** A logger to use instead of pino on stdout (tests capture output this way). */
  readonly logger?: Logger;
  /** Where SIGTERM and SIGINT come from; false installs no handlers. Default: the process. */
  readonly signals?: SignalSource | false;
  readonly drainTimeoutMs?: number;
  /** Debounce and fallback interval for the TLS and config file watches. */
  readonly reloadDebounceMs?: number;
  readonly reloadIntervalMs?: number;
}

export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface RunningServer {
  readonly server: WebhookServer;
  /** The bound admission port (useful when 0 was asked for). */
  readonly port: number;
  readonly metricsPort: number;
  getConfig(): Config;
  /** What SIGTERM does: not-ready, keep serving for the grace period, then drain and close. */
  shutdown(): Promise<void>;
  /** Drains and closes now, stops the file watches and removes the signal handlers. */
  close(): Promise<void>;
  /** Settles when the server has closed, by signal or by close(). */
  readonly closed: Promise<void>;
}

/** A startup failure with a message fit for the terminal: it names the file, flag or port. */
export class ServeError extends Error {
  override readonly name = 'ServeError';
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
const DEFAULT_HOST = '0.0.0.0';

export async function serve(options: ServeOptions): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(options.logLevel ?? 'info');
  const host = options.host ?? DEFAULT_HOST;
  const { tls, loaded } = await readStartupFiles(options);
  let config: Config = loaded?.config ?? defaultConfig;

  const server = buildServer({
    getConfig: () => config,
    tls,
    logger,
    metrics: createMetrics({ collectDefaults: true }),
    ...(options.gracePeriodMs === undefined ? {} : { gracePeriodMs: options.gracePeriodMs }),
    ...(options.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: options.drainTimeoutMs }),
  });
  const port = await listen(server, 'admission', options.port, host);
  const metricsPort = await listen(server, 'probes', options.metricsPort, host);

  const watches = watchFiles(options, server, logger, {
    tls,
    loaded,
    setConfig: (next) => {
      config = next;
    },
  });
  const stop = stopOnce(server, logger, options.signals === undefined ? process : options.signals, () => watches.close());

  logger.info(
    {
      admission: `https://${host}:${port}`,
      probes: `http://${host}:${metricsPort}`,
      config: options.configPath ?? '(embedded defaults)',
      configHash: configHash(config),
    },
    'dfs-injector webhook serving',
  );

  return {
    server,
    port,
    metricsPort,
    getConfig: () => config,
    shutdown: () => stop.finish(() => server.shutdown()),
    close: () => {
      const done = stop.finish(() => server.close());
      // close() during a grace period ends it early rather than waiting it out.
      void server.close();
      return done;
    },
    closed: stop.closed,
  };
}

type LoadedConfig = Awaited<ReturnType<typeof readConfigFile>>;

/** The TLS pair (checked to be a pair) and the config file, read together; errors name the file. */
async function readStartupFiles(options: ServeOptions): Promise<{ tls: TlsPair; loaded: LoadedConfig | undefined }> {
  const [tls, loaded] = await Promise.all([
    readTlsPair(options.tlsCertPath, options.tlsKeyPath).catch(rethrowAsServeError),
    options.configPath === undefined ? Promise.resolve(undefined) : readConfigFile(options.configPath).catch(rethrowAsServeError),
  ]);
  try {
    validateTlsPair(tls, `${options.tlsCertPath} + ${options.tlsKeyPath}`);
  } catch (error) {
    throw new ServeError(errorMessage(error));
  }
  return { tls, loaded };
}

/** Swaps in the TLS pair and the config when their files change; close() stops both watches. */
function watchFiles(
  options: ServeOptions,
  server: WebhookServer,
  logger: Logger,
  current: { tls: TlsPair; loaded: LoadedConfig | undefined; setConfig: (next: Config) => void },
): { close(): void } {
  const watchTimings = {
    ...(options.reloadDebounceMs === undefined ? {} : { debounceMs: options.reloadDebounceMs }),
    ...(options.reloadIntervalMs === undefined ? {} : { intervalMs: options.reloadIntervalMs }),
  };
  const tlsReloader: TlsReloader = watchTlsFiles({
    certPath: options.tlsCertPath,
    keyPath: options.tlsKeyPath,
    current: current.tls,
    apply: (pair, source) => server.setTls(pair, source),
    metrics: server.metrics,
    logger,
    ...watchTimings,
  });
  const configReloader: ConfigReloader | undefined =
    options.configPath === undefined || current.loaded === undefined
      ? undefined
      : watchConfigFile({ path: options.configPath, currentText: current.loaded.text, apply: current.setConfig, metrics: server.metrics, logger, ...watchTimings });
  return {
    close: () => {
      tlsReloader.close();
      configReloader?.close();
    },
  };
}

/**
 * The end of a server, taken once: SIGTERM or SIGINT start the graceful shutdown (a second signal
 * closes at once), shutdown() and close() run theirs; whichever comes first, `cleanup` runs, the
 * signal handlers go, the log is flushed and `closed` settles.
 */
function stopOnce(
  server: WebhookServer,
  logger: Logger,
  signals: SignalSource | false,
  cleanup: () => void,
): { finish(run: () => Promise<void>): Promise<void>; readonly closed: Promise<void> } {
  let settle: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    settle = resolve;
  });
  let finished: Promise<void> | undefined;

  function finish(run: () => Promise<void>): Promise<void> {
    finished ??= (async () => {
      try {
        await run();
      } finally {
        cleanup();
        removeSignalHandlers();
        flush(logger);
        settle();
      }
    })();
    return finished;
  }

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // A second signal (an impatient Ctrl-C) skips the rest of the grace period.
      logger.warn({ signal }, 'second signal: closing without waiting for the grace period');
      void server.close();
      return;
    }
    signalled = true;
    logger.info({ signal }, 'received signal');
    void finish(() => server.shutdown());
  };
  function removeSignalHandlers(): void {
    if (signals === false) return;
    for (const signal of SIGNALS) signals.off(signal, onSignal);
  }
  if (signals !== false) {
    for (const signal of SIGNALS) signals.on(signal, onSignal);
  }
  return { finish, closed };
}

/** The process logger: also used by the CLI for the certificate lifecycle, so both write one format. */
export function createLogger(level: string): Logger {
  const levels = Object.keys(pino.levels.values);
  if (level !== 'silent' && !levels.includes(level)) {
    throw new ServeError(`--log-level ${JSON.stringify(level)} must be one of ${[...levels, 'silent'].join(', ')}`);
  }
  // Lines are batched per event-loop turn (log-destination.ts); what is pending at exit is written then.
  const destination = createLogDestination(1);
  process.once('exit', () => destination.flushSync());
  // Level names rather than pino's numbers: log queries in a cluster read "level":"error".
  return pino({ level, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, destination);
}

async function listen(server: WebhookServer, which: 'admission' | 'probes', port: number, host: string): Promise<number> {
  try {
    if (which === 'admission') await server.admission.listen({ port, host });
    else await server.probes.listen({ port, host });
  } catch (error) {
    await server.close();
    const code = (error as NodeJS.ErrnoException).code;
    const flag = which === 'admission' ? '--port' : '--metrics-port';
    const reason = code === 'EADDRINUSE' ? 'the address is already in use' : code === 'EACCES' ? 'permission denied' : errorMessage(error);
    throw new ServeError(`cannot listen on ${host}:${port} (${flag}): ${reason}`);
  }
  const bound = which === 'admission' ? server.admission.server : server.probes.server;
  return (bound.address() as AddressInfo).port;
}

function rethrowAsServeError(error: unknown): never {
  throw new ServeError(errorMessage(error));
}

function flush(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // A logger whose stream is already gone has nothing left to flush.
  }
}
