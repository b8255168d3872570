import { defineConfig } from 'tsup';

export default defineConfig({
  // `sim` is `keymesh/sim`: the local mock provider the examples and README snippets start.
  // `cli` is the `keymesh` bin: its source starts with `#!/usr/bin/env node`, which esbuild keeps
  // and tsup turns into an executable file.
  entry: { index: 'src/index.ts', sim: 'src/sim/index.ts', cli: 'src/cli/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: false,
  treeshake: true,
});
