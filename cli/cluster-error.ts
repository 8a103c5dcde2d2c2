// What audit and explain need to know about the cluster reader without loading
// @kubernetes/client-node: importing it costs every CLI command about 0.6 s of start-up.

import type { ClusterAccessOptions } from '../kube/access.js';
import { InputError } from './errors.js';

export const DEFAULT_PAGE_SIZE = 500;

/** --kubeconfig and --context; kube/access.ts resolves them, and what they leave open, for every command. */
export type KubeconfigOptions = Pick<ClusterAccessOptions, 'kubeconfig' | 'context'>;

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
