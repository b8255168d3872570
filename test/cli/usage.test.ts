import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/io.js';
import { createProgram, launcherOf } from '../../src/cli/program.js';
import { CLI_SOURCE, runKeymesh, tempFolder } from './support.js';

const temp = tempFolder('usage');
const FORMS = 'It takes sqlite:<path>, json:<path>, a file path (.json → JSON file, else SQLite), or memory';

describe('keymesh --store', () => {
  it('rejects an unknown scheme with exit 2, saying what it takes', async () => {
    for (const command of ['status', 'demo']) {
      const run = await runKeymesh([command, '--store', 'postgres://localhost/db']);
      expect(run.code, command).toBe(2);
      expect(run.stderr).toBe(
        `keymesh: --store "postgres://localhost/db": unknown store scheme "postgres:". ${FORMS}\n`,
      );
      expect(run.stdout).toBe('');
    }
  });

  it('rejects a directory with exit 2, instead of a disk I/O error', async () => {
    const dir = join(await temp(), 'state');
    await mkdir(dir);
    for (const store of [dir, `sqlite:${dir}`, `json:${dir}`]) {
      const run = await runKeymesh(['status', '--store', store]);
      expect(run.code, store).toBe(2);
      expect(run.stderr).toContain(`${dir} is a directory, not a file`);
      expect(run.stderr).toContain(FORMS);
    }
  });
});

describe('keymesh hints', () => {
  it('names npm run only inside the KeyMesh repository, npx keymesh everywhere else', () => {
    expect(launcherOf({ npm_lifecycle_event: 'demo', npm_package_name: 'keymesh' })).toBe('npm');
    expect(launcherOf({ npm_lifecycle_event: 'keymesh', npm_package_name: 'keymesh' })).toBe('npm');
    // npx in a user's project sets npm variables too, of that project.
    expect(launcherOf({ npm_lifecycle_event: 'npx', npm_package_name: 'my-app' })).toBe('bin');
    expect(launcherOf({ npm_lifecycle_event: 'start', npm_package_name: 'my-app' })).toBe('bin');
    expect(launcherOf({})).toBe('bin');
  });

  it('says npx keymesh … at the end of the demo when installed, npm run … in the repository', async () => {
    const args = ['demo', '--requests', '10', '--speed', '25', '--store', 'memory', '--keys', '2'];
    const [installed, repository] = await Promise.all([
      runKeymesh([...args.slice(0, -1), '1', '--store', join(await temp(), 'd.json')]),
      runKeymesh(args, { env: { npm_lifecycle_event: 'demo', npm_package_name: 'keymesh' } }),
    ]);
    expect(installed.code).toBe(0);
    expect(installed.stdout).toMatch(/^ {2}run `npx keymesh demo --store \S+d\.json` again/m);
    expect(installed.stdout).toMatch(/^ {2}read it with `npx keymesh status --store \S+d\.json`$/m);
    expect(installed.stdout).not.toContain('npm run');
    expect(repository.code).toBe(0);
    expect(repository.stdout).not.toContain('npx');
  });
});

describe('keymesh output', () => {
  it('ends quietly when the reader of its output stops early (EPIPE)', { timeout: 60_000 }, async () => {
    // The demo prints a progress line every 10 ms; the reader closes the pipe after the first chunk.
    const args = ['--import', 'tsx', CLI_SOURCE, 'demo', '--requests', '100000', '--interval', '10'];
    const child = spawn(process.execPath, [...args, '--store', 'memory'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('has no hard line breaks inside a description: the help wraps to the terminal', () => {
    const io: CliIO = {
      stdout: { write: () => true },
      stderr: { write: () => true },
      env: {},
      onInterrupt: () => () => undefined,
    };
    const program = createProgram(io, {}, () => undefined);
    const commands: Command[] = [program, ...program.commands];
    for (const command of commands) {
      expect(command.description(), command.name()).not.toContain('\n');
      for (const option of command.options) expect(option.description, option.flags).not.toContain('\n');
    }
  });

  it('says in statechart --help that the JSON goes into createMachine(…) for the Stately editor', async () => {
    const run = await runKeymesh(['statechart', '--help']);
    expect(run.stdout.replace(/\s+/g, ' ')).toContain(
      'json (the machine config: wrap it in createMachine(…) to paste it into the Stately editor)',
    );
  });
});
