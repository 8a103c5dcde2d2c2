// Input for `audit` and `explain`: manifests from files, directories or stdin, and the config.
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError, UsageError } from './errors.js';
import { parseManifestInput } from './manifests.js';
import { fileErrorReason, processIo, readInput, readStdin, type CliIo } from './io.js';

/** The CLI's streams, plus a clock that tests pin so reports carry stable timestamps. */
export type DiagnoseIo = CliIo & { readonly now?: () => Date };

export function processDiagnoseIo(): DiagnoseIo {
  return processIo();
}

// The one exit-code table, input error and config loader of the CLI, re-exported for the commands
// that read manifests and the cluster (audit, explain, check).
export { EXIT, InputError } from './errors.js';
export { loadConfig, type LoadedConfig } from './config-file.js';

export interface ManifestFile {
  /** The path as given, or "-" for stdin; it prefixes messages. */
  source: string;
  docs: unknown[];
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Every document of a YAML stream, read as `inject` reads it; empty documents are dropped. */
export function parseManifestText(text: string, source: string): unknown[] {
  return parseManifestInput(text, source).filter((doc) => doc !== null && doc !== undefined);
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
      throw new InputError(`-f ${path}: ${fileErrorReason(error)}`);
    }
    const entries = isDir ? (await readdir(full)).filter((n) => MANIFEST_EXTENSIONS.some((e) => n.endsWith(e))).sort().map((n) => ({ shown: join(path, n), full: join(full, n) })) : [{ shown: path, full }];
    for (const entry of entries) {
      files.push({ source: entry.shown, docs: parseManifestText(await readInput(entry.full, io, '-f', entry.shown), entry.shown) });
    }
  }
  return files;
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
