import { execFile, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILT_CLI } from '../test/support/run-cli.js';

const GRACE_SECONDS = 1;
const CURL_LINE = /^ +(curl --cacert (\S+) -H 'Content-Type: application\/json' --data @(\S+) (https:\/\/127\.0\.0\.1:\d+\/mutate))$/m;
const hasCurl = spawnSync('curl', ['--version']).status === 0;

interface DevServer {
  readonly child: ChildProcessWithoutNullStreams;
  readonly cwd: string;
  readonly banner: string;
  readonly curl: { line: string; caPath: string; dataPath: string; url: string };
  stderr(): string;
}

const running: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** `serve --dev` in `cwd`, resolved once it has printed its curl line. */
async function startDev(cwd: string): Promise<DevServer> {
  const child = spawn(
    process.execPath,
    [BUILT_CLI, 'serve', '--dev', '--port', '0', '--metrics-port', '0', '--grace-period', String(GRACE_SECONDS), '--log-level', 'warn'],
    { cwd, env: { ...process.env, DFS_DEV_DIR: '.dev-test' } },
  );
  running.push(child);
  let stderr = '';
  child.stdout.resume();
  child.stderr.setEncoding('utf8');
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no curl line within 60 s; stderr so far:\n${stderr}`)), 60_000);
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      const found = CURL_LINE.exec(stderr);
      if (found !== null) {
        clearTimeout(timer);
        resolve(found);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve --dev exited with ${code} before printing the curl line:\n${stderr}`));
    });
  });
  const [, line = '', caPath = '', dataPath = '', url = ''] = match;
  return { child, cwd, banner: stderr, curl: { line, caPath, dataPath, url }, stderr: () => stderr };
}

function post(url: string, ca: string, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', ca, headers: { 'Content-Type': 'application/json' }, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

function expectConsumerPatch(review: any, uid: string): void {
  expect(review).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true, patchType: 'JSONPatch' } });
  const patch = JSON.parse(Buffer.from(review.response.patch as string, 'base64').toString('utf8')) as { op: string; path: string; value?: any }[];
  expect(patch).toContainEqual({ op: 'add', path: '/spec/volumes/-', value: { name: 'dfs-injector-dfs', hostPath: { path: '/mnt/decypharr-dfs', type: 'Directory' } } });
  expect(patch.some((op) => op.path.startsWith('/spec/containers/0/volumeMounts') && JSON.stringify(op.value).includes('HostToContainer'))).toBe(true);
}

async function stop(server: DevServer): Promise<{ code: number | null; ms: number }> {
  const started = performance.now();
  const exited = once(server.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  server.child.kill('SIGTERM');
  const [code] = await exited;
  return { code, ms: performance.now() - started };
}

describe('dfs-injector serve --dev', () => {
  it('makes a development CA, serves on 127.0.0.1, answers the printed request with a patch and exits 0 on SIGTERM', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'dfs-dev-'));
    const server = await startDev(cwd);
    expect(server.banner).toMatch(/created a development CA \.dev-test\/ca\.crt \(first run\)/);
    expect(server.curl.caPath).toBe('.dev-test/ca.crt');
    expect(server.curl.dataPath).toBe('.dev-test/sample-review.json');

    const ca = await readFile(join(cwd, server.curl.caPath), 'utf8');
    const body = await readFile(join(cwd, server.curl.dataPath), 'utf8');
    const uid = (JSON.parse(body) as { request: { uid: string } }).request.uid;
    const answer = await post(server.curl.url, ca, body);
    expect(answer.status).toBe(200);
    expectConsumerPatch(answer.json, uid);

    // The same request to a server whose certificate the dev CA did not sign must fail: the CA is
    // the only trust anchor, not the system store.
    await expect(post(server.curl.url, (await import('node:tls')).rootCertificates.join('\n'), body)).rejects.toThrow();

    const { code, ms } = await stop(server);
    expect(code).toBe(0);
    // The grace period, then draining; generous for a loaded CI machine.
    expect(ms).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000 - 100);
    expect(ms).toBeLessThan(GRACE_SECONDS * 1000 + 10_000);
  });

  it('reuses the development CA on the next start', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'dfs-dev-'));
    const first = await startDev(cwd);
    const ca = await readFile(join(cwd, '.dev-test/ca.crt'), 'utf8');
    expect((await stop(first)).code).toBe(0);

    const second = await startDev(cwd);
    expect(second.banner).toMatch(/reusing the development CA \.dev-test\/ca\.crt/);
    expect(await readFile(join(cwd, '.dev-test/ca.crt'), 'utf8')).toBe(ca);
    expect((await stop(second)).code).toBe(0);
  });

  it.skipIf(!hasCurl)('prints a curl command that works when pasted into a shell', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'dfs-dev-'));
    const server = await startDev(cwd);
    const body = await readFile(join(cwd, server.curl.dataPath), 'utf8');
    const output = await new Promise<string>((resolve, reject) => {
      execFile('sh', ['-c', `${server.curl.line} --silent --show-error`], { cwd }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    expectConsumerPatch(JSON.parse(output), (JSON.parse(body) as { request: { uid: string } }).request.uid);
    expect((await stop(server)).code).toBe(0);
  });
});
