// What audit and explain need to know about the cluster reader without loading
// @kubernetes/client-node: importing it costs every CLI command about 0.6 s of start-up.

export const DEFAULT_PAGE_SIZE = 500;

export interface KubeconfigOptions {
  /** --kubeconfig; otherwise KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  context?: string;
}

import { InputError } from './errors.js';

/** The cluster could not be reached or refused a request; the message says which and why. */
export class ClusterError extends InputError {
  override readonly name = 'ClusterError';
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}
