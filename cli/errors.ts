/**
 * The CLI's exit codes, the one table every command uses: 1 is a refusal (`inject`) or a finding
 * at or above --fail-on (`audit`, a failed step of `check`), so an input or a cluster that could
 * not be read gets a code of its own.
 */
export const EXIT = { ok: 0, failure: 1, findings: 1, usage: 2, error: 3 } as const;
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

/**
 * An input could not be read or parsed (a file, stdin, the config, a manifest of the wrong shape),
 * or the cluster could not be read: exit code 3 in every command, nothing was done.
 */
export class InputError extends UserError {
  override readonly name: string = 'InputError';
}
