// One h2load run against one server, and what it measured. Latency percentiles come from the
// per-request log (--log-file: start µs since epoch, status, µs until the end of the response),
// because h2load itself prints only min/max/mean/sd.
import { readFile, rm } from 'node:fs/promises';
import { run } from './procs.js';
import { percentile } from './stats.js';

/**
 * @typedef {{ protocol: 'h1' | 'h2', connections: number, streams: number }} LoadShape
 * @typedef {{ rps: number, requests: number, succeeded: number, failed: number, errored: number,
 *   timeout: number, non2xx: number, negotiated: string, seconds: number,
 *   p50Ms: number, p99Ms: number, meanMs: number, maxMs: number, logged: number }} LoadResult
 */

/**
 * @param {LoadShape & { url: string, bodyFile: string, logFile?: string,
 *   durationS?: number, requests?: number, timeoutMs: number, rpsPerClient?: number }} options
 * @returns {Promise<LoadResult>}
 */
export async function h2load(options) {
  const { url, bodyFile, logFile, protocol, connections, streams, durationS, requests, timeoutMs, rpsPerClient } = options;
  const args = [
    ...(protocol === 'h1' ? ['--h1'] : []),
    '-c', String(connections),
    '-m', String(streams),
    '-t', '1',
    '-d', bodyFile,
    '-H', 'content-type: application/json',
    ...(durationS === undefined ? ['-n', String(requests)] : ['-D', String(durationS)]),
    ...(rpsPerClient === undefined ? [] : [`--rps=${rpsPerClient}`]),
    ...(logFile === undefined ? [] : [`--log-file=${logFile}`]),
    url,
  ];
  const res = await run('h2load', args, { timeoutMs });
  if (res.code !== 0) throw new Error(`h2load ${args.join(' ')} exited ${res.code}\n${res.stdout}\n${res.stderr}`);
  const parsed = parseSummary(res.stdout);
  const wanted = protocol === 'h1' ? 'http/1.1' : 'h2';
  if (parsed.negotiated !== wanted) {
    throw new Error(`h2load negotiated ${parsed.negotiated || '(nothing)'} with ${url}, expected ${wanted}\n${res.stdout}`);
  }
  if (parsed.succeeded === 0 || parsed.failed + parsed.errored + parsed.timeout + parsed.non2xx > 0) {
    throw new Error(`h2load against ${url}: not every request succeeded with 2xx; a benchmark of failures measures nothing\n${res.stdout}`);
  }
  let latency = { p50Ms: Number.NaN, p99Ms: Number.NaN, meanMs: Number.NaN, maxMs: Number.NaN, logged: 0 };
  if (logFile !== undefined) {
    latency = await latencies(logFile);
    await rm(logFile, { force: true });
  }
  return { ...parsed, ...latency };
}

/** @param {string} text */
export function parseSummary(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m === null ? Number.NaN : Number(m[1]);
  };
  const finished = /finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/.exec(text);
  if (finished === null) throw new Error(`h2load printed no summary:\n${text}`);
  const seconds = Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  return {
    seconds,
    rps: Number(finished[3]),
    requests: num(/requests: (\d+) total/),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/),
    errored: num(/(\d+) errored/),
    timeout: num(/(\d+) timeout/),
    non2xx: codes === null ? Number.NaN : Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    negotiated: /Application protocol: (\S+)/.exec(text)?.[1] ?? '',
  };
}

/** @param {string} file */
async function latencies(file) {
  const text = await readFile(file, 'utf8');
  const lines = text.split('\n');
  const values = new Float64Array(lines.length);
  let n = 0;
  let sum = 0;
  for (const line of lines) {
    if (line === '') continue;
    const cols = line.split('\t');
    if (cols.length < 3) throw new Error(`${file}: expected start<TAB>status<TAB>latency, got ${JSON.stringify(line)}`);
    const status = Number(cols[1]);
    if (status < 200 || status > 299) throw new Error(`${file}: a request answered ${status}`);
    const us = Number(cols[2]);
    values[n++] = us;
    sum += us;
  }
  const sorted = values.subarray(0, n).sort();
  return {
    p50Ms: percentile(sorted, 50) / 1000,
    p99Ms: percentile(sorted, 99) / 1000,
    meanMs: sum / n / 1000,
    maxMs: sorted[n - 1] / 1000,
    logged: n,
  };
}
