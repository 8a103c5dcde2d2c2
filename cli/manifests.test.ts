import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { UserError } from './errors.js';
import { formatManifest, formatManifests, parseManifests } from './manifests.js';

// Words that some YAML reader turns into something other than a string.
const TRICKY = [
  'yes', 'no', 'on', 'off', 'y', 'n', 'Y', 'N', 'true', 'False', 'NULL', 'null', '~', '', ' ',
  '0644', '0o644', '0x1F', '0b101', '1_000', '1e3', '1.', '.5', '-.inf', '.NaN', '1:30', '190:20:30',
  '2026-11-20', '2026-11-20T08:14:02Z', '2026-11-20 08:14:02', '4.0.16', '10.0.0.5', '100m', '1Gi',
  '-', '- x', '? x', ': x', 'a: b', 'a #b', '#c', '&a', '*a', '!t', '|', '>', '%x', '@x', '`x', '"x', "'x",
  '{}', '[]', 'a,b', 'x\ny', 'x\n', '\nx', ' lead', 'trail ', 'tab\tin', 'multi\n\n  indented\n', '\u2028', '\u0085', '\x7f', '\ufeff',
  '<<', '=', 'ümlaut', '日本語', '😀',
];

const text = fc.oneof(
  fc.constantFrom(...TRICKY),
  fc.string({ unit: fc.constantFrom(...'ab0123.eE_x-+: #\n\t\'"yon~{}[],&*!|>%@`\\'.split('')), maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);

const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    text,
    fc.boolean(),
    fc.constant(null),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(420, 1e21, 2 ** 53, 0.1, -1.5e-7),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(text, tie('value'), { maxKeys: 4 }),
  ),
})).value;

const documents = fc.dictionary(text, json, { minKeys: 1, maxKeys: 6 });

function tryParseYaml11(yaml: string): unknown {
  try {
    return parseYaml(yaml, { version: '1.1' });
  } catch {
    return undefined;
  }
}

/** JSON equality: what the API server would receive. */
function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

describe('formatManifest', () => {
  it('round-trips every JSON document through parseManifests', () => {
    fc.assert(
      fc.property(documents, (doc) => {
        const [back] = parseManifests(formatManifest(doc), 'x.yaml');
        expect(same(back, doc)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('writes YAML that YAML 1.1 and YAML 1.2 readers both read back unchanged', () => {
    expect(formatManifest({ a: '.', b: 'e1' })).toBe("a: '.'\nb: 'e1'\n");
    fc.assert(
      fc.property(documents, (doc) => {
        const yaml = formatManifest(doc);
        expect(same(parseYaml(yaml, { version: '1.1' }), doc), yaml).toBe(true);
        expect(same(parseYaml(yaml, { version: '1.2' }), doc), yaml).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('writes multi-line strings as literal blocks and quotes only what needs it', () => {
    const yaml = formatManifest({ script: 'set -eu\nexec smbd --foreground\n', mode: '0644', on: 'on', memory: '64Mi' });
    expect(yaml).toBe("script: |\n  set -eu\n  exec smbd --foreground\nmode: '0644'\n'on': 'on'\nmemory: 64Mi\n");
  });

  it('quotes instead of writing a block scalar with a line that ends in whitespace', () => {
    const yaml = formatManifest({ data: { 'run.sh': 'set -e\n  \nexec smbd\n' }, kind: 'ConfigMap' });
    expect(yaml).toBe("data:\n  run.sh: \"set -e\\n  \\nexec smbd\\n\"\nkind: 'ConfigMap'\n");
    expect(parseYaml(yaml, { version: '1.1' })).toEqual({ data: { 'run.sh': 'set -e\n  \nexec smbd\n' }, kind: 'ConfigMap' });
  });

  it('never writes anchors, even for objects that appear twice', () => {
    const shared = { name: 'dfs', mountPath: '/mnt/dfs' };
    expect(formatManifest({ a: shared, b: [shared] })).not.toMatch(/[&*]ref/);
  });

  it('separates documents with ---', () => {
    expect(formatManifests([{ a: 1 }, { b: 2 }])).toBe('a: 1\n---\nb: 2\n');
    expect(formatManifests([])).toBe('');
  });
});

describe('parseManifests', () => {
  it('reads plain scalars the way kubectl (go-yaml v2, YAML 1.1) does', () => {
    const [doc] = parseManifests(
      'mode: 0644\nhex: 0x1F\nbig: 1_000\nbool: yes\nswitch: off\nwhen: 2026-11-20T08:14:02Z\nclock: 1:30\nfloat: 1e3\nnine: 09\nnothing: ~\n',
      'x.yaml',
    );
    expect(doc).toEqual({ mode: 420, hex: 31, big: 1000, bool: true, switch: false, when: '2026-11-20T08:14:02Z', clock: '1:30', float: 1000, nine: 9, nothing: null });
  });

  it('agrees with the yaml package reading YAML 1.1 on whatever that package writes', () => {
    const styles = [{}, { collectionStyle: 'flow' }, { defaultStringType: 'QUOTE_DOUBLE' }, { defaultStringType: 'QUOTE_SINGLE' }, { indentSeq: false }] as const;
    fc.assert(
      fc.property(documents, fc.constantFrom(...styles), (doc, style) => {
        const yaml = stringifyYaml(doc, { version: '1.1', ...style });
        // Where the yaml package misreads its own output (it writes a "<<" key unquoted, then
        // merges it), there is no agreed answer to compare with.
        fc.pre(same(tryParseYaml11(yaml), doc));
        // kubectl reads 0o644 as 420 (go-yaml v2 uses strconv.ParseInt base 0); YAML 1.1 says string.
        fc.pre(!yaml.includes('0o'));
        const [back] = parseManifests(yaml, 'x.yaml');
        expect(same(back, doc), yaml).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('reads a multi-document stream, keeping empty documents as null so numbering matches', () => {
    expect(parseManifests('a: 1\n---\n---\n# only a comment\n---\nb: 2\n', 'x.yaml')).toEqual([{ a: 1 }, null, null, { b: 2 }]);
  });

  it('reads merge keys and anchors', () => {
    expect(parseManifests('base: &b {x: 1}\nm:\n  <<: *b\n  z: 2\n', 'x.yaml')).toEqual([{ base: { x: 1 }, m: { x: 1, z: 2 } }]);
  });

  it('reads a JSON object, with or without a byte-order mark', () => {
    expect(parseManifests('\uFEFF{"kind": "Pod", "n": 0644}'.replace('0644', '420'), 'x.json')).toEqual([{ kind: 'Pod', n: 420 }]);
    expect(parseManifests('{"a": 1, /* not JSON */ "b": 2}'.replace(' /* not JSON */', ''), 'x.json')).toEqual([{ a: 1, b: 2 }]);
  });

  it('reports invalid YAML with the file, line and column', () => {
    expect(() => parseManifests('a: 1\nb: [1, 2\nc: 3\n', 'apps/sonarr.yaml')).toThrow(
      new UserError('apps/sonarr.yaml:3:1: invalid YAML: missed comma between flow collection entries'),
    );
    expect(() => parseManifests('metadata:\n  name: a\n  name: b\n', 'dup.yaml')).toThrow(/^dup\.yaml:3:3: invalid YAML: duplicated mapping key$/);
    expect(() => parseManifests('{"a": 1,\n "b": [}', 'bad.json')).toThrow(/^bad\.json:2:8: invalid YAML: /);
  });
});

describe('parseManifests reads what kubectl reads', () => {
  it.each([
    ['a literal block scalar', 'data:\n  script: |\n    echo hi', 'echo hi'],
    ['a folded block scalar', 'data:\n  script: >\n    echo\n    hi', 'echo hi'],
    ['a keep block scalar', 'data:\n  script: |+\n    x', 'x'],
    ['a block scalar in a sequence', 'data:\n  script:\n  - |\n    x', ['x']],
    ['a block scalar of the second document', 'a: 1\n---\ndata:\n  script: |\n    x', 'x'],
  ])('keeps %s at the very end of a file without a final newline as it is', (_, text, expected) => {
    const docs = parseManifests(text, 'f.yaml') as Record<string, any>[];
    expect(docs.at(-1)?.data.script).toEqual(expected);
    // With the final newline, the line break belongs to the value, as YAML says.
    const withNewline = parseManifests(`${text}\n`, 'f.yaml') as Record<string, any>[];
    expect(withNewline.at(-1)?.data.script).toEqual(Array.isArray(expected) ? expected.map((x) => `${x}\n`) : `${expected}\n`);
  });

  it('keeps the line break a block scalar does hold when a blank line or a comment ends the file', () => {
    expect(parseManifests('data:\n  script: |\n    x\n  ', 'f.yaml')).toEqual([{ data: { script: 'x\n' } }]);
    expect(parseManifests('data:\n  script: |\n    x\n# end', 'f.yaml')).toEqual([{ data: { script: 'x\n' } }]);
  });

  it('reads a root block scalar at the end of a file', () => {
    expect(parseManifests('--- |\n  x', 'f.yaml')).toEqual(['x']);
  });

  it('reads a stream of concatenated JSON objects, as kubectl does', () => {
    const text = '{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"},"data":{"k":"}{\\"x"}}\n{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"b"}}{"kind":"List","items":[]}';
    expect(parseManifests(text, 'f.json')).toEqual([
      { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'a' }, data: { k: '}{"x' } },
      { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'b' } },
      { kind: 'List', items: [] },
    ]);
  });

  it('still names the place where a stream of JSON objects breaks', () => {
    expect(() => parseManifests('{"a":1}\n{"b":', 'f.json')).toThrow(UserError);
  });
});
