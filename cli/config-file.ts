import { ConfigError, defaultConfig, parseConfigText, type Config } from '../lib/config.js';
import { InputError } from './errors.js';
import { readInput, type CliIo } from './io.js';

export interface LoadedConfig {
  config: Config;
  /** For reports: the file, or "built-in defaults". */
  source: string;
  /** False when no --config was given: the webhook may run with another config. */
  explicit: boolean;
}

/**
 * `--config FILE` of every command: the config in `path`, or the embedded defaults without one.
 * A file that cannot be read, or a config the webhook would refuse, is an InputError naming the
 * file, line and field.
 */
export async function loadConfig(path: string | undefined, io: CliIo): Promise<LoadedConfig> {
  if (path === undefined) return { config: defaultConfig, source: 'built-in defaults', explicit: false };
  const text = await readInput(path, io, '--config');
  try {
    return { config: parseConfigText(text, path), source: path, explicit: true };
  } catch (error) {
    if (error instanceof ConfigError) throw new InputError(error.message);
    throw error;
  }
}
