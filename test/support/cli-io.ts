import { Readable } from 'node:stream';
import type { DiagnoseIo } from '../../cli/diagnose-io.js';

export interface CapturedIo extends DiagnoseIo {
  readonly out: () => string;
  readonly err: () => string;
}

/** In-process streams for a CLI command: stdout and stderr collected, stdin from a string, a fixed clock. */
export function captureIo(options: { stdin?: string; now?: Date; cwd?: string } = {}): CapturedIo {
  let out = '';
  let err = '';
  const now = options.now ?? new Date('2026-11-20T08:00:00.250Z');
  return {
    stdout: { write: (chunk: string) => (out += chunk) },
    stderr: { write: (chunk: string) => (err += chunk) },
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    env: {},
    cwd: options.cwd ?? process.cwd(),
    now: () => now,
    out: () => out,
    err: () => err,
  };
}
