/** A stream the CLI writes to: `process.stdout` or a test's buffer. */
export interface CliOutput {
  write(text: string): unknown;
  /** True on a terminal: the demo then redraws its view in place. */
  readonly isTTY?: boolean;
  /** Terminal width in columns, when known. */
  readonly columns?: number;
}

/** Everything a command touches outside itself, so that tests can run it in-process. */
export interface CliIO {
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
  /** Environment variables (`NO_COLOR`, `FORCE_COLOR`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Registers a handler for Ctrl-C (SIGINT) while a long command runs; returns the function that
   * removes it. Tests pass a no-op.
   */
  onInterrupt(handler: () => void): () => void;
}

/** The real process's streams and signals. */
export function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      return () => {
        process.off('SIGINT', handler);
      };
    },
  };
}

/** Writes one line (a newline is added). */
export function writeLine(out: CliOutput, line = ''): void {
  out.write(`${line}\n`);
}
