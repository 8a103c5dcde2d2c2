import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';
import type { CliIo } from './io.js';

export const PROGRAM = 'dfs-injector';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** May be given more than once; the values are collected in order. */
  readonly multiple?: boolean;
  /** Placeholder for the value in --help, e.g. FILE. */
  readonly value?: string;
  readonly description: string;
  /** Shown in --help; the command applies its own defaults. */
  readonly default?: string;
}

export interface ParsedArgs<K extends string> {
  string(name: K): string | undefined;
  strings(name: K): string[];
  flag(name: K): boolean;
  readonly positionals: readonly string[];
}

export interface CommandSpec<K extends string> {
  /** Words that select the command, e.g. "certs generate". */
  readonly name: string;
  readonly summary: string;
  /** The synopsis after the program name, e.g. "inject -f FILE|- [options]". */
  readonly usage: string;
  readonly description?: string;
  readonly options: Readonly<Record<K, OptionSpec>>;
  /** Positional arguments are refused unless this names them (for --help). */
  readonly positionals?: string;
  readonly examples?: readonly string[];
  run(args: ParsedArgs<K>, io: CliIo): Promise<number>;
}

/** A command with its option names erased, so commands of all shapes fit in one table. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  help(): string;
  execute(argv: readonly string[], io: CliIo): Promise<number>;
}

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', description: 'Show this help' };

export function defineCommand<K extends string>(spec: CommandSpec<K>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: () => renderCommandHelp(spec),
    execute: (argv, io) => spec.run(parseCommandArgs(spec, argv), io),
  };
}

/** True when -h/--help appears before any `--` terminator: help wins over every other problem. */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}

function parseCommandArgs<K extends string>(spec: CommandSpec<K>, argv: readonly string[]): ParsedArgs<K> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, option] of Object.entries<OptionSpec>(spec.options)) {
    options[name] = {
      type: option.type,
      ...(option.short === undefined ? {} : { short: option.short }),
      ...(option.multiple === true ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: spec.positionals !== undefined });
  } catch (error) {
    throw new UsageError(describeParseError(error, spec), spec.name);
  }
  const values = parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>;
  return {
    string: (name) => {
      const value = values[name];
      return typeof value === 'string' ? value : undefined;
    },
    strings: (name) => {
      const value = values[name];
      return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : typeof value === 'string' ? [value] : [];
    },
    flag: (name) => values[name] === true,
    positionals: parsed.positionals,
  };
}

function describeParseError<K extends string>(error: unknown, spec: CommandSpec<K>): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const flags = Object.entries<OptionSpec>(spec.options).map(([name]) => `--${name}`);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'([^']+)'/.exec(message)?.[1] ?? message;
    const name = option.replace(/=.*$/, '');
    const guess = closest(name, flags);
    return `unknown option ${name} for "${PROGRAM} ${spec.name}"${guess === undefined ? '' : ` (did you mean ${guess}?)`}`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    // "Option '-f, --filename <value>' argument missing", "Option '--dev' does not take an argument"
    const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
    const option = /--[\w-]+/.exec(quoted)?.[0] ?? /-\w/.exec(quoted)?.[0] ?? quoted;
    if (message.includes('does not take an argument')) return `${option} is a switch and takes no value`;
    if (message.includes('ambiguous')) return `${option} needs a value (for a value that starts with "-", write ${option}=-VALUE)`;
    return `${option} needs a value`;
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const argument = /'([^']*)'/.exec(message)?.[1] ?? '';
    return `unexpected argument ${JSON.stringify(argument)} for "${PROGRAM} ${spec.name}"`;
  }
  return message;
}

/** The candidate within a small edit distance of `word` (or of its start), for "did you mean" hints. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    // A typo in an abbreviation ("--flie" for "--filename") is close to the candidate's start.
    const prefix = word.length >= 4 && candidate.length > word.length ? editDistance(word, candidate.slice(0, word.length)) + 1 : Infinity;
    const distance = Math.min(editDistance(word, candidate), prefix);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function renderCommandHelp<K extends string>(spec: CommandSpec<K>): string {
  const rows = [...Object.entries<OptionSpec>(spec.options), ['help', HELP_OPTION] as const].map(([name, option]) => {
    const short = option.short === undefined ? '    ' : `-${option.short}, `;
    const value = option.type === 'string' ? ` ${option.value ?? 'VALUE'}` : '';
    const repeat = option.multiple === true ? ' (repeatable)' : '';
    const fallback = option.default === undefined ? '' : ` (default: ${option.default})`;
    return [`${short}--${name}${value}`, `${option.description}${repeat}${fallback}`] as const;
  });
  const lines = [`Usage: ${PROGRAM} ${spec.usage}`, '', spec.summary];
  if (spec.description !== undefined) lines.push('', spec.description);
  lines.push('', 'Options:', ...table(rows));
  if (spec.examples !== undefined && spec.examples.length > 0) {
    lines.push('', 'Examples:', ...spec.examples.map((example) => `  ${example}`));
  }
  return `${lines.join('\n')}\n`;
}

/** Two aligned columns, indented by two spaces. */
export function table(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}   ${right}`.trimEnd());
}
