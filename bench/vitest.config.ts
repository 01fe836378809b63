import { defineConfig } from 'vitest/config';

// Benchmarks print tables comparing tern with a reference measured in the same run.
// They are not part of `npm test`; run one with `npm run bench -- bench/<name>`.
export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 1_800_000,
    hookTimeout: 600_000,
  },
});
