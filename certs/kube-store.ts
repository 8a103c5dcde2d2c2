import { KubeApiError, kubeApi, type KubeApi, type KubeEndpoint } from '../kube/api.js';
import type { EndpointSource, ServingEndpoint } from './endpoints.js';
import type { CertStore, SecretData, StoredSecret, WebhookCaBundles, Written } from './store.js';

export interface KubeCertStoreOptions {
  /** Namespace of the Secret (the webhook's own namespace). */
  readonly namespace: string;
  readonly secretName: string;
  /** Name of the MutatingWebhookConfiguration whose entries get the caBundle. */
  readonly webhookConfigName: string;
  /** Recorded in managedFields for every write. Default "dfs-injector". */
  readonly fieldManager?: string;
  /** A request that takes longer is aborted and counts as a failure. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** The webhook's Service, whose ready endpoints must serve the new CA before the old is dropped. */
  readonly service?: string;
  /** The Service port the API server calls. Default "https" (manifests/base/service.yaml). */
  readonly servicePortName?: string;
}

/** An API call failed for a reason other than the conflicts the lifecycle handles itself. */
export class CertStoreError extends Error {
  override readonly name = 'CertStoreError';
  /** The HTTP status, when the API server answered. */
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
}

type JsonPatchOperation =
  | { op: 'test' | 'replace' | 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string };

const JSON_PATCH = 'application/json-patch+json';
const DEFAULT_FIELD_MANAGER = 'dfs-injector';
const DEFAULT_TIMEOUT_MS = 30_000;
const SECRET_LABELS = { 'app.kubernetes.io/name': 'dfs-injector', 'app.kubernetes.io/component': 'webhook-tls' };

/**
 * caBundle updates are RFC 6902 JSON patches that `test` each entry's name and current caBundle
 * before replacing it, rather than server-side apply:
 *  - the caBundle is the one field whose old value matters: during a CA rotation a replica
 *    holding an out-of-date Secret must not replace "old CA + new CA" with "old CA". A `test`
 *    makes the write conditional on exactly that field, so unrelated edits (a GitOps tool
 *    changing a selector) do not cause conflicts, and lost updates of the bundle cannot happen.
 *  - server-side apply would need the names of the entries first anyway, would take ownership
 *    of entries we only decorate, and applies blindly: it has no "only if it still holds X".
 * The writes still carry `fieldManager`, so managedFields names dfs-injector as the caBundle's
 * owner and an apply of the manifests (which leave caBundle out) does not remove it.
 *
 * RFC 6902 cannot `test` that a member is absent, so when an entry has no caBundle yet the patch
 * also pins the object's resourceVersion: that only happens at first install.
 */
/** The parts of the API objects read here; everything else in them is ignored. */
interface SecretObject {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly data?: Record<string, string>;
}

interface WebhookConfigurationObject {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly webhooks?: readonly { readonly name: string; readonly clientConfig?: { readonly caBundle?: string } }[];
}

interface EndpointSliceList {
  readonly items?: readonly {
    readonly addressType?: string;
    readonly ports?: readonly { readonly name?: string; readonly port?: number }[];
    readonly endpoints?: readonly {
      readonly addresses?: readonly string[];
      readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean };
      readonly targetRef?: { readonly kind?: string; readonly name?: string };
    }[];
  }[];
}

export class KubeCertStore implements CertStore, EndpointSource {
  private readonly api: KubeApi;
  private readonly service: string;
  private readonly servicePortName: string;
  private readonly namespace: string;
  private readonly secretName: string;
  private readonly webhookConfigName: string;
  private readonly fieldManager: string;
  private readonly timeoutMs: number;

  constructor(endpoint: KubeEndpoint, options: KubeCertStoreOptions) {
    this.api = kubeApi(endpoint);
    this.service = options.service ?? 'dfs-injector';
    this.servicePortName = options.servicePortName ?? 'https';
    this.namespace = options.namespace;
    this.secretName = options.secretName;
    this.webhookConfigName = options.webhookConfigName;
    this.fieldManager = options.fieldManager ?? DEFAULT_FIELD_MANAGER;
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Closes the connections kept open to the API server. */
  close(): void {
    this.api.close();
  }

  async readSecret(): Promise<StoredSecret | undefined> {
    let secret: SecretObject;
    try {
      secret = await this.api.call<SecretObject>({ method: 'GET', path: this.secretPath(this.secretName), timeoutMs: this.timeoutMs });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.failure(`read Secret ${this.secretRef()}`, error);
    }
    return { data: decodeData(secret.data), resourceVersion: secret.metadata?.resourceVersion ?? '' };
  }

  async createSecret(data: SecretData): Promise<Written | 'conflict'> {
    const body = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: this.secretName, namespace: this.namespace, labels: { ...SECRET_LABELS } },
      type: 'kubernetes.io/tls',
      data: encodeData(data),
    };
    try {
      const created = await this.api.call<SecretObject>({
        method: 'POST',
        path: `${this.secretPath()}?${this.managerQuery()}`,
        body,
        timeoutMs: this.timeoutMs,
      });
      return { resourceVersion: created.metadata?.resourceVersion ?? '' };
    } catch (error) {
      if (statusOf(error) === 409) return 'conflict';
      throw this.failure(`create Secret ${this.secretRef()}`, error);
    }
  }

  async updateSecret(data: SecretData, resourceVersion: string): Promise<Written | 'conflict'> {
    // A resourceVersion in the patched object is a precondition: a stale one gets 409 Conflict.
    // Patching `data` alone keeps labels and annotations that others put on the Secret.
    const patch: JsonPatchOperation[] = [
      { op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion },
      { op: 'add', path: '/data', value: encodeData(data) },
    ];
    try {
      const updated = await this.api.call<SecretObject>({
        method: 'PATCH',
        path: `${this.secretPath(this.secretName)}?${this.managerQuery()}`,
        body: patch,
        contentType: JSON_PATCH,
        timeoutMs: this.timeoutMs,
      });
      return { resourceVersion: updated.metadata?.resourceVersion ?? '' };
    } catch (error) {
      const status = statusOf(error);
      // 404: deleted since it was read; the caller re-reads and creates it again.
      if (status === 409 || status === 404) return 'conflict';
      throw this.failure(`update Secret ${this.secretRef()}`, error);
    }
  }

  async readWebhookCaBundles(): Promise<WebhookCaBundles> {
    try {
      const config = await this.api.call<WebhookConfigurationObject>({ method: 'GET', path: this.webhookConfigPath(), timeoutMs: this.timeoutMs });
      return {
        webhooks: (config.webhooks ?? []).map((webhook) => ({
          name: webhook.name,
          caBundle: webhook.clientConfig?.caBundle === undefined ? undefined : fromBase64(webhook.clientConfig.caBundle),
        })),
        resourceVersion: config.metadata?.resourceVersion ?? '',
      };
    } catch (error) {
      throw this.failure(`read MutatingWebhookConfiguration ${this.webhookConfigName}`, error);
    }
  }

  async patchWebhookCaBundles(bundlePem: string, expected: WebhookCaBundles): Promise<'patched' | 'conflict'> {
    const value = toBase64(bundlePem);
    const patch: JsonPatchOperation[] = [];
    if (expected.webhooks.some((webhook) => webhook.caBundle === undefined)) {
      patch.push({ op: 'test', path: '/metadata/resourceVersion', value: expected.resourceVersion });
    }
    expected.webhooks.forEach((webhook, i) => {
      const path = `/webhooks/${i}/clientConfig/caBundle`;
      // The name guards against entries added, removed or reordered since the read.
      patch.push({ op: 'test', path: `/webhooks/${i}/name`, value: webhook.name });
      if (webhook.caBundle === undefined) {
        patch.push({ op: 'add', path, value });
      } else {
        // The caBundle travels as base64 of bytes, which the API server always re-encodes the
        // same way, so encoding what was read gives back exactly what is stored.
        patch.push({ op: 'test', path, value: toBase64(webhook.caBundle) }, { op: 'replace', path, value });
      }
    });
    if (expected.webhooks.length === 0) return 'patched';
    try {
      await this.api.call({
        method: 'PATCH',
        path: `${this.webhookConfigPath()}?${this.managerQuery()}`,
        body: patch,
        contentType: JSON_PATCH,
        timeoutMs: this.timeoutMs,
      });
      return 'patched';
    } catch (error) {
      const status = statusOf(error);
      // A failed `test` is 422 Unprocessable Entity; a moved resourceVersion is 409 or 422.
      if (status === 409 || status === 422) return 'conflict';
      throw this.failure(`patch the caBundle of MutatingWebhookConfiguration ${this.webhookConfigName}`, error);
    }
  }

  /**
   * The ready endpoints of the webhook Service, from its EndpointSlices (what the API server's
   * Service resolution and kube-proxy route to). Serving-but-terminating endpoints count too:
   * they still answer requests on connections already open.
   */
  async readyEndpoints(): Promise<readonly ServingEndpoint[]> {
    let slices: EndpointSliceList;
    try {
      const selector = encodeURIComponent(`kubernetes.io/service-name=${this.service}`);
      slices = await this.api.call<EndpointSliceList>({
        method: 'GET',
        path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/endpointslices?labelSelector=${selector}`,
        timeoutMs: this.timeoutMs,
      });
    } catch (error) {
      throw this.failure(`list the EndpointSlices of Service ${this.namespace}/${this.service}`, error);
    }
    const endpoints: ServingEndpoint[] = [];
    const seen = new Set<string>();
    for (const slice of slices.items ?? []) {
      if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
      const port = servicePort(slice.ports ?? [], this.servicePortName);
      if (port === undefined) continue;
      for (const endpoint of slice.endpoints ?? []) {
        const conditions = endpoint.conditions ?? {};
        // Unset means ready (the EndpointSlice API's rule); a terminating endpoint still serving counts.
        if (conditions.ready === false && conditions.serving !== true) continue;
        const address = endpoint.addresses?.[0];
        if (address === undefined || seen.has(`${address}:${port}`)) continue;
        seen.add(`${address}:${port}`);
        const pod = endpoint.targetRef?.kind === 'Pod' ? endpoint.targetRef.name : undefined;
        endpoints.push({ address, port, ...(pod === undefined ? {} : { pod }) });
      }
    }
    return endpoints;
  }

  private secretRef(): string {
    return `${this.namespace}/${this.secretName}`;
  }

  private secretPath(name?: string): string {
    const collection = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/secrets`;
    return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
  }

  private webhookConfigPath(): string {
    return `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(this.webhookConfigName)}`;
  }

  private managerQuery(): string {
    return `fieldManager=${encodeURIComponent(this.fieldManager)}`;
  }

  private failure(what: string, error: unknown): CertStoreError {
    const status = statusOf(error);
    if (status === undefined) {
      const reason = error instanceof Error ? error.message : String(error);
      return new CertStoreError(`cannot ${what}: ${reason}`, undefined, { cause: error });
    }
    const detail = statusMessage(error);
    const hint = status === 403 ? ' (check the RBAC rules of the webhook\'s ServiceAccount)' : '';
    return new CertStoreError(`cannot ${what}: HTTP ${status}${detail === undefined ? '' : `: ${detail}`}${hint}`, status, {
      cause: error,
    });
  }
}

/** A Service with one port needs no name for it; with several, the webhook's is the named one. */
function servicePort(ports: readonly { readonly name?: string; readonly port?: number }[], name: string): number | undefined {
  return (ports.length === 1 ? ports[0] : ports.find((p) => p.name === name))?.port;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof KubeApiError ? error.status : undefined;
}

/** The `message` of the Status object the API server sent, when there is one. */
function statusMessage(error: unknown): string | undefined {
  return error instanceof KubeApiError ? error.detail : undefined;
}

function encodeData(data: SecretData): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, toBase64(value)]));
}

function decodeData(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([key, value]) => [key, fromBase64(value)]));
}

function toBase64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function fromBase64(base64: string): string {
  return Buffer.from(base64, 'base64').toString('utf8');
}
