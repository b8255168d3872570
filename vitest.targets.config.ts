import { defineConfig } from 'vitest/config';

// Benchmark targets not met yet (`npm run test:targets`); `npm test` runs everything else.
export default defineConfig({
  test: {
    include: ['test/open-targets/**/*.targets.ts'],
    environment: 'node',
    testTimeout: 60_000,
    allowOnly: false,
  },
});
