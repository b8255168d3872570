import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readmeBlocks, renderReadme } from '../../scripts/readme-snippets.js';
import { FAKE_KEY, freePort, inBatches, runTypeScript } from './support.js';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
const read = (path: string) => readFileSync(resolve(root, path), 'utf8');
/** Every snippet file, as the README names it. */
const SNIPPETS = readdirSync(resolve(root, 'examples/readme'))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => `examples/readme/${file}`)
  .sort();

describe('README snippets', () => {
  it('every TypeScript or JavaScript block is a file under examples/readme, byte for byte', () => {
    const code = readmeBlocks(readme).filter((block) =>
      /^(ts|typescript|js|javascript|mjs|cjs)$/.test(block.lang),
    );
    expect(code.length).toBeGreaterThan(0);
    for (const block of code) {
      expect(block.snippet, `a ${block.lang} block without a snippet marker:\n${block.code}`).toBeDefined();
      expect(block.code, `${block.snippet} differs from its README block: run npm run readme`).toBe(
        read(block.snippet ?? ''),
      );
    }
    expect(renderReadme(readme, read)).toBe(readme);
    expect(code.map((block) => block.snippet).sort()).toEqual(SNIPPETS);
  });

  it('the blocks other than code are commands and output, not programs', () => {
    const langs = new Set(readmeBlocks(readme).map((block) => block.lang));
    expect([...langs].sort()).toEqual(['sh', 'text', 'ts']);
  });

  it('every snippet runs to the end and prints no key', { timeout: 120_000 }, async () => {
    const inspectorPort = await freePort();
    const env = { ...process.env, INSPECTOR_PORT: String(inspectorPort), METRICS_PORT: '0' };
    const runs = await inBatches(
      SNIPPETS.map((file) => async () => ({ file, run: await runTypeScript(file, { cwd: root, env }) })),
      3,
    );
    for (const { file, run } of runs) {
      expect({ file, code: run.code, stderr: run.stderr }).toEqual({ file, code: 0, stderr: '' });
      expect(run.stdout, file).not.toMatch(FAKE_KEY);
    }
    const output = new Map(runs.map(({ file, run }) => [file, run.stdout]));
    expect(output.get('examples/readme/persistence.ts')).toMatch(/'k_[0-9a-f]{16} cooling'/);
    expect(output.get('examples/readme/metrics.ts')).toMatch(/^keymesh_acquires_total\{pool="openai"\} 0$/m);
    expect(output.get('examples/readme/use.ts')).toMatch(/^done$/m);
  });
});
