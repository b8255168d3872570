import { access, constants, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import tsupConfig from '../../tsup.config.js';
import { generated, runKeymesh } from './support.js';

const root = resolve(import.meta.dirname, '../..');
// Inside node_modules so that the bundle's bare imports (commander, xstate) resolve as in dist/.
const outDir = join(root, 'node_modules', '.cache', `keymesh-cli-test-${process.pid}`);
const bin = join(outDir, 'cli.js');

beforeAll(async () => {
  // The project's tsup config, narrowed to the CLI entry in ESM (what the bin runs).
  await build({
    entry: { cli: 'src/cli/index.ts' },
    format: ['esm'],
    outDir,
    dts: false,
    sourcemap: false,
    clean: true,
    silent: true,
  });
}, 60_000);

afterAll(async () => {
  await rm(outDir, { recursive: true, force: true });
});

describe('the keymesh bin', () => {
  it('is dist/cli.js, built by tsup from src/cli/index.ts', () => {
    expect(packageJson.bin).toEqual({ keymesh: './dist/cli.js' });
    const config = Array.isArray(tsupConfig) ? tsupConfig[0] : tsupConfig;
    expect(config).toMatchObject({ entry: { cli: 'src/cli/index.ts' } });
  });

  it('builds to an executable ES module that starts with a node shebang', async () => {
    const text = await readFile(bin, 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n')).toBe(true);
    await expect(access(bin, constants.X_OK)).resolves.toBeUndefined();
    expect(text).not.toMatch(/sk-demo-fake-[a-z]+-\d{4}-not-a-real-key/);
  });

  it('runs built: --version, a statechart and a short demo', { timeout: 60_000 }, async () => {
    const [version, dot] = await Promise.all([
      runKeymesh(['--version'], { entry: bin }),
      runKeymesh(['statechart', 'key', '--format', 'dot'], { entry: bin }),
    ]);
    expect(version).toMatchObject({ code: 0, stdout: `${packageJson.version}\n` });
    expect(dot.code).toBe(0);
    expect(dot.stdout).toBe(generated('key.dot'));

    const demo = await runKeymesh(['demo', '--requests', '20', '--speed', '25', '--store', 'memory'], {
      entry: bin,
    });
    expect(demo.stderr).toBe('');
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/^Done in .*: 20 of 20 requests served, 0 failed$/m);
  });
});
