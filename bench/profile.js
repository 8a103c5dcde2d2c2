// Profiles the built webhook under the benchmark's load: `node --cpu-prof dist/cli.js serve`,
// h2load for --duration seconds, then a clean SIGTERM (grace period 0) so V8 writes the
// profile, and a summary of where the CPU time went. --duration 0 profiles start-up alone.
//
// usage: node bench/profile.js [--protocol h1|h2] [--streams N] [--duration S] [--out DIR] [--dist DIR]
import { mkdir, readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { h2load } from './support/h2load.js';
import { installCleanup, killAll, stop } from './support/procs.js';
import { ROOT, buildUnderTest, preflight, prepare } from './support/setup.js';
import { cat, freePort, HOST, startWebhook, waitReady } from './support/servers.js';
import { format, summarize } from './profile-summary.js';

const { values: opt } = parseArgs({
  options: {
    protocol: { type: 'string', default: 'h2' },
    streams: { type: 'string', default: '1' },
    connections: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10' },
    out: { type: 'string', default: '.tmp/bench/profiles' },
    top: { type: 'string', default: '20' },
    dist: { type: 'string' },
  },
});
if (opt.protocol !== 'h1' && opt.protocol !== 'h2') throw new Error('--protocol is h1 or h2');

installCleanup();
const { cli } = buildUnderTest(opt.dist);
preflight(cli);
const outDir = resolve(fileURLToPath(ROOT), opt.out, new Date().toISOString().replace(/[:.]/g, '-'));
await mkdir(outDir, { recursive: true });
const ctx = await prepare(cli);
try {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const logFile = join(ctx.dir, 'webhook.log');
  const child = startWebhook({
    cli,
    certs: ctx.certs,
    config: ctx.config,
    port,
    metricsPort,
    logFile,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${outDir}`],
    extraArgs: ['--grace-period', '0'],
  });
  await waitReady(child, metricsPort, { everyMs: 20 });
  const durationS = Number(opt.duration);
  if (durationS > 0) {
    const r = await h2load({
      url: `https://${HOST}:${port}/mutate`,
      bodyFile: ctx.bodyFile,
      protocol: opt.protocol,
      connections: Number(opt.connections),
      streams: Number(opt.streams),
      durationS,
      timeoutMs: (durationS + 60) * 1000,
    });
    process.stderr.write(`profile: ${r.rps.toFixed(0)} req/s under the profiler (${opt.protocol}, -c ${opt.connections} -m ${opt.streams})\n`);
  }
  await stop(child, { signal: 'SIGTERM', timeoutMs: 20_000 });
  const files = (await readdir(outDir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`the webhook wrote no profile to ${outDir}\n${cat(logFile).slice(-2000)}`);
  for (const f of files) {
    const s = summarize(JSON.parse(readFileSync(join(outDir, f), 'utf8')), Number(opt.top));
    process.stdout.write(format(s, join(outDir, f)));
  }
} finally {
  killAll();
  await ctx.cleanup();
}
