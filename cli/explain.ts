// `dfs-injector explain`: whether and why the webhook would inject a pod, step by step, and the
// change as a unified diff. The steps are lib/explain/explain.ts; this file reads the inputs.
import { isRecord } from '../lib/k8s.js';
import { objectsOf } from '../lib/workloads.js';
import { LABEL_INJECTION } from '../lib/names.js';
import { explainDocument, renderExplanations, type NamespaceInfo, type PodExplanation } from '../lib/explain/explain.js';
import { defineCommand, type Command, type ParsedArgs } from './command.js';
import { loadConfig } from './config-file.js';
import { parseLabelList, processDiagnoseIo, readManifests, type DiagnoseIo } from './diagnose-io.js';
import { EXIT, InputError, UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { runCommandLine } from './dispatch.js';
import { choiceValue } from './values.js';
import { parseTarget, type ExplainTarget } from './explain-target.js';
import type { KubeClusterReader } from './kube-reader.js';
import { LazyClusterReader } from './lazy-cluster-reader.js';

export const EXPLAIN_SUMMARY = 'Explain, step by step, whether and why the webhook would inject a pod';

const DESCRIPTION = `Steps: the namespace labels against each webhook entry's namespaceSelector, the pod labels
against its objectSelector, the role, Pod Security, the override annotations, the plan and its
conflicts, the webhook's answer (warnings, auditAnnotations), and the change as a unified diff.

A pod is read from the cluster with NAMESPACE/NAME (or NAME with -n), a workload with KIND/NAME
(-n for its namespace) or NAMESPACE/KIND/NAME, its namespace labels too; a workload is explained
by its pod template. KIND is pod, deployment (deploy), statefulset (sts), daemonset (ds),
replicaset (rs), replicationcontroller (rc), job or cronjob (cj).
With -f, the first document is explained (--all: every document; workloads by their pod
template); namespace labels come from --namespace-labels, from the cluster when --kubeconfig or
--context is given, or else are assumed to be ${LABEL_INJECTION}=enabled, as the output says.

Exit status: 0 explained, 2 usage error, 3 an input could not be read.`;

const OPTIONS = {
  filename: { type: 'string', short: 'f', multiple: true, value: 'FILE|-', description: 'Explain manifests instead of a live object; "-" is stdin' },
  all: { type: 'boolean', description: 'With -f: every document, not only the first' },
  namespace: { type: 'string', short: 'n', value: 'NS', description: 'Namespace of the pod or workload, or of documents that name none', default: 'default' },
  'namespace-labels': { type: 'string', value: 'K=V,...', description: "The namespace's labels, instead of reading them from the cluster" },
  config: { type: 'string', value: 'FILE', description: "The webhook's config", default: 'embedded defaults' },
  kubeconfig: { type: 'string', value: 'FILE', description: 'Kubeconfig', default: 'KUBECONFIG, ~/.kube/config, then the in-cluster service account' },
  context: { type: 'string', value: 'NAME', description: 'Kubeconfig context' },
  output: { type: 'string', short: 'o', value: 'FORMAT', description: 'text or json', default: 'text' },
} as const;

type OptionName = keyof typeof OPTIONS;

interface ExplainArgs {
  files: string[];
  target: ExplainTarget | undefined;
  all: boolean;
  namespace: string | undefined;
  namespaceLabels: Record<string, string> | undefined;
  config: string | undefined;
  kubeconfig: string | undefined;
  context: string | undefined;
  output: 'text' | 'json';
}

function explainArgs(parsed: ParsedArgs<OptionName>): ExplainArgs {
  const files = parsed.strings('filename');
  const labels = parsed.string('namespace-labels');
  const args: ExplainArgs = {
    files,
    target: undefined,
    all: parsed.flag('all'),
    namespace: parsed.string('namespace'),
    namespaceLabels: labels === undefined ? undefined : parseLabelList(labels, '--namespace-labels', 'explain'),
    config: parsed.string('config'),
    kubeconfig: parsed.string('kubeconfig'),
    context: parsed.string('context'),
    output: choiceValue('--output', parsed.string('output') ?? 'text', ['text', 'json'] as const, 'explain'),
  };
  const positionals = parsed.positionals;
  if (positionals.length > 1) throw new UsageError(`explain takes one pod or workload, got ${positionals.length}: ${positionals.join(' ')}`, 'explain');
  const target = positionals[0];
  if ((target === undefined) === (files.length === 0)) {
    throw new UsageError('give either a pod or workload (NAMESPACE/NAME, KIND/NAME) or manifests with -f, not both and not neither', 'explain');
  }
  if (args.all && files.length === 0) throw new UsageError('--all applies to -f', 'explain');
  if (target !== undefined) args.target = parseTarget(target, args.namespace);
  return args;
}

/** Strips what the API server adds after admission, so the diff shows what the webhook would see. */
function asAdmitted(object: Record<string, unknown>): Record<string, unknown> {
  const { status: _status, ...rest } = object;
  if (isRecord(rest.metadata)) {
    const { managedFields: _managed, ...meta } = rest.metadata;
    rest.metadata = meta;
  }
  return rest;
}

function documentNamespaces(doc: unknown, fallback: string): string[] {
  return objectsOf(doc).map(({ object }) => {
    const meta = isRecord(object.metadata) ? object.metadata : {};
    return typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : fallback;
  });
}

type Reader = Pick<KubeClusterReader, 'readNamespace' | 'readObject'>;

/** Makes the cluster reader; tests pass one that talks to a fake API server. */
export type ExplainReaderFactory = (args: { kubeconfig: string | undefined; context: string | undefined }) => Reader;

const defaultReaderFactory: ExplainReaderFactory = ({ kubeconfig, context }) =>
  new LazyClusterReader({ ...(kubeconfig === undefined ? {} : { kubeconfig }), ...(context === undefined ? {} : { context }) });

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

async function explain(args: ExplainArgs, io: CliIo, readerFactory: ExplainReaderFactory): Promise<PodExplanation[]> {
  const { config } = await loadConfig(args.config, io);
  let cached: Reader | undefined;
  const reader = (): Reader => (cached ??= readerFactory({ kubeconfig: args.kubeconfig, context: args.context }));
  const inputs: { doc: unknown; source: string }[] = [];
  if (args.target !== undefined) {
    const { kind, namespace, name } = args.target;
    const what = `${kind.toLowerCase()} ${namespace}/${name}`;
    const object = await reader().readObject(args.target);
    if (object === undefined) throw new InputError(`${what} not found`);
    inputs.push({ doc: asAdmitted(object), source: what });
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

/** The `explain` command for the CLI's command table; tests pass a reader factory for a fake API server. */
export function makeExplainCommand(readerFactory: ExplainReaderFactory = defaultReaderFactory): Command {
  return defineCommand({
    name: 'explain',
    summary: EXPLAIN_SUMMARY,
    usage: 'explain (-f FILE|- | NAMESPACE/NAME | [NAMESPACE/]KIND/NAME) [options]',
    description: DESCRIPTION,
    options: OPTIONS,
    positionals: 'NAMESPACE/NAME or [NAMESPACE/]KIND/NAME',
    examples: [
      'dfs-injector explain media/sonarr-7d9f8b6c5d-x2k4q',
      'dfs-injector explain deploy/radarr -n media',
      `dfs-injector explain -f deploy/radarr.yaml --namespace-labels ${LABEL_INJECTION}=enabled`,
      'kubectl get deploy radarr -o yaml | dfs-injector explain -f - --context prod',
    ],
    async run(parsed, io) {
      const args = explainArgs(parsed);
      const explanations = await explain(args, io, readerFactory);
      if (args.output === 'json') {
        const plain = explanations.map(({ before: _b, after: _a, entry, ...rest }) => ({ ...rest, entry: entry === undefined ? null : { name: entry.name, path: entry.path } }));
        io.stdout.write(`${JSON.stringify(plain, null, 2)}\n`);
      } else {
        io.stdout.write(renderExplanations(explanations));
      }
      return EXIT.ok;
    },
  });
}

export const explainCommand: Command = makeExplainCommand();

/** Runs `dfs-injector explain` with `argv` (the words after "explain") through the CLI's dispatcher. */
export function run(argv: readonly string[], io: DiagnoseIo = processDiagnoseIo(), readerFactory: ExplainReaderFactory = defaultReaderFactory): Promise<number> {
  return runCommandLine(['explain', ...argv], io, [makeExplainCommand(readerFactory)]);
}
