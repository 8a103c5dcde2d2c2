// Child processes the benchmark starts, each in its own process group, so that every one of them
// (and anything it spawned) is killed at the end, on failure, on Ctrl-C, or when a step hangs.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

/** @type {Set<import('node:child_process').ChildProcess>} */
const live = new Set();

function killGroup(child, signal) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

export function killAll() {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

let installed = false;
export function installCleanup() {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      killAll();
      process.stderr.write(`\nbench: ${signal}: child processes killed\n`);
      process.exit(130);
    });
  }
}

/**
 * Starts a long-running child in its own process group.
 * @param {string} command
 * @param {string[]} args
 * @param {import('node:child_process').SpawnOptions} [options]
 */
export function start(command, args, options = {}) {
  const child = spawn(command, args, { stdio: 'ignore', ...options, detached: true });
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/**
 * Asks a child to stop, and kills it if it has not exited in time.
 * @param {import('node:child_process').ChildProcess} child
 */
export async function stop(child, { signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  killGroup(child, signal);
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a command to completion, bounded in time; stdout/stderr are captured unless redirected.
 * @param {string} command
 * @param {string[]} args
 * @param {{ timeoutMs: number, stdout?: 'pipe' | number, cwd?: string, env?: NodeJS.ProcessEnv }} options
 * @returns {Promise<{ code: number | null, signal: string | null, stdout: string, stderr: string, ms: number }>}
 */
export async function run(command, args, { timeoutMs, stdout = 'pipe', cwd, env }) {
  const t0 = performance.now();
  const child = start(command, args, { stdio: ['ignore', stdout, 'pipe'], ...(cwd === undefined ? {} : { cwd }), ...(env === undefined ? {} : { env }) });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d) => (err += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child, 'SIGKILL');
  }, timeoutMs);
  const [code, signal] = await once(child, 'close').catch((error) => {
    throw new Error(`${command}: ${error.message}`);
  });
  clearTimeout(timer);
  const ms = performance.now() - t0;
  if (timedOut) throw new Error(`${command} ${args.join(' ')}: killed after ${timeoutMs} ms\n${err}`);
  return { code, signal, stdout: out, stderr: err, ms };
}
