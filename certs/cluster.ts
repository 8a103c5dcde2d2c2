import { basename, dirname, resolve } from 'node:path';
import type { Registry } from 'prom-client';
import type { KubeEndpoint } from '../kube/api.js';
import { ClusterAccessError } from '../kube/access.js';
import { loadKubeEndpoint } from '../kube/endpoint.js';
import { KubeCertStore } from './kube-store.js';
import { startCertLifecycle, type CertLifecycle, type CertLogger } from './lifecycle.js';

export interface ClusterCertificateOptions {
  /** Secret holding the CA and serving certificate (created if missing). */
  readonly secretName: string;
  /** MutatingWebhookConfiguration whose entries get the caBundle. */
  readonly webhookConfigName: string;
  /** Namespace of the Secret and of the webhook's Service. */
  readonly namespace: string;
  /** Name of the webhook's Service: the serving certificate's DNS names. Default "dfs-injector". */
  readonly service?: string;
  /** Without one: $KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  readonly kubeconfig?: string;
  /** Where serve reads the pair; both must be in one directory, which the lifecycle owns. */
  readonly tlsCertPath: string;
  readonly tlsKeyPath: string;
  readonly logger?: CertLogger;
}

/** A flag combination that cannot work; the message names the flags. */
export class ClusterCertificateError extends Error {
  override readonly name = 'ClusterCertificateError';
}

/** The part of the webhook server the lifecycle reports into. */
export interface CertReportingTarget {
  addReadinessCheck(check: { readonly name: string; ready(): boolean; note?(): string | undefined; readonly gating?: boolean }): void;
  readonly metrics: { readonly registry: Registry };
}

/**
 * Starts the certificate lifecycle for `serve --tls-secret`, and settles once the TLS directory
 * holds a pair the server can start with. Until then failures are retried with backoff (and
 * logged); the server cannot listen without a certificate anyway.
 */
export async function startClusterCertificates(options: ClusterCertificateOptions): Promise<CertLifecycle> {
  const certPath = resolve(options.tlsCertPath);
  const keyPath = resolve(options.tlsKeyPath);
  if (dirname(certPath) !== dirname(keyPath)) {
    throw new ClusterCertificateError(
      `--tls-cert (${options.tlsCertPath}) and --tls-key (${options.tlsKeyPath}) must be in the same directory with --tls-secret: the pair is swapped there as one unit`,
    );
  }
  let endpoint: KubeEndpoint;
  try {
    endpoint = await loadKubeEndpoint(options.kubeconfig === undefined ? {} : { kubeconfig: options.kubeconfig });
  } catch (error) {
    if (error instanceof ClusterAccessError) throw new ClusterCertificateError(error.message);
    throw error;
  }
  const service = options.service ?? 'dfs-injector';
  const store = new KubeCertStore(endpoint, {
    namespace: options.namespace,
    secretName: options.secretName,
    webhookConfigName: options.webhookConfigName,
    service,
  });
  const lifecycle = startCertLifecycle({
    store,
    tlsDir: dirname(certPath),
    certFile: basename(certPath),
    keyFile: basename(keyPath),
    service,
    namespace: options.namespace,
    // The previous CA leaves the caBundle once every ready endpoint of the Service serves the new one.
    endpoints: store,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  await lifecycle.whenServable();
  return lifecycle;
}

/** /readyz waits for the lifecycle, and its error counter is scraped with the server's metrics. */
export function reportCertificatesTo(lifecycle: CertLifecycle, server: CertReportingTarget): void {
  lifecycle.registerMetrics(server.metrics.registry);
  server.addReadinessCheck({ name: 'certificate', ready: () => lifecycle.ready() });
  // Said in /readyz but not failing it: a rotation waiting for a replica is no reason to pull
  // every replica out of the Service (failurePolicy Fail would then refuse every pod).
  server.addReadinessCheck({
    name: 'ca-rotation-confirmed',
    gating: false,
    ready: () => lifecycle.status().caRotationWaiting === undefined,
    note: () => lifecycle.status().caRotationWaiting,
  });
}
