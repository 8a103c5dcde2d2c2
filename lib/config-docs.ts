import { stringify } from 'yaml';
import { z } from 'zod';
import { configSchema, defaultConfig } from './config.js';

/** The parts of a JSON Schema node this renderer reads. */
interface SchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: readonly unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  items?: SchemaNode;
  anyOf?: readonly SchemaNode[];
  properties?: Record<string, SchemaNode>;
}

export interface ConfigField {
  readonly path: string;
  readonly type: string;
  /** Markdown-ready default, or undefined when the field has none. */
  readonly default: string | undefined;
  readonly description: string;
}

/**
 * Every field a user can set, in schema order. An object is expanded into its fields unless it
 * has a default of its own (resources, securityContext): those are set, and replaced, as a whole.
 */
export function configFields(): ConfigField[] {
  // 'input' describes what a user writes, with the defaults the parser fills in.
  const root = z.toJSONSchema(configSchema, { io: 'input' }) as SchemaNode;
  const fields: ConfigField[] = [];
  walk(root, [], fields);
  return fields;
}

function walk(node: SchemaNode, path: readonly string[], out: ConfigField[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const childPath = [...path, key];
    if (isSection(child)) {
      walk(child, childPath, out);
      continue;
    }
    out.push({
      path: childPath.join('.'),
      type: typeOf(child),
      default: child.default === undefined ? undefined : JSON.stringify(child.default),
      description: child.description ?? '',
    });
  }
}

function isSection(node: SchemaNode): boolean {
  const ownDefault = node.default;
  const emptyDefault =
    ownDefault === undefined || (typeof ownDefault === 'object' && ownDefault !== null && Object.keys(ownDefault).length === 0);
  return node.type === 'object' && node.properties !== undefined && emptyDefault;
}

function typeOf(node: SchemaNode): string {
  if (node.enum !== undefined) return node.enum.map((value) => JSON.stringify(value)).join(' | ');
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.anyOf !== undefined) return [...new Set(node.anyOf.map(typeOf))].join(' | ');
  if (node.type === 'array') {
    const items = node.items === undefined ? 'unknown' : typeOf(node.items);
    const itemType = items.includes(' ') ? `(${items})` : items;
    return node.minItems !== undefined && node.minItems > 0 ? `${itemType}[] (at least ${node.minItems})` : `${itemType}[]`;
  }
  if ((node.type === 'integer' || node.type === 'number') && node.minimum !== undefined && node.maximum !== undefined) {
    return `${node.type}, ${node.minimum}–${node.maximum}`;
  }
  return node.type ?? 'unknown';
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function code(text: string): string {
  // A backtick inside a code span needs a longer fence; no default contains one today.
  return text.includes('`') ? `\`\` ${text} \`\`` : `\`${text}\``;
}

/** docs/configuration.md, generated so the reference never drifts from the schema. */
export function renderConfigDocs(): string {
  const rows = configFields().map(
    (field) =>
      `| ${code(field.path)} | ${cell(code(field.type))} | ${field.default === undefined ? '*(unset)*' : cell(code(field.default))} | ${cell(field.description)} |`,
  );
  const defaults = stringify(defaultConfig, { lineWidth: 0 }).trimEnd();
  return [
    '# Configuration reference',
    '',
    '<!-- Generated from lib/config-schema.ts by `npm run docs:config`. Do not edit by hand. -->',
    '',
    'dfs-injector runs on embedded defaults: no config file is needed. A config file (YAML, or JSON)',
    'sets only the fields it names; every other field keeps its default. Pass it with `--config FILE`',
    'to `dfs-injector serve` and `dfs-injector inject`.',
    '',
    'Unknown fields are errors, reported with the file, line and field, so a typo never goes unnoticed.',
    'A field whose default is an object (`resources`, `securityContext`) is replaced as a whole when you',
    'set it, not merged with its default.',
    '',
    '## Fields',
    '',
    '| field | type | default | description |',
    '|---|---|---|---|',
    ...rows,
    '',
    '## The defaults as a file',
    '',
    '```yaml',
    defaults,
    '```',
    '',
  ].join('\n');
}
