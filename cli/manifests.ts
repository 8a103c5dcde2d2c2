// Reading and writing Kubernetes manifest streams for `inject`.
//
// js-yaml, not the `yaml` package: on 5,000 documents `yaml` spends ~5 s of CPU parsing and
// ~2.5 s printing, js-yaml ~0.5 s for each. The schemas below make js-yaml read plain scalars
// the way kubectl does (go-yaml v2, YAML 1.1), so `defaultMode: 0644` is 420, as the API
// server would store it, and print strings so that both YAML 1.1 and 1.2 readers get strings.
import { CORE_SCHEMA, Type, YAMLException, dump, loadAll, type Schema } from 'js-yaml';
import { isMap, isScalar, isSeq, parseAllDocuments, Scalar } from 'yaml';
import { InputError, UserError } from './errors.js';

const TRUE_WORDS = ['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON'];
const FALSE_WORDS = ['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF'];
const BOOL_WORDS = new Set([...TRUE_WORDS, ...FALSE_WORDS]);

const bool11 = new Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (data: string) => BOOL_WORDS.has(data),
  construct: (data: string) => TRUE_WORDS.includes(data),
  predicate: (data: unknown) => typeof data === 'boolean',
  represent: (data: unknown) => (data === true ? 'true' : 'false'),
});

// go-yaml v2 drops "_" and calls strconv.ParseInt(s, 0, 64): 0x hex, 0o and leading-0 octal, 0b binary.
const INT11 = /^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0[0-7_]+|0|[1-9][0-9_]*)$/;

function parseInt11(data: string): number {
  const text = data.replaceAll('_', '');
  const sign = text.startsWith('-') ? -1 : 1;
  const digits = text.replace(/^[-+]/, '');
  if (digits.startsWith('0b')) return sign * parseInt(digits.slice(2), 2);
  if (digits.startsWith('0o')) return sign * parseInt(digits.slice(2), 8);
  if (digits.startsWith('0x')) return sign * parseInt(digits.slice(2), 16);
  if (digits.length > 1 && digits.startsWith('0')) return sign * parseInt(digits.slice(1), 8);
  return sign * parseInt(digits, 10);
}

const int11 = new Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (data: string) => INT11.test(data) && Number.isFinite(parseInt11(data)),
  construct: parseInt11,
  predicate: (data: unknown) => typeof data === 'number' && Number.isInteger(data) && !Object.is(data, -0),
  // From 1e21 up, JavaScript prints an exponent; YAML 1.1 needs a "." to read that as a number.
  represent: (data: unknown) => String(data).replace(/^([-+]?\d+)e/, '$1.0e'),
});

// `<<: *defaults` merge keys, which go-yaml v2 supports.
const merge = new Type('tag:yaml.org,2002:merge', {
  kind: 'scalar',
  resolve: (data: string | null) => data === '<<' || data === null,
});

/** What kubectl reads: YAML 1.1 booleans and integers, no timestamps (they stay strings). */
const LOAD_SCHEMA: Schema = CORE_SCHEMA.extend({ implicit: [bool11, int11, merge] });

// Never used to represent a value (its predicate is false); while printing, a string it resolves
// is written quoted. It covers what some other reader might take for a number or a date: YAML 1.1
// sexagesimals and underscored numbers, 1.2 octals, dotted digits ("4.0.16"), timestamps.
const MAYBE_NOT_A_STRING = new RegExp(
  [
    '^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+)$',
    '^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\\.[0-9_]*)?$',
    // Digits optional: the yaml package reads "." and "e1" as YAML 1.1 floats.
    '^[-+]?[0-9_.]*(?:[eE][-+]?[0-9_]+)?$',
    '^[-+]?\\.(?:inf|Inf|INF|nan|NaN|NAN)$',
    '^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?$',
  ].join('|'),
);
const quoteAmbiguous = new Type('tag:dfs-injector.io,2026:ambiguous', {
  kind: 'scalar',
  resolve: (data: string) => MAYBE_NOT_A_STRING.test(data),
  construct: (data: string) => data,
  predicate: () => false,
});

const DUMP_SCHEMA: Schema = LOAD_SCHEMA.extend({ implicit: [quoteAmbiguous] });

/** parseManifests for a command's input: YAML it cannot read is an InputError (exit 3) in every command. */
export function parseManifestInput(text: string, source: string): unknown[] {
  try {
    return parseManifests(text, source);
  } catch (error) {
    if (error instanceof UserError && !(error instanceof InputError)) throw new InputError(error.message);
    throw error;
  }
}

/**
 * Every document of a YAML stream (or one JSON object). Empty documents come back as null so
 * that document numbers in messages match what a reader counts.
 */
export function parseManifests(text: string, source: string): unknown[] {
  const body = text.replace(/^\uFEFF/, '');
  if (/^\s*\{/.test(body)) {
    const stream = jsonStream(body);
    if (stream !== undefined) return stream;
    // Not strict JSON (comments, trailing commas): YAML reads it, or says where it breaks.
  }
  try {
    const docs = loadAll(body, null, { schema: LOAD_SCHEMA, filename: source });
    if (!/[\r\n]$/.test(body)) restoreFinalBlockScalar(body, docs);
    return docs;
  } catch (error) {
    if (error instanceof YAMLException) {
      const mark = error.mark as YAMLException['mark'] | undefined;
      const where = mark === undefined ? source : `${source}:${mark.line + 1}:${mark.column + 1}`;
      throw new UserError(`${where}: invalid YAML: ${error.reason}`);
    }
    throw error;
  }
}

/**
 * One JSON value, or several written one after another (`{…}{…}` or one per line), which kubectl
 * reads as a stream; undefined when the text is not that. One pass that tracks strings and nesting
 * finds where each value ends, then JSON.parse reads each one.
 */
function jsonStream(body: string): unknown[] | undefined {
  const values: unknown[] = [];
  let i = 0;
  const n = body.length;
  for (;;) {
    while (i < n && isJsonBlank(body.charCodeAt(i))) i++;
    if (i === n) break;
    if (body[i] !== '{' && body[i] !== '[') return undefined;
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < n; i++) {
      const c = body[i];
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if ((c === '}' || c === ']') && --depth === 0) break;
    }
    if (i === n) return undefined;
    i++;
    try {
      values.push(JSON.parse(body.slice(start, i)) as unknown);
    } catch {
      return undefined;
    }
  }
  return values.length > 0 ? values : undefined;
}

function isJsonBlank(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

const DOCUMENT_START = /^---(?=[ \t\r\n]|$)/gm;

/**
 * js-yaml adds a line break to its input when the last line has none, so a block scalar whose last
 * content line ends the file gains a "\n" that the file does not hold; YAML (and kubectl's go-yaml)
 * chomp nothing there, since there is no line break to keep. The `yaml` package, which makes the
 * same mistake about the value, finds where that scalar sits; js-yaml's value loses the "\n" it
 * made up. Only the last document is parsed again, and only when the file ends without a line break.
 */
function restoreFinalBlockScalar(body: string, docs: unknown[]): void {
  if (body.slice(body.lastIndexOf('\n') + 1).trim() === '') return;
  let start = 0;
  for (const match of body.matchAll(DOCUMENT_START)) start = match.index;
  const tail = body.slice(start);
  const doc = parseAllDocuments(tail).at(-1);
  if (doc === undefined || !('contents' in doc) || doc.errors.length > 0) return;
  const found = finalBlockScalar(doc.contents, [], tail.length);
  if (found === undefined || docs.length === 0) return;
  const last = docs.length - 1;
  const chomp = (value: unknown): unknown => (typeof value === 'string' && value.endsWith('\n') ? value.slice(0, -1) : value);
  if (found.length === 0) {
    docs[last] = chomp(docs[last]);
    return;
  }
  let parent: unknown = docs[last];
  for (const key of found.slice(0, -1)) parent = isObject(parent) ? (parent as Record<string, unknown>)[key] : undefined;
  const key = found.at(-1) as string;
  if (isObject(parent)) (parent as Record<string, unknown>)[key] = chomp((parent as Record<string, unknown>)[key]);
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** Where the block scalar that ends at `end` sits, as the last item of its collections. */
function finalBlockScalar(node: unknown, path: string[], end: number): string[] | undefined {
  if (isScalar(node)) {
    const block = node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED;
    return block && (node.range?.[1] ?? 0) >= end ? path : undefined;
  }
  if (isSeq(node)) return node.items.length === 0 ? undefined : finalBlockScalar(node.items.at(-1), [...path, String(node.items.length - 1)], end);
  if (isMap(node)) {
    const pair = node.items.at(-1);
    if (pair === undefined || !isScalar(pair.key)) return undefined;
    return finalBlockScalar(pair.value, [...path, String(pair.key.value)], end);
  }
  return undefined;
}

/** One YAML document; strings that could read as anything else are quoted. */
export function formatManifest(doc: unknown): string {
  // js-yaml picks no style per string, only "quote all": used for the rare document where a block
  // scalar would carry a line ending in whitespace, which YAML parsers read differently (go-yaml's
  // own emitter refuses block style there too).
  return dump(doc, { schema: DUMP_SCHEMA, noRefs: true, lineWidth: -1, forceQuotes: hasRiskyBlockString(doc) });
}

const TRAILING_BLANK = /[ \t](?:\n|$)/;

function hasRiskyBlockString(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\n') && TRAILING_BLANK.test(value);
  if (Array.isArray(value)) return value.some(hasRiskyBlockString);
  if (value !== null && typeof value === 'object') return Object.values(value).some(hasRiskyBlockString);
  return false;
}

/** A YAML stream, documents separated by `---`. */
export function formatManifests(docs: readonly unknown[]): string {
  return docs.map(formatManifest).join('---\n');
}
