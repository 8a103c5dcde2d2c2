// The webhook as the shipped Deployment starts it: `serve --tls-secret … --webhook-config …`
// against a real API server (the e2e harness's etcd + kube-apiserver), authenticated as the
// dfs-injector ServiceAccount with the shipped RBAC, run by the image's Node.js major with the
// image's environment (the Dockerfile's ENV lines). Against it, a bare node:http2 server started
// the same way. Measured per round, alternately: spawn → first answered AdmissionReview (POST
// /mutate, 200), and VmRSS once idle (kubelet-like /readyz probes meanwhile).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:http2';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import jsyaml from 'js-yaml';
import { run, start, stop } from './procs.js';
import { cpuMsOf, freePort, HOST, memoryOf } from './servers.js';
import { ROOT } from './setup.js';

const ROOT_DIR = fileURLToPath(ROOT);
const SECRET = 'dfs-injector-tls';
const NAMESPACE = 'dfs-system';
const WANTED_KINDS = new Set(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);

/**
 * The Dockerfile's final stage as the bench needs it: its Node.js major (from ARG NODE_IMAGE)
 * and its ENV lines (KEY=VALUE form).
 */
export function imageRuntime(dockerfile = join(ROOT_DIR, 'Dockerfile')) {
  const text = readFileSync(dockerfile, 'utf8');
  const major = /^ARG NODE_IMAGE=node:(\d+)/m.exec(text)?.[1];
  if (major === undefined) throw new Error(`${dockerfile}: no ARG NODE_IMAGE=node:MAJOR…`);
  const finalStage = text.slice(text.lastIndexOf('\nFROM '));
  /** @type {Record<string, string>} */
  const env = {};
  for (const m of finalStage.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of m[1].trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`${dockerfile}: ENV ${pair}: only KEY=VALUE is understood here`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return { major: Number(major), env };
}

/**
 * The newest cached official Node.js binary of that major (test/tools/install-node.sh), or
 * undefined.
 */
export function cachedNode(major) {
  const root = process.env.DFS_NODE_CACHE ?? join(homedir(), '.cache/dfs-injector/node');
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => v.startsWith(`${major}.`) && existsSync(join(root, v, 'bin/node')))
    .sort((a, b) => {
      const [x, y] = [a, b].map((v) => v.split('.').map(Number));
      return x[1] - y[1] || x[2] - y[2];
    });
  const version = versions.at(-1);
  return version === undefined ? undefined : { version, path: join(root, version, 'bin/node') };
}

/** test/e2e's harness is TypeScript; compiled on the fly (about 2 s) into the bench's temp dir. */
async function loadHarness() {
  const out = join(ROOT_DIR, '.tmp/bench/e2e');
  const tsc = join(ROOT_DIR, 'node_modules/typescript/bin/tsc');
  const args = [tsc, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node',
    '--esModuleInterop', '--resolveJsonModule', '--rootDir', '.', '--outDir', out, 'test/e2e/harness.ts'];
  const built = await run(process.execPath, args, { timeoutMs: 120_000, cwd: ROOT_DIR });
  if (built.code !== 0) throw new Error(`compiling test/e2e/harness.ts failed:\n${built.stdout}${built.stderr}`);
  // binaries.ts reads the pinned versions beside itself.
  await mkdir(join(out, 'test/e2e/control-plane'), { recursive: true });
  await copyFile(join(ROOT_DIR, 'test/e2e/control-plane/versions.env'), join(out, 'test/e2e/control-plane/versions.env'));
  return import(pathToFileURL(join(out, 'test/e2e/harness.js')).href);
}

function kustomizeBinary() {
  const cached = join(homedir(), '.cache/dfs-injector/bin/kustomize');
  if (existsSync(cached)) return cached;
  return 'kustomize';
}

/**
 * The image makes its compile cache by running the start-up path once (Dockerfile: the RUN after
 * NODE_COMPILE_CACHE); the same here, into a directory of the bench's.
 */
async function warmCompileCache(nodePath, cli, dir, env) {
  await mkdir(dir, { recursive: true });
  const args = [cli, 'serve', '--tls-secret', 'warm-up', '--webhook-config', 'warm-up', '--namespace', 'warm-up',
    '--tls-cert', '/nonexistent/tls.crt', '--tls-key', '/nonexistent/tls.key'];
  const warm = await run(nodePath, args, { timeoutMs: 60_000, env: { ...env, HOME: '/nonexistent', NODE_COMPILE_CACHE: dir } });
  if (!warm.stderr.includes('no Kubernetes cluster configured')) throw new Error(`compile-cache warm-up: unexpected result (${warm.code}):\n${warm.stderr}`);
  if (readdirSync(dir).length === 0) throw new Error(`compile-cache warm-up wrote nothing to ${dir}`);
  return dir;
}

/** One AdmissionReview POST over HTTP/2; resolves to the status, or 0 when nothing answered. */
function postOnce(port, body, timeoutMs) {
  return new Promise((resolve) => {
    // Trust is not the point here (the CA is the Secret's, made at runtime): only the time.
    const session = connect(`https://${HOST}:${port}`, { rejectUnauthorized: false });
    const timer = setTimeout(() => {
      session.destroy();
      resolve(0);
    }, timeoutMs);
    session.once('error', () => {
      clearTimeout(timer);
      resolve(0);
    });
    const req = session.request({ ':method': 'POST', ':path': '/mutate', 'content-type': 'application/json' });
    let status = 0;
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.on('error', () => {});
    req.resume();
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve(status);
    });
    req.end(body);
  });
}

/** Polls until one admission is answered 200; ms since t0. */
async function firstAnswer(child, port, body, t0, timeoutMs = 60_000) {
  while (performance.now() - t0 < timeoutMs) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before answering`);
    if ((await postOnce(port, body, 2000)) === 200) return performance.now() - t0;
    await sleep(2);
  }
  throw new Error(`no answered admission on port ${port} within ${timeoutMs} ms`);
}

/** Idle as in a pod: the kubelet's readiness probe (every 5 s; here every 1 s) and nothing else. */
async function idleRss(child, metricsPort, idleMs) {
  const t0 = performance.now();
  while (performance.now() - t0 < idleMs) {
    if (metricsPort !== undefined) await fetch(`http://${HOST}:${metricsPort}/readyz`).then((r) => r.arrayBuffer()).catch(() => {});
    await sleep(1000);
  }
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const anonKiB = Number(/^RssAnon:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  return { ...memoryOf(child.pid), anonMiB: anonKiB / 1024 };
}

/**
 * The image's runtime on this machine: its Node.js major from the tools cache (or `nodePath`),
 * its ENV lines, and its compile cache made the way the Dockerfile makes it.
 * @param {{ cli: string, dir: string, nodePath?: string }} o
 */
export async function imageServerRuntime(o) {
  const image = imageRuntime();
  const node = o.nodePath === undefined ? cachedNode(image.major) : { version: execFileSync(o.nodePath, ['--version'], { encoding: 'utf8' }).trim().slice(1), path: o.nodePath };
  if (node === undefined) {
    throw new Error(`no Node.js ${image.major} (the image's) in the tools cache: bash test/tools/install-node.sh ${image.major}.X.Y, or pass --node PATH`);
  }
  // The image's environment only: not this shell's Node options or kubeconfig.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.KUBECONFIG;
  Object.assign(env, image.env);
  if (image.env.NODE_COMPILE_CACHE !== undefined) env.NODE_COMPILE_CACHE = await warmCompileCache(node.path, o.cli, join(o.dir, 'compile-cache'), env);
  return { node, env, imageEnv: image.env };
}

/**
 * @param {{ cli: string, body: string, config: string, bareScript: string, response: string,
 *   rounds: number, idleMs: number, dir: string, nodeArgs?: string[],
 *   runtime: { node: { path: string }, env: NodeJS.ProcessEnv }, log?: (line: string) => void }} o
 */
export async function deployedPhase(o) {
  const log = o.log ?? ((line) => process.stderr.write(`${line}\n`));
  const { node, env } = o.runtime;
  const { startControlPlane, writeServiceAccountKubeconfig } = await loadHarness();
  const cpT0 = performance.now();
  const cp = await startControlPlane({ controllerManager: false });
  log(`deployed: control plane up in ${Math.round(performance.now() - cpT0)} ms`);
  try {
    const rendered = execFileSync(kustomizeBinary(), ['build', join(ROOT_DIR, 'manifests/base')], { encoding: 'utf8', maxBuffer: 16 << 20 });
    const objects = jsyaml.loadAll(rendered).filter((obj) => obj !== null && WANTED_KINDS.has(obj.kind));
    for (const kind of WANTED_KINDS) for (const obj of objects.filter((x) => x.kind === kind)) await cp.client.apply(obj);
    const kubeconfig = await writeServiceAccountKubeconfig(cp.client, { server: cp.server, caPem: cp.credentials.caPem }, {
      namespace: NAMESPACE,
      name: 'dfs-injector',
      path: join(o.dir, 'sa.kubeconfig'),
    });
    const tlsDir = join(o.dir, 'deployed-tls');
    await mkdir(tlsDir, { recursive: true });
    const certPath = join(tlsDir, 'tls.crt');
    const keyPath = join(tlsDir, 'tls.key');

    const startWebhook = async () => {
      const [port, metricsPort] = [await freePort(), await freePort()];
      const logFile = join(o.dir, 'deployed-webhook.log');
      const fd = openSync(logFile, 'a');
      const args = [...(o.nodeArgs ?? []), o.cli, 'serve', '--config', o.config, '--tls-cert', certPath, '--tls-key', keyPath,
        '--tls-secret', SECRET, '--webhook-config', 'dfs-injector', '--namespace', NAMESPACE, '--kubeconfig', kubeconfig,
        '--host', HOST, '--port', String(port), '--metrics-port', String(metricsPort)];
      const t0 = performance.now();
      const child = start(node.path, args, { stdio: ['ignore', fd, fd], env });
      closeSync(fd);
      return { child, port, metricsPort, t0 };
    };
    const startBare = async () => {
      const port = await freePort();
      const t0 = performance.now();
      const child = start(node.path, [o.bareScript, '--cert', certPath, '--key', keyPath, '--response', o.response, '--port', String(port)], { env });
      return { child, port, metricsPort: undefined, t0 };
    };

    // First install: no Secret yet, so the first replica issues the CA and the serving pair.
    const firstInstall = [];
    const rows = [];
    for (let i = 0; i < o.rounds; i++) {
      await cp.client.delete('v1', 'Secret', SECRET, NAMESPACE).catch(() => false);
      const w = await startWebhook();
      firstInstall.push(await firstAnswer(w.child, w.port, o.body, w.t0));
      await stop(w.child);
    }
    // Restarts (the Secret is there): what every later pod start, roll-out and reschedule does.
    for (let i = 0; i < o.rounds; i++) {
      const order = i % 2 === 0 ? ['webhook', 'bare'] : ['bare', 'webhook'];
      const row = { round: i + 1 };
      for (const which of order) {
        const s = which === 'webhook' ? await startWebhook() : await startBare();
        try {
          const ms = await firstAnswer(s.child, s.port, o.body, s.t0);
          // CPU time, unlike wall time, hardly depends on what else the machine runs.
          const cpuMs = cpuMsOf(s.child.pid);
          const mem = await idleRss(s.child, s.metricsPort, o.idleMs);
          row[which] = { startMs: ms, startCpuMs: cpuMs, idleRssMiB: mem.rssMiB, anonMiB: mem.anonMiB, hwmMiB: mem.hwmMiB };
        } finally {
          await stop(s.child);
        }
      }
      rows.push(row);
      log(`deployed: round ${i + 1}: webhook ${Math.round(row.webhook.startMs)} ms ${row.webhook.idleRssMiB.toFixed(1)} MiB, bare ${Math.round(row.bare.startMs)} ms ${row.bare.idleRssMiB.toFixed(1)} MiB`);
    }
    return { firstInstallMs: firstInstall, rows };
  } finally {
    await cp.stop();
  }
}

