import { pathToFileURL } from 'node:url';

/** Prints a line; examples take one so that tests can run them quietly. */
export type Log = (line: string) => void;

/**
 * Runs `main` when the example is the script node was started with (`npm run example:<name>`),
 * not when a test imports it. Exits 1 with the error when it fails.
 */
export function runIfMain(moduleUrl: string, main: (log: Log) => Promise<unknown>): void {
  const script = process.argv[1];
  if (script === undefined || pathToFileURL(script).href !== moduleUrl) return;
  main((line) => console.log(line)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
