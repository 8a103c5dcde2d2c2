// @ts-check
import js from '@eslint/js';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

// Node's I/O modules, which lib/ (the pure core) must not import. node:crypto stays allowed: lib/
// hashes and parses certificates, which reads and writes nothing.
const IO_MODULES = ['fs', 'fs/*', 'net', 'http', 'https', 'http2', 'tls', 'dgram', 'dns', 'dns/*', 'child_process', 'cluster', 'worker_threads', 'readline', 'readline/*', 'inspector', 'repl', 'vm'];

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/', '.dev/', 'shim/build/', '**/*.js', '!eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: {
      // no-cycle parses the imported files too: with TypeScript's parser, or it sees no imports in them.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      // Sources import './x.js' and mean './x.ts', as tsc's NodeNext resolution does.
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'], extensionAlias: { '.js': ['.ts', '.js'] } })],
    },
    rules: {
      // One direction for every import: a cycle means two modules that are one, or a helper in the wrong place.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration', message: 'Use an `as const` object and a union type instead of enum.' }],
      complexity: ['warn', 20],
    },
  },
  {
    // lib/ is the pure core: its exported API states its types so callers never depend on inference.
    files: ['lib/**/*.ts'],
    ignores: ['lib/**/*.test.ts'],
    rules: {
      '@typescript-eslint/explicit-function-return-type': ['error', { allowExpressions: true }],
      'no-restricted-imports': ['error', { patterns: [{ group: [...IO_MODULES.flatMap((m) => [m, `node:${m}`]), 'fastify', '@kubernetes/client-node'], message: 'lib/ is pure: do I/O in webhook/, certs/, kube/ or cli/.' }] }],
    },
  },
  {
    // The layering of ARCHITECTURE.md ("Folders and what each may import"). Tests may reach across
    // folders: a test of lib/ may drive the CLI or a real server.
    files: ['**/*.ts'],
    ignores: ['**/*.test.ts', 'test/**'],
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            { target: './lib', from: ['./webhook', './cli', './certs', './kube', './cli.ts'], message: 'lib/ is the pure core: webhook/, certs/, kube/ and cli/ build on it, never the other way round.' },
            { target: './lib/*.ts', from: ['./lib/audit', './lib/check', './lib/explain'], message: 'The injection core (lib/*.ts) does not depend on the diagnostics (lib/audit/, lib/check/, lib/explain/); they build on it.' },
            { target: './kube', from: ['./webhook', './cli', './certs', './cli.ts'], message: 'kube/ is cluster access that cli/ and certs/ share: it builds on lib/ only.' },
            { target: ['./webhook', './certs'], from: ['./cli', './cli.ts'], message: 'cli/ is the commands that start the webhook and issue certificates; they must not depend on it.' },
            { target: './', from: './test', message: 'test/ holds test support and fixtures; only tests may import it.' },
          ],
        },
      ],
    },
  },
  {
    // `serve --tls-secret` runs webhook/, certs/ and kube/: @kubernetes/client-node (about 80 MiB of
    // RSS per replica) is loaded only through kube/client-node.ts, imported dynamically when a
    // kubeconfig needs it (cli/serve-modules.test.ts runs the built CLI and checks).
    files: ['webhook/**/*.ts', 'certs/**/*.ts', 'kube/**/*.ts'],
    ignores: ['**/*.test.ts', 'kube/client-node.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@kubernetes/client-node', '@kubernetes/client-node/*', '**/client-node.js', './client-node.js'], allowTypeImports: true, message: 'The serving path must not load @kubernetes/client-node: import kube/client-node.ts with a dynamic import() where a kubeconfig needs it.' }] },
      ],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
