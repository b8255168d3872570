import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** Runs a child on the real clock; it must exit by itself (the kill timeout is only a bound). */
function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const EXPECTED = ['after-cooldown', 'after-budget', 'after-timeout:NO_AVAILABLE_KEY', 'idle'];

describe('a pending acquire() keeps Node alive, an idle pool does not', () => {
  // Each child awaits an acquire() that waits on a cooldown, on an rpm budget and on a busy key
  // with a timeout, with nothing else pending; then leaves an idle pool open and ends.
  it.each([
    ['ESM', ['--import', 'tsx', fixture('keep-alive.mts')]],
    ['CommonJS', [fixture('keep-alive.cjs')]],
  ])(
    '%s: the code after each await runs, and the process then exits with 0',
    async (_name, args) => {
      const { code, stdout, stderr } = await run(args);
      expect(stderr).toBe('');
      expect(stdout.trim().split('\n')).toEqual(EXPECTED);
      expect(code).toBe(0);
    },
    30_000,
  );
});
