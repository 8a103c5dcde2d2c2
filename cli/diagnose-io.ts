// Input for `audit` and `explain`: manifests from files, directories or stdin, and the config.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, defaultConfig, parseConfigText, type Config } from '../lib/config.js';
import { UsageError, UserError } from './errors.js';
import { parseManifests } from './manifests.js';
import { processIo, type CliIo } from './io.js';

/** The CLI's streams, plus a clock that tests pin so reports carry stable timestamps. */
export type DiagnoseIo = CliIo & { readonly now?: () => Date };

export function processDiagnoseIo(): DiagnoseIo {
  return processIo();
}

/** Exit statuses of `audit` and `explain`; 1 means findings, so failures to run get their own. */
export const EXIT = { ok: 0, findings: 1, usage: 2, error: 3 } as const;

/** An input could not be read or parsed, or the cluster refused: exit 3, nothing was audited. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

export interface ManifestFile {
  /** The path as given, or "-" for stdin; it prefixes messages. */
  source: string;
  docs: unknown[];
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

/** Every document of a YAML stream, read as `inject` reads it; empty documents are dropped. */
export function parseManifestText(text: string, source: string): unknown[] {
  try {
    return parseManifests(text, source).filter((doc) => doc !== null && doc !== undefined);
  } catch (error) {
    // An unreadable input is exit code 3 here ("could not run"), not a finding.
    if (error instanceof UserError) throw new InputError(error.message);
    throw error;
  }
}

async function readStdin(io: DiagnoseIo): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** `-f FILE|DIR|-`: a file, the manifests directly in a directory (sorted, not recursive), or stdin. */
export async function readManifests(paths: readonly string[], io: DiagnoseIo): Promise<ManifestFile[]> {
  const files: ManifestFile[] = [];
  for (const path of paths) {
    if (path === '-') {
      files.push({ source: '<stdin>', docs: parseManifestText(await readStdin(io), '<stdin>') });
      continue;
    }
    const full = resolve(io.cwd, path);
    let isDir: boolean;
    try {
      isDir = (await stat(full)).isDirectory();
    } catch (error) {
      throw new InputError(`-f ${path}: ${reason(error)}`);
    }
    const entries = isDir ? (await readdir(full)).filter((n) => MANIFEST_EXTENSIONS.some((e) => n.endsWith(e))).sort().map((n) => ({ shown: join(path, n), full: join(full, n) })) : [{ shown: path, full }];
    for (const entry of entries) {
      let text: string;
      try {
        text = await readFile(entry.full, 'utf8');
      } catch (error) {
        throw new InputError(`-f ${entry.shown}: ${reason(error)}`);
      }
      files.push({ source: entry.shown, docs: parseManifestText(text, entry.shown) });
    }
  }
  return files;
}

export interface LoadedConfig {
  config: Config;
  /** For reports: the file, or "built-in defaults". */
  source: string;
  /** False when no --config was given: the webhook may run with another config. */
  explicit: boolean;
}

export async function loadConfig(path: string | undefined, io: DiagnoseIo): Promise<LoadedConfig> {
  if (path === undefined) return { config: defaultConfig, source: 'built-in defaults', explicit: false };
  let text: string;
  try {
    text = await readFile(resolve(io.cwd, path), 'utf8');
  } catch (error) {
    throw new InputError(`--config ${path}: ${reason(error)}`);
  }
  try {
    return { config: parseConfigText(text, path), source: path, explicit: true };
  } catch (error) {
    if (error instanceof ConfigError) throw new InputError(error.message);
    throw error;
  }
}

/** `k=v,k2=v2` (as kubectl prints labels); an empty string is no labels. */
export function parseLabelList(value: string, flag: string, command: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${JSON.stringify(part)} is not key=value (write labels as k=v,k2=v2)`, command);
    labels[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return labels;
}
