import { PROGRAM, closest, table, wantsHelp, type Command } from './command.js';
import { EXIT, InputError, UsageError, UserError } from './errors.js';
import type { CliIo } from './io.js';
import { packageVersion } from './version.js';

const TAGLINE = 'shares one FUSE filesystem (such as decypharr’s) with the pods that need it, over SMB';

// The dispatcher knows no command: cli/main.ts hands it the CLI's table, and each command's `run()`
// (for tests) hands it that one command, so no command module imports the table that imports it.

/** Runs one command line against `commands` and returns the exit code; never throws. */
export async function runCommandLine(argv: readonly string[], io: CliIo, commands: readonly Command[]): Promise<number> {
  try {
    return await dispatch(argv, io, commands);
  } catch (error) {
    return report(error, io);
  }
}

async function dispatch(argv: readonly string[], io: CliIo, commands: readonly Command[]): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    io.stderr.write(topHelp(commands));
    return EXIT.usage;
  }
  if (first === '--version') {
    io.stdout.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (first === '--help' || first === '-h') {
    io.stdout.write(topHelp(commands));
    return EXIT.ok;
  }
  if (first === 'help') return dispatch([...argv.slice(1), '--help'], io, commands);
  if (first.startsWith('-')) {
    const guess = closest(first, ['--help', '--version']);
    throw new UsageError(`unknown option ${first}${guess === undefined ? '' : ` (did you mean ${guess}?)`}`, '');
  }

  const command = findCommand(argv, commands);
  if (command === undefined) return groupOrUnknown(argv, io, commands);
  const rest = argv.slice(command.name.split(' ').length);
  if (wantsHelp(rest)) {
    io.stdout.write(command.help());
    return EXIT.ok;
  }
  return command.execute(rest, io);
}

function findCommand(argv: readonly string[], commands: readonly Command[]): Command | undefined {
  const matches = commands.filter((command) => command.name.split(' ').every((word, i) => argv[i] === word));
  return matches.sort((a, b) => b.name.length - a.name.length)[0];
}

/** "certs" alone (or with --help) lists its subcommands; anything else is an unknown command. */
function groupOrUnknown(argv: readonly string[], io: CliIo, commands: readonly Command[]): number {
  const group = argv[0] ?? '';
  const members = commands.filter((command) => command.name.startsWith(`${group} `));
  const next = argv[1];
  if (members.length > 0 && (next === undefined || wantsHelp(argv.slice(1)))) {
    io.stdout.write(groupHelp(group, members));
    return next === undefined ? EXIT.usage : EXIT.ok;
  }
  const typed = members.length > 0 ? `${group} ${next ?? ''}` : group;
  const guess = closest(typed, commands.map((command) => command.name));
  throw new UsageError(`unknown command "${typed}"${guess === undefined ? '' : ` (did you mean "${guess}"?)`}`, members.length > 0 ? group : '');
}

function topHelp(commands: readonly Command[]): string {
  return [
    `${PROGRAM} ${packageVersion()}: ${TAGLINE}`,
    '',
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Commands:',
    ...table(commands.map((command) => [command.name, command.summary] as const)),
    '',
    'Options:',
    ...table([
      ['-h, --help', 'Show this help'],
      ['--version', 'Print the version'],
    ]),
    '',
    `Run "${PROGRAM} <command> --help" for the options of a command.`,
    '',
  ].join('\n');
}

function groupHelp(group: string, members: readonly Command[]): string {
  return [
    `Usage: ${PROGRAM} ${group} <command> [options]`,
    '',
    'Commands:',
    ...table(members.map((command) => [command.name, command.summary] as const)),
    '',
    `Run "${PROGRAM} ${group} <command> --help" for the options of a command.`,
    '',
  ].join('\n');
}

function report(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    const help = error.command === '' ? `${PROGRAM} --help` : `${PROGRAM} ${error.command} --help`;
    io.stderr.write(`error: ${error.message}; see "${help}"\n`);
    return EXIT.usage;
  }
  if (error instanceof UserError) {
    io.stderr.write(error.message.split('\n').map((line) => `error: ${line}\n`).join(''));
    return error instanceof InputError ? EXIT.error : EXIT.failure;
  }
  // Anything else is a bug in dfs-injector, not a mistake by the user: the stack helps the report.
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`error: unexpected failure (please report this as a bug): ${detail}\n`);
  return EXIT.failure;
}
