import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomicDir } from './atomic-dir.js';
import { confirmServedBy, tlsCertificateFetcher, type CertificateFetcher, type Confirmation, type EndpointSource } from './endpoints.js';
import type * as Issue from './issue.js';
import type { CertificateSubject, IssueOptions, KeyPair } from './issue.js';
import { sameCertificates } from './pem.js';
import { nextRotationTime, planRotation, validity, type RotationPolicy, type RotationStep } from './rotation.js';
import type { CertStore } from './store.js';
import { caBundleFor, decodeCertState, encodeCertState, type CertState } from './tls-secret.js';

/** The subset of a pino logger the lifecycle uses. */
export interface CertLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** What one sync needs: where the state lives, what to issue, and how a rotation is paced. */
export interface CertSyncOptions extends CertificateSubject {
  readonly store: CertStore;
  /** The directory the server's TLS watch observes; the files are swapped there atomically. */
  readonly tlsDir: string;
  /** File names inside `tlsDir`. Defaults: tls.crt, tls.key, ca.crt. */
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly caFile?: string;
  /** Lifetime of serving certificates. Default 365. */
  readonly leafDays?: number;
  /** Lifetime of CAs; at least `leafDays`. Default 3650. */
  readonly caDays?: number;
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
}

export class CertSyncError extends Error {
  override readonly name = 'CertSyncError';
}

export const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
const RENEW_FRACTION = 1 / 3;
// Each conflict means another replica wrote first; a few re-reads always settle it.
const MAX_ATTEMPTS = 5;
// A sync takes at most reissue → publish-bundle → keep, or one rotation step per pass.
const MAX_STEPS = 4;
const DEFAULT_CONFIRM_TIMEOUT_MS = 5000;

interface Written {
  readonly cert: string;
  readonly key: string;
  readonly bundle: string;
  readonly notAfter: Date;
}

/** One replica's view: reads the Secret, advances the rotation, publishes, writes the files. */
export class CertSync {
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
    options: CertSyncOptions,
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
      confirmation = { confirmed: false, endpoints: 0, unconfirmed: 1, pending: [{ endpoint: 'the Service endpoints', reason }] };
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
        const next = await (await issuer()).issueCertificateAuthority({ ...this.issue, lifetimeMs: this.caLifetimeMs, now });
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
    const ca = await (await issuer()).issueCertificateAuthority({ ...this.issue, lifetimeMs: this.caLifetimeMs, now });
    const leaf = await this.leaf(ca, now);
    return { phase: 'steady', caCert: ca.cert, caKey: ca.key, tlsCert: leaf.cert, tlsKey: leaf.key };
  }

  private async leaf(ca: KeyPair, now: number): Promise<KeyPair> {
    return (await issuer()).issueServingCertificate(ca, { ...this.issue, lifetimeMs: this.leafLifetimeMs, now });
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

export function describeWaiting(confirmation: Confirmation): string {
  const first = confirmation.pending[0];
  const which = first === undefined ? '' : `; ${first.endpoint} ${first.reason}`;
  return `${confirmation.unconfirmed} of ${confirmation.endpoints} ready endpoints not confirmed to present a certificate of the new CA${which}`;
}

/**
 * Issuing (node-forge) is loaded when a certificate is first made, not at start: a replica that
 * starts with a valid Secret, as every one but the first does, never loads it.
 */
function issuer(): Promise<typeof Issue> {
  return import('./issue.js');
}
