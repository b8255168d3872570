import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    // A skipped or focused test in CI is a silent gap: fail instead.
    allowOnly: false,
  },
});
