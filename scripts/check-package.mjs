// Proves the built package loads from ESM and CommonJS and works: a pool, a lease, a release.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'keymesh-pkg-'));
const body = (load) => `
${load}
const pool = await KeyPool.create({ keys: ['fake-check-key-0000000000000001', 'fake-check-key-0000000000000002'] });
const lease = await pool.acquire();
lease.release({ latencyMs: 5 });
if (pool.snapshot().metrics.releases !== 1) throw new Error('release not counted');
await pool.close();
console.log('ok');
`;
try {
  // Install the package by name so that the `exports` map is what resolves it.
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'keymesh'), 'dir');
  writeFileSync(join(dir, 'check.mjs'), body(`import { KeyPool } from 'keymesh';`));
  writeFileSync(
    join(dir, 'check.cjs'),
    `(async () => {${body(`const { KeyPool } = require('keymesh');`)}})().catch((e) => { console.error(e); process.exit(1); });`,
  );
  for (const file of ['check.mjs', 'check.cjs']) {
    const out = execFileSync(process.execPath, [join(dir, file)], { encoding: 'utf8' }).trim();
    if (out !== 'ok') throw new Error(`${file} printed ${out}`);
    console.log(`package import from ${file.endsWith('.mjs') ? 'ESM' : 'CommonJS'}: ok`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
