export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * A problem with the user's input or environment (a missing file, invalid YAML, a refused
 * document): printed as `error: <message>` without a stack trace, exit code 1.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
}

/** The command line itself is wrong: exit code 2 and a pointer to the command's --help. */
export class UsageError extends UserError {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** The command whose --help to point at, e.g. "inject"; empty for the top level. */
    readonly command: string,
  ) {
    super(message);
  }
}
