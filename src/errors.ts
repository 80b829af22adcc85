// The bottom of the error hierarchy: the exit statuses scripts rely on (DESIGN §5) and the one class of
// error meant for the user. Every domain error (inventory, plan, lab, control channel, SSH, cluster…)
// extends UserError and carries its exit status, so the CLI maps an error to an exit code by instanceof.

/** Exit status (DESIGN §5): scripts rely on these. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  cannotRun: 3,
  interrupted: 130,
} as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/**
 * An error whose message is for the user as is (no stack trace, not a bug): bad input, a node that cannot
 * be reached, a missing prerequisite. `exitCode` is the status the CLI ends with when it reaches the top.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'UserError';
  }
}
