// `dfs-injector explain`: whether and why the webhook would inject a pod, step by step, and the
// change as a unified diff. The steps are lib/explain.ts; this file reads the inputs.
import { parseArgs } from 'node:util';
import { isRecord } from '../lib/k8s.js';
import { LABEL_INJECTION } from '../lib/names.js';
import { explainDocument, renderExplanations, type NamespaceInfo, type PodExplanation } from '../lib/explain.js';
import { EXIT, InputError, UsageError, loadConfig, parseLabelList, processDiagnoseIo, readManifests, type DiagnoseIo } from './diagnose-io.js';
import { ClusterError, KubeClusterReader, loadKubeConfig } from './kube-reader.js';

export const EXPLAIN_SUMMARY = 'Explain, step by step, whether and why the webhook would inject a pod';

export const EXPLAIN_HELP = `Usage: dfs-injector explain (-f FILE|- | NAMESPACE/NAME) [options]

${EXPLAIN_SUMMARY}: the namespace labels against each webhook entry's namespaceSelector, the pod
labels against its objectSelector, the role, Pod Security, the override annotations, the plan and
its conflicts, the webhook's answer (warnings, auditAnnotations), and the change as a unified diff.

A pod is read from the cluster with NAMESPACE/NAME (or NAME with -n); its namespace labels too.
With -f, the first document is explained (--all: every document; workloads by their pod
template), and namespace labels come from --namespace-labels, from the cluster when --kubeconfig
or --context is given, or else are assumed to be ${LABEL_INJECTION}=enabled, as the output says.

Options:
  -f, --filename FILE|-        Explain manifests instead of a live pod
      --all                    With -f: every document, not only the first
  -n, --namespace NS           Namespace of the pod, or of documents that name none (default: default)
      --namespace-labels K=V,… The namespace's labels, instead of reading them from the cluster
      --config FILE            The webhook's config (default: the built-in defaults)
      --kubeconfig FILE        Kubeconfig (default: KUBECONFIG, ~/.kube/config, then in-cluster)
      --context NAME           Kubeconfig context
  -o, --output FORMAT          text or json (default: text)
  -h, --help                   Show this help

Exit status: 0 explained, 2 usage error, 3 an input could not be read.

Examples:
  dfs-injector explain media/sonarr-7d9f8b6c5d-x2k4q
  dfs-injector explain -f deploy/radarr.yaml --namespace-labels ${LABEL_INJECTION}=enabled
  kubectl get deploy radarr -o yaml | dfs-injector explain -f - --context prod
`;

interface ExplainArgs {
  files: string[];
  target: { namespace: string; name: string } | undefined;
  all: boolean;
  namespace: string | undefined;
  namespaceLabels: Record<string, string> | undefined;
  config: string | undefined;
  kubeconfig: string | undefined;
  context: string | undefined;
  output: 'text' | 'json';
  help: boolean;
}

function parseExplainArgs(argv: readonly string[]): ExplainArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        filename: { type: 'string', short: 'f', multiple: true },
        all: { type: 'boolean' },
        namespace: { type: 'string', short: 'n' },
        'namespace-labels': { type: 'string' },
        config: { type: 'string' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        output: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const str = (name: string): string | undefined => (typeof values[name] === 'string' ? values[name] : undefined);
  const help = values.help === true;
  const files = Array.isArray(values.filename) ? values.filename : [];
  const output = str('output') ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError(`--output "${output}" is not a format: use text or json`);
  const labels = str('namespace-labels');
  const args: ExplainArgs = {
    files,
    target: undefined,
    all: values.all === true,
    namespace: str('namespace'),
    namespaceLabels: labels === undefined ? undefined : parseLabelList(labels, '--namespace-labels'),
    config: str('config'),
    kubeconfig: str('kubeconfig'),
    context: str('context'),
    output,
    help,
  };
  if (help) return args;
  const positionals = parsed.positionals;
  if (positionals.length > 1) throw new UsageError(`explain takes one pod, got ${positionals.length}: ${positionals.join(' ')}`);
  const target = positionals[0];
  if ((target === undefined) === (files.length === 0)) throw new UsageError('give either a pod as NAMESPACE/NAME or manifests with -f, not both and not neither');
  if (args.all && files.length === 0) throw new UsageError('--all applies to -f');
  if (target !== undefined) args.target = parseTarget(target, args.namespace);
  return args;
}

function parseTarget(target: string, namespace: string | undefined): { namespace: string; name: string } {
  const parts = target.split('/');
  const [ns, name] = parts.length === 2 ? parts : [namespace ?? 'default', parts[0]];
  if (parts.length > 2 || ns === undefined || ns === '' || name === undefined || name === '') {
    throw new UsageError(`"${target}" is not a pod: write NAMESPACE/NAME, or NAME with -n NAMESPACE (for workloads, use kubectl get … -o yaml | dfs-injector explain -f -)`);
  }
  return { namespace: ns, name };
}

/** Strips what the API server adds after admission, so the diff shows what the webhook would see. */
function asAdmitted(pod: Record<string, unknown>): Record<string, unknown> {
  const { status: _status, ...rest } = pod;
  if (isRecord(rest.metadata)) {
    const { managedFields: _managed, ...meta } = rest.metadata;
    rest.metadata = meta;
  }
  return rest;
}

function documentNamespaces(doc: unknown, fallback: string): string[] {
  if (!isRecord(doc)) return [];
  if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) return (doc.items as unknown[]).flatMap((i) => documentNamespaces(i, fallback));
  const meta = isRecord(doc.metadata) ? doc.metadata : {};
  return [typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : fallback];
}

type Reader = Pick<KubeClusterReader, 'readNamespace' | 'readPod'>;

/** Makes the cluster reader; tests pass one that talks to a fake API server. */
export type ExplainReaderFactory = (args: { kubeconfig: string | undefined; context: string | undefined }) => Reader;

const defaultReaderFactory: ExplainReaderFactory = ({ kubeconfig, context }) =>
  KubeClusterReader.fromKubeConfig(loadKubeConfig({ ...(kubeconfig === undefined ? {} : { kubeconfig }), ...(context === undefined ? {} : { context }) }));

async function namespaceInfos(names: readonly string[], args: ExplainArgs, reader: () => Reader): Promise<Map<string, NamespaceInfo>> {
  const infos = new Map<string, NamespaceInfo>();
  const useCluster = args.namespaceLabels === undefined && (args.target !== undefined || args.kubeconfig !== undefined || args.context !== undefined);
  for (const name of new Set(names)) {
    if (args.namespaceLabels !== undefined) {
      infos.set(name, { name, labels: args.namespaceLabels, origin: 'from --namespace-labels' });
    } else if (useCluster) {
      const ns = await reader().readNamespace(name);
      if (ns === undefined) throw new InputError(`namespace "${name}" does not exist (pass its labels with --namespace-labels to explain anyway)`);
      infos.set(name, { name, labels: ns.labels, origin: 'from the cluster' });
    } else {
      infos.set(name, { name, labels: { [LABEL_INJECTION]: 'enabled' }, origin: 'assumed, since neither --namespace-labels nor a cluster was given' });
    }
  }
  return infos;
}

async function explain(args: ExplainArgs, io: DiagnoseIo, readerFactory: ExplainReaderFactory): Promise<PodExplanation[]> {
  const { config } = await loadConfig(args.config, io);
  let cached: Reader | undefined;
  const reader = (): Reader => (cached ??= readerFactory({ kubeconfig: args.kubeconfig, context: args.context }));
  const inputs: { doc: unknown; source: string }[] = [];
  if (args.target !== undefined) {
    const { namespace, name } = args.target;
    const pod = await reader().readPod(namespace, name);
    if (pod === undefined) throw new InputError(`pod ${namespace}/${name} not found`);
    inputs.push({ doc: asAdmitted(pod), source: `pod ${namespace}/${name}` });
  } else {
    for (const file of await readManifests(args.files, io)) {
      for (const doc of args.all ? file.docs : file.docs.slice(0, 1)) inputs.push({ doc, source: file.source });
      if (!args.all && inputs.length > 0) break;
    }
  }
  const defaultNamespace = args.namespace ?? 'default';
  const namespaces = await namespaceInfos(
    inputs.flatMap((i) => documentNamespaces(i.doc, defaultNamespace)),
    args,
    reader,
  );
  const namespaceOf = (name: string): NamespaceInfo => namespaces.get(name) ?? { name, labels: {}, origin: 'unknown' };
  return inputs.flatMap(({ doc, source }) => explainDocument(doc, { config, namespaceOf, defaultNamespace, source }));
}

/** Runs `dfs-injector explain` with `argv` (the words after "explain"); resolves to the exit status. */
export async function run(argv: readonly string[], io: DiagnoseIo = processDiagnoseIo(), readerFactory: ExplainReaderFactory = defaultReaderFactory): Promise<number> {
  let args: ExplainArgs;
  try {
    args = parseExplainArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`error: ${error.message}\nSee "dfs-injector explain --help".\n`);
    return EXIT.usage;
  }
  if (args.help) {
    io.stdout.write(EXPLAIN_HELP);
    return EXIT.ok;
  }
  let explanations: PodExplanation[];
  try {
    explanations = await explain(args, io, readerFactory);
  } catch (error) {
    if (error instanceof InputError || error instanceof ClusterError) {
      io.stderr.write(`error: ${error.message}\n`);
      return EXIT.error;
    }
    throw error;
  }
  if (args.output === 'json') {
    const plain = explanations.map(({ before: _b, after: _a, entry, ...rest }) => ({ ...rest, entry: entry === undefined ? null : { name: entry.name, path: entry.path } }));
    io.stdout.write(`${JSON.stringify(plain, null, 2)}\n`);
  } else {
    io.stdout.write(renderExplanations(explanations));
  }
  return EXIT.ok;
}
