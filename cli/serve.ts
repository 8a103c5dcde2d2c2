import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { CertReportingTarget } from '../certs/cluster.js';
import type { CertLifecycle } from '../certs/lifecycle.js';
import { defineCommand, type OptionSpec, type ParsedArgs } from './command.js';
import { DEV_HOST, curlCommand, displayPath, prepareDevFiles, type DevFiles } from './dev.js';
import { EXIT, UsageError, UserError } from './errors.js';
import type { CliIo } from './io.js';
import { portValue, secondsValue } from './values.js';

const COMMAND = 'serve';
const DEFAULT_PORT = 8443;
const DEFAULT_METRICS_PORT = 8080;

const SERVE_OPTIONS = {
  config: { type: 'string', value: 'FILE', description: 'Config file (YAML or JSON)', default: 'embedded defaults' },
  'tls-cert': { type: 'string', value: 'FILE', description: 'Serving certificate (PEM)' },
  'tls-key': { type: 'string', value: 'FILE', description: 'Private key of the serving certificate (PEM)' },
  port: { type: 'string', value: 'N', description: 'HTTPS admission port; 0 picks a free port', default: String(DEFAULT_PORT) },
  'metrics-port': {
    type: 'string',
    value: 'N',
    description: 'Plain HTTP port for /healthz, /readyz and /metrics',
    default: String(DEFAULT_METRICS_PORT),
  },
  host: { type: 'string', value: 'ADDR', description: 'Address to listen on', default: `0.0.0.0; ${DEV_HOST} with --dev` },
  'grace-period': {
    type: 'string',
    value: 'SECONDS',
    description: 'How long to keep serving after SIGTERM before closing',
    default: '5; 0 with --dev',
  },
  'log-level': { type: 'string', value: 'LEVEL', description: 'trace, debug, info, warn, error, fatal or silent', default: 'info' },
  dev: { type: 'boolean', description: 'Local development: generated certificate, 127.0.0.1, sample request' },
  'dev-dir': { type: 'string', value: 'DIR', description: 'Where --dev keeps its files', default: '$DFS_DEV_DIR or .dev' },
  'tls-secret': {
    type: 'string',
    value: 'NAME',
    description: 'Secret for the CA and certificate: created if missing, renewed, written to --tls-cert/--tls-key',
  },
  'webhook-config': { type: 'string', value: 'NAME', description: 'MutatingWebhookConfiguration whose caBundle --tls-secret keeps current' },
  namespace: { type: 'string', value: 'NS', description: 'Namespace of the --tls-secret Secret and of the webhook Service' },
  service: { type: 'string', value: 'NAME', description: 'Webhook Service the certificate is for (with --tls-secret)', default: 'dfs-injector' },
  kubeconfig: { type: 'string', value: 'FILE', description: 'Kubeconfig for --tls-secret', default: '$KUBECONFIG, ~/.kube/config, then in-cluster' },
} as const satisfies Record<string, OptionSpec>;

type ServeArgs = ParsedArgs<keyof typeof SERVE_OPTIONS>;

export const serveCommand = defineCommand({
  name: COMMAND,
  summary: 'Run the admission webhook (HTTPS), with probes and metrics on a second port',
  usage: 'serve --tls-cert FILE --tls-key FILE [options]\n       dfs-injector serve --dev [options]',
  description: [
    'Answers AdmissionReview requests on /mutate (and the other entry paths of the',
    'MutatingWebhookConfiguration). The certificate, key and config file are re-read when they',
    'change. On SIGTERM the webhook turns /readyz to 503, keeps answering for the grace period',
    'while telling clients to move (HTTP/2 GOAWAY, HTTP/1.1 Connection: close), then drains its',
    'connections and exits 0. /readyz also fails while the served certificate is expired or not',
    'yet valid. Requests past its limits (README: "Limits") are answered 429, 413 or 408.',
    '',
    'With --dev it needs nothing else: it creates a development CA and certificate for',
    'localhost and 127.0.0.1 in .dev/ on first run (reused afterwards), listens on 127.0.0.1,',
    'writes a sample AdmissionReview and prints a curl command that sends it.',
  ].join('\n'),
  options: SERVE_OPTIONS,
  examples: [
    'dfs-injector serve --dev',
    'dfs-injector serve --config /etc/dfs-injector/config.yaml --tls-cert /tls/tls.crt --tls-key /tls/tls.key',
    'dfs-injector serve --tls-cert /var/run/dfs-injector/tls/tls.crt --tls-key /var/run/dfs-injector/tls/tls.key --tls-secret dfs-injector-tls --webhook-config dfs-injector --namespace dfs-system',
  ],
  async run(args, io) {
    const dev = args.flag('dev');
    const listen = listenOptions(args, dev);
    const tls = await tlsFiles(args, dev, io);
    const configPath = args.string('config');
    const logLevel = args.string('log-level');

    // With --tls-secret the files do not exist yet: the certificate lifecycle writes them first.
    const certs = await clusterCertificates(args, dev, tls, logLevel);

    // Loaded here, not at the top: `inject` and `--help` should not pay for pino and the server.
    const { serve, ServeError } = await import('../webhook/serve.js');
    let running: Awaited<ReturnType<typeof serve>>;
    try {
      running = await serve({
        ...listen,
        tlsCertPath: tls.certPath,
        tlsKeyPath: tls.keyPath,
        ...(configPath === undefined ? {} : { configPath }),
        ...(logLevel === undefined ? {} : { logLevel }),
        ...(certs === undefined ? {} : { logger: certs.logger }),
      });
    } catch (error) {
      await certs?.lifecycle.stop();
      if (error instanceof ServeError) throw new UserError(error.message);
      throw error;
    }
    if (certs !== undefined) certs.report(running.server);
    if (tls.dev !== undefined) printDevBanner(io, tls.dev, listen.host ?? DEV_HOST, running.port, running.metricsPort);
    await running.closed;
    await certs?.lifecycle.stop();
    return EXIT.ok;
  },
});

function listenOptions(args: ServeArgs, dev: boolean): { port: number; metricsPort: number; host?: string; gracePeriodMs?: number } {
  // In a cluster the grace period lets endpoints drop the pod first; locally Ctrl-C should just stop.
  const grace = args.string('grace-period') ?? (dev ? '0' : undefined);
  const host = args.string('host') ?? (dev ? DEV_HOST : undefined);
  return {
    port: portValue('--port', args.string('port') ?? String(DEFAULT_PORT), COMMAND),
    metricsPort: portValue('--metrics-port', args.string('metrics-port') ?? String(DEFAULT_METRICS_PORT), COMMAND),
    ...(host === undefined ? {} : { host }),
    ...(grace === undefined ? {} : { gracePeriodMs: Math.round(secondsValue('--grace-period', grace, COMMAND) * 1000) }),
  };
}

async function tlsFiles(args: ServeArgs, dev: boolean, io: CliIo): Promise<{ certPath: string; keyPath: string; dev?: DevFiles }> {
  const certPath = args.string('tls-cert');
  const keyPath = args.string('tls-key');
  if (dev) {
    if (certPath !== undefined || keyPath !== undefined) {
      throw new UsageError('--dev makes its own certificate: drop --tls-cert and --tls-key, or drop --dev', COMMAND);
    }
    const files = await prepareDevFiles(resolve(io.cwd, args.string('dev-dir') ?? io.env.DFS_DEV_DIR ?? '.dev'));
    return { certPath: files.tlsCert, keyPath: files.tlsKey, dev: files };
  }
  if (args.string('dev-dir') !== undefined) throw new UsageError('--dev-dir only applies with --dev', COMMAND);
  if (certPath === undefined || keyPath === undefined) {
    throw new UsageError('serve needs --tls-cert FILE and --tls-key FILE (or --dev for a local development certificate)', COMMAND);
  }
  return { certPath, keyPath };
}

const CLUSTER_FLAGS = ['webhook-config', 'namespace', 'service', 'kubeconfig'] as const;

interface ClusterCertificates {
  readonly lifecycle: CertLifecycle;
  /** Shared with serve(), so both write one ordered log stream. */
  readonly logger: Logger;
  report(server: CertReportingTarget): void;
}

/** Starts the in-cluster certificate lifecycle for --tls-secret and waits for the pair on disk. */
async function clusterCertificates(
  args: ServeArgs,
  dev: boolean,
  tls: { certPath: string; keyPath: string },
  logLevel: string | undefined,
): Promise<ClusterCertificates | undefined> {
  const secretName = args.string('tls-secret');
  if (secretName === undefined) {
    const stray = CLUSTER_FLAGS.find((flag) => args.string(flag) !== undefined);
    if (stray !== undefined) throw new UsageError(`--${stray} only applies with --tls-secret`, COMMAND);
    return undefined;
  }
  if (dev) throw new UsageError('--dev makes its own certificate: drop --tls-secret, or drop --dev', COMMAND);
  const webhookConfigName = args.string('webhook-config');
  const namespace = args.string('namespace');
  if (webhookConfigName === undefined || namespace === undefined) {
    throw new UsageError('--tls-secret needs --webhook-config NAME and --namespace NS', COMMAND);
  }
  const { createLogger, ServeError } = await import('../webhook/serve.js');
  let logger: Logger;
  try {
    logger = createLogger(logLevel ?? 'info');
  } catch (error) {
    if (error instanceof ServeError) throw new UsageError(error.message, COMMAND);
    throw error;
  }
  const { ClusterCertificateError, reportCertificatesTo, startClusterCertificates } = await import('../certs/cluster.js');
  const service = args.string('service');
  const kubeconfig = args.string('kubeconfig');
  try {
    const lifecycle = await startClusterCertificates({
      secretName,
      webhookConfigName,
      namespace,
      tlsCertPath: tls.certPath,
      tlsKeyPath: tls.keyPath,
      logger: logger.child({ component: 'certs' }),
      ...(service === undefined ? {} : { service }),
      ...(kubeconfig === undefined ? {} : { kubeconfig }),
    });
    return { lifecycle, logger, report: (server) => reportCertificatesTo(lifecycle, server) };
  } catch (error) {
    if (error instanceof ClusterCertificateError) throw new UserError(error.message);
    throw error;
  }
}

function printDevBanner(io: CliIo, files: DevFiles, host: string, port: number, metricsPort: number): void {
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const ca = displayPath(files.caCert, io.cwd);
  const certificate =
    files.generated === undefined ? `reusing the development CA ${ca}` : `created a development CA ${ca} (${files.generated})`;
  io.stderr.write(
    [
      '',
      `dfs-injector development server: ${certificate}`,
      `  admission:  https://${urlHost}:${port}/mutate`,
      `  probes:     http://${urlHost}:${metricsPort}/healthz, /readyz, /metrics`,
      `  send the sample Sonarr pod (${displayPath(files.sampleReview, io.cwd)}):`,
      '',
      `    ${curlCommand(files, `https://${urlHost}:${port}/mutate`, io.cwd)}`,
      '',
      '  Ctrl-C stops the server.',
      '',
    ].join('\n'),
  );
}
