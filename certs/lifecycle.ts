import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { writeAtomicDir } from './atomic-dir.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { confirmServedBy, tlsCertificateFetcher, type CertificateFetcher, type Confirmation, type EndpointSource } from './endpoints.js';
import { issueCertificateAuthority, issueServingCertificate, type IssueOptions, type KeyPair } from './issue.js';
import { sameCertificates } from './pem.js';
import { nextRotationTime, planRotation, validity, type RotationPolicy, type RotationStep } from './rotation.js';
import type { CertStore } from './store.js';
import { caBundleFor, decodeCertState, encodeCertState, type CertState, type RotationPhase } from './tls-secret.js';

/** The subset of a pino/Fastify logger the lifecycle uses. */
export interface CertLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface CertLifecycleOptions {
  readonly store: CertStore;
  /** The directory the server's TLS watch observes; the files are swapped there atomically. */
  readonly tlsDir: string;
  /** File names inside `tlsDir`. Defaults: tls.crt, tls.key, ca.crt. */
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly caFile?: string;
  /** The webhook's Service and its namespace: the serving certificate's names. */
  readonly service: string;
  readonly namespace: string;
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  /** Lifetime of serving certificates. Default 365. */
  readonly leafDays?: number;
  /** Lifetime of CAs; at least `leafDays`. Default 3650. */
  readonly caDays?: number;
  readonly keyBits?: number;
  /** How often the Secret is re-read and renewal considered. Default 1 h. */
  readonly checkIntervalMs?: number;
  /** How long both CAs are published before serving switches to the new one. Default 10 min. */
  readonly propagationMs?: number;
  /**
   * How long the old CA stays published after the switch. It must exceed the time every
   * replica needs to notice the new Secret: default two check intervals.
   */
  readonly drainMs?: number;
  /**
   * The ready endpoints of the webhook Service. With it, the previous CA leaves the caBundle only
   * once every one of them presents a certificate of the new CA (or the previous CA expired);
   * without it (tests of the rotation alone), after `drainMs`.
   */
  readonly endpoints?: EndpointSource;
  /** How a presented certificate is read. Default: a TLS handshake with each endpoint. */
  readonly fetchCertificate?: CertificateFetcher;
  /** Bound on each handshake of that check. Default 5000. */
  readonly confirmTimeoutMs?: number;
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

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
const RENEW_FRACTION = 1 / 3;
// Each conflict means another replica wrote first; a few re-reads always settle it.
const MAX_ATTEMPTS = 5;
// A sync takes at most reissue → publish-bundle → keep, or one rotation step per pass.
const MAX_STEPS = 4;
const MIN_DELAY_MS = 1000;
const DEFAULT_CONFIRM_TIMEOUT_MS = 5000;
const DEFAULT_CONFIRM_RETRY_MS = 30_000;
const SILENT: CertLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export class CertSyncError extends Error {
  override readonly name = 'CertSyncError';
}

export function startCertLifecycle(options: CertLifecycleOptions): CertLifecycle {
  const logger = options.logger ?? SILENT;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const checkIntervalMs = options.checkIntervalMs ?? HOUR_MS;
  const syncErrors = syncErrorCounter(options.registry);
  const sync = new CertSync(options, logger, now);
  const unconfirmed = unconfirmedGauge(options.registry, () => sync.waiting?.pending.length ?? 0);
  const registered = new Set<Registry>(options.registry === undefined ? [] : [options.registry]);
  const confirmRetryMs = options.confirmRetryMs ?? DEFAULT_CONFIRM_RETRY_MS;

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let failures = 0;
  let lastError: string | undefined;
  let lastSyncAt: number | undefined;
  let announcedReady = false;

  let markServable: () => void = () => undefined;
  let abandonServable: (error: Error) => void = () => undefined;
  let servableSettled = false;
  const servable = new Promise<void>((resolve, reject) => {
    markServable = () => {
      servableSettled = true;
      resolve();
    };
    abandonServable = (error) => {
      servableSettled = true;
      reject(error);
    };
  });
  // Nobody has to ask; a rejection on stop() must not become an unhandled rejection.
  servable.catch(() => undefined);

  function ready(): boolean {
    return sync.written !== undefined && sync.written.notAfter.getTime() > now();
  }

  async function pass(): Promise<void> {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    let delay: number;
    try {
      const { state } = await sync.run();
      failures = 0;
      lastError = undefined;
      lastSyncAt = now();
      if (!servableSettled) markServable();
      if (!announcedReady && ready()) {
        announcedReady = true;
        logger.info({ phase: state.phase, notAfter: sync.written?.notAfter.toISOString() }, 'serving certificate in place and CA published');
        options.onReady?.();
      }
      const periodic = checkIntervalMs * (0.9 + 0.2 * random());
      delay = Math.min(periodic, Math.max(MIN_DELAY_MS, sync.nextChange(state) - now()));
      // The drain time has passed but not every endpoint serves the new CA: look again soon,
      // not at once (each look is a handshake with every replica).
      if (sync.waiting !== undefined) delay = Math.min(periodic, confirmRetryMs);
    } catch (error) {
      failures += 1;
      lastError = error instanceof Error ? error.message : String(error);
      syncErrors.inc();
      delay = backoffDelay(failures, options.retry, random);
      logger.error({ err: error, attempt: failures, retryInMs: Math.round(delay) }, `certificate sync failed: ${lastError}`);
    }
    if (!stopped) {
      timer = setTimeout(() => void syncNow(), delay);
      // Once the server runs it keeps the process alive and this timer alone must not; before
      // that, the retries are all that is left to wait for.
      if (servableSettled) timer.unref();
    }
  }

  function syncNow(): Promise<void> {
    if (stopped) return Promise.resolve();
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  }

  void (async () => {
    if (await sync.hasUsableFiles()) markServable();
  })().catch(() => undefined);
  void syncNow();

  return {
    ready,
    status: () => ({
      ready: ready(),
      phase: sync.state?.phase,
      servingNotAfter: sync.written?.notAfter,
      lastSyncAt: lastSyncAt === undefined ? undefined : new Date(lastSyncAt),
      lastError,
      consecutiveFailures: failures,
      caRotationWaiting: sync.waiting === undefined ? undefined : describeWaiting(sync.waiting),
    }),
    whenServable: () => servable,
    syncNow,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await running;
      if (!servableSettled) abandonServable(new CertSyncError('the certificate lifecycle stopped before a certificate was in place'));
    },
    registerMetrics(registry) {
      if (registered.has(registry)) return;
      registered.add(registry);
      if (registry.getSingleMetric(SYNC_ERRORS_METRIC) === undefined) registry.registerMetric(syncErrors);
      if (registry.getSingleMetric(UNCONFIRMED_METRIC) === undefined) registry.registerMetric(unconfirmed);
    },
  };
}

interface Written {
  readonly cert: string;
  readonly key: string;
  readonly bundle: string;
  readonly notAfter: Date;
}

/** One replica's view: reads the Secret, advances the rotation, publishes, writes the files. */
class CertSync {
  written: Written | undefined;
  state: CertState | undefined;
  /** The last check that kept the previous CA published, while that is still the case. */
  waiting: Confirmation | undefined;
  private readonly endpoints: EndpointSource | undefined;
  private readonly fetchCertificate: CertificateFetcher;
  private readonly confirmTimeoutMs: number;
  private readonly store: CertStore;
  private readonly policy: RotationPolicy;
  private readonly issue: Omit<IssueOptions, 'lifetimeMs' | 'now'>;
  private readonly leafLifetimeMs: number;
  private readonly caLifetimeMs: number;
  private readonly files: { readonly dir: string; readonly cert: string; readonly key: string; readonly ca: string };

  constructor(
    options: CertLifecycleOptions,
    private readonly logger: CertLogger,
    private readonly now: () => number,
  ) {
    this.store = options.store;
    this.endpoints = options.endpoints;
    this.fetchCertificate = options.fetchCertificate ?? tlsCertificateFetcher({ servername: `${options.service}.${options.namespace}.svc` });
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
    const leafDays = options.leafDays ?? 365;
    const caDays = options.caDays ?? 3650;
    if (!(leafDays > 0) || !(caDays >= leafDays)) {
      throw new CertSyncError(`caDays (${caDays}) must be at least leafDays (${leafDays}), and both positive: a certificate cannot outlive its CA`);
    }
    this.leafLifetimeMs = leafDays * DAY_MS;
    this.caLifetimeMs = caDays * DAY_MS;
    const checkIntervalMs = options.checkIntervalMs ?? HOUR_MS;
    this.policy = {
      renewFraction: RENEW_FRACTION,
      propagationMs: options.propagationMs ?? 10 * 60 * 1000,
      drainMs: options.drainMs ?? 2 * checkIntervalMs,
    };
    this.issue = {
      service: options.service,
      namespace: options.namespace,
      ...(options.dns === undefined ? {} : { dns: options.dns }),
      ...(options.ips === undefined ? {} : { ips: options.ips }),
      ...(options.keyBits === undefined ? {} : { keyBits: options.keyBits }),
    };
    this.files = {
      dir: options.tlsDir,
      cert: options.certFile ?? 'tls.crt',
      key: options.keyFile ?? 'tls.key',
      ca: options.caFile ?? 'ca.crt',
    };
  }

  async run(): Promise<{ state: CertState }> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const outcome = await this.attempt();
      if (outcome !== 'conflict') return outcome;
    }
    throw new CertSyncError(
      `gave up after ${MAX_ATTEMPTS} attempts: the Secret or the MutatingWebhookConfiguration kept changing between read and write`,
    );
  }

  nextChange(state: CertState): number {
    return nextRotationTime(state, this.now(), this.policy);
  }

  async hasUsableFiles(): Promise<boolean> {
    try {
      const [cert, key] = await Promise.all([
        readFile(join(this.files.dir, this.files.cert), 'utf8'),
        readFile(join(this.files.dir, this.files.key), 'utf8'),
      ]);
      const x509 = new X509Certificate(cert);
      return x509.checkPrivateKey(createPrivateKey(key)) && Date.parse(x509.validTo) > this.now();
    } catch {
      return false;
    }
  }

  private async attempt(): Promise<{ state: CertState } | 'conflict'> {
    const current = await this.readOrCreate();
    if (current === 'conflict') return 'conflict';
    let { state, resourceVersion } = current;
    this.state = state;
    let published: string | undefined;
    for (let step = 0; step < MAX_STEPS; step++) {
      // Publishing before planning is what makes "the bundle holds both CAs" true whenever
      // the plan says switch-ca.
      const bundle = caBundleFor(state);
      if (bundle !== published) {
        if ((await this.publish(bundle)) === 'conflict') return 'conflict';
        published = bundle;
      }
      const plan = planRotation(state, this.now(), this.policy);
      if (plan.kind === 'end-ca-rotation' && !(await this.newCaServedEverywhere(state))) {
        await this.writeFiles(state, bundle);
        return { state };
      }
      if (plan.kind === 'keep') {
        if (state.phase !== 'draining') this.waiting = undefined;
        await this.writeFiles(state, bundle);
        return { state };
      }
      const next = await this.advance(plan, state);
      const written = await this.store.updateSecret(encodeCertState(next), resourceVersion);
      if (written === 'conflict') return 'conflict';
      this.logger.info({ step: plan.kind, phase: next.phase, ...('reason' in plan ? { reason: plan.reason } : {}) }, describeStep(plan));
      state = next;
      this.state = state;
      resourceVersion = written.resourceVersion;
    }
    throw new CertSyncError(`the certificate rotation did not settle after ${MAX_STEPS} steps in one sync`);
  }

  /**
   * Whether every ready endpoint of the Service presents a leaf of the current (new) CA, so the
   * previous one can leave the caBundle. Records what is missing in `waiting` when not.
   */
  private async newCaServedEverywhere(state: CertState): Promise<boolean> {
    if (this.endpoints === undefined || state.phase !== 'draining') return true;
    // Nothing can serve under an expired CA any more: there is nothing left to keep trusting.
    if (this.now() >= validity(state.previousCaCert).notAfter) return true;
    let confirmation: Confirmation;
    try {
      confirmation = await confirmServedBy(state.caCert, this.endpoints, this.fetchCertificate, this.confirmTimeoutMs);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      confirmation = { confirmed: false, endpoints: 0, pending: [{ endpoint: 'the Service endpoints', reason }] };
    }
    if (confirmation.confirmed) {
      this.waiting = undefined;
      this.logger.info({ endpoints: confirmation.endpoints }, 'CA rotation: every ready endpoint presents a certificate of the new CA');
      return true;
    }
    this.waiting = confirmation;
    this.logger.warn({ endpoints: confirmation.endpoints, pending: confirmation.pending }, `CA rotation: keeping the previous CA published: ${describeWaiting(confirmation)}`);
    return false;
  }

  private async readOrCreate(): Promise<{ state: CertState; resourceVersion: string } | 'conflict'> {
    const stored = await this.store.readSecret();
    if (stored !== undefined) {
      const decoded = decodeCertState(stored.data);
      if (decoded.ok) return { state: decoded.state, resourceVersion: stored.resourceVersion };
      this.logger.warn({ reason: decoded.reason }, `the TLS Secret is unusable (${decoded.reason}); replacing it with a new CA and certificate`);
      const fresh = await this.freshState();
      const written = await this.store.updateSecret(encodeCertState(fresh), stored.resourceVersion);
      return written === 'conflict' ? 'conflict' : { state: fresh, resourceVersion: written.resourceVersion };
    }
    const fresh = await this.freshState();
    const created = await this.store.createSecret(encodeCertState(fresh));
    // Another replica created it first: its copy wins, so every replica ends up with one CA.
    if (created === 'conflict') return 'conflict';
    this.logger.info({}, 'created the TLS Secret with a new CA and serving certificate');
    return { state: fresh, resourceVersion: created.resourceVersion };
  }

  private async publish(bundle: string): Promise<'published' | 'conflict'> {
    const current = await this.store.readWebhookCaBundles();
    if (current.webhooks.every((webhook) => sameCertificates(webhook.caBundle, bundle))) return 'published';
    const result = await this.store.patchWebhookCaBundles(bundle, current);
    if (result === 'patched') this.logger.info({ webhooks: current.webhooks.length }, 'published the caBundle');
    return result === 'patched' ? 'published' : 'conflict';
  }

  private async advance(plan: Exclude<RotationStep, { kind: 'keep' }>, state: CertState): Promise<CertState> {
    const now = this.now();
    switch (plan.kind) {
      case 'reissue':
        return this.freshState();
      case 'renew-leaf': {
        const leaf = await this.leaf({ cert: state.caCert, key: state.caKey }, now);
        return { ...state, tlsCert: leaf.cert, tlsKey: leaf.key };
      }
      case 'begin-ca-rotation': {
        const next = await issueCertificateAuthority({ ...this.issue, lifetimeMs: this.caLifetimeMs, now });
        return { ...serving(state), phase: 'publishing', nextCaCert: next.cert, nextCaKey: next.key, since: now };
      }
      case 'switch-ca': {
        if (state.phase !== 'publishing') throw new CertSyncError(`switch-ca planned in phase ${state.phase}`);
        const ca = { cert: state.nextCaCert, key: state.nextCaKey };
        const leaf = await this.leaf(ca, now);
        return { phase: 'draining', tlsCert: leaf.cert, tlsKey: leaf.key, caCert: ca.cert, caKey: ca.key, previousCaCert: state.caCert, since: now };
      }
      case 'end-ca-rotation':
        return { ...serving(state), phase: 'steady' };
    }
  }

  private async freshState(): Promise<CertState> {
    const now = this.now();
    const ca = await issueCertificateAuthority({ ...this.issue, lifetimeMs: this.caLifetimeMs, now });
    const leaf = await this.leaf(ca, now);
    return { phase: 'steady', caCert: ca.cert, caKey: ca.key, tlsCert: leaf.cert, tlsKey: leaf.key };
  }

  private leaf(ca: KeyPair, now: number): Promise<KeyPair> {
    return issueServingCertificate(ca, { ...this.issue, lifetimeMs: this.leafLifetimeMs, now });
  }

  private async writeFiles(state: CertState, bundle: string): Promise<void> {
    const w = this.written;
    if (w !== undefined && w.cert === state.tlsCert && w.key === state.tlsKey && w.bundle === bundle) return;
    await writeAtomicDir(this.files.dir, {
      [this.files.cert]: state.tlsCert,
      [this.files.key]: state.tlsKey,
      [this.files.ca]: bundle,
    });
    const notAfter = new Date(validity(state.tlsCert).notAfter);
    this.written = { cert: state.tlsCert, key: state.tlsKey, bundle, notAfter };
    this.logger.info({ dir: this.files.dir, notAfter: notAfter.toISOString() }, 'wrote the serving certificate');
  }
}

function serving(state: CertState): { tlsCert: string; tlsKey: string; caCert: string; caKey: string } {
  return { tlsCert: state.tlsCert, tlsKey: state.tlsKey, caCert: state.caCert, caKey: state.caKey };
}

function describeStep(plan: RotationStep): string {
  switch (plan.kind) {
    case 'reissue':
      return 'replaced the CA and serving certificate';
    case 'renew-leaf':
      return 'renewed the serving certificate under the same CA';
    case 'begin-ca-rotation':
      return 'CA rotation: new CA created, publishing it next to the old one';
    case 'switch-ca':
      return 'CA rotation: serving certificate now signed by the new CA; the old CA stays published while replicas switch';
    case 'end-ca-rotation':
      return 'CA rotation finished: the old CA is no longer published';
    case 'keep':
      return 'nothing to do';
  }
}

function describeWaiting(confirmation: Confirmation): string {
  const first = confirmation.pending[0];
  const which = first === undefined ? '' : `; ${first.endpoint} ${first.reason}`;
  return `${confirmation.pending.length} of ${confirmation.endpoints} ready endpoints not confirmed to present a certificate of the new CA${which}`;
}

function unconfirmedGauge(registry: Registry | undefined, value: () => number): Gauge {
  const existing = registry?.getSingleMetric(UNCONFIRMED_METRIC);
  if (existing instanceof Gauge) return existing;
  return new Gauge({
    name: UNCONFIRMED_METRIC,
    help: 'Ready webhook endpoints not seen presenting a certificate of the new CA while a CA rotation waits to drop the previous CA; 0 otherwise.',
    registers: registry === undefined ? [] : [registry],
    collect() {
      this.set(value());
    },
  });
}

function syncErrorCounter(registry: Registry | undefined): Counter {
  // Two lifecycles (or a restart in tests) on one Registry share the counter rather than throw.
  const existing = registry?.getSingleMetric(SYNC_ERRORS_METRIC);
  if (existing instanceof Counter) return existing;
  return new Counter({
    name: SYNC_ERRORS_METRIC,
    help: 'Failed synchronisations of the TLS Secret, caBundle or serving files; each is retried with backoff.',
    registers: registry === undefined ? [] : [registry],
  });
}
