// npm run bench [-- --json FILE] [--strict] [--quick] [--only PHASES] [--rounds N] [--duration S] [--dist DIR]
//
// The built webhook (`node dist/cli.js serve`, as deployed) against a bare node:http2 server with
// the same certificate, the same request and the same answer, driven alternately by h2load; then
// the webhook's memory over 100,000 requests, its cold start, `inject` on 5,000 documents, and
// the pure admission function against clone-and-diff. A benchmark, not a test: it prints PASS or
// FAIL per target and exits 0 unless --strict.
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { h2load } from './support/h2load.js';
import { manifestStream } from './support/fixtures.js';
import { mutationBench } from './support/mutation.js';
import { installCleanup, killAll, run, stop } from './support/procs.js';
import { BARE_SERVER, ROOT, buildUnderTest, machine, preflight, prepare } from './support/setup.js';
import { cat, freePort, HOST, memoryOf, postJson, startBare, startWebhook, waitHttps, waitReady } from './support/servers.js';
import { median, round } from './support/stats.js';
import { openSync, closeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PHASES = ['mutation', 'coldstart', 'throughput', 'rss', 'inject'];

const { values: opt } = parseArgs({
  options: {
    json: { type: 'string', default: '.tmp/bench/latest.json' },
    strict: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    dist: { type: 'string' },
    'keep-tmp': { type: 'boolean', default: false },
  },
});
const { dist: DIST, cli: CLI } = buildUnderTest(opt.dist);

// --quick is for checking that the benchmark works, never for numbers anyone quotes.
const P = {
  rounds: Number(opt.rounds ?? (opt.quick ? 3 : 3)),
  durationS: Number(opt.duration ?? (opt.quick ? 1 : 5)),
  warmupS: opt.quick ? 1 : 3,
  connections: 16,
  scenarios: [
    { id: 'h1', label: 'HTTP/1.1', protocol: 'h1', streams: 1 },
    { id: 'h2-m1', label: 'HTTP/2, 1 stream/conn', protocol: 'h2', streams: 1 },
    { id: 'h2-m10', label: 'HTTP/2, 10 streams/conn', protocol: 'h2', streams: 10 },
  ],
  rssRequests: opt.quick ? 10_000 : 100_000,
  rssCheckpoints: 5,
  coldStarts: opt.quick ? 3 : 7,
  injectDocs: opt.quick ? 500 : 5000,
  injectRuns: 3,
  mutation: opt.quick ? { warmupMs: 200, roundMs: 200, rounds: 3 } : { warmupMs: 1500, roundMs: 1000, rounds: 5 },
};
const phases = opt.only === undefined ? PHASES : opt.only.split(',');
for (const p of phases) if (!PHASES.includes(p)) throw new Error(`--only ${p}: phases are ${PHASES.join(', ')}`);
if (!(P.rounds >= 1 && P.durationS >= 1)) throw new Error('--rounds and --duration must be at least 1');

const TARGETS = {
  throughputRatio: 0.85,
  p99ExtraMs: 1,
  rssMiB: 100,
  rssFlatMiB: 5,
  coldStartMs: 1000,
  injectMs: 3000,
};

// However the steps go, the whole run ends within this bound (and kills what it started).
const WATCHDOG_MS = 15 * 60_000;

installCleanup();
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: still running after ${WATCHDOG_MS / 60_000} minutes; giving up\n`);
  killAll();
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

async function main() {
  preflight(CLI);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const env = await machine();
  log(`${env.cores} × ${env.cpuModel}, node ${env.node}, ${env.h2load}, load ${env.loadAvgAtStart.join(' ')}`);
  const ctx = await prepare(CLI, { keep: opt['keep-tmp'] });
  const results = { startedAt, quick: opt.quick, build: opt.dist ?? 'dist', params: P, targets: TARGETS, machine: env };
  try {
    if (phases.includes('mutation')) results.mutation = await phaseMutation();
    if (phases.includes('coldstart')) results.coldStart = await phaseColdStart(ctx);
    if (phases.includes('throughput')) results.throughput = await phaseThroughput(ctx);
    if (phases.includes('rss')) results.rss = await phaseRss(ctx);
    if (phases.includes('inject')) results.inject = await phaseInject(ctx);
  } finally {
    killAll();
    await ctx.cleanup();
  }
  results.machine.loadAvgAtEnd = loadavg().map((l) => Number(l.toFixed(2)));
  results.totalSeconds = round((performance.now() - t0) / 1000, 1);
  results.verdicts = verdicts(results);

  const jsonPath = resolve(fileURLToPath(ROOT), opt.json);
  await mkdir(dirname(jsonPath), { recursive: true });
  await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(markdown(results));
  log(`wrote ${jsonPath} (${results.totalSeconds} s)`);
  const failed = results.verdicts.filter((v) => !v.pass);
  return opt.strict && failed.length > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------

async function phaseMutation() {
  log('mutation: reviewAdmission vs clone-and-diff, in process');
  return mutationBench({ distDir: DIST, ...P.mutation });
}

async function phaseColdStart(ctx) {
  const samples = [];
  for (let i = 0; i < P.coldStarts; i++) {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const since = performance.now();
    const child = startWebhook({ cli: CLI, certs: ctx.certs, config: ctx.config, port, metricsPort, logFile: join(ctx.dir, 'coldstart.log') });
    try {
      samples.push(await waitReady(child, metricsPort, { since, timeoutMs: 20_000, everyMs: 2 }));
    } catch (error) {
      throw new Error(`${error.message}\n${cat(join(ctx.dir, 'coldstart.log')).slice(-2000)}`);
    } finally {
      await stop(child, { signal: 'SIGKILL' });
    }
  }
  log(`cold start: ${samples.map((s) => s.toFixed(0)).join(', ')} ms`);
  return { samplesMs: samples, medianMs: median(samples) };
}

async function startPair(ctx) {
  const [port, metricsPort, barePort] = [await freePort(), await freePort(), await freePort()];
  const webhookLog = join(ctx.dir, 'webhook.log');
  const webhook = startWebhook({ cli: CLI, certs: ctx.certs, config: ctx.config, port, metricsPort, logFile: webhookLog });
  await waitReady(webhook, metricsPort, { everyMs: 20 }).catch((error) => {
    throw new Error(`${error.message}\n${cat(webhookLog).slice(-2000)}`);
  });
  const answer = await postJson(port, '/mutate', ctx.body, ctx.ca);
  const response = answer.json?.response;
  if (answer.status !== 200 || response?.allowed !== true || typeof response.patch !== 'string') {
    throw new Error(`the webhook did not inject the Sonarr pod: ${answer.status} ${answer.text.slice(0, 500)}`);
  }
  // The ceiling answers with the very bytes the webhook sent for this request.
  const responseFile = join(ctx.dir, 'response.json');
  await writeFile(responseFile, answer.text);
  const bare = startBare({ script: BARE_SERVER, certs: ctx.certs, response: responseFile, port: barePort, logFile: join(ctx.dir, 'bare.log') });
  await waitHttps(barePort, ctx.ca);
  const check = await postJson(barePort, '/mutate', ctx.body, ctx.ca);
  if (check.text !== answer.text) throw new Error('the bare server does not answer what the webhook answers');
  return {
    webhook: { child: webhook, url: `https://${HOST}:${port}/mutate`, metricsPort },
    bare: { child: bare, url: `https://${HOST}:${barePort}/mutate` },
    responseBytes: Buffer.byteLength(answer.text),
  };
}

async function phaseThroughput(ctx) {
  const pair = await startPair(ctx);
  const load = (which, sc, durationS) =>
    h2load({
      url: pair[which].url,
      bodyFile: ctx.bodyFile,
      logFile: join(ctx.dir, `h2load-${which}.tsv`),
      protocol: sc.protocol,
      connections: P.connections,
      streams: sc.streams,
      durationS,
      timeoutMs: (durationS + 60) * 1000,
    });
  const out = { requestBytes: Buffer.byteLength(ctx.body), responseBytes: pair.responseBytes, scenarios: [] };
  try {
    for (const sc of P.scenarios) {
      log(`throughput ${sc.label}: warm-up ${P.warmupS} s each, then ${P.rounds} × (webhook, bare) × ${P.durationS} s`);
      await load('webhook', sc, P.warmupS);
      await load('bare', sc, P.warmupS);
      const rounds = [];
      for (let r = 1; r <= P.rounds; r++) {
        const webhook = await load('webhook', sc, P.durationS);
        await sleep(200);
        const bare = await load('bare', sc, P.durationS);
        await sleep(200);
        rounds.push({ round: r, webhook: pick(webhook), bare: pick(bare), ratio: webhook.rps / bare.rps });
        log(`  round ${r}: webhook ${webhook.rps.toFixed(0)} req/s p99 ${webhook.p99Ms.toFixed(2)} ms | bare ${bare.rps.toFixed(0)} req/s p99 ${bare.p99Ms.toFixed(2)} ms`);
      }
      const med = (which, key) => median(rounds.map((x) => x[which][key]));
      const summary = {
        webhook: { rps: med('webhook', 'rps'), p50Ms: med('webhook', 'p50Ms'), p99Ms: med('webhook', 'p99Ms') },
        bare: { rps: med('bare', 'rps'), p50Ms: med('bare', 'p50Ms'), p99Ms: med('bare', 'p99Ms') },
      };
      summary.ratio = summary.webhook.rps / summary.bare.rps;
      summary.p99ExtraMs = summary.webhook.p99Ms - summary.bare.p99Ms;
      out.scenarios.push({ ...sc, connections: P.connections, durationS: P.durationS, rounds, median: summary });
    }
    // For scale: the bare server's memory after the same load is the floor for this runtime.
    out.rssAfterMiB = { webhook: memoryOf(pair.webhook.child.pid).rssMiB, bare: memoryOf(pair.bare.child.pid).rssMiB };
  } finally {
    await stop(pair.webhook.child, { signal: 'SIGKILL' });
    await stop(pair.bare.child, { signal: 'SIGKILL' });
  }
  return out;
}

const pick = (r) => ({ rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, meanMs: r.meanMs, maxMs: r.maxMs, requests: r.requests });

async function phaseRss(ctx) {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const webhookLog = join(ctx.dir, 'webhook-rss.log');
  const child = startWebhook({ cli: CLI, certs: ctx.certs, config: ctx.config, port, metricsPort, logFile: webhookLog });
  const perCheckpoint = Math.floor(P.rssRequests / P.rssCheckpoints);
  const sc = P.scenarios[1];
  try {
    await waitReady(child, metricsPort, { everyMs: 20 });
    const checkpoints = [{ requests: 0, ...memoryOf(child.pid) }];
    log(`rss: ${P.rssRequests} requests (${sc.label}, ${P.connections} connections), VmRSS every ${perCheckpoint}`);
    let done = 0;
    for (let i = 1; i <= P.rssCheckpoints; i++) {
      const r = await h2load({
        url: `https://${HOST}:${port}/mutate`,
        bodyFile: ctx.bodyFile,
        protocol: sc.protocol,
        connections: P.connections,
        streams: sc.streams,
        requests: perCheckpoint,
        timeoutMs: 300_000,
      });
      done += r.succeeded;
      checkpoints.push({ requests: done, ...memoryOf(child.pid) });
      log(`  after ${done}: VmRSS ${checkpoints.at(-1).rssMiB.toFixed(1)} MiB`);
    }
    // The first checkpoint is the warm-up: JIT, TLS session state, pools and the heap's growth.
    const afterWarmup = checkpoints.slice(1);
    const base = afterWarmup[0].rssMiB;
    const growthAfterWarmupMiB = Math.max(...afterWarmup.map((c) => c.rssMiB)) - base;
    return {
      protocol: sc.label,
      connections: P.connections,
      checkpoints,
      maxRssMiB: Math.max(...checkpoints.map((c) => c.rssMiB)),
      peakHwmMiB: checkpoints.at(-1).hwmMiB,
      growthAfterWarmupMiB,
      lastStepMiB: afterWarmup.at(-1).rssMiB - afterWarmup.at(-2).rssMiB,
    };
  } catch (error) {
    throw new Error(`${error.message}\n${cat(webhookLog).slice(-2000)}`);
  } finally {
    await stop(child, { signal: 'SIGKILL' });
  }
}

async function phaseInject(ctx) {
  const manifest = join(ctx.dir, 'manifest.yaml');
  const text = manifestStream(P.injectDocs);
  await writeFile(manifest, text);
  const outFile = join(ctx.dir, 'injected.yaml');
  const samples = [];
  log(`inject: ${P.injectDocs} documents (${(Buffer.byteLength(text) / 1024 / 1024).toFixed(1)} MiB), ${P.injectRuns} runs`);
  for (let i = 0; i < P.injectRuns; i++) {
    const fd = openSync(outFile, 'w');
    let res;
    try {
      res = await run(process.execPath, [CLI, 'inject', '-f', manifest], { timeoutMs: 120_000, stdout: fd });
    } finally {
      closeSync(fd);
    }
    if (res.code !== 0) throw new Error(`inject exited ${res.code}:\n${res.stderr.slice(-2000)}`);
    samples.push(res.ms);
  }
  const injected = cat(outFile);
  const documents = injected.split(/^---$/m).filter((d) => d.trim() !== '').length;
  const statusAnnotations = injected.split('dfs-injector.io/status').length - 1;
  if (documents !== P.injectDocs) throw new Error(`inject wrote ${documents} documents for ${P.injectDocs}`);
  if (statusAnnotations < P.injectDocs) throw new Error(`inject annotated ${statusAnnotations} of ${P.injectDocs} documents`);
  log(`inject: ${samples.map((s) => s.toFixed(0)).join(', ')} ms`);
  return {
    documents: P.injectDocs,
    inputBytes: Buffer.byteLength(text),
    outputBytes: Buffer.byteLength(injected),
    samplesMs: samples,
    medianMs: median(samples),
  };
}

// ---------------------------------------------------------------------------------------------

function verdicts(r) {
  const out = [];
  const add = (target, measured, pass) => out.push({ target, measured, pass });
  for (const sc of r.throughput?.scenarios ?? []) {
    const m = sc.median;
    add(`${sc.label}: throughput ≥ ${TARGETS.throughputRatio} × bare`, `${round(m.ratio, 3)} × (${m.webhook.rps.toFixed(0)} / ${m.bare.rps.toFixed(0)} req/s)`, m.ratio >= TARGETS.throughputRatio);
    add(
      `${sc.label}: p99 ≤ bare p99 + ${TARGETS.p99ExtraMs} ms`,
      `${m.webhook.p99Ms.toFixed(2)} ms vs ${m.bare.p99Ms.toFixed(2)} ms (+${m.p99ExtraMs.toFixed(2)})`,
      m.p99ExtraMs <= TARGETS.p99ExtraMs,
    );
  }
  if (r.rss) {
    add(`RSS ≤ ${TARGETS.rssMiB} MiB over ${r.params.rssRequests} requests`, `max VmRSS ${r.rss.maxRssMiB.toFixed(1)} MiB`, r.rss.maxRssMiB <= TARGETS.rssMiB);
    add(
      `RSS flat after warm-up (rise ≤ ${TARGETS.rssFlatMiB} MiB after the first checkpoint)`,
      `+${r.rss.growthAfterWarmupMiB.toFixed(1)} MiB`,
      r.rss.growthAfterWarmupMiB <= TARGETS.rssFlatMiB,
    );
  }
  if (r.coldStart) add(`cold start ≤ ${TARGETS.coldStartMs} ms`, `median ${r.coldStart.medianMs.toFixed(0)} ms`, r.coldStart.medianMs <= TARGETS.coldStartMs);
  if (r.inject) add(`inject ${r.inject.documents} documents ≤ ${TARGETS.injectMs} ms`, `median ${r.inject.medianMs.toFixed(0)} ms`, r.inject.medianMs <= TARGETS.injectMs);
  return out;
}

const f = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');

function markdown(r) {
  const L = [];
  const m = r.machine;
  L.push(`# dfs-injector benchmark${r.quick ? ' (--quick: a smoke run, not numbers to quote)' : ''}`, '');
  L.push(`${r.startedAt} · ${m.cores} × ${m.cpuModel} · Node ${m.node} · ${m.h2load} · commit ${m.commit} · load average ${m.loadAvgAtStart.join(' ')} → ${m.loadAvgAtEnd.join(' ')} · ${r.totalSeconds} s`, '');
  if (r.throughput) {
    const t = r.throughput;
    L.push(`## Throughput and latency: webhook vs bare node:http2 (${P.connections} connections, ${P.durationS} s rounds, median of ${P.rounds})`, '');
    L.push(`Request ${t.requestBytes} B (Sonarr AdmissionReview), response ${t.responseBytes} B. p50/p99 from h2load's per-request log.`, '');
    L.push('| load | webhook req/s | bare req/s | webhook/bare | webhook p50 / p99 ms | bare p50 / p99 ms |', '|---|---:|---:|---:|---:|---:|');
    for (const sc of t.scenarios) {
      const s = sc.median;
      L.push(`| **${sc.label}** (median) | **${f(s.webhook.rps)}** | **${f(s.bare.rps)}** | **${f(s.ratio, 3)}** | **${f(s.webhook.p50Ms, 2)} / ${f(s.webhook.p99Ms, 2)}** | **${f(s.bare.p50Ms, 2)} / ${f(s.bare.p99Ms, 2)}** |`);
      for (const x of sc.rounds) {
        L.push(`| ${sc.label} round ${x.round} | ${f(x.webhook.rps)} | ${f(x.bare.rps)} | ${f(x.ratio, 3)} | ${f(x.webhook.p50Ms, 2)} / ${f(x.webhook.p99Ms, 2)} | ${f(x.bare.p50Ms, 2)} / ${f(x.bare.p99Ms, 2)} |`);
      }
    }
    L.push('', `VmRSS after this phase: webhook ${f(t.rssAfterMiB?.webhook, 1)} MiB, bare ${f(t.rssAfterMiB?.bare, 1)} MiB.`, '');
  }
  if (r.rss) {
    L.push(`## Webhook memory over ${r.params.rssRequests} requests (${r.rss.protocol}, ${r.rss.connections} connections)`, '');
    L.push('| requests | VmRSS MiB | VmHWM MiB |', '|---:|---:|---:|');
    for (const c of r.rss.checkpoints) L.push(`| ${c.requests} | ${f(c.rssMiB, 1)} | ${f(c.hwmMiB, 1)} |`);
    L.push('', `Rise after the first checkpoint (warm-up): ${f(r.rss.growthAfterWarmupMiB, 1)} MiB; last step ${f(r.rss.lastStepMiB, 1)} MiB.`, '');
  }
  if (r.coldStart || r.inject) {
    L.push('## Start-up and offline injection', '', '| measurement | median | runs |', '|---|---:|---|');
    if (r.coldStart) L.push(`| cold start: spawn → /readyz 200 | ${f(r.coldStart.medianMs)} ms | ${r.coldStart.samplesMs.map((s) => f(s)).join(', ')} |`);
    if (r.inject) L.push(`| \`inject -f\` ${r.inject.documents} documents (${f(r.inject.inputBytes / 1048576, 1)} MiB), process end to end | ${f(r.inject.medianMs)} ms | ${r.inject.samplesMs.map((s) => f(s)).join(', ')} |`);
    L.push('');
  }
  if (r.mutation) {
    const mu = r.mutation;
    L.push(`## The pure admission function (Sonarr review, ${mu.patchOps} patch operations; median of ${mu.rounds} × ${mu.roundMs} ms)`, '');
    L.push('| implementation | ops/s | µs/op | direct is faster by |', '|---|---:|---:|---:|');
    for (const v of mu.variants) L.push(`| ${v.name} | ${f(v.opsPerSec)} | ${f(v.usPerOp, 1)} | ${f(v.directSpeedup, 2)}× |`);
    L.push('');
  }
  L.push('## Targets', '', '| target | measured | |', '|---|---|---|');
  for (const v of r.verdicts) L.push(`| ${v.target} | ${v.measured} | ${v.pass ? 'PASS' : '**FAIL**'} |`);
  L.push('');
  return L.join('\n');
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    killAll();
    process.stderr.write(`bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
