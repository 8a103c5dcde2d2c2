import type { Logger } from 'pino';
import { configHash, parseConfigText, type Config } from '../lib/config.js';
import { errorMessage, readTextFile } from './files.js';
import type { WebhookMetrics } from './metrics.js';
import { watchDirectories, type DirectoryWatch } from './watch-dir.js';

export interface ConfigReloadOptions {
  readonly path: string;
  /** The text the current config was parsed from; the same text is not parsed again. */
  readonly currentText: string;
  readonly apply: (config: Config) => void;
  readonly metrics: Pick<WebhookMetrics, 'recordConfigReloadFailure'>;
  readonly logger: Logger;
  readonly debounceMs?: number;
  readonly intervalMs?: number;
}

export type ConfigReloader = DirectoryWatch;

export async function readConfigFile(path: string): Promise<{ config: Config; text: string }> {
  const text = await readTextFile(path, 'config file');
  return { config: parseConfigText(text, path), text };
}

/**
 * Applies an edited ConfigMap without a restart. A config that does not parse is refused (the
 * error names file, line and field) and the previous config stays in force.
 */
export function watchConfigFile(options: ConfigReloadOptions): ConfigReloader {
  const { path, apply, metrics, logger } = options;
  let appliedText = options.currentText;

  async function reload(): Promise<void> {
    let text: string;
    try {
      text = await readTextFile(path, 'config file');
    } catch (error) {
      metrics.recordConfigReloadFailure();
      logger.error(`config reload failed, keeping the previous config: ${errorMessage(error)}`);
      return;
    }
    if (text === appliedText) return;
    let config: Config;
    try {
      config = parseConfigText(text, path);
    } catch (error) {
      metrics.recordConfigReloadFailure();
      logger.error(`config reload failed, keeping the previous config: ${errorMessage(error)}`);
      return;
    }
    apply(config);
    appliedText = text;
    logger.info({ path, configHash: configHash(config) }, 'config reloaded');
  }

  return watchDirectories({
    files: [path],
    onChange: reload,
    logger,
    ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
  });
}
