import { watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';

export interface DirectoryWatchOptions {
  /** Files whose directories are watched. */
  readonly files: readonly string[];
  /** Re-reads the files; called at most once at a time, errors are logged and swallowed. */
  readonly onChange: () => Promise<void>;
  readonly logger: Logger;
  /** Quiet time after the last event before `onChange` runs. */
  readonly debounceMs?: number;
  /** Fallback re-check for events the watcher missed (a replaced directory, a full inotify table). */
  readonly intervalMs?: number;
}

export interface DirectoryWatch {
  /** Runs `onChange` now, or joins the run already queued. */
  check(): Promise<void>;
  close(): void;
}

const DEFAULT_DEBOUNCE_MS = 200;
const DEFAULT_INTERVAL_MS = 60_000;

/**
 * Kubernetes updates a mounted Secret or ConfigMap by writing a new timestamped directory and
 * renaming the `..data` symlink over the old one: the file's own inode never changes, so a watch
 * on the file sees nothing. Watching the directory sees the rename.
 */
export function watchDirectories(options: DirectoryWatchOptions): DirectoryWatch {
  const { onChange, logger } = options;
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const directories = [...new Set(options.files.map((file) => dirname(resolve(file))))];
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;

  function check(): Promise<void> {
    if (closed) return Promise.resolve();
    // A run that has not started yet will read the newest files, so later triggers join it.
    if (queued !== undefined) return queued;
    const run = chain.then(async () => {
      queued = undefined;
      if (closed) return;
      try {
        await onChange();
      } catch (error) {
        logger.error({ err: error }, 'file reload failed unexpectedly');
      }
    });
    queued = run;
    chain = run;
    return run;
  }

  function schedule(): void {
    if (closed) return;
    if (debounce !== undefined) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      void check();
    }, debounceMs);
    debounce.unref();
  }

  function ensureWatching(): void {
    for (const directory of directories) {
      if (watchers.has(directory)) continue;
      try {
        const watcher = watch(directory, { persistent: false }, schedule);
        watcher.on('error', (error) => {
          logger.warn({ err: error, directory }, 'directory watch failed; relying on the periodic re-check');
          watcher.close();
          watchers.delete(directory);
        });
        watchers.set(directory, watcher);
      } catch (error) {
        logger.warn({ err: error, directory }, 'cannot watch directory; relying on the periodic re-check');
      }
    }
  }

  ensureWatching();
  const interval = setInterval(() => {
    ensureWatching();
    void check();
  }, options.intervalMs ?? DEFAULT_INTERVAL_MS);
  interval.unref();

  return {
    check,
    close() {
      closed = true;
      clearInterval(interval);
      if (debounce !== undefined) clearTimeout(debounce);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
