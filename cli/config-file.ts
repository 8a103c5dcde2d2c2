import { ConfigError, defaultConfig, parseConfigText, type Config } from '../lib/config.js';
import { UserError } from './errors.js';
import { readInput, type CliIo } from './io.js';

/** The config in `path`, or the embedded defaults without one; errors name file, line and field. */
export async function loadConfig(path: string | undefined, io: CliIo): Promise<Config> {
  if (path === undefined) return defaultConfig;
  const text = await readInput(path, io, '--config');
  try {
    return parseConfigText(text, path);
  } catch (error) {
    if (error instanceof ConfigError) throw new UserError(error.message);
    throw error;
  }
}
