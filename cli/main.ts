import type { Command } from './command.js';
import { COMMANDS } from './commands.js';
import { runCommandLine } from './dispatch.js';
import type { CliIo } from './io.js';

/** Runs one command line of `dfs-injector` and returns the exit code; never throws. */
export function main(argv: readonly string[], io: CliIo, commands: readonly Command[] = COMMANDS): Promise<number> {
  return runCommandLine(argv, io, commands);
}
