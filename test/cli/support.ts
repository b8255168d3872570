import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';
import { statechartFiles } from '../../src/machines/statechart.js';

/** The CLI's source entry; tests run it with tsx, as `npm run keymesh` does. */
export const CLI_SOURCE = resolve(import.meta.dirname, '../../src/cli/index.ts');

/** What a finished `keymesh` process left. */
export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** Called with stdout as it grows, with the child, e.g. to send it a signal. */
  readonly onStdout?: (stdoutSoFar: string, child: ReturnType<typeof spawn>) => void;
  /** Kill the child after this long (ms). Default 30 000. */
  readonly timeoutMs?: number;
  /** Run this file instead of the source entry (e.g. the built bin). */
  readonly entry?: string;
}

/**
 * Runs `keymesh <args>` in a child process (stdout and stderr are pipes, so never a terminal) and
 * collects its output. The environment is the test's without npm's variables, so that hints say
 * `keymesh …`, and without colour settings.
 */
export function runKeymesh(args: readonly string[], options: CliRunOptions = {}): Promise<CliRun> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('npm_') && name !== 'FORCE_COLOR' && name !== 'NO_COLOR') {
      env[name] = value;
    }
  }
  Object.assign(env, options.env);
  const command = options.entry === undefined ? ['--import', 'tsx', CLI_SOURCE] : [options.entry];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...command, ...args], {
      cwd: resolve(import.meta.dirname, '../..'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** A fresh temporary folder for this test file, removed after it. */
export function tempFolder(prefix: string): () => Promise<string> {
  const made: string[] = [];
  afterAll(async () => {
    await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), `keymesh-${prefix}-`));
    made.push(dir);
    return dir;
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point.
export const ANSI = /\u001b\[/;

/** A docs/statecharts file as `npm run statecharts` writes it (test/statecharts.test.ts checks the committed copies). */
export function generated(path: string): string {
  const file = statechartFiles().find((f) => f.path === path);
  if (!file) throw new Error(`no statechart file ${path}`);
  return file.content;
}
