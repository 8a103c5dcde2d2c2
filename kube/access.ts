// Cluster access, decided once for every command that talks to the API server: where the
// kubeconfig comes from, which context, cluster and user it selects, or the pod's ServiceAccount,
// and what the error says when none of that works. `serve --tls-secret` turns the answer into
// the minimal client's endpoint (kube/endpoint.ts), audit, explain and check into a
// @kubernetes/client-node KubeConfig (kube/client-node.ts); neither reads a kubeconfig itself.
// This module loads no Kubernetes client: the serving path imports it.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { isIPv6 } from 'node:net';
import jsyaml from 'js-yaml';
import { isRecord } from '../lib/k8s.js';

/** The kubeconfig or in-cluster configuration cannot be used; the message says which and why. */
export class ClusterAccessError extends Error {
  override readonly name = 'ClusterAccessError';
}

export interface ClusterAccessOptions {
  /** An explicit kubeconfig file (--kubeconfig). */
  readonly kubeconfig?: string;
  /** A context of the kubeconfig instead of its current-context (--context). */
  readonly context?: string;
  /** Default process.env (KUBECONFIG, KUBERNETES_SERVICE_HOST/PORT). */
  readonly env?: NodeJS.ProcessEnv;
  /** Default os.homedir(): where ~/.kube/config is looked for. */
  readonly home?: string;
  /** Default /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt). */
  readonly serviceAccountDir?: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
// The kubelet rewrites a projected token long before it expires (at 80 % of its life, at most
// 24 h); re-reading it once a minute is what client-go does too.
const TOKEN_REREAD_MS = 60_000;
// kubeconfig files are small; a megabyte is far beyond any real one.
const MAX_KUBECONFIG_BYTES = 1024 * 1024;

export type KubeconfigSection = Readonly<Record<string, unknown>>;

/** One context of a kubeconfig, its cluster and its user, file references made absolute. */
export interface KubeconfigAccess {
  readonly kind: 'kubeconfig';
  /** Where it came from, as messages name it: `--kubeconfig FILE`, `KUBECONFIG=…`, or the path. */
  readonly source: string;
  readonly context: string;
  readonly clusterName: string;
  /** The `cluster` section; `server` is a non-empty string. */
  readonly cluster: KubeconfigSection;
  /** Empty when the context names no user. */
  readonly userName: string;
  readonly user: KubeconfigSection;
}

/** The pod's ServiceAccount, its CA and token files checked readable. */
export interface InClusterAccess {
  readonly kind: 'in-cluster';
  readonly source: string;
  readonly server: string;
  /** PEM of ca.crt. */
  readonly ca: string;
  readonly caFile: string;
  readonly tokenFile: string;
}

export type ClusterAccess = KubeconfigAccess | InClusterAccess;

/**
 * Kubectl's order: --kubeconfig, $KUBECONFIG (several files merged as kubectl merges them: the
 * first file to name a context, cluster or user, or to set current-context, wins), ~/.kube/config,
 * then the pod's ServiceAccount. --context picks a context other than current-context.
 */
export async function resolveClusterAccess(options: ClusterAccessOptions = {}): Promise<ClusterAccess> {
  const env = options.env ?? process.env;
  if (options.kubeconfig !== undefined) return fromKubeconfigFiles([options.kubeconfig], `--kubeconfig ${options.kubeconfig}`, options.context);
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((file) => file !== '');
  if (fromEnv.length > 0) return fromKubeconfigFiles(fromEnv, `KUBECONFIG=${fromEnv.join(delimiter)}`, options.context);
  const home = options.home ?? homedir();
  const userConfig = join(home, '.kube', 'config');
  if (home !== '' && existsSync(userConfig)) return fromKubeconfigFiles([userConfig], userConfig, options.context);
  const saDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (existsSync(join(saDir, 'token'))) {
    if (options.context !== undefined) {
      throw new ClusterAccessError(`--context ${options.context}: no kubeconfig found to take it from (in a pod without one, the ServiceAccount is used and has no contexts)`);
    }
    return inCluster(env, saDir);
  }
  throw new ClusterAccessError('no Kubernetes cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod');
}

/** The pod's ServiceAccount: token and CA from `saDir`, the API server from the kubelet's env. */
async function inCluster(env: NodeJS.ProcessEnv, saDir: string): Promise<InClusterAccess> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new ClusterAccessError(`in-cluster configuration: ${saDir}/token exists but KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set`);
  }
  const caFile = join(saDir, 'ca.crt');
  const ca = await readFile(caFile, 'utf8').catch((error: unknown) => {
    throw new ClusterAccessError(`in-cluster configuration: cannot read ${caFile}: ${message(error)}`);
  });
  const tokenFile = join(saDir, 'token');
  await tokenReader(tokenFile)(); // fails now, with its path, rather than on the first call
  return { kind: 'in-cluster', source: `the ServiceAccount in ${saDir}`, server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`, ca, caFile, tokenFile };
}

/** A bearer token read from a file, re-read when it may have been rotated. */
export function tokenReader(path: string): () => Promise<string> {
  let cached: { token: string; readAt: number } | undefined;
  return async () => {
    if (cached !== undefined && Date.now() - cached.readAt < TOKEN_REREAD_MS) return cached.token;
    let token: string;
    try {
      token = (await readFile(path, 'utf8')).trim();
    } catch (error) {
      throw new ClusterAccessError(`cannot read the token file ${path}: ${message(error)}`);
    }
    if (token === '') throw new ClusterAccessError(`the token file ${path} is empty`);
    cached = { token, readAt: Date.now() };
    return token;
  };
}

/** Named entries and current-context of one or more kubeconfig files, merged. */
interface MergedKubeconfig {
  currentContext: string | undefined;
  readonly contexts: Map<string, Record<string, unknown>>;
  readonly clusters: Map<string, Record<string, unknown>>;
  readonly users: Map<string, Record<string, unknown>>;
}

// The fields kubectl reads as file names; relative ones are relative to the file that holds them.
const CLUSTER_FILE_FIELDS = ['certificate-authority'];
const USER_FILE_FIELDS = ['client-certificate', 'client-key', 'tokenFile'];

async function fromKubeconfigFiles(files: readonly string[], source: string, contextOption: string | undefined): Promise<KubeconfigAccess> {
  const merged: MergedKubeconfig = { currentContext: undefined, contexts: new Map(), clusters: new Map(), users: new Map() };
  for (const file of files) {
    const doc = await readKubeconfig(file, files.length === 1 ? source : `${file} (of ${source})`);
    const current = doc['current-context'];
    if (merged.currentContext === undefined && typeof current === 'string' && current !== '') merged.currentContext = current;
    const base = dirname(file);
    addEntries(merged.contexts, doc.contexts, 'context', () => {});
    addEntries(merged.clusters, doc.clusters, 'cluster', (section) => absolutePaths(section, CLUSTER_FILE_FIELDS, base));
    addEntries(merged.users, doc.users, 'user', (section) => absolutePaths(section, USER_FILE_FIELDS, base));
  }
  const contextName = contextOption ?? merged.currentContext;
  if (contextName === undefined) throw new ClusterAccessError(`${source}: no current-context set`);
  const context = named(merged.contexts, contextName, 'context', source, contextOption === undefined ? '' : ' (--context)');
  const clusterName = context.cluster;
  if (typeof clusterName !== 'string' || clusterName === '') throw new ClusterAccessError(`${source}: context ${contextName} names no cluster`);
  const cluster = named(merged.clusters, clusterName, 'cluster', source, '');
  if (typeof cluster.server !== 'string' || cluster.server === '') throw new ClusterAccessError(`${source}: cluster ${clusterName} has no server`);
  const userName = typeof context.user === 'string' ? context.user : '';
  const user = userName === '' ? {} : named(merged.users, userName, 'user', source, '');
  return { kind: 'kubeconfig', source, context: contextName, clusterName, cluster, userName, user };
}

async function readKubeconfig(path: string, source: string): Promise<Record<string, unknown>> {
  const info = await stat(path).catch((error: unknown) => {
    throw new ClusterAccessError(`cannot load ${source}: ${message(error)}`);
  });
  if (info.size > MAX_KUBECONFIG_BYTES) throw new ClusterAccessError(`cannot load ${source}: larger than 1 MiB`);
  let doc: unknown;
  try {
    doc = jsyaml.load(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ClusterAccessError(`cannot load ${source}: ${message(error)}`);
  }
  if (!isRecord(doc)) throw new ClusterAccessError(`cannot load ${source}: not a kubeconfig (a YAML mapping)`);
  return doc;
}

/** Adds the `{name, <kind>: {...}}` entries of one file that no earlier file named. */
function addEntries(into: Map<string, Record<string, unknown>>, list: unknown, kind: string, adjust: (section: Record<string, unknown>) => void): void {
  if (!Array.isArray(list)) return;
  for (const item of list as unknown[]) {
    if (!isRecord(item) || typeof item.name !== 'string' || into.has(item.name)) continue;
    const body = item[kind];
    if (!isRecord(body)) continue;
    const section = { ...body };
    adjust(section);
    into.set(item.name, section);
  }
}

function named(entries: ReadonlyMap<string, Record<string, unknown>>, name: string, kind: string, source: string, via: string): Record<string, unknown> {
  const entry = entries.get(name);
  if (entry === undefined) throw new ClusterAccessError(`${source}: no ${kind} named ${name}${via}`);
  return entry;
}

/** Relative paths in a kubeconfig are relative to the file's directory, as kubectl has it. */
function absolutePaths(section: Record<string, unknown>, fields: readonly string[], base: string): void {
  for (const field of fields) {
    const value = section[field];
    if (typeof value === 'string' && value !== '' && !isAbsolute(value)) section[field] = join(base, value);
  }
}

export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
