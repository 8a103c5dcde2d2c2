// `dfs-injector check`: walks the data path in a live cluster from its objects (the webhook, the
// source pods, the SMB Service, the mounter on each node with consumers) and prints one line per
// step with the reason and the fix. The steps themselves are pure (lib/check); this reads.
import {
  checkCaBundle,
  checkDryRunAdmission,
  checkNodeMounters,
  checkSmbService,
  checkSourceSidecars,
  checkWebhookCertificate,
  checkWebhookConfiguration,
  checkWebhookDeployment,
  failed,
  formatText,
  toJson,
  webhookServerName,
  type CheckPod,
  type CheckReport,
  type DeploymentFacts,
  type DryRunOutcome,
  type MounterPodFacts,
  type ServedCertificate,
  type SmbServiceFacts,
  type ShareExpectation,
  type ExecOutcome,
  type StepResult,
  type WebhookConfigurationFacts,
} from '../lib/check/index.js';
import { defaultConfig } from '../lib/config.js';
import { ClusterError, DEFAULT_PAGE_SIZE, type KubeconfigOptions } from './cluster-error.js';
import { defineCommand, type Command, type ParsedArgs } from './command.js';
import { EXIT, InputError, loadConfig, processDiagnoseIo, type DiagnoseIo } from './diagnose-io.js';
import type { CliIo } from './io.js';
import { runCommandLine } from './dispatch.js';
import { UsageError } from './errors.js';
import { choiceValue, positiveIntegerValue } from './values.js';
import type { ExecRequest } from './check-exec.js';
import { nodeAndConsumerRuntimeSteps, sourceRuntimeSteps } from './check-runtime.js';

export const CHECK_SUMMARY = 'Check that the data path works in a live cluster, step by step';

const WEBHOOK_CONFIGURATION = 'dfs-injector';
const TLS_TIMEOUT_MS = 5_000;

/** What `check` reads; the real one is KubeCheckCluster (cli/check-cluster.ts), loaded on first use. */
export interface CheckCluster {
  readWebhookConfiguration(name: string): Promise<WebhookConfigurationFacts | undefined>;
  readDeployment(namespace: string, name: string): Promise<DeploymentFacts | undefined>;
  listDfsPods(namespace: string | undefined): Promise<CheckPod[]>;
  listMounterPods(): Promise<MounterPodFacts[]>;
  mounterSmbService(): Promise<{ namespace: string; name: string; source: string } | undefined>;
  readSmbService(ref: { namespace: string; name: string; source: string }): Promise<SmbServiceFacts>;
  serviceAddress(namespace: string, name: string, port: number): Promise<string | undefined>;
  optedInNamespace(only: string | undefined): Promise<string | undefined>;
  dryRunConsumer(namespace: string): Promise<DryRunOutcome>;
  servedCertificate(address: string, servername: string | undefined, timeoutMs: number): Promise<ServedCertificate>;
  /** The mounter DaemonSet's host path, share name and mount options; undefined without the DaemonSet. */
  mounterShare(): Promise<ShareExpectation | undefined>;
  /** One fixed command in one container (pods/exec), bounded in time and output. */
  exec(request: ExecRequest, timeoutMs: number): Promise<ExecOutcome>;
}

const OUTPUTS = ['text', 'json'] as const;
const DEFAULT_EXEC_TIMEOUT_SECONDS = 10;
/** Above this, a hung mount would hold check for minutes per pod. */
const MAX_EXEC_TIMEOUT_SECONDS = 300;

const DESCRIPTION = `Steps, in the order data flows (a later step often fails because of an earlier one):
  webhook-configuration  the MutatingWebhookConfiguration ${WEBHOOK_CONFIGURATION} exists
  webhook-deployment     the Deployment its Service fronts is available
  webhook-certificate    the certificate the webhook serves is valid for more than --cert-min-days
  webhook-ca-bundle      every entry's caBundle verifies that certificate, for the name the API server uses
  webhook-admission      a server-side dry-run create of a consumer pod in an opted-in namespace comes
                         back injected (nothing is created)
  source-sidecar         each source pod's dfs-smbd sidecar is Ready (it is only when the FUSE mount is there)
  source-fuse-mount   *  the source container has a FUSE mount at the source path (or below it)
  source-smbd         *  the sidecar's readiness output: the mount readable from smbd's side, whether
                         it reports nlink 0, and whether smbd has the nlink shim loaded
  smb-endpoint           the SMB Service the mounters mount (their DFS_SMB_SERVICE) has a ready endpoint
  node-mounter           every node that runs consumers has a Ready dfs-mounter pod
  node-share          *  on each such node, seen from its mounter pod: the share mounted at the host
                         path, with the options of DFS_MOUNT_OPTIONS, and a stat of its root answers
  consumer-mount      *  in each running consumer (or --sample N of them): the share on top at the
                         mount path, and a stat through it answers

Steps marked * run a fixed, read-only command inside the container (cat /proc/self/mountinfo,
stat, the sidecar's dfs-smbd-ready) through pods/exec. Each exec gives up after --exec-timeout
seconds, and the stat inside after half of that, so a hung CIFS mount fails its step with "timed
out" instead of hanging check. --no-exec leaves them out; without the right to exec they are
skipped and say so.

The certificate steps connect to the webhook: to its clientConfig URL, or to its Service's
ClusterIP, which is reachable from inside the cluster only; from outside, forward it
(kubectl -n dfs-system port-forward svc/dfs-injector 8443:443) and pass --webhook-address.

Needs the dfs-injector-auditor and dfs-injector-checker ClusterRoles (manifests/auditor,
manifests/auditor-check); the dry-run step also needs dfs-injector-checker-dry-run, and the
steps marked * need dfs-injector-checker-exec (bound in dfs-system and the source and consumer
namespaces); each is skipped without its role.

Exit status: 0 no step failed, 1 a step failed, 2 usage error, 3 the cluster could not be read.`;

const OPTIONS = {
  namespace: { type: 'string', short: 'n', value: 'NS', description: 'Only source and consumer pods of this namespace, and the dry run there', default: 'all namespaces' },
  kubeconfig: { type: 'string', value: 'FILE', description: 'Kubeconfig', default: 'KUBECONFIG, ~/.kube/config, then the in-cluster service account' },
  context: { type: 'string', value: 'NAME', description: 'Kubeconfig context' },
  config: { type: 'string', value: 'FILE', description: "The webhook's config, for the sidecar's container name", default: 'embedded defaults' },
  output: { type: 'string', short: 'o', value: 'FORMAT', description: 'text or json', default: 'text' },
  'cert-min-days': { type: 'string', value: 'N', description: 'Fail when the served certificate expires in fewer days', default: '30' },
  'webhook-address': { type: 'string', value: 'HOST:PORT', description: 'Where to reach the webhook for the certificate steps', default: "the configuration's URL, or its Service's ClusterIP" },
  'page-size': { type: 'string', value: 'N', description: 'Objects per list request', default: String(DEFAULT_PAGE_SIZE) },
  exec: { type: 'boolean', description: 'Run the steps that exec into containers (marked *): the default' },
  'no-exec': { type: 'boolean', description: 'Leave out the steps that exec into containers (marked *)' },
  'exec-timeout': { type: 'string', value: 'SECONDS', description: 'Give up on one exec after this long; the stat inside gets half', default: String(DEFAULT_EXEC_TIMEOUT_SECONDS) },
  sample: { type: 'string', value: 'N', description: 'Look into at most N consumer pods, spread over nodes', default: 'all running consumers' },
} as const;


/** The runtime steps' options from the flags; undefined with --no-exec. */
function runtimeOptions(parsed: ParsedArgs<keyof typeof OPTIONS>): { execTimeoutSeconds: number; sample: number | undefined } | undefined {
  const execTimeoutSeconds = positiveIntegerValue('--exec-timeout', parsed.string('exec-timeout') ?? String(DEFAULT_EXEC_TIMEOUT_SECONDS), 'check');
  if (execTimeoutSeconds > MAX_EXEC_TIMEOUT_SECONDS) throw new UsageError(`--exec-timeout "${execTimeoutSeconds}" must be a whole number of seconds from 1 to ${MAX_EXEC_TIMEOUT_SECONDS}`, 'check');
  const sampleText = parsed.string('sample');
  const sample = sampleText === undefined ? undefined : positiveIntegerValue('--sample', sampleText, 'check');
  if (parsed.flag('exec') && parsed.flag('no-exec')) throw new UsageError('--exec and --no-exec contradict each other: give one', 'check');
  return parsed.flag('no-exec') ? undefined : { execTimeoutSeconds, sample };
}

export type CheckClusterFactory = (options: KubeconfigOptions, pageSize: number) => Promise<CheckCluster>;

const defaultFactory: CheckClusterFactory = async (options, pageSize) => {
  const [{ KubeCheckCluster }, { loadKubeConfig }] = await Promise.all([import('./check-cluster.js'), import('./kube-reader.js')]);
  return new KubeCheckCluster(await loadKubeConfig(options), pageSize);
};

interface CheckArgs {
  namespace: string | undefined;
  minDays: number;
  webhookAddress: string | undefined;
  sidecar: string;
  now: Date;
  /** Runtime steps (pods/exec); undefined with --no-exec. */
  runtime?: { execTimeoutSeconds: number; sample: number | undefined };
}

/** Every step, in order; a ClusterError (the cluster could not be read) propagates. */
export async function runChecks(cluster: CheckCluster, args: CheckArgs): Promise<CheckReport> {
  const results: StepResult[] = [];
  const configuration = await cluster.readWebhookConfiguration(WEBHOOK_CONFIGURATION);
  results.push(checkWebhookConfiguration(WEBHOOK_CONFIGURATION, configuration));
  const first = configuration?.entries[0];
  if (first?.service !== undefined) {
    const { namespace, name } = first.service;
    results.push(checkWebhookDeployment({ namespace, name }, await cluster.readDeployment(namespace, name)));
  }
  if (configuration !== undefined && first !== undefined) {
    let address = args.webhookAddress;
    if (address === undefined && first.url !== undefined) {
      const url = new URL(first.url);
      address = `${url.hostname}:${url.port === '' ? '443' : url.port}`;
    }
    if (address === undefined && first.service !== undefined) address = await cluster.serviceAddress(first.service.namespace, first.service.name, first.service.port);
    const served: ServedCertificate =
      address === undefined ? { ok: false, address: '(none)', error: 'the webhook Service has no ClusterIP' } : await cluster.servedCertificate(address, webhookServerName(first), TLS_TIMEOUT_MS);
    results.push(checkWebhookCertificate(served, args.now, args.minDays), checkCaBundle(configuration, served));
    const namespace = await cluster.optedInNamespace(args.namespace);
    results.push(checkDryRunAdmission(namespace === undefined ? { kind: 'no-namespace', ...(args.namespace === undefined ? {} : { only: args.namespace }) } : await cluster.dryRunConsumer(namespace)));
  }

  const pods = await cluster.listDfsPods(args.namespace);
  const sources = checkSourceSidecars(pods, args.sidecar);
  results.push(...(sources.length > 0 ? sources : [{ step: 'source-sidecar', subject: '', status: 'skip', reason: `no source pod${args.namespace === undefined ? '' : ` in namespace ${args.namespace}`}` } satisfies StepResult]));
  const runtime = args.runtime === undefined ? undefined : { sidecar: args.sidecar, ...args.runtime };
  if (runtime !== undefined) results.push(...(await sourceRuntimeSteps(cluster, pods, runtime)));
  const smb = await cluster.mounterSmbService();
  results.push(checkSmbService(smb === undefined ? undefined : await cluster.readSmbService(smb), sources.length > 0));
  const mounters = await cluster.listMounterPods();
  results.push(...checkNodeMounters(pods, mounters));
  if (runtime !== undefined) results.push(...(await nodeAndConsumerRuntimeSteps(cluster, pods, mounters, await cluster.mounterShare(), runtime)));
  return { results };
}

export function makeCheckCommand(factory: CheckClusterFactory = defaultFactory): Command {
  return defineCommand({
    name: 'check',
    summary: CHECK_SUMMARY,
    usage: 'check [options]',
    description: DESCRIPTION,
    options: OPTIONS,
    examples: ['dfs-injector check', 'dfs-injector check -n media -o json --sample 5', 'dfs-injector check --no-exec', 'dfs-injector check --webhook-address 127.0.0.1:8443'],
    async run(parsed, io: CliIo) {
      const output = choiceValue('--output', parsed.string('output') ?? 'text', OUTPUTS, 'check');
      const minDays = positiveIntegerValue('--cert-min-days', parsed.string('cert-min-days') ?? '30', 'check');
      const pageSize = positiveIntegerValue('--page-size', parsed.string('page-size') ?? String(DEFAULT_PAGE_SIZE), 'check');
      const runtime = runtimeOptions(parsed);
      const now = (io as DiagnoseIo).now?.() ?? new Date();
      const kubeconfig = parsed.string('kubeconfig');
      const context = parsed.string('context');
      let report: CheckReport;
      try {
        const configFile = parsed.string('config');
        const sidecar = configFile === undefined ? defaultConfig.source.sidecar.name : (await loadConfig(configFile, io)).config.source.sidecar.name;
        const cluster = await factory({ ...(kubeconfig === undefined ? {} : { kubeconfig }), ...(context === undefined ? {} : { context }) }, pageSize);
        report = await runChecks(cluster, { namespace: parsed.string('namespace'), minDays, webhookAddress: parsed.string('webhook-address'), sidecar, now, ...(runtime === undefined ? {} : { runtime }) });
      } catch (error) {
        if (error instanceof ClusterError || error instanceof InputError) {
          io.stderr.write(`error: ${error.message}\n`);
          return EXIT.error;
        }
        throw error;
      }
      io.stdout.write(output === 'json' ? `${JSON.stringify(toJson(report, now), null, 2)}\n` : formatText(report));
      return failed(report).length > 0 ? EXIT.findings : EXIT.ok;
    },
  });
}

export const checkCommand: Command = makeCheckCommand();

/** Runs `dfs-injector check` with `argv` (the words after "check") through the CLI's dispatcher. */
export function run(argv: readonly string[], io: DiagnoseIo = processDiagnoseIo(), factory?: CheckClusterFactory): Promise<number> {
  return runCommandLine(['check', ...argv], io, [makeCheckCommand(factory)]);
}
