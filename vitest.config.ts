import { defineConfig } from 'vitest/config';

// The real-node suites each boot a QEMU TCG guest with two vCPUs running a kubelet and pods. Two
// of them at once on a 2-core machine starve both guests until the webhook misses the API
// server's 5 s deadline, so they run one at a time, beside every other suite.
const realNode = ['test/node/**/*.e2e.test.ts'];

const shared = {
  exclude: ['node_modules/**', 'dist/**', 'dist-image/**', '.dev/**'],
  testTimeout: 30_000,
  hookTimeout: 180_000,
  pool: 'forks' as const,
};

export default defineConfig({
  test: {
    projects: [
      // Suites that start smbd, FUSE mounts or a control plane share one machine's ports and
      // mounts; each picks its own, so they run in parallel.
      { test: { ...shared, name: 'suites', include: ['**/*.test.ts'], exclude: [...shared.exclude, ...realNode] } },
      { test: { ...shared, name: 'real-node', include: realNode, fileParallelism: false } },
    ],
    // CI also writes machine-readable results, from which .ci/run prints a plain summary line
    // (one file per run: .ci/run also runs suites on other Node.js lines).
    reporters: process.env.CI ? ['default', ['json', { outputFile: process.env.DFS_VITEST_JSON ?? '.tmp/vitest-results.json' }]] : ['default'],
  },
});
