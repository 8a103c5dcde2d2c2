import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogDestination } from './log-destination.js';

let dir: string;
let file: string;
let fd: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dfs-log-'));
  file = join(dir, 'out.log');
  fd = openSync(file, 'a');
});

afterEach(() => {
  try {
    closeSync(fd);
  } catch {
    // The error test closes it itself.
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('createLogDestination', () => {
  it('writes the lines of one event-loop turn together at the end of that turn, in order', async () => {
    const destination = createLogDestination(fd);
    const logger = pino({ base: null, timestamp: false }, destination);
    logger.info({ n: 1 }, 'first');
    logger.info({ n: 2 }, 'second');
    expect(readFileSync(file, 'utf8')).toBe('');

    await nextTurn();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines).toEqual([
      { level: 30, n: 1, msg: 'first' },
      { level: 30, n: 2, msg: 'second' },
    ]);
  });

  it('writes what is pending on flushSync and on pino flush', async () => {
    const destination = createLogDestination(fd);
    const logger = pino({ base: null, timestamp: false }, destination);
    logger.info('one');
    destination.flushSync();
    expect(readFileSync(file, 'utf8')).toBe('{"level":30,"msg":"one"}\n');

    logger.info('two');
    await new Promise<void>((resolve, reject) => logger.flush((error) => (error ? reject(error) : resolve())));
    expect(readFileSync(file, 'utf8')).toBe('{"level":30,"msg":"one"}\n{"level":30,"msg":"two"}\n');
  });

  it('keeps going when the descriptor cannot be written, and says so once on stderr', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const destination = createLogDestination(fd);
      closeSync(fd);
      destination.write('lost\n');
      await nextTurn();
      destination.write('lost too\n');
      await nextTurn();
      expect(stderr).toHaveBeenCalledTimes(1);
      expect(String(stderr.mock.calls[0]?.[0])).toMatch(/cannot write log lines to fd \d+: .*EBADF.*; dropping them/);
    } finally {
      stderr.mockRestore();
    }
  });
});
