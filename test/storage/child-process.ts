import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const FIXTURE = resolve(import.meta.dirname, 'fixtures', 'storage-child.ts');
const NODE_MODULES = resolve(import.meta.dirname, '..', '..', 'node_modules');

/** The fixture bundled into one plain-JS file: `node` starts it in tens of ms (tsx takes ~4× that). */
export interface ChildBundle {
  readonly script: string;
  remove(): Promise<void>;
}

/**
 * Bundles the fixture. `withDriver: false` puts it where `better-sqlite3` cannot be resolved, as
 * in an install without the optional peer dependency.
 */
export async function bundleChild({ withDriver = true } = {}): Promise<ChildBundle> {
  const dir = await mkdtemp(join(tmpdir(), 'keymesh-child-'));
  await build({
    entryPoints: [FIXTURE],
    outdir: dir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['better-sqlite3'],
    logLevel: 'silent',
  });
  if (withDriver) await symlink(NODE_MODULES, join(dir, 'node_modules'), 'dir');
  return { script: join(dir, 'storage-child.mjs'), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A running child whose stdout is read line by line. */
export class ChildRun {
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #lines: string[] = [];
  readonly #waiters: ((line: string | undefined) => void)[] = [];
  #buffer = '';
  #stderr = '';
  #ended = false;

  constructor(bundle: ChildBundle, args: readonly string[]) {
    this.process = spawn(process.execPath, [bundle.script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.process.stdout?.setEncoding('utf8');
    this.process.stdout?.on('data', (chunk: string) => this.#onData(chunk));
    this.process.stderr?.setEncoding('utf8');
    this.process.stderr?.on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    this.exited = new Promise((resolveExit) => {
      this.process.on('exit', (code, signal) => resolveExit({ code, signal }));
    });
    this.process.stdout?.on('end', () => {
      this.#ended = true;
      for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    });
  }

  /** The next stdout line; rejects (with the child's stderr) when the child ends without one. */
  async nextLine(): Promise<string> {
    const line =
      this.#lines.shift() ??
      (this.#ended ? undefined : await new Promise<string | undefined>((r) => this.#waiters.push(r)));
    if (line === undefined) throw new Error(`the child ended without output; stderr:\n${this.#stderr}`);
    return line;
  }

  async kill(): Promise<void> {
    this.process.kill('SIGKILL');
    await this.exited;
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    for (;;) {
      const end = this.#buffer.indexOf('\n');
      if (end < 0) return;
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 1);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(line);
      else this.#lines.push(line);
    }
  }
}
