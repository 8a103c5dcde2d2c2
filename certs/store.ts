/**
 * The only Kubernetes operations the certificate lifecycle needs. `KubeCertStore` implements it
 * on the minimal client of kube/api.ts; tests point that implementation at a fake API server.
 *
 * Secret data travels decoded (key → UTF-8 text): every value the lifecycle stores is PEM or
 * a short ASCII string, and base64 is a wire detail of the store.
 */
export type SecretData = Readonly<Record<string, string>>;

export interface StoredSecret {
  readonly data: SecretData;
  readonly resourceVersion: string;
}

/** A write that the API server applied, with the object's new resourceVersion. */
export interface Written {
  readonly resourceVersion: string;
}

export interface WebhookCaBundle {
  readonly name: string;
  /** The entry's caBundle as PEM text, or undefined when it has none. */
  readonly caBundle: string | undefined;
}

export interface WebhookCaBundles {
  /** Every entry of the configuration's `webhooks`, in order. */
  readonly webhooks: readonly WebhookCaBundle[];
  readonly resourceVersion: string;
}

export interface CertStore {
  /** Undefined when the Secret does not exist. */
  readSecret(): Promise<StoredSecret | undefined>;
  /** 'conflict' when a Secret of that name already exists (another replica won the race). */
  createSecret(data: SecretData): Promise<Written | 'conflict'>;
  /** Replaces the data; 'conflict' when the Secret changed (or vanished) since `resourceVersion`. */
  updateSecret(data: SecretData, resourceVersion: string): Promise<Written | 'conflict'>;
  readWebhookCaBundles(): Promise<WebhookCaBundles>;
  /**
   * Sets `bundlePem` on every entry read in `expected`; 'conflict' when any entry no longer holds
   * what `expected` says, in which case nothing was written.
   */
  patchWebhookCaBundles(bundlePem: string, expected: WebhookCaBundles): Promise<'patched' | 'conflict'>;
}
