// The webhook image's build: dist/ (tsc's output) and its dependencies as a few files, so that
// `serve` loads a handful of modules instead of about 550. Start-up CPU and idle memory as
// measured in docs/benchmarks.md ("Memory and start-up as deployed"). The image runs the bundle;
// tests, `npm start` and the npm package run dist/ as compiled.
import { defineConfig } from 'rolldown';

export default defineConfig({
  input: 'dist/cli.js',
  platform: 'node',
  // Only audit, explain, check and an exec-plugin kubeconfig load the Kubernetes client, never the
  // serving path; it stays in node_modules as npm installed it rather than in the bundle.
  external: [/^@kubernetes\/client-node(\/|$)/],
  output: { dir: 'dist-image', format: 'esm', minify: false, sourcemap: false },
  logLevel: 'warn',
});
