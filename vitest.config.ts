import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '.dev/**'],
    testTimeout: 30_000,
    hookTimeout: 180_000,
    // Suites that start smbd, FUSE mounts or a control plane share one machine's ports and mounts.
    fileParallelism: true,
    pool: 'forks',
    // CI also writes machine-readable results, from which .ci/run prints a plain summary line
    // (one file per run: .ci/run also runs suites on other Node.js lines).
    reporters: process.env.CI ? ['default', ['json', { outputFile: process.env.DFS_VITEST_JSON ?? '.tmp/vitest-results.json' }]] : ['default'],
  },
});
