import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  // Examples and README snippets import the package by name (as in tsconfig.json's `paths`).
  resolve: {
    alias: [
      { find: /^keymesh\/sim$/, replacement: source('./src/sim/index.ts') },
      { find: /^keymesh$/, replacement: source('./src/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    // A skipped or focused test in CI is a silent gap: fail instead.
    allowOnly: false,
  },
});
