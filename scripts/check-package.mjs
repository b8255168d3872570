// Proves the built package loads from ESM and CommonJS and works: a pool, a lease over HTTP to
// the local provider of `keymesh/sim`, a release.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'keymesh-pkg-'));
const body = (load) => `
${load}
const keys = ['fake-check-key-0000000000000001', 'fake-check-key-0000000000000002'];
const provider = await startLocalProvider({ keys });
const pool = await KeyPool.create({ keys });
const lease = await pool.acquire();
const response = await fetch(provider.url + '/v1/chat/completions', {
  method: 'POST',
  headers: { authorization: 'Bearer ' + lease.key, 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'check', messages: [{ role: 'user', content: 'hi' }] }),
});
await response.arrayBuffer();
if (response.status !== 200) throw new Error('the local provider answered ' + response.status);
lease.release({ headers: response.headers });
if (pool.snapshot().metrics.releases !== 1) throw new Error('release not counted');
await pool.close();
await provider.close();
console.log('ok');
`;
try {
  // Install the package by name so that the `exports` map is what resolves it.
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'keymesh'), 'dir');
  writeFileSync(
    join(dir, 'check.mjs'),
    body(`import { KeyPool } from 'keymesh';\nimport { startLocalProvider } from 'keymesh/sim';`),
  );
  writeFileSync(
    join(dir, 'check.cjs'),
    `(async () => {${body(`const { KeyPool } = require('keymesh');\nconst { startLocalProvider } = require('keymesh/sim');`)}})().catch((e) => { console.error(e); process.exit(1); });`,
  );
  for (const file of ['check.mjs', 'check.cjs']) {
    const out = execFileSync(process.execPath, [join(dir, file)], { encoding: 'utf8' }).trim();
    if (out !== 'ok') throw new Error(`${file} printed ${out}`);
    console.log(`package import from ${file.endsWith('.mjs') ? 'ESM' : 'CommonJS'}: ok`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
