// Regenerates docs/statecharts/ from the machines: `npm run statecharts`.
// `npm run statecharts -- --check` writes nothing and exits 1 when a committed file is stale.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { statechartFiles } from '../src/machines/statechart.js';

const root = resolve(import.meta.dirname, '..');
const outDir = join(root, 'docs', 'statecharts');
const check = process.argv.includes('--check');

const stale = statechartFiles()
  .map((file) => ({ ...file, absolute: join(outDir, file.path) }))
  .filter(({ absolute, content }) => !existsSync(absolute) || readFileSync(absolute, 'utf8') !== content);

if (check) {
  if (stale.length > 0) {
    console.error(`Stale statecharts (run \`npm run statecharts\` and commit the result):`);
    for (const { absolute } of stale) console.error(`  ${relative(root, absolute)}`);
    process.exit(1);
  }
  console.log('docs/statecharts is up to date.');
} else {
  mkdirSync(outDir, { recursive: true });
  for (const { absolute, content } of stale) {
    writeFileSync(absolute, content);
    console.log(`wrote ${relative(root, absolute)}`);
  }
  if (stale.length === 0) console.log('docs/statecharts is up to date.');
}
