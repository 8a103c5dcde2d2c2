// `dfs-injector audit`: finds DFS mounts and injections that are wrong, outdated or missing, in a
// live cluster or in manifests, and reports them as a table, JSON, PolicyReports or OpenReports.
import {
  FAIL_ON_VALUES,
  InvalidPodError,
  MOUNTER,
  NamespaceNotFoundError,
  RULES,
  RULE_IDS,
  auditCluster,
  auditInventory,
  failsAt,
  formatPolicyReports,
  formatTable,
  inventoryFromDocuments,
  invalidPods,
  isFailOn,
  toJsonReport,
  toPolicyReports,
  type AuditOptions,
  type AuditResult,
  type ClusterReader,
  type FailOn,
} from '../lib/audit/index.js';
import { defineCommand, type Command, type ParsedArgs } from './command.js';
import { loadConfig } from './config-file.js';
import { processDiagnoseIo, readManifests, type DiagnoseIo } from './diagnose-io.js';
import { EXIT, InputError, UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { runCommandLine } from './dispatch.js';
import { choiceValue, positiveIntegerValue } from './values.js';
import { ClusterError, DEFAULT_PAGE_SIZE } from './cluster-error.js';
import { LazyClusterReader } from './lazy-cluster-reader.js';

const OUTPUTS = ['table', 'json', 'policyreport', 'openreports'] as const;
type Output = (typeof OUTPUTS)[number];

export const AUDIT_SUMMARY = 'Report DFS mounts and injections that are wrong, outdated or missing';


const DESCRIPTION = `Reads the live cluster (all namespaces, or --namespace), page by page, or manifests given with -f
(every pod template of every workload kind; Namespace objects in the input supply namespace labels;
a dump of live pods, e.g. kubectl get ns,pods -A -o yaml, also supplies node state). Rules that
need what the input does not hold are listed as skipped, never dropped silently.

Exit status: 0 no finding at or above --fail-on, 1 some finding is, 2 usage error, 3 the audit
could not run (an input could not be read, the API server refused).

Rules:
${RULE_IDS.map((id) => `  ${id}  ${RULES[id].severity.padEnd(8)}  ${RULES[id].title}`).join('\n')}`;

const OPTIONS = {
  filename: { type: 'string', short: 'f', multiple: true, value: 'FILE|DIR|-', description: 'Audit manifests instead of the cluster; a directory is read non-recursively, "-" is stdin' },
  namespace: { type: 'string', short: 'n', value: 'NS', description: 'Cluster: only this namespace. Manifests: namespace of objects that name none', default: 'all; manifests: default' },
  kubeconfig: { type: 'string', value: 'FILE', description: 'Kubeconfig', default: 'KUBECONFIG, ~/.kube/config, then the in-cluster service account' },
  context: { type: 'string', value: 'NAME', description: 'Kubeconfig context' },
  config: { type: 'string', value: 'FILE', description: "The webhook's config; drift (DFS005) is measured against its hash, and skipped without it" },
  output: { type: 'string', short: 'o', value: 'FORMAT', description: 'table, json, policyreport (wgpolicyk8s.io/v1alpha2 PolicyReport YAML) or openreports (openreports.io/v1alpha1 Report YAML)', default: 'table' },
  'fail-on': { type: 'string', value: 'SEVERITY', description: `Exit 1 when a finding is at or above this: ${FAIL_ON_VALUES.join(', ')}`, default: 'high' },
  'page-size': { type: 'string', value: 'N', description: 'Objects per list request', default: String(DEFAULT_PAGE_SIZE) },
  'mounter-namespace': { type: 'string', value: 'NS', description: 'Namespace of the dfs-mounter DaemonSet (where the webhook is deployed); only its pods may mount the DFS writable', default: MOUNTER.namespace },
} as const;

type OptionName = keyof typeof OPTIONS;

interface AuditArgs {
  files: string[];
  namespace: string | undefined;
  kubeconfig: string | undefined;
  context: string | undefined;
  config: string | undefined;
  output: Output;
  failOn: FailOn;
  pageSize: number;
  mounterNamespace: string;
}

function auditArgs(args: ParsedArgs<OptionName>): AuditArgs {
  const output = choiceValue('--output', args.string('output') ?? 'table', OUTPUTS, 'audit');
  const failOnText = args.string('fail-on') ?? 'high';
  if (!isFailOn(failOnText)) throw new UsageError(`--fail-on ${JSON.stringify(failOnText)} is not a severity: use ${FAIL_ON_VALUES.join(', ')}`, 'audit');
  const pageSize = positiveIntegerValue('--page-size', args.string('page-size') ?? String(DEFAULT_PAGE_SIZE), 'audit');
  const files = args.strings('filename');
  const kubeconfig = args.string('kubeconfig');
  const context = args.string('context');
  if (files.length > 0 && (kubeconfig !== undefined || context !== undefined)) {
    throw new UsageError('-f audits manifests, --kubeconfig and --context the cluster: give one or the other', 'audit');
  }
  const mounterNamespace = args.string('mounter-namespace') ?? MOUNTER.namespace;
  return { files, namespace: args.string('namespace'), kubeconfig, context, config: args.string('config'), output, failOn: failOnText, pageSize, mounterNamespace };
}

/** Makes the ClusterReader; tests pass one that talks to a fake API server. */
export type ReaderFactory = (args: { kubeconfig: string | undefined; context: string | undefined; pageSize: number }) => ClusterReader;

const defaultReaderFactory: ReaderFactory = ({ kubeconfig, context, pageSize }) =>
  new LazyClusterReader({ ...(kubeconfig === undefined ? {} : { kubeconfig }), ...(context === undefined ? {} : { context }) }, pageSize);

/** A forbidden or missing dfs-system does not stop the audit: the node rule is skipped, and says why. */
function mounterUnavailable(error: unknown): string | undefined {
  if (error instanceof ClusterError && (error.code === 403 || error.code === 404)) return `node state unknown: ${error.message}`;
  return undefined;
}

async function audit(args: AuditArgs, io: CliIo, readerFactory: ReaderFactory): Promise<AuditResult> {
  const loaded = await loadConfig(args.config, io);
  const options: AuditOptions = { config: loaded.config, configSource: loaded.source, mounterNamespace: args.mounterNamespace };
  if (!loaded.explicit) options.driftUnavailable = 'no --config given: drift is measured against the config the webhook runs with; pass that file with --config';
  if (args.files.length > 0) {
    const files = await readManifests(args.files, io);
    for (const file of files) {
      const invalid = invalidPods(file.docs);
      if (invalid.length > 0) throw new InputError(`-f ${file.source}: ${invalid.join('; ')}`);
    }
    const inventory = inventoryFromDocuments(
      files.flatMap((f) => f.docs),
      { defaultNamespace: args.namespace ?? 'default', mounterNamespace: args.mounterNamespace },
    );
    options.nodesUnavailable = 'the input holds no pod bound to a node, so node state is unknown (audit the cluster, or a dump such as kubectl get ns,pods -A -o yaml)';
    return auditInventory(inventory, options);
  }
  const reader = readerFactory({ kubeconfig: args.kubeconfig, context: args.context, pageSize: args.pageSize });
  return auditCluster(reader, { ...options, ...(args.namespace === undefined ? {} : { namespace: args.namespace }) }, mounterUnavailable);
}

function render(result: AuditResult, output: Output, now: Date): string {
  switch (output) {
    case 'table':
      return formatTable(result);
    case 'json':
      return `${JSON.stringify(toJsonReport(result, now), null, 2)}\n`;
    case 'policyreport':
    case 'openreports':
      return formatPolicyReports(toPolicyReports(result, now, output));
  }
}

/** The `audit` command for the CLI's command table; tests pass a reader factory for a fake API server. */
export function makeAuditCommand(readerFactory: ReaderFactory = defaultReaderFactory): Command {
  return defineCommand({
    name: 'audit',
    summary: AUDIT_SUMMARY,
    usage: 'audit [-f FILE|DIR|-]... [options]',
    description: DESCRIPTION,
    options: OPTIONS,
    examples: [
      'dfs-injector audit --config dfs-injector.yaml',
      'dfs-injector audit -n media -o json',
      'dfs-injector audit -f deploy/ --fail-on medium',
      'kubectl get ns,pods -A -o yaml | dfs-injector audit -f - -o policyreport | kubectl apply -f -',
      'dfs-injector audit -o openreports | kubectl apply -f -',
    ],
    async run(parsed, io) {
      const args = auditArgs(parsed);
      let result: AuditResult;
      try {
        result = await audit(args, io, readerFactory);
      } catch (error) {
        // The library's own errors about the input; the dispatcher prints every InputError, exit 3.
        if (error instanceof NamespaceNotFoundError || error instanceof InvalidPodError) throw new InputError(error.message);
        throw error;
      }
      io.stdout.write(render(result, args.output, (io as DiagnoseIo).now?.() ?? new Date()));
      return failsAt(result, args.failOn) ? EXIT.findings : EXIT.ok;
    },
  });
}

export const auditCommand: Command = makeAuditCommand();

/** Runs `dfs-injector audit` with `argv` (the words after "audit") through the CLI's dispatcher. */
export function run(argv: readonly string[], io: DiagnoseIo = processDiagnoseIo(), readerFactory: ReaderFactory = defaultReaderFactory): Promise<number> {
  return runCommandLine(['audit', ...argv], io, [makeAuditCommand(readerFactory)]);
}
