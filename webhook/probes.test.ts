import { request, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createProbeServer, type ProbeServer } from './probes.js';

let probes: ProbeServer | undefined;

afterEach(async () => {
  await probes?.close();
  probes = undefined;
});

async function start(ready: boolean, metricsFail = false): Promise<number> {
  probes = createProbeServer(pino({ level: 'silent' }), {
    readiness: () => Promise.resolve({ ready, checks: { tls: ready } }),
    metrics: () => (metricsFail ? Promise.reject(new Error('registry broke')) : Promise.resolve({ contentType: 'text/plain; version=0.0.4', text: 'up 1\n' })),
  });
  await probes.listen({ port: 0, host: '127.0.0.1' });
  return (probes.server.address() as AddressInfo).port;
}

function call(port: number, method: string, path: string, agent?: Agent): Promise<{ status: number; type: string | undefined; body: string; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, ...(agent === undefined ? {} : { agent }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body, ...(res.headers.allow === undefined ? {} : { allow: res.headers.allow }) }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{"ignored":true}' : undefined);
  });
}

describe('the probe server', () => {
  it('answers /healthz, /readyz (200 or 503 with the report) and /metrics', async () => {
    const port = await start(true);
    expect(await call(port, 'GET', '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await call(port, 'GET', '/readyz?verbose')).toMatchObject({ status: 200, type: 'application/json; charset=utf-8', body: '{"ready":true,"checks":{"tls":true}}' });
    expect(await call(port, 'GET', '/metrics')).toMatchObject({ status: 200, type: 'text/plain; version=0.0.4', body: 'up 1\n' });
    expect(await call(port, 'HEAD', '/healthz')).toMatchObject({ status: 200, body: '' });
    await probes!.close();
    const notReady = await start(false);
    expect((await call(notReady, 'GET', '/readyz')).status).toBe(503);
  });

  it('names what it serves on another path, refuses other methods, and answers 500 when a route fails', async () => {
    const port = await start(true, true);
    expect(await call(port, 'GET', '/nope')).toMatchObject({ status: 404, body: expect.stringContaining('/healthz, /readyz and /metrics') });
    expect(await call(port, 'POST', '/readyz')).toMatchObject({ status: 405, allow: 'GET, HEAD' });
    expect((await call(port, 'GET', '/metrics')).status).toBe(500);
  });

  it('closes while a keep-alive connection is open', async () => {
    const port = await start(true);
    const agent = new Agent({ keepAlive: true });
    expect((await call(port, 'GET', '/healthz', agent)).status).toBe(200);
    await probes!.close();
    expect(probes!.server.listening).toBe(false);
    agent.destroy();
  });
});
