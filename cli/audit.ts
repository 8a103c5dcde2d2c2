// `dfs-injector audit`: finds DFS mounts and injections that are wrong, outdated or missing, in a
// live cluster or in manifests, and reports them as a table, JSON or PolicyReports.
import { parseArgs } from 'node:util';
import {
  FAIL_ON_VALUES,
  NamespaceNotFoundError,
  RULES,
  RULE_IDS,
  auditCluster,
  auditInventory,
  failsAt,
  formatPolicyReports,
  formatTable,
  inventoryFromDocuments,
  isFailOn,
  toJsonReport,
  toPolicyReports,
  type AuditOptions,
  type AuditResult,
  type ClusterReader,
  type FailOn,
} from '../lib/audit/index.js';
import { EXIT, InputError, UsageError, loadConfig, processDiagnoseIo, readManifests, type DiagnoseIo } from './diagnose-io.js';
import { ClusterError, DEFAULT_PAGE_SIZE, KubeClusterReader, loadKubeConfig } from './kube-reader.js';

const OUTPUTS = ['table', 'json', 'policyreport'] as const;
type Output = (typeof OUTPUTS)[number];

export const AUDIT_SUMMARY = 'Report DFS mounts and injections that are wrong, outdated or missing';

export const AUDIT_HELP = `Usage: dfs-injector audit [-f FILE|DIR|-]... [options]

${AUDIT_SUMMARY}.

Reads the live cluster (all namespaces, or --namespace), page by page, or manifests given with -f
(every pod template of every workload kind; Namespace objects in the input supply namespace labels;
a dump of live pods, e.g. kubectl get ns,pods -A -o yaml, also supplies node state). Rules that
need what the input does not hold are listed as skipped.

Options:
  -f, --filename FILE|DIR|-   Audit manifests instead of the cluster (repeatable)
  -n, --namespace NS          Cluster: only this namespace. Manifests: namespace of objects that name none (default: default)
      --kubeconfig FILE       Kubeconfig (default: KUBECONFIG, ~/.kube/config, then the in-cluster service account)
      --context NAME          Kubeconfig context
      --config FILE           The webhook's config; drift (DFS005) is measured against its hash and is skipped without it
  -o, --output FORMAT         table, json or policyreport (wgpolicyk8s.io/v1alpha2 YAML) (default: table)
      --fail-on SEVERITY      Exit 1 when a finding is at or above: ${FAIL_ON_VALUES.join(', ')} (default: high)
      --page-size N           Objects per list request (default: ${DEFAULT_PAGE_SIZE})
  -h, --help                  Show this help

Exit status: 0 no finding at or above --fail-on, 1 some finding is, 2 usage error, 3 the audit could not run.

Rules:
${RULE_IDS.map((id) => `  ${id}  ${RULES[id].severity.padEnd(8)}  ${RULES[id].title}`).join('\n')}

Examples:
  dfs-injector audit --config dfs-injector.yaml
  dfs-injector audit -n media -o json
  dfs-injector audit -f deploy/ --fail-on medium
  kubectl get ns,pods -A -o yaml | dfs-injector audit -f - -o policyreport | kubectl apply -f -
`;

interface AuditArgs {
  files: string[];
  namespace: string | undefined;
  kubeconfig: string | undefined;
  context: string | undefined;
  config: string | undefined;
  output: Output;
  failOn: FailOn;
  pageSize: number;
  help: boolean;
}

function parseAuditArgs(argv: readonly string[]): AuditArgs {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        filename: { type: 'string', short: 'f', multiple: true },
        namespace: { type: 'string', short: 'n' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        config: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'fail-on': { type: 'string' },
        'page-size': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const str = (name: string): string | undefined => (typeof values[name] === 'string' ? values[name] : undefined);
  const output = str('output') ?? 'table';
  if (!(OUTPUTS as readonly string[]).includes(output)) throw new UsageError(`--output "${output}" is not a format: use ${OUTPUTS.join(', ')}`);
  const failOn = str('fail-on') ?? 'high';
  if (!isFailOn(failOn)) throw new UsageError(`--fail-on "${failOn}" is not a severity: use ${FAIL_ON_VALUES.join(', ')}`);
  const pageSizeText = str('page-size') ?? String(DEFAULT_PAGE_SIZE);
  const pageSize = Number(pageSizeText);
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new UsageError(`--page-size "${pageSizeText}" must be a positive integer`);
  const files = Array.isArray(values.filename) ? values.filename : [];
  const kubeconfig = str('kubeconfig');
  const context = str('context');
  if (files.length > 0 && (kubeconfig !== undefined || context !== undefined)) throw new UsageError('-f audits manifests; --kubeconfig and --context are for auditing the cluster, not both');
  return { files, namespace: str('namespace'), kubeconfig, context, config: str('config'), output: output as Output, failOn, pageSize, help: values.help === true };
}

/** Makes the ClusterReader; tests pass one that talks to a fake API server. */
export type ReaderFactory = (args: { kubeconfig: string | undefined; context: string | undefined; pageSize: number }) => ClusterReader;

const defaultReaderFactory: ReaderFactory = ({ kubeconfig, context, pageSize }) =>
  KubeClusterReader.fromKubeConfig(loadKubeConfig({ ...(kubeconfig === undefined ? {} : { kubeconfig }), ...(context === undefined ? {} : { context }) }), pageSize);

/** A forbidden or missing dfs-system does not stop the audit: the node rule is skipped, and says why. */
function mounterUnavailable(error: unknown): string | undefined {
  if (error instanceof ClusterError && (error.code === 403 || error.code === 404)) return `node state unknown: ${error.message}`;
  return undefined;
}

async function audit(args: AuditArgs, io: DiagnoseIo, readerFactory: ReaderFactory): Promise<AuditResult> {
  const loaded = await loadConfig(args.config, io);
  const options: AuditOptions = { config: loaded.config, configSource: loaded.source };
  if (!loaded.explicit) options.driftUnavailable = 'no --config given: drift is measured against the config the webhook runs with; pass that file with --config';
  if (args.files.length > 0) {
    const files = await readManifests(args.files, io);
    const inventory = inventoryFromDocuments(
      files.flatMap((f) => f.docs),
      { defaultNamespace: args.namespace ?? 'default' },
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
      return formatPolicyReports(toPolicyReports(result, now));
  }
}

/** Runs `dfs-injector audit` with `argv` (the words after "audit"); resolves to the exit status. */
export async function run(argv: readonly string[], io: DiagnoseIo = processDiagnoseIo(), readerFactory: ReaderFactory = defaultReaderFactory): Promise<number> {
  let args: AuditArgs;
  try {
    args = parseAuditArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`error: ${error.message}\nSee "dfs-injector audit --help".\n`);
    return EXIT.usage;
  }
  if (args.help) {
    io.stdout.write(AUDIT_HELP);
    return EXIT.ok;
  }
  let result: AuditResult;
  try {
    result = await audit(args, io, readerFactory);
  } catch (error) {
    if (error instanceof InputError || error instanceof ClusterError || error instanceof NamespaceNotFoundError) {
      io.stderr.write(`error: ${error.message}\n`);
      return EXIT.error;
    }
    throw error;
  }
  io.stdout.write(render(result, args.output, io.now?.() ?? new Date()));
  return failsAt(result, args.failOn) ? EXIT.findings : EXIT.ok;
}
