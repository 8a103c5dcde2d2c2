import { resolve } from 'node:path';
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
    default: '5',
  },
  'log-level': { type: 'string', value: 'LEVEL', description: 'trace, debug, info, warn, error, fatal or silent', default: 'info' },
  dev: { type: 'boolean', description: 'Local development: generated certificate, 127.0.0.1, sample request' },
  'dev-dir': { type: 'string', value: 'DIR', description: 'Where --dev keeps its files', default: '$DFS_DEV_DIR or .dev' },
} as const satisfies Record<string, OptionSpec>;

type ServeArgs = ParsedArgs<keyof typeof SERVE_OPTIONS>;

export const serveCommand = defineCommand({
  name: COMMAND,
  summary: 'Run the admission webhook (HTTPS), with probes and metrics on a second port',
  usage: 'serve --tls-cert FILE --tls-key FILE [options]\n       dfs-injector serve --dev [options]',
  description: [
    'Answers AdmissionReview requests on /mutate (and the other entry paths of the',
    'MutatingWebhookConfiguration). The certificate, key and config file are re-read when they',
    'change. On SIGTERM the webhook turns /readyz to 503, keeps serving for the grace period,',
    'then drains its connections and exits 0.',
    '',
    'With --dev it needs nothing else: it creates a development CA and certificate for',
    'localhost and 127.0.0.1 in .dev/ on first run (reused afterwards), listens on 127.0.0.1,',
    'writes a sample AdmissionReview and prints a curl command that sends it.',
  ].join('\n'),
  options: SERVE_OPTIONS,
  examples: [
    'dfs-injector serve --dev',
    'dfs-injector serve --config /etc/dfs-injector/config.yaml --tls-cert /tls/tls.crt --tls-key /tls/tls.key',
  ],
  async run(args, io) {
    const dev = args.flag('dev');
    const listen = listenOptions(args, dev);
    const tls = await tlsFiles(args, dev, io);
    const configPath = args.string('config');
    const logLevel = args.string('log-level');

    // Loaded here, not at the top: `inject` and `--help` should not pay for fastify and pino.
    const { serve, ServeError } = await import('../webhook/serve.js');
    let running: Awaited<ReturnType<typeof serve>>;
    try {
      running = await serve({
        ...listen,
        tlsCertPath: tls.certPath,
        tlsKeyPath: tls.keyPath,
        ...(configPath === undefined ? {} : { configPath }),
        ...(logLevel === undefined ? {} : { logLevel }),
      });
    } catch (error) {
      if (error instanceof ServeError) throw new UserError(error.message);
      throw error;
    }
    if (tls.dev !== undefined) printDevBanner(io, tls.dev, listen.host ?? DEV_HOST, running.port, running.metricsPort);
    await running.closed;
    return EXIT.ok;
  },
});

function listenOptions(args: ServeArgs, dev: boolean): { port: number; metricsPort: number; host?: string; gracePeriodMs?: number } {
  const grace = args.string('grace-period');
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
