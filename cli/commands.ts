import { auditCommand } from './audit.js';
import { certsGenerateCommand } from './certs.js';
import { checkCommand } from './check.js';
import type { Command } from './command.js';
import { explainCommand } from './explain.js';
import { injectCommand } from './inject.js';
import { serveCommand } from './serve.js';

/**
 * Every command, in --help order. A new command is one `defineCommand` module and one entry here;
 * a multi-word name ("certs generate") makes its first word a group with its own --help.
 */
export const COMMANDS: readonly Command[] = [serveCommand, injectCommand, auditCommand, explainCommand, checkCommand, certsGenerateCommand];
