import { UsageError } from './errors.js';

// Flag values arrive as strings; each parser names the flag and the rule in its error.

export function portValue(flag: string, text: string, command: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65_535)) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} must be a port number from 1 to 65535 (0 picks a free port)`, command);
  }
  return port;
}

export function secondsValue(flag: string, text: string, command: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0 && seconds <= 3600)) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} must be a number of seconds from 0 to 3600, such as 5 or 0.5`, command);
  }
  return seconds;
}

export function positiveIntegerValue(flag: string, text: string, command: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(Number.isSafeInteger(value) && value > 0)) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} must be a positive whole number`, command);
  }
  return value;
}

export function choiceValue<T extends string>(flag: string, text: string, choices: readonly T[], command: string): T {
  const choice = choices.find((c) => c === text);
  if (choice === undefined) {
    throw new UsageError(`${flag} ${JSON.stringify(text)} must be ${choices.map((c) => JSON.stringify(c)).join(' or ')}`, command);
  }
  return choice;
}
