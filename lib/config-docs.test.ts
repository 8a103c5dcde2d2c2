import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configFields, renderConfigDocs } from './config-docs.js';
import { defaultConfig, parseConfigText } from './config.js';

function leafPaths(value: unknown, prefix: string[] = []): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix.join('.')];
  return Object.entries(value).flatMap(([key, child]) => leafPaths(child, [...prefix, key]));
}

describe('configFields', () => {
  it('lists every field of the defaults, with objects that have their own default as one field', () => {
    const documented = configFields().map((field) => field.path);
    for (const path of leafPaths(defaultConfig)) {
      expect(documented.some((field) => path === field || path.startsWith(`${field}.`)), path).toBe(true);
    }
    expect(documented).toContain('source.sidecar.securityContext');
    expect(documented).not.toContain('source.sidecar.securityContext.runAsUser');
  });

  it('also lists optional fields that have no default', () => {
    expect(configFields().find((field) => field.path === 'source.container')).toMatchObject({ default: undefined, type: 'string' });
  });

  it('documents defaults that the parser really applies', () => {
    const parsed = parseConfigText('{}', 'empty.yaml') as unknown as Record<string, unknown>;
    for (const field of configFields()) {
      if (field.default === undefined) continue;
      const actual = field.path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], parsed);
      expect(JSON.stringify(actual), field.path).toBe(field.default);
    }
  });

  it('shows enums and ranges in the type column', () => {
    const byPath = new Map(configFields().map((field) => [field.path, field.type]));
    expect(byPath.get('source.shim.mode')).toBe('"image" | "init" | "off"');
    expect(byPath.get('source.sidecar.port')).toBe('integer, 1–65535');
  });
});

describe('docs/configuration.md', () => {
  it('is up to date with the schema', () => {
    const onDisk = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    if (onDisk !== renderConfigDocs()) {
      expect.fail('docs/configuration.md is out of date with lib/config-schema.ts: run `npm run docs:config` and commit the result');
    }
  });

  it('escapes table pipes so every row has four cells', () => {
    const rows = renderConfigDocs()
      .split('\n')
      .filter((line) => line.startsWith('| `'));
    expect(rows.length).toBe(configFields().length);
    for (const row of rows) expect(row.split(/(?<!\\)\|/).length - 2, row).toBe(4);
  });
});
