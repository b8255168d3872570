import { existsSync } from 'node:fs';
import type * as KeyMeshModule from '../../src/index.js';

/** The public API of KeyMesh, typed from the source it was built from. */
export type KeyMesh = typeof KeyMeshModule;

/** Where `npm run build` puts the production bundle. */
export const PRODUCTION_BUILD = new URL('../../dist/index.js', import.meta.url);

/**
 * Loads the production build (`dist/index.js`), which is what users run and therefore what the
 * benchmarks measure. Tests pass the source module instead (`import * as keymesh from 'src/index.js'`).
 */
export async function loadProductionBuild(): Promise<KeyMesh> {
  if (!existsSync(PRODUCTION_BUILD)) {
    throw new Error('dist/index.js is missing: run `npm run build` first (`npm run bench` does)');
  }
  return (await import(PRODUCTION_BUILD.href)) as KeyMesh;
}
