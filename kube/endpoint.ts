// The minimal client's endpoint (kube/api.ts) from the cluster access kube/access.ts resolves.
// A user or cluster that needs more than a token or a client certificate (an exec plugin, an auth
// provider, basic auth, impersonation, a proxy) goes through @kubernetes/client-node, loaded only
// then: in a pod, the path every replica of `serve --tls-secret` takes, it is never loaded.
import { readFile } from 'node:fs/promises';
import type { KubeEndpoint } from './api.js';
import { ClusterAccessError, message, resolveClusterAccess, tokenReader, type ClusterAccess, type ClusterAccessOptions, type KubeconfigAccess, type KubeconfigSection } from './access.js';

/** The fields of a kubeconfig user this client handles itself; anything else goes to client-node. */
const PLAIN_USER_FIELDS = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data']);
const PLAIN_CLUSTER_FIELDS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions', 'disable-compression']);

/** Resolves the cluster access and makes the minimal client's endpoint of it. */
export async function loadKubeEndpoint(options: ClusterAccessOptions = {}): Promise<KubeEndpoint> {
  return kubeEndpoint(await resolveClusterAccess(options));
}

export async function kubeEndpoint(access: ClusterAccess): Promise<KubeEndpoint> {
  if (access.kind === 'in-cluster') {
    const token = tokenReader(access.tokenFile);
    return { server: access.server, ca: access.ca, headers: async () => ({ authorization: `Bearer ${await token()}` }) };
  }
  const { cluster, user } = access;
  if (Object.keys(user).some((field) => !PLAIN_USER_FIELDS.has(field)) || Object.keys(cluster).some((field) => !PLAIN_CLUSTER_FIELDS.has(field))) {
    const { clientNodeEndpoint } = await import('./client-node.js');
    return clientNodeEndpoint(access);
  }
  const ca = await dataOrFile(cluster, 'certificate-authority', access);
  const cert = await dataOrFile(user, 'client-certificate', access);
  const key = await dataOrFile(user, 'client-key', access);
  const tlsServerName = cluster['tls-server-name'];
  const token = await userToken(user);
  return {
    server: cluster.server as string,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(typeof tlsServerName === 'string' && tlsServerName !== '' ? { tlsServerName } : {}),
    headers: token === undefined ? () => Promise.resolve({}) : async () => ({ authorization: `Bearer ${await token()}` }),
  };
}

/** The user's bearer token, fixed or from a file (checked now); undefined without one. */
async function userToken(user: KubeconfigSection): Promise<(() => Promise<string>) | undefined> {
  if (typeof user.token === 'string' && user.token !== '') {
    const fixed = user.token;
    return () => Promise.resolve(fixed);
  }
  if (typeof user.tokenFile !== 'string' || user.tokenFile === '') return undefined;
  const token = tokenReader(user.tokenFile);
  await token();
  return token;
}

async function dataOrFile(section: KubeconfigSection, field: string, access: KubeconfigAccess): Promise<Buffer | undefined> {
  const data = section[`${field}-data`];
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  const path = section[field];
  if (typeof path !== 'string' || path === '') return undefined;
  return readFile(path).catch((error: unknown) => {
    throw new ClusterAccessError(`${access.source}: cannot read ${field} ${path}: ${message(error)}`);
  });
}
