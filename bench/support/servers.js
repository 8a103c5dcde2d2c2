// Starting the two servers under test and asking them things: readiness, RSS, one checked request.
import { openSync, closeSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:http2';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { start } from './procs.js';

export const HOST = '127.0.0.1';

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
    return start(process.execPath, args, { stdio: ['ignore', log, log] });
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
    return start(process.execPath, args, { stdio: ['ignore', log, log] });
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
