// The cluster access of kube/access.ts as a @kubernetes/client-node KubeConfig: audit, explain and
// check read the cluster with it (and exec into pods), and the minimal client takes its
// credentials from it for a user it cannot authenticate itself (an exec plugin, an auth provider).
// Importing this module loads client-node (about 0.6 s and 50 MiB): import it only on those paths.
import type { RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterAccessError, message, type ClusterAccess, type KubeconfigAccess } from './access.js';
import type { KubeEndpoint } from './api.js';

/**
 * A KubeConfig of the one context the access selected. client-node reads the sections as they
 * are, so every kind of user it supports (exec plugins, auth providers, …) keeps working.
 */
export function kubeConfigFor(access: ClusterAccess): KubeConfig {
  const kc = new KubeConfig();
  if (access.kind === 'in-cluster') {
    // What client-node's loadFromCluster builds, from the ServiceAccount directory resolved once.
    kc.loadFromOptions({
      clusters: [{ name: 'inCluster', server: access.server, caFile: access.caFile, skipTLSVerify: false }],
      users: [{ name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: access.tokenFile } } }],
      contexts: [{ name: 'inClusterContext', cluster: 'inCluster', user: 'inClusterUser' }],
      currentContext: 'inClusterContext',
    });
    return kc;
  }
  const config = {
    clusters: [{ name: access.clusterName, cluster: access.cluster }],
    users: access.userName === '' ? [] : [{ name: access.userName, user: access.user }],
    contexts: [{ name: access.context, context: { cluster: access.clusterName, ...(access.userName === '' ? {} : { user: access.userName }) } }],
    'current-context': access.context,
  };
  try {
    kc.loadFromString(JSON.stringify(config));
  } catch (error) {
    throw new ClusterAccessError(`cannot load ${access.source}: ${message(error)}`);
  }
  return kc;
}

/** The minimal client's endpoint with what client-node resolves per request (an exec plugin's token, say). */
export async function clientNodeEndpoint(access: KubeconfigAccess): Promise<KubeEndpoint> {
  const kc = kubeConfigFor(access);
  const tls: RequestOptions = {};
  try {
    await kc.applyToHTTPSOptions(tls);
  } catch (error) {
    throw new ClusterAccessError(`${access.source}: ${message(error)}`);
  }
  return {
    server: access.cluster.server as string,
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
