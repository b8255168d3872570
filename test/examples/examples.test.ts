import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { EXAMPLE_RUNS, EXAMPLES, FAKE_KEY, inBatches, runTypeScript } from './support.js';

const root = resolve(import.meta.dirname, '../..');

describe('examples (against the local mock provider)', () => {
  it(`each runs as a script ${EXAMPLE_RUNS} times, serves every request and never sees a 429`, {
    timeout: 180_000,
  }, async () => {
    const jobs = EXAMPLES.flatMap((example) =>
      Array.from({ length: EXAMPLE_RUNS }, () => async () => ({
        example,
        run: await runTypeScript(`examples/${example.file}`, { cwd: root }),
      })),
    );
    for (const { example, run } of await inBatches(jobs, 3)) {
      expect(run.stderr, example.file).toBe('');
      expect(run.code, example.file).toBe(0);
      for (const line of example.lines) expect(run.stdout).toMatch(new RegExp(line.source, 'm'));
      expect(run.stdout).not.toMatch(FAKE_KEY);
    }
  });

  it('imports keymesh by its package name and the provider from keymesh/sim, never the source', async () => {
    for (const { file } of EXAMPLES) {
      const text = await readFile(resolve(root, 'examples', file), 'utf8');
      const imports = [...text.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
      expect(imports, file).toContain('keymesh');
      expect(imports, file).toContain('keymesh/sim');
      for (const specifier of imports) expect(specifier, file).not.toMatch(/^\./);
    }
  });

  it('has an npm script per example, each pointing at an existing file', () => {
    const scripts = Object.entries(packageJson.scripts).filter(([name]) => name.startsWith('example:'));
    expect(scripts.map(([name]) => name).sort()).toEqual(
      EXAMPLES.map(({ file }) => `example:${file.replace(/\.ts$/, '')}`).sort(),
    );
    for (const [, command] of scripts) {
      const file = /^tsx (examples\/[\w-]+\.ts)$/.exec(command)?.[1];
      expect(file, command).toBeDefined();
      expect(existsSync(resolve(root, file ?? ''))).toBe(true);
    }
  });
});
