export interface BackoffOptions {
  /** Delay before the first retry. Default 1 s. */
  readonly initialMs?: number;
  /** Upper bound of any delay. Default 5 min. */
  readonly maxMs?: number;
}

export const DEFAULT_BACKOFF = { initialMs: 1000, maxMs: 5 * 60 * 1000 } as const;

/**
 * Delay before retry number `attempt` (1 for the first retry): exponential, capped, with
 * "equal jitter" (a random point in the upper half), so replicas that failed together do not
 * retry together, and no delay collapses to zero.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initialMs = options.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const maxMs = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const ceiling = Math.min(maxMs, initialMs * 2 ** exponent);
  return ceiling / 2 + random() * (ceiling / 2);
}
