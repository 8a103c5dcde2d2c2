import { X509Certificate, createPrivateKey } from 'node:crypto';
import { joinCertificates } from './pem.js';

/**
 * What the Secret holds, keyed as in its `data`. The `kubernetes.io/tls` type requires `tls.crt`
 * and `tls.key`; `ca.crt` follows the cert-manager convention.
 *
 * `ca.key` is kept in the Secret because renewal signs new serving certificates with the same CA,
 * which is what lets a leaf renewal leave the caBundle alone. The trade-off: anyone who can read
 * this Secret can mint certificates the API server trusts for this webhook, so RBAC must keep
 * Secret reads in the namespace as narrow as the webhook's own private key already requires.
 * The CA is trusted only by this webhook's caBundle, nowhere else.
 */
export const SECRET_KEYS = {
  tlsCert: 'tls.crt',
  tlsKey: 'tls.key',
  caCert: 'ca.crt',
  caKey: 'ca.key',
  nextCaCert: 'next-ca.crt',
  nextCaKey: 'next-ca.key',
  previousCaCert: 'previous-ca.crt',
  phase: 'rotation-phase',
  since: 'rotation-since',
} as const;

export const ROTATION_PHASES = ['steady', 'publishing', 'draining'] as const;
export type RotationPhase = (typeof ROTATION_PHASES)[number];

interface Serving {
  /** The serving certificate, signed by `caCert`. */
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** The CA that signs serving certificates now. */
  readonly caCert: string;
  readonly caKey: string;
}

export interface SteadyState extends Serving {
  readonly phase: 'steady';
}

/** A new CA has been made and is being added to the caBundle; nothing serves with it yet. */
export interface PublishingState extends Serving {
  readonly phase: 'publishing';
  readonly nextCaCert: string;
  readonly nextCaKey: string;
  /** When the phase began, ms since the epoch. */
  readonly since: number;
}

/** The new CA signs the serving certificate; the old one stays trusted while replicas catch up. */
export interface DrainingState extends Serving {
  readonly phase: 'draining';
  readonly previousCaCert: string;
  readonly since: number;
}

export type CertState = SteadyState | PublishingState | DrainingState;

export type DecodeResult = { readonly ok: true; readonly state: CertState } | { readonly ok: false; readonly reason: string };

/**
 * The caBundle every webhook entry must carry for a state. Each phase's bundle is a superset of
 * what any replica may be serving in it, and consecutive phases overlap, so a replica one phase
 * behind is still trusted.
 */
export function caBundleFor(state: CertState): string {
  switch (state.phase) {
    case 'steady':
      return joinCertificates([state.caCert]);
    case 'publishing':
      return joinCertificates([state.caCert, state.nextCaCert]);
    case 'draining':
      return joinCertificates([state.previousCaCert, state.caCert]);
  }
}

export function encodeCertState(state: CertState): Record<string, string> {
  const data: Record<string, string> = {
    [SECRET_KEYS.tlsCert]: state.tlsCert,
    [SECRET_KEYS.tlsKey]: state.tlsKey,
    [SECRET_KEYS.caCert]: state.caCert,
    [SECRET_KEYS.caKey]: state.caKey,
    [SECRET_KEYS.phase]: state.phase,
  };
  if (state.phase === 'publishing') {
    data[SECRET_KEYS.nextCaCert] = state.nextCaCert;
    data[SECRET_KEYS.nextCaKey] = state.nextCaKey;
  }
  if (state.phase === 'draining') data[SECRET_KEYS.previousCaCert] = state.previousCaCert;
  if (state.phase !== 'steady') data[SECRET_KEYS.since] = new Date(state.since).toISOString();
  return data;
}

/**
 * Reads a Secret's data back into a state, checking what a handshake or a renewal would
 * otherwise find out too late: every PEM parses and every key belongs to its certificate.
 * The reason names the Secret key and the rule it broke.
 */
export function decodeCertState(data: Readonly<Record<string, string>>): DecodeResult {
  try {
    const serving: Serving = {
      tlsCert: certificate(data, SECRET_KEYS.tlsCert),
      tlsKey: data[SECRET_KEYS.tlsKey] ?? '',
      caCert: certificate(data, SECRET_KEYS.caCert),
      caKey: data[SECRET_KEYS.caKey] ?? '',
    };
    matchingKey(data, SECRET_KEYS.tlsCert, SECRET_KEYS.tlsKey);
    matchingKey(data, SECRET_KEYS.caCert, SECRET_KEYS.caKey);
    const phase = data[SECRET_KEYS.phase] ?? 'steady';
    switch (phase) {
      case 'steady':
        return { ok: true, state: { ...serving, phase } };
      case 'publishing':
        matchingKey(data, SECRET_KEYS.nextCaCert, SECRET_KEYS.nextCaKey);
        return {
          ok: true,
          state: {
            ...serving,
            phase,
            nextCaCert: certificate(data, SECRET_KEYS.nextCaCert),
            nextCaKey: data[SECRET_KEYS.nextCaKey] ?? '',
            since: instant(data),
          },
        };
      case 'draining':
        return {
          ok: true,
          state: { ...serving, phase, previousCaCert: certificate(data, SECRET_KEYS.previousCaCert), since: instant(data) },
        };
      default:
        throw new Error(`${SECRET_KEYS.phase} is ${JSON.stringify(phase)}, expected one of ${ROTATION_PHASES.join(', ')}`);
    }
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

function certificate(data: Readonly<Record<string, string>>, key: string): string {
  const pem = data[key];
  if (pem === undefined || pem === '') throw new Error(`${key} is missing`);
  try {
    new X509Certificate(pem);
  } catch (error) {
    throw new Error(`${key} is not a PEM X.509 certificate (${String(error)})`);
  }
  return pem;
}

function matchingKey(data: Readonly<Record<string, string>>, certKey: string, keyKey: string): void {
  const cert = new X509Certificate(certificate(data, certKey));
  const pem = data[keyKey];
  if (pem === undefined || pem === '') throw new Error(`${keyKey} is missing`);
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`${keyKey} is not an unencrypted PEM private key (${String(error)})`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error(`${keyKey} is not the private key of ${certKey}`);
}

function instant(data: Readonly<Record<string, string>>): number {
  const text = data[SECRET_KEYS.since] ?? '';
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new Error(`${SECRET_KEYS.since} is ${JSON.stringify(text)}, expected an RFC 3339 time`);
  return ms;
}
