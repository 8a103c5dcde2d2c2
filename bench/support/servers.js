// Starting the two servers under test and asking them things: readiness, RSS, one checked request.
import { execFileSync } from 'node:child_process';
import { openSync, closeSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:http2';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { start } from './procs.js';

export const HOST = '127.0.0.1';

/**
 * The Node.js binary and environment the servers run with: by default this process's; the
 * benchmark sets the image's (its Node.js major and its ENV lines, bench/support/deployed.js).
 * @type {{ node: string, env: NodeJS.ProcessEnv }}
 */
const runtime = { node: process.execPath, env: process.env };
export function setServerRuntime(node, env) {
  runtime.node = node;
  runtime.env = env;
}

/** A port free right now on 127.0.0.1 (the kernel picks it; the window before reuse is tiny). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The webhook exactly as deployed: `node dist/cli.js serve`, its log lines going to a file
 * rather than to this process, as a container runtime would take them off its stdout.
 * @param {{ cli: string, certs: { cert: string, key: string }, config: string, port: number,
 *   metricsPort: number, logFile: string, nodeArgs?: string[], extraArgs?: string[] }} o
 */
export function startWebhook(o) {
  const log = openSync(o.logFile, 'a');
  try {
    const args = [
      ...(o.nodeArgs ?? []),
      o.cli,
      'serve',
      '--config', o.config,
      '--tls-cert', o.certs.cert,
      '--tls-key', o.certs.key,
      '--host', HOST,
      '--port', String(o.port),
      '--metrics-port', String(o.metricsPort),
      ...(o.extraArgs ?? []),
    ];
    return start(runtime.node, args, { stdio: ['ignore', log, log], env: runtime.env });
  } finally {
    closeSync(log);
  }
}

/**
 * @param {{ script: string, certs: { cert: string, key: string }, response: string, port: number, logFile: string }} o
 */
export function startBare(o) {
  const log = openSync(o.logFile, 'a');
  try {
    const args = [o.script, '--cert', o.certs.cert, '--key', o.certs.key, '--response', o.response, '--port', String(o.port)];
    return start(runtime.node, args, { stdio: ['ignore', log, log], env: runtime.env });
  } finally {
    closeSync(log);
  }
}

/** One GET to http://127.0.0.1:port/path; resolves to the status, or 0 if nothing answered. */
function probe(port, path, timeoutMs) {
  return new Promise((resolve) => {
    const req = httpRequest({ host: HOST, port, path, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/**
 * Polls /readyz every `everyMs` until it answers 200; returns ms since `since` (performance.now()).
 * @param {import('node:child_process').ChildProcess} child
 */
export async function waitReady(child, metricsPort, { since, timeoutMs = 15_000, everyMs = 2 } = {}) {
  const t0 = since ?? performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the webhook exited (${child.exitCode ?? child.signalCode}) before /readyz answered 200`);
    }
    if ((await probe(metricsPort, '/readyz', 1000)) === 200) return performance.now() - t0;
    await sleep(everyMs);
  }
  throw new Error(`/readyz on port ${metricsPort} did not answer 200 within ${timeoutMs} ms`);
}

/** Waits until an HTTPS port accepts a TLS session (the bare server has no probe port). */
export async function waitHttps(port, ca, { timeoutMs = 15_000 } = {}) {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    const ok = await new Promise((resolve) => {
      const session = connect(`https://${HOST}:${port}`, { ca });
      session.once('connect', () => {
        session.close();
        resolve(true);
      });
      session.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`https://${HOST}:${port} did not accept a TLS connection within ${timeoutMs} ms`);
}

/** One POST over HTTP/2 with the CA trusted: the status, the answer's text and its parsed JSON. */
export function postJson(port, path, body, ca) {
  return new Promise((resolve, reject) => {
    const session = connect(`https://${HOST}:${port}`, { ca });
    session.once('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    let status = 0;
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      session.close();
      try {
        resolve({ status, text, json: JSON.parse(text) });
      } catch {
        reject(new Error(`POST ${path} on ${port}: ${status} ${text.slice(0, 300)}`));
      }
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.close());
    req.end(body);
  });
}

let clockTicks;
/**
 * CPU time (user + system, all threads) a process has used so far, in ms. Unlike req/s, CPU per
 * request hardly moves when other work on the machine takes cores away from the benchmark.
 */
export function cpuMsOf(pid) {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicks;
}

/** VmRSS and VmHWM of a process, in MiB, from /proc (Linux only). */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]);
  };
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

export const cat = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/**
 * The webhook's live V8 heap in MiB: it must run with --heapsnapshot-signal=SIGUSR2 and
 * --diagnostic-dir=dir. Writing a snapshot runs a full garbage collection first, so unlike RSS or
 * "heap used" this counts only what is still reachable, which is what a leak would grow.
 */
export async function liveHeapMiB(child, dir, { timeoutMs = 90_000 } = {}) {
  const before = new Set(readdirSync(dir));
  process.kill(child.pid, 'SIGUSR2');
  const t0 = performance.now();
  let file;
  let lastSize = -1;
  while (performance.now() - t0 < timeoutMs) {
    await sleep(500);
    file ??= readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (file === undefined) continue;
    const size = statSync(join(dir, file)).size;
    // V8 writes the snapshot in one pass; a size that stops changing means it is done.
    if (size > 0 && size === lastSize) break;
    lastSize = size;
  }
  if (file === undefined) throw new Error(`no heap snapshot from pid ${child.pid} within ${timeoutMs} ms`);
  const path = join(dir, file);
  try {
    const snapshot = JSON.parse(readFileSync(path, 'utf8'));
    const fields = snapshot.snapshot.meta.node_fields;
    const stride = fields.length;
    const selfSize = fields.indexOf('self_size');
    let total = 0;
    for (let i = selfSize; i < snapshot.nodes.length; i += stride) total += snapshot.nodes[i];
    return total / 1048576;
  } finally {
    rmSync(path, { force: true });
  }
}
