/**
 * What `keymesh` exits with. Scripts may rely on these; they are documented in `keymesh --help`.
 */
export const EXIT = {
  /** The command did what was asked. */
  ok: 0,
  /** An unexpected error (a bug, or the environment: a port, a disk). The message says which. */
  failure: 1,
  /** The command line is wrong: unknown command or option, a bad value. Nothing was done. */
  usage: 2,
  /** The store could not be read or written: missing, unreadable, corrupt, or from a newer KeyMesh. */
  store: 3,
  /** `demo` ran to the end but some requests were not served (the summary says how many). */
  incomplete: 4,
  /** Interrupted (Ctrl-C); the demo still saved the keys' state and printed its summary. */
  interrupted: 130,
} as const;

/** One of {@link EXIT}'s values. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit codes as `keymesh --help` lists them. */
export const EXIT_CODES_HELP = `Exit codes:
  ${EXIT.ok}    success
  ${EXIT.failure}    unexpected error (the message says what)
  ${EXIT.usage}    wrong command line (unknown command or option, bad value)
  ${EXIT.store}    the store could not be read or written (missing, unreadable, corrupt, newer format)
  ${EXIT.incomplete}    demo: some requests were not served
  ${EXIT.interrupted}  interrupted (Ctrl-C)`;

/** An error that ends the command with a given exit code and a message for people. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(exitCode: ExitCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
