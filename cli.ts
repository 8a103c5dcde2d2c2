#!/usr/bin/env node
import { processIo } from './cli/io.js';
import { main } from './cli/main.js';

// `dfs-injector inject … | head` closes the pipe early; that is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2), processIo());
