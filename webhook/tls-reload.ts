import type { Logger } from 'pino';
import { errorMessage, readTextFile } from './files.js';
import type { WebhookMetrics } from './metrics.js';
import type { TlsPair, TlsPairInfo } from './tls-pair.js';
import { watchDirectories, type DirectoryWatch } from './watch-dir.js';

export interface TlsReloadOptions {
  readonly certPath: string;
  readonly keyPath: string;
  /** The pair being served now; files with the same content are not applied again. */
  readonly current: TlsPair;
  /** Validates and installs a pair (WebhookServer.setTls); throws if the pair is unusable. */
  readonly apply: (pair: TlsPair, source: string) => TlsPairInfo;
  readonly metrics: Pick<WebhookMetrics, 'recordTlsReloadFailure'>;
  readonly logger: Logger;
  readonly debounceMs?: number;
  readonly intervalMs?: number;
}

export type TlsReloader = DirectoryWatch;

export async function readTlsPair(certPath: string, keyPath: string): Promise<TlsPair> {
  const [cert, key] = await Promise.all([
    readTextFile(certPath, 'TLS certificate'),
    readTextFile(keyPath, 'TLS private key'),
  ]);
  return { cert, key };
}

/**
 * Serves a renewed certificate without a restart. A pair that cannot be read or does not match
 * is refused: the old certificate keeps being served until a good pair appears.
 */
export function watchTlsFiles(options: TlsReloadOptions): TlsReloader {
  const { certPath, keyPath, apply, metrics, logger } = options;
  let served = options.current;

  async function reload(): Promise<void> {
    let pair: TlsPair;
    try {
      pair = await readTlsPair(certPath, keyPath);
    } catch (error) {
      metrics.recordTlsReloadFailure();
      logger.error(`TLS reload failed, still serving the previous certificate: ${errorMessage(error)}`);
      return;
    }
    if (pair.cert === served.cert && pair.key === served.key) return;
    try {
      const info = apply(pair, `${certPath} + ${keyPath}`);
      served = pair;
      logger.info(
        { serialNumber: info.serialNumber, fingerprint256: info.fingerprint256, notAfter: info.notAfter.toISOString() },
        'serving a reloaded TLS certificate',
      );
    } catch (error) {
      metrics.recordTlsReloadFailure();
      logger.error(`TLS reload failed, still serving the previous certificate: ${errorMessage(error)}`);
    }
  }

  return watchDirectories({
    files: [certPath, keyPath],
    onChange: reload,
    logger,
    ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
  });
}
