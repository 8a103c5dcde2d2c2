import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { isIPv6 } from 'node:net';
import jsyaml from 'js-yaml';
import type { KubeEndpoint } from './kube-api.js';

/** The kubeconfig or in-cluster configuration cannot be used; the message says why. */
export class KubeCredentialsError extends Error {
  override readonly name = 'KubeCredentialsError';
}

export interface KubeCredentialsOptions {
  /** An explicit kubeconfig file (--kubeconfig). */
  readonly kubeconfig?: string;
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

/**
 * The API server and credentials, in kubectl's order: --kubeconfig, $KUBECONFIG, ~/.kube/config,
 * then the pod's ServiceAccount. A kubeconfig whose user needs more than a token or a client
 * certificate (an exec plugin, an auth provider, basic auth, impersonation), or a $KUBECONFIG
 * naming several files to merge, is handed to @kubernetes/client-node, loaded only then: in a
 * pod, the path every replica takes, it is never loaded.
 */
export async function loadKubeEndpoint(options: KubeCredentialsOptions = {}): Promise<KubeEndpoint> {
  const env = options.env ?? process.env;
  if (options.kubeconfig !== undefined) return fromKubeconfigFile(options.kubeconfig, `--kubeconfig ${options.kubeconfig}`);
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).filter((file) => file !== '');
  if (fromEnv.length === 1) return fromKubeconfigFile(fromEnv[0]!, `KUBECONFIG=${fromEnv[0]}`);
  if (fromEnv.length > 1) return viaClientNode(undefined, `KUBECONFIG=${env.KUBECONFIG}`);
  const home = options.home ?? homedir();
  const userConfig = join(home, '.kube', 'config');
  if (home !== '' && existsSync(userConfig)) return fromKubeconfigFile(userConfig, userConfig);
  const saDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (existsSync(join(saDir, 'token'))) return inCluster(env, saDir);
  throw new KubeCredentialsError('no Kubernetes cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or run in a pod');
}

/** The pod's ServiceAccount: token and CA from `saDir`, the API server from the kubelet's env. */
export async function inCluster(env: NodeJS.ProcessEnv, saDir: string): Promise<KubeEndpoint> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new KubeCredentialsError(`in-cluster configuration: ${saDir}/token exists but KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set`);
  }
  const ca = await readFile(join(saDir, 'ca.crt'), 'utf8').catch((error: unknown) => {
    throw new KubeCredentialsError(`in-cluster configuration: cannot read ${saDir}/ca.crt: ${message(error)}`);
  });
  const token = tokenFile(join(saDir, 'token'));
  await token(); // fails now, with its path, rather than on the first call
  return {
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    ca,
    headers: async () => ({ authorization: `Bearer ${await token()}` }),
  };
}

/** A bearer token read from a file, re-read when it may have been rotated. */
function tokenFile(path: string): () => Promise<string> {
  let cached: { token: string; readAt: number } | undefined;
  return async () => {
    if (cached !== undefined && Date.now() - cached.readAt < TOKEN_REREAD_MS) return cached.token;
    let token: string;
    try {
      token = (await readFile(path, 'utf8')).trim();
    } catch (error) {
      throw new KubeCredentialsError(`cannot read the token file ${path}: ${message(error)}`);
    }
    if (token === '') throw new KubeCredentialsError(`the token file ${path} is empty`);
    cached = { token, readAt: Date.now() };
    return token;
  };
}

/** The fields of a kubeconfig user this client handles itself; anything else goes to client-node. */
const PLAIN_USER_FIELDS = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data']);
const KNOWN_CLUSTER_FIELDS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
  'proxy-url',
  'disable-compression',
]);

async function readKubeconfig(path: string, source: string): Promise<Record<string, unknown>> {
  // kubeconfig files are small; a megabyte is far beyond any real one.
  const info = await stat(path).catch((error: unknown) => {
    throw new KubeCredentialsError(`cannot load ${source}: ${message(error)}`);
  });
  if (info.size > 1024 * 1024) throw new KubeCredentialsError(`cannot load ${source}: larger than 1 MiB`);
  let doc: unknown;
  try {
    doc = jsyaml.load(await readFile(path, 'utf8'));
  } catch (error) {
    throw new KubeCredentialsError(`cannot load ${source}: ${message(error)}`);
  }
  if (!isObject(doc)) throw new KubeCredentialsError(`cannot load ${source}: not a kubeconfig (a YAML mapping)`);
  return doc;
}

async function fromKubeconfigFile(path: string, source: string): Promise<KubeEndpoint> {
  const doc = await readKubeconfig(path, source);
  const contextName = doc['current-context'];
  if (typeof contextName !== 'string' || contextName === '') {
    throw new KubeCredentialsError(`${source}: no current-context set`);
  }
  const context = namedEntry(doc.contexts, contextName, 'context', source);
  const clusterName = context.cluster;
  if (typeof clusterName !== 'string') throw new KubeCredentialsError(`${source}: context ${contextName} names no cluster`);
  const cluster = namedEntry(doc.clusters, clusterName, 'cluster', source);
  const userName = context.user;
  const user = typeof userName === 'string' && userName !== '' ? namedEntry(doc.users, userName, 'user', source) : {};
  if (Object.keys(user).some((field) => !PLAIN_USER_FIELDS.has(field)) || Object.keys(cluster).some((field) => !KNOWN_CLUSTER_FIELDS.has(field))) {
    return viaClientNode(path, source);
  }
  if (cluster['proxy-url'] !== undefined) return viaClientNode(path, source);
  const server = cluster.server;
  if (typeof server !== 'string' || server === '') throw new KubeCredentialsError(`${source}: cluster ${clusterName} has no server`);
  const base = dirname(path);
  const ca = await dataOrFile(cluster, 'certificate-authority', base, source);
  const cert = await dataOrFile(user, 'client-certificate', base, source);
  const key = await dataOrFile(user, 'client-key', base, source);
  const tlsServerName = cluster['tls-server-name'];
  const token = await userToken(user, base);
  return {
    server,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(typeof tlsServerName === 'string' && tlsServerName !== '' ? { tlsServerName } : {}),
    headers: token === undefined ? () => Promise.resolve({}) : async () => ({ authorization: `Bearer ${await token()}` }),
  };
}

/** The user's bearer token, fixed or from a file (checked now); undefined without one. */
async function userToken(user: Record<string, unknown>, base: string): Promise<(() => Promise<string>) | undefined> {
  if (typeof user.token === 'string' && user.token !== '') {
    const fixed = user.token;
    return () => Promise.resolve(fixed);
  }
  if (typeof user.tokenFile !== 'string' || user.tokenFile === '') return undefined;
  const token = tokenFile(resolvePath(base, user.tokenFile));
  await token();
  return token;
}

function namedEntry(list: unknown, name: string, kind: string, source: string): Record<string, unknown> {
  const entry = Array.isArray(list) ? (list as unknown[]).find((item): item is Record<string, unknown> => isObject(item) && item.name === name) : undefined;
  const body = entry?.[kind];
  if (!isObject(body)) throw new KubeCredentialsError(`${source}: no ${kind} named ${name}`);
  return body;
}

async function dataOrFile(section: Record<string, unknown>, field: string, base: string, source: string): Promise<Buffer | undefined> {
  const data = section[`${field}-data`];
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  const file = section[field];
  if (typeof file !== 'string' || file === '') return undefined;
  const path = resolvePath(base, file);
  return readFile(path).catch((error: unknown) => {
    throw new KubeCredentialsError(`${source}: cannot read ${field} ${path}: ${message(error)}`);
  });
}

/** Relative paths in a kubeconfig are relative to the file's directory, as kubectl has it. */
function resolvePath(base: string, file: string): string {
  return isAbsolute(file) ? file : join(base, file);
}

/**
 * A kubeconfig this client does not read itself: client-node loads it and, per request, applies
 * what it resolves (an exec plugin's token, say) to the same minimal client.
 */
async function viaClientNode(path: string | undefined, source: string): Promise<KubeEndpoint> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    if (path === undefined) kc.loadFromDefault();
    else kc.loadFromFile(path);
  } catch (error) {
    throw new KubeCredentialsError(`cannot load ${source}: ${message(error)}`);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new KubeCredentialsError(`${source}: no current cluster`);
  const tls: RequestOptions = {};
  try {
    await kc.applyToHTTPSOptions(tls);
  } catch (error) {
    throw new KubeCredentialsError(`${source}: ${message(error)}`);
  }
  return {
    server: cluster.server,
    ...(tls.ca === undefined ? {} : { ca: tls.ca as string | Buffer }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert as string | Buffer }),
    ...(tls.key === undefined ? {} : { key: tls.key as string | Buffer }),
    ...(tls.rejectUnauthorized === false ? { insecureSkipTlsVerify: true } : {}),
    ...(tls.servername === undefined ? {} : { tlsServerName: tls.servername }),
    headers: async () => {
      const options: RequestOptions = { headers: {} };
      await kc.applyToHTTPSOptions(options);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(options.headers ?? {})) if (typeof value === 'string') headers[name.toLowerCase()] = value;
      if (typeof options.auth === 'string') headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
      return headers;
    },
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
