import { readFile } from 'node:fs/promises';

/** A file the webhook needs could not be read; the message names the file and what it is for. */
export class FileReadError extends Error {
  override readonly name = 'FileReadError';
}

/** Reads a UTF-8 file; `what` says what it is ("TLS certificate", "config file") for the error. */
export async function readTextFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : error instanceof Error
              ? error.message
              : String(error);
    throw new FileReadError(`cannot read ${what} ${path}: ${reason}`);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
