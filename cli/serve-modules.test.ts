import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fakeApiKubeconfig, putWebhookConfiguration, startFakeApiServer, WEBHOOK_CONFIGURATION_PATH, type FakeApiServer } from '../test/support/fake-apiserver.js';
import { BUILT_CLI } from '../test/support/run-cli.js';

// `serve --tls-secret` is what every replica runs; @kubernetes/client-node would add about 80 MiB
// of idle RSS to each (docs/benchmarks.md). The serving path shares cluster access (kube/) with
// the commands that do load it, so this runs the built CLI and lists every module it loads.

const CLIENT_NODE = /\/node_modules\/@kubernetes\/client-node\//;

let api: FakeApiServer;
let dir: string;

beforeEach(async () => {
  api = await startFakeApiServer();
  dir = await mkdtemp(join(tmpdir(), 'dfs-serve-modules-'));
  putWebhookConfiguration(api, 'dfs-system');
});

afterEach(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

async function kubeconfig(user: Record<string, unknown>): Promise<string> {
  const path = join(dir, 'kubeconfig');
  await writeFile(path, fakeApiKubeconfig(api, user));
  return path;
}

/** Runs `serve --tls-secret` until it serves, stops it, and returns the URL of every module it loaded. */
async function modulesLoadedBy(kubeconfigPath: string): Promise<string[]> {
  const log = join(dir, 'modules.log');
  // A module loader hook (it runs on its own thread in Node 20+): it appends each URL as it loads.
  const loader = join(dir, 'loader.mjs');
  await writeFile(
    loader,
    `import { appendFileSync } from 'node:fs';\nlet log;\nexport function initialize(data) { log = data.log; }\nexport async function load(url, context, next) { appendFileSync(log, url + '\\n'); return next(url, context); }\n`,
  );
  const hook = join(dir, 'hook.mjs');
  await writeFile(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(loader).href)}, { data: { log: ${JSON.stringify(log)} } });\n`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      pathToFileURL(hook).href,
      BUILT_CLI,
      'serve',
      '--tls-secret',
      'dfs-injector-tls',
      '--webhook-config',
      'dfs-injector',
      '--namespace',
      'dfs-system',
      '--kubeconfig',
      kubeconfigPath,
      '--tls-cert',
      join(dir, 'tls', 'tls.crt'),
      '--tls-key',
      join(dir, 'tls', 'tls.key'),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--metrics-port',
      '0',
      '--grace-period',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = once(child, 'exit');
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start serving within 60 s:\n${output}`)), 60_000);
      const poll = setInterval(() => {
        if (!output.includes('dfs-injector webhook serving')) return;
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      }, 50);
      child.on('exit', (code) => {
        clearInterval(poll);
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code} before serving:\n${output}`));
      });
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  return (await readFile(log, 'utf8')).split('\n').filter((line) => line !== '');
}

describe('serve --tls-secret', () => {
  it('bootstraps its certificate without loading @kubernetes/client-node', async () => {
    const modules = await modulesLoadedBy(await kubeconfig({ token: 'plain' }));
    // The hook saw the serving path, the dynamically imported cluster access included.
    expect(modules.some((url) => url.endsWith('/dist/certs/cluster.js'))).toBe(true);
    expect(modules.some((url) => url.endsWith('/dist/kube/endpoint.js'))).toBe(true);
    expect(modules.filter((url) => CLIENT_NODE.test(url) || url.endsWith('/dist/kube/client-node.js'))).toEqual([]);
    expect(api.get(WEBHOOK_CONFIGURATION_PATH)).toMatchObject({ webhooks: [{ clientConfig: { caBundle: expect.any(String) } }] });
  }, 90_000);

  it('loads it for a kubeconfig user only it can authenticate (an exec plugin), which shows the hook would see it', async () => {
    const plugin = join(dir, 'plugin.sh');
    await writeFile(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}'\n`);
    await chmod(plugin, 0o755);
    const modules = await modulesLoadedBy(await kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }));
    expect(modules.some((url) => CLIENT_NODE.test(url))).toBe(true);
  }, 90_000);
});
