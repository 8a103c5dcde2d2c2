/**
 * The webhook as users run it: `node dist/cli.js serve …` as a child process on loopback, with
 * certificates from `certs generate`, and its MutatingWebhookConfiguration taken from the
 * rendered manifests with each entry pointed at that process by URL.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KUSTOMIZE_HINT, find, findKustomize, render } from '../manifests/kustomize.js';
import { needs } from '../support/prereq.js';
import { findControlPlaneBinaries } from './binaries.js';
import { waitFor, type KubeObject } from './kube-client.js';
import { parsePrometheusText, sumSamples, type MetricSample } from './metrics.js';
import { startProcess, type ManagedProcess } from './process.js';

const run = promisify(execFile);

export const BUILT_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
export const BUILT_CLI_HINT = 'Run "npm run build" (npm test builds first); the e2e suites run the built CLI, dist/cli.js.';

export function builtCliAvailable(): boolean {
  return existsSync(BUILT_CLI);
}

/** True when the built CLI's `serve --help` lists `flag`: features land in pieces. */
/**
 * What the webhook e2e suites need: a loopback control plane, kustomize and the built CLI. The first
 * one missing is reported by needs(), loudly, and fails the run under DFS_TEST_STRICT=1.
 */
export function webhookSuitePrerequisites(): { available: boolean; kustomize: string | undefined } {
  const binaries = findControlPlaneBinaries();
  const kustomize = findKustomize();
  const available =
    needs('a loopback Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)', binaries.available, binaries.hint) &&
    needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT) &&
    needs('the built CLI (dist/cli.js)', builtCliAvailable(), BUILT_CLI_HINT);
  return { available, kustomize };
}

export function serveSupports(flag: string): boolean {
  if (!builtCliAvailable()) return false;
  const help = spawnSync(process.execPath, [BUILT_CLI, 'serve', '--help'], { encoding: 'utf8', timeout: 30_000 });
  return `${help.stdout}${help.stderr}`.includes(flag);
}

/**
 * The certificate a TLS server on 127.0.0.1:`port` presents to a new connection, verified
 * against `ca` (for `servername`, or the IP when none is given); rejects when it does not verify.
 */
export function servedCertificate(port: number, ca: string, servername?: string): Promise<{ fingerprint256: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, ...(servername === undefined ? {} : { servername }), ALPNProtocols: ['h2', 'http/1.1'], timeout: 10_000 });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      socket.destroy();
      resolve({ fingerprint256: peer.fingerprint256, subject: JSON.stringify(peer.subject) });
    });
    socket.once('timeout', () => socket.destroy(new Error(`TLS handshake with 127.0.0.1:${port} timed out`)));
    socket.once('error', reject);
  });
}

/** What `certs generate` wrote: ca.crt is the caBundle, tls.crt/tls.key the serving pair. */
export interface GeneratedFiles {
  readonly caPath: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly caPem: string;
}

/** `dfs-injector certs generate --ip 127.0.0.1 --out DIR`: the API server calls the webhook by that IP. */
export async function generateLoopbackCertificates(dir: string): Promise<GeneratedFiles> {
  await run(process.execPath, [BUILT_CLI, 'certs', 'generate', '--ip', '127.0.0.1', '--out', dir], { timeout: 60_000 });
  const caPath = join(dir, 'ca.crt');
  return { caPath, certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key'), caPem: await readFile(caPath, 'utf8') };
}

/** manifests/base, rendered: the webhook config file and the MutatingWebhookConfiguration. */
export interface RenderedBase {
  /** `config.yaml` of the dfs-injector-config ConfigMap, the file the Deployment mounts. */
  readonly configYaml: string;
  readonly webhookConfiguration: KubeObject & { webhooks: MutatingWebhook[] };
}

/** One webhook of a MutatingWebhookConfiguration as the API stores it (admissionregistration/v1 MutatingWebhook). */
export interface MutatingWebhook {
  name: string;
  clientConfig: { url?: string; service?: { name: string; namespace: string; path?: string; port?: number }; caBundle?: string };
  reinvocationPolicy?: string;
  failurePolicy?: string;
  [field: string]: unknown;
}

export function renderBase(kustomize: string): RenderedBase {
  const objects = render(kustomize, 'base');
  const configMap = find(objects, 'ConfigMap', 'dfs-injector-config');
  const configYaml = (configMap.data as Record<string, string> | undefined)?.['config.yaml'];
  if (configYaml === undefined) throw new Error('manifests/base: ConfigMap dfs-injector-config has no config.yaml');
  const webhookConfiguration = find(objects, 'MutatingWebhookConfiguration', 'dfs-injector') as unknown as RenderedBase['webhookConfiguration'];
  return { configYaml, webhookConfiguration };
}

/**
 * The manifests' MutatingWebhookConfiguration with every entry's `service` reference replaced
 * by `https://127.0.0.1:PORT<same path>`: a Service resolves to a ClusterIP nothing routes here.
 * Everything else (selectors, failurePolicy, reinvocation, timeouts) stays as shipped.
 */
export function pointAtLoopback(
  configuration: RenderedBase['webhookConfiguration'],
  port: number,
  caPem: string,
): RenderedBase['webhookConfiguration'] {
  const copy = structuredClone(configuration);
  for (const entry of copy.webhooks) {
    const path = entry.clientConfig.service?.path ?? entry.clientConfig.url?.replace(/^https:\/\/[^/]+/, '');
    if (path === undefined || path === '') throw new Error(`webhook entry ${entry.name} has no path in manifests/base`);
    entry.clientConfig = { url: `https://127.0.0.1:${port}${path}`, caBundle: Buffer.from(caPem, 'utf8').toString('base64') };
  }
  return copy;
}

export interface WebhookProcessOptions {
  /** Holds the log and the config file. */
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Written to DIR/config.yaml and passed as --config. Default: the embedded defaults. */
  readonly configYaml?: string;
  /** Default 0 (a free port, read back from the log). */
  readonly port?: number;
  readonly metricsPort?: number;
  readonly name?: string;
  readonly extraArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

/** One line of the webhook's JSON log (pino). */
export interface WebhookLogLine {
  readonly msg?: string;
  readonly level?: string;
  readonly namespace?: string;
  readonly pod?: string;
  readonly role?: string;
  readonly outcome?: string;
  readonly reason?: string;
  readonly dryRun?: boolean;
  readonly path?: string;
  readonly [field: string]: unknown;
}

let started = 0;

function childEnv(): NodeJS.ProcessEnv {
  const noProxy = ['127.0.0.1', 'localhost', process.env.NO_PROXY ?? process.env.no_proxy ?? ''].filter((s) => s !== '').join(',');
  return { ...process.env, NO_PROXY: noProxy, no_proxy: noProxy };
}

function httpText(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function parseLog(text: string): WebhookLogLine[] {
  const out: WebhookLogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as WebhookLogLine);
    } catch {
      // a line cut off mid-write; the next read has it whole
    }
  }
  return out;
}

/**
 * A running `dfs-injector serve`. restart() brings it back on the same ports, so a registered
 * webhook configuration stays valid across a deliberate outage.
 */
export class WebhookProcess {
  private proc: ManagedProcess;
  private ports: { admission: number; metrics: number };
  private readonly logs: string[] = [];

  private constructor(
    private readonly options: WebhookProcessOptions,
    private readonly args: readonly string[],
    proc: ManagedProcess,
    ports: { admission: number; metrics: number },
  ) {
    this.proc = proc;
    this.ports = ports;
    this.logs.push(proc.logPath);
  }

  static async start(options: WebhookProcessOptions): Promise<WebhookProcess> {
    const args = [
      BUILT_CLI,
      'serve',
      '--tls-cert',
      options.certPath,
      '--tls-key',
      options.keyPath,
      '--host',
      '127.0.0.1',
      // Tests stop and restart it on purpose; the in-cluster grace period only slows that down.
      '--grace-period',
      '0',
      ...(options.extraArgs ?? []),
    ];
    if (options.configYaml !== undefined) {
      const configPath = join(options.dir, `${options.name ?? 'webhook'}-config.yaml`);
      await writeFile(configPath, options.configYaml);
      args.push('--config', configPath);
    }
    const launched = await WebhookProcess.launch(options, args, { admission: options.port ?? 0, metrics: options.metricsPort ?? 0 });
    return new WebhookProcess(options, args, launched.proc, launched.ports);
  }

  private static async launch(
    options: WebhookProcessOptions,
    args: readonly string[],
    ports: { admission: number; metrics: number },
  ): Promise<{ proc: ManagedProcess; ports: { admission: number; metrics: number } }> {
    started += 1;
    const name = options.name ?? 'webhook';
    const proc = startProcess({
      name: `dfs-injector ${name}`,
      command: process.execPath,
      args: [...args, '--port', String(ports.admission), '--metrics-port', String(ports.metrics)],
      logPath: join(options.dir, `${name}-${started}.log`),
      env: childEnv(),
    });
    const timeoutMs = options.readyTimeoutMs ?? 60_000;
    const abort = (): string | undefined => (proc.running() ? undefined : `the webhook exited; log (${proc.logPath}):\n${proc.logTail(30)}`);
    try {
      // --port 0 avoids a race for a "free" port; the bound ports are in the start-up line.
      const serving = await waitFor(
        'the webhook to log its ports',
        async () => parseLog(await readFile(proc.logPath, 'utf8')).find((l) => l.msg === 'dfs-injector webhook serving'),
        { timeoutMs, intervalMs: 100, abort },
      );
      const bound = {
        admission: Number(new URL(String(serving.admission)).port),
        metrics: Number(new URL(String(serving.probes)).port),
      };
      await waitFor(
        'the webhook /readyz',
        async () => (await httpText(`http://127.0.0.1:${bound.metrics}/readyz`)).status === 200,
        { timeoutMs, intervalMs: 100, abort },
      );
      return { proc, ports: bound };
    } catch (error) {
      await proc.stop(2_000);
      throw error;
    }
  }

  get port(): number {
    return this.ports.admission;
  }

  get metricsPort(): number {
    return this.ports.metrics;
  }

  get pid(): number {
    return this.proc.pid;
  }

  running(): boolean {
    return this.proc.running();
  }

  url(path = '/mutate'): string {
    return `https://127.0.0.1:${this.ports.admission}${path}`;
  }

  async metricsText(): Promise<string> {
    const res = await httpText(`http://127.0.0.1:${this.ports.metrics}/metrics`);
    if (res.status !== 200) throw new Error(`webhook /metrics answered ${res.status}: ${res.body}`);
    return res.body;
  }

  async metrics(): Promise<MetricSample[]> {
    return parsePrometheusText(await this.metricsText());
  }

  /** `dfs_injector_admissions_total`, summed over the series whose labels include `labels`. */
  async admissions(labels: Readonly<Record<string, string>> = {}): Promise<number> {
    return sumSamples(await this.metrics(), 'dfs_injector_admissions_total', labels);
  }

  /** Every JSON log line of this webhook, across restarts. */
  async logLines(): Promise<WebhookLogLine[]> {
    const texts = await Promise.all(this.logs.map((p) => readFile(p, 'utf8').catch(() => '')));
    return texts.flatMap(parseLog);
  }

  /** The per-request lines (`admission` and `admission request rejected`). */
  async admissionLines(filter: (l: WebhookLogLine) => boolean = () => true): Promise<WebhookLogLine[]> {
    return (await this.logLines()).filter((l) => (l.msg === 'admission' || l.msg === 'admission request rejected') && filter(l));
  }

  logTail(lines = 30): string {
    return this.proc.logTail(lines);
  }

  /** SIGTERM (SIGKILL after 10 s); the ports are free once it resolves. Idempotent. */
  async stop(): Promise<void> {
    if (this.proc.running()) await this.proc.stop(10_000);
  }

  /** Starts it again on the same ports and waits for /readyz. */
  async restart(): Promise<void> {
    await this.stop();
    const launched = await WebhookProcess.launch(this.options, this.args, this.ports);
    this.proc = launched.proc;
    this.logs.push(launched.proc.logPath);
  }
}
