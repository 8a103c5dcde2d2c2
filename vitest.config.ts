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
    reporters: ['default'],
  },
});
