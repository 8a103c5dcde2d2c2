import { Counter, Gauge, type GaugeConfiguration, type Registry } from 'prom-client';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { CertSync, CertSyncError, HOUR_MS, describeWaiting, type CertLogger, type CertSyncOptions } from './cert-sync.js';
import type { CertState, RotationPhase } from './tls-secret.js';

export { CertSyncError, type CertLogger } from './cert-sync.js';

export interface CertLifecycleOptions extends CertSyncOptions {
  /** How soon an unconfirmed check is tried again. Default 30 s. */
  readonly confirmRetryMs?: number;
  /** Retry timing after a failed sync. */
  readonly retry?: BackoffOptions;
  /** Called once, when a valid certificate is first in place and its CA published. */
  readonly onReady?: () => void;
  /** Where `dfs_injector_cert_sync_errors_total` goes; default a private Registry. */
  readonly registry?: Registry;
  readonly logger?: CertLogger;
  /** Injected clock and randomness, ms since the epoch and [0, 1). */
  readonly now?: () => number;
  readonly random?: () => number;
}

export interface CertLifecycleStatus {
  readonly ready: boolean;
  readonly phase: RotationPhase | undefined;
  /** notAfter of the serving certificate last written to the TLS directory. */
  readonly servingNotAfter: Date | undefined;
  readonly lastSyncAt: Date | undefined;
  readonly lastError: string | undefined;
  readonly consecutiveFailures: number;
  /**
   * Set while the previous CA stays published because not every ready endpoint of the Service
   * was seen presenting a certificate of the new CA: what is missing, in words.
   */
  readonly caRotationWaiting: string | undefined;
}

export interface CertLifecycle {
  /**
   * True once a valid serving certificate has been written and its CA published to every
   * webhook entry, for as long as that certificate has not expired. A failed re-sync alone does
   * not make a replica unready: the certificate it serves is still good, and pulling every
   * replica out of the Service because the API server hiccuped would only make it worse.
   */
  ready(): boolean;
  status(): CertLifecycleStatus;
  /**
   * Settles once the TLS directory holds a usable pair: immediately if a previous container in
   * this pod left one, else after the first sync. Rejects if the lifecycle is stopped first.
   */
  whenServable(): Promise<void>;
  /** Runs a sync now, or joins the one in progress. Never rejects: failures land in status(). */
  syncNow(): Promise<void>;
  /** Cancels the schedule and waits for a sync in progress. */
  stop(): Promise<void>;
  /**
   * Adds `dfs_injector_cert_sync_errors_total` to a Registry made after the lifecycle started
   * (the server's, which exists only once the files the lifecycle writes are there).
   */
  registerMetrics(registry: Registry): void;
}

export const SYNC_ERRORS_METRIC = 'dfs_injector_cert_sync_errors_total';
export const UNCONFIRMED_METRIC = 'dfs_injector_ca_rotation_unconfirmed_endpoints';
const MIN_DELAY_MS = 1000;
const DEFAULT_CONFIRM_RETRY_MS = 30_000;
const SILENT: CertLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function startCertLifecycle(options: CertLifecycleOptions): CertLifecycle {
  const loop = new SyncLoop(options);
  loop.start();
  return {
    ready: () => loop.ready(),
    status: () => loop.status(),
    whenServable: () => loop.servable.promise,
    syncNow: () => loop.syncNow(),
    stop: () => loop.stop(),
    registerMetrics: (registry) => loop.metrics.registerOn(registry),
  };
}

/** Runs a sync now and then again on a schedule: the check interval, the next rotation step, or backoff after a failure. */
class SyncLoop {
  readonly servable = new ServableLatch();
  readonly metrics: LifecycleMetrics;
  private readonly sync: CertSync;
  private readonly logger: CertLogger;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly checkIntervalMs: number;
  private readonly confirmRetryMs: number;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private lastSyncAt: number | undefined;
  private announcedReady = false;

  constructor(private readonly options: CertLifecycleOptions) {
    this.logger = options.logger ?? SILENT;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.checkIntervalMs = options.checkIntervalMs ?? HOUR_MS;
    this.confirmRetryMs = options.confirmRetryMs ?? DEFAULT_CONFIRM_RETRY_MS;
    const sync = new CertSync(options, this.logger, this.now);
    this.sync = sync;
    this.metrics = new LifecycleMetrics(options.registry, () => sync.waiting?.unconfirmed ?? 0);
  }

  /** A pair a previous container of this pod left is served at once, while the first sync runs. */
  start(): void {
    void (async () => {
      if (await this.sync.hasUsableFiles()) this.servable.mark();
    })().catch(() => undefined);
    void this.syncNow();
  }

  ready(): boolean {
    return this.sync.written !== undefined && this.sync.written.notAfter.getTime() > this.now();
  }

  status(): CertLifecycleStatus {
    const { sync } = this;
    return {
      ready: this.ready(),
      phase: sync.state?.phase,
      servingNotAfter: sync.written?.notAfter,
      lastSyncAt: this.lastSyncAt === undefined ? undefined : new Date(this.lastSyncAt),
      lastError: this.lastError,
      consecutiveFailures: this.failures,
      caRotationWaiting: sync.waiting === undefined ? undefined : describeWaiting(sync.waiting),
    };
  }

  syncNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer();
    await this.running;
    if (!this.servable.settled) this.servable.abandon(new CertSyncError('the certificate lifecycle stopped before a certificate was in place'));
  }

  private async pass(): Promise<void> {
    this.cancelTimer();
    let delay: number;
    try {
      const { state } = await this.sync.run();
      delay = this.succeeded(state);
    } catch (error) {
      delay = this.failed(error);
    }
    if (!this.stopped) this.scheduleNext(delay);
  }

  /** Records a good sync and returns how long until the next one. */
  private succeeded(state: CertState): number {
    this.failures = 0;
    this.lastError = undefined;
    this.lastSyncAt = this.now();
    if (!this.servable.settled) this.servable.mark();
    this.announceReadyOnce(state);
    const periodic = this.checkIntervalMs * (0.9 + 0.2 * this.random());
    // The drain time has passed but not every endpoint serves the new CA: look again soon,
    // not at once (each look is a handshake with every replica).
    if (this.sync.waiting !== undefined) return Math.min(periodic, this.confirmRetryMs);
    return Math.min(periodic, Math.max(MIN_DELAY_MS, this.sync.nextChange(state) - this.now()));
  }

  /** Records a failed sync and returns the backoff before the retry. */
  private failed(error: unknown): number {
    this.failures += 1;
    this.lastError = error instanceof Error ? error.message : String(error);
    this.metrics.syncErrors.inc();
    const delay = backoffDelay(this.failures, this.options.retry, this.random);
    this.logger.error({ err: error, attempt: this.failures, retryInMs: Math.round(delay) }, `certificate sync failed: ${this.lastError}`);
    return delay;
  }

  private announceReadyOnce(state: CertState): void {
    if (this.announcedReady || !this.ready()) return;
    this.announcedReady = true;
    this.logger.info({ phase: state.phase, notAfter: this.sync.written?.notAfter.toISOString() }, 'serving certificate in place and CA published');
    this.options.onReady?.();
  }

  private scheduleNext(delay: number): void {
    this.timer = setTimeout(() => void this.syncNow(), delay);
    // Once the server runs it keeps the process alive and this timer alone must not; before
    // that, the retries are all that is left to wait for.
    if (this.servable.settled) this.timer.unref();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Settles once the TLS directory holds a usable pair, or rejects if the lifecycle stops first. */
class ServableLatch {
  readonly promise: Promise<void>;
  settled = false;
  private resolve: () => void = () => undefined;
  private reject: (error: Error) => void = () => undefined;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Nobody has to ask; a rejection on stop() must not become an unhandled rejection.
    this.promise.catch(() => undefined);
  }

  mark(): void {
    this.settled = true;
    this.resolve();
  }

  abandon(error: Error): void {
    this.settled = true;
    this.reject(error);
  }
}

/** The lifecycle's two metrics, on the Registry given at start and any the server adds later. */
class LifecycleMetrics {
  readonly syncErrors: Counter;
  private readonly unconfirmed: Gauge;
  private readonly registered: Set<Registry>;

  constructor(registry: Registry | undefined, unconfirmedEndpoints: () => number) {
    this.registered = new Set(registry === undefined ? [] : [registry]);
    this.syncErrors = sharedMetric(registry, Counter, {
      name: SYNC_ERRORS_METRIC,
      help: 'Failed synchronisations of the TLS Secret, caBundle or serving files; each is retried with backoff.',
    });
    this.unconfirmed = sharedMetric<GaugeConfiguration<string>, Gauge>(registry, Gauge, {
      name: UNCONFIRMED_METRIC,
      help: 'Ready webhook endpoints not seen presenting a certificate of the new CA while a CA rotation waits to drop the previous CA; 0 otherwise.',
      collect() {
        this.set(unconfirmedEndpoints());
      },
    });
  }

  registerOn(registry: Registry): void {
    if (this.registered.has(registry)) return;
    this.registered.add(registry);
    if (registry.getSingleMetric(SYNC_ERRORS_METRIC) === undefined) registry.registerMetric(this.syncErrors);
    if (registry.getSingleMetric(UNCONFIRMED_METRIC) === undefined) registry.registerMetric(this.unconfirmed);
  }
}

/** Two lifecycles (or a restart in tests) on one Registry share its metric rather than throw. */
function sharedMetric<C extends { readonly name: string }, M>(
  registry: Registry | undefined,
  type: new (configuration: C) => M,
  configuration: C,
): M {
  const existing = registry?.getSingleMetric(configuration.name);
  if (existing instanceof type) return existing;
  return new type({ ...configuration, registers: registry === undefined ? [] : [registry] });
}
