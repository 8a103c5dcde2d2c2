import { createHash } from 'node:crypto';
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './config-schema.js';

export { configSchema, type Config } from './config-schema.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The embedded defaults: the webhook needs no config file. */
export const defaultConfig: Config = Object.freeze(configSchema.parse({}));

/**
 * Parses a YAML (or JSON, which is YAML) config file. Every error names the source, the line
 * and the field, because a ConfigMap edited by hand is where these errors are born.
 */
export function parseConfigText(text: string, source: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const syntaxError = doc.errors[0];
  if (syntaxError !== undefined) {
    const line = syntaxError.linePos?.[0].line ?? 1;
    throw new ConfigError(`${source}:${line}: invalid YAML: ${firstLine(syntaxError.message)}`);
  }
  const data: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(data);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => describeIssue(issue, doc, lineCounter, source));
  throw new ConfigError(messages.join('\n'));
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter, source: string): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const field = [...path, key].join('.');
    const line = lineOf(keyNode(doc, issue.path, key) ?? doc.getIn(issue.path, true), lines);
    return `${source}:${line}: ${field}: unknown field (known fields: ${knownKeys(issue.path).join(', ')})`;
  }
  const field = path.length === 0 ? '(top level)' : path.join('.');
  const line = lineOf(nearestNode(doc, issue.path), lines);
  return `${source}:${line}: ${field}: ${issue.message}`;
}

function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: unknown = configSchema;
  for (const key of path) {
    schema = unwrap(schema);
    const shape = (schema as { shape?: Record<string, unknown> }).shape;
    schema = shape?.[String(key)];
  }
  const shape = (unwrap(schema) as { shape?: Record<string, unknown> }).shape;
  return shape === undefined ? [] : Object.keys(shape);
}

function unwrap(schema: unknown): unknown {
  let current = schema as { def?: { innerType?: unknown; type?: string } } | undefined;
  while (current?.def?.innerType !== undefined) current = current.def.innerType as typeof current;
  return current;
}

function keyNode(doc: Document, path: readonly PropertyKey[], key: string): Node | undefined {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
  if (!isMap(parent)) return undefined;
  const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === key);
  return isScalar(pair?.key) ? pair.key : undefined;
}

function nearestNode(doc: Document, path: readonly PropertyKey[]): unknown {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true);
    if (node !== undefined && node !== null) return node;
  }
  return undefined;
}

function lineOf(node: unknown, lines: LineCounter): number {
  const range = (node as { range?: [number, number, number] } | undefined)?.range;
  return range === undefined ? 1 : lines.linePos(range[0]).line;
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}

/**
 * A short, stable fingerprint of the effective config. It lands in every status annotation so
 * an audit can tell which pods were injected under a config that has since changed.
 */
export function configHash(config: Config): string {
  // Configs are replaced, never mutated, so one hash per object serves every admission.
  let hash = hashes.get(config);
  if (hash === undefined) {
    hash = createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
    hashes.set(config, hash);
  }
  return hash;
}

const hashes = new WeakMap<Config, string>();

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
