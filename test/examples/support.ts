import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { SIMULATED_REPLY } from '../../src/sim/wire-shapes.js';

/** What a finished script left. */
export interface ScriptRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command args` in `cwd` (a child process: stdout and stderr are pipes) and collects its
 * output; kills it after `timeoutMs`.
 */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number },
): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs a TypeScript file with tsx, as `npx tsx <file>` does. */
export function runTypeScript(
  file: string,
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv },
): Promise<ScriptRun> {
  return runProcess(process.execPath, ['--import', 'tsx', file], options);
}

/** Runs `jobs` with at most `limit` at a time; resolves to their results in order. */
export async function inBatches<T>(jobs: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      const job = jobs[i];
      if (job) results[i] = await job();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

const reply = SIMULATED_REPLY.replace(/[.]/g, '\\.');

/** Each example under examples/, and lines its output must have. */
export const EXAMPLES: ReadonlyArray<{ readonly file: string; readonly lines: readonly RegExp[] }> = [
  {
    file: 'openai.ts',
    lines: [
      new RegExp(`^withKey: ${reply}$`),
      /^keymeshFetch: 30 replies$/,
      new RegExp(`^stream: ${reply}$`),
      /^pool: 32 leases, 32 ok, 0 rate limited, 0 failed$/,
    ],
  },
  {
    file: 'anthropic.ts',
    lines: [
      new RegExp(`^messages: 16 replies; the first says "${reply}"$`),
      new RegExp(`^stream: ${reply}$`),
      /^pool: 17 leases, 17 ok, 0 rate limited, 0 failed$/,
    ],
  },
  {
    file: 'vercel-ai.ts',
    lines: [
      new RegExp(`^generateText: 12 replies; the first says "${reply}"$`),
      new RegExp(`^streamText: ${reply}$`),
      /^pool: 13 leases, 13 ok, 0 rate limited, 0 failed$/,
    ],
  },
  {
    file: 'fetch.ts',
    lines: [
      /^keymeshFetch: 20 of 20 answered 200$/,
      new RegExp(`^by hand with k_[0-9a-f]{16}: 200 ${reply}$`),
      /^pool: 21 leases, 21 ok, 0 rate limited, 0 failed$/,
    ],
  },
  {
    file: 'seed-style.ts',
    lines: [/^seed style: 12 questions, 12 answered$/, /^pool: 12 leases, 12 ok, 0 rate limited, 0 failed$/],
  },
];

/** How many times each example runs: "no 429" must hold run after run, not once by luck. */
export const EXAMPLE_RUNS = 3;

/** The fake keys the examples and snippets use all start so; none may be printed. */
export const FAKE_KEY = /sk-(?:ant-)?fake-[\w-]+/;

/** A TCP port free on this machine now (the inspector server takes a port, not 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
