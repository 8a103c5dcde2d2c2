import { X509Certificate } from 'node:crypto';
import type { CertState } from './tls-secret.js';

/*
 * Certificate rotation, decided from the Secret alone so that every replica reaches the same
 * answer without leader election. Writes go through the Secret's resourceVersion: when two
 * replicas take the same step at once, one update wins and the other re-reads and finds nothing
 * left to do.
 *
 *   steady ──(CA has < 1/3 of its lifetime left)──▶ publishing
 *     Secret: next-ca.crt/next-ca.key added, rotation-since = now.
 *     caBundle: old CA + new CA.  Serving: still the old CA's leaf.
 *
 *   publishing ──(since + propagation elapsed, and this pass has just confirmed the caBundle
 *                 on every webhook entry holds both CAs)──▶ draining
 *     Secret: ca.crt/ca.key = new CA, tls.crt/tls.key = a leaf signed by it,
 *             previous-ca.crt = old CA, rotation-since = now.
 *     caBundle: unchanged (old + new).  Serving: replicas pick up the new leaf on their next
 *     check; until then they serve the old leaf, which the bundle still trusts.
 *
 *   draining ──(since + drain elapsed: longer than a check interval, so every replica has
 *               re-read the Secret and swapped its files)──▶ steady
 *     Secret: previous-ca.crt and the rotation keys removed.
 *     caBundle: new CA only.
 *
 * Leaf-only renewal (the serving certificate has < 1/3 of its lifetime left) happens in any
 * phase, signed by the current CA, and needs no caBundle change. A CA that has already expired,
 * or a Secret that cannot be read back, is replaced outright with a fresh CA and leaf: nothing
 * that depends on the old one works any more, so there is nothing to keep trusting.
 *
 * Every phase's caBundle is a superset of what a replica one phase behind can be serving, and a
 * replica writes the bundle only with JSON-patch `test`s on what it just read, re-reading the
 * Secret when one fails, so a slow replica cannot take a CA out from under a faster one.
 */

export interface RotationPolicy {
  /** Renew when less than this fraction of a certificate's lifetime is left. */
  readonly renewFraction: number;
  /** How long both CAs stay published before the serving certificate switches to the new one. */
  readonly propagationMs: number;
  /** How long the old CA stays published after the switch. */
  readonly drainMs: number;
}

export type RotationStep =
  | { readonly kind: 'keep' }
  | { readonly kind: 'reissue'; readonly reason: string }
  | { readonly kind: 'renew-leaf'; readonly reason: string }
  | { readonly kind: 'begin-ca-rotation'; readonly reason: string }
  | { readonly kind: 'switch-ca' }
  | { readonly kind: 'end-ca-rotation' };

export interface Validity {
  readonly notBefore: number;
  readonly notAfter: number;
}

export function validity(pem: string): Validity {
  const cert = new X509Certificate(pem);
  return { notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

/** The instant after which less than `fraction` of the lifetime is left. */
export function renewalTime(v: Validity, fraction: number): number {
  return v.notAfter - (v.notAfter - v.notBefore) * fraction;
}

// A leaf that cannot be made to last meaningfully longer under the current CA is left to the
// CA rotation; renewing it would only produce another leaf due for renewal.
const MIN_LEAF_GAIN_MS = 60_000;

export function planRotation(state: CertState, now: number, policy: RotationPolicy): RotationStep {
  const ca = validity(state.caCert);
  if (now >= ca.notAfter) return { kind: 'reissue', reason: `the CA expired at ${iso(ca.notAfter)}` };

  if (state.phase === 'publishing' && now >= state.since + policy.propagationMs) return { kind: 'switch-ca' };
  if (state.phase === 'draining' && now >= state.since + policy.drainMs) return { kind: 'end-ca-rotation' };
  if (state.phase === 'steady' && now >= renewalTime(ca, policy.renewFraction)) {
    return { kind: 'begin-ca-rotation', reason: `the CA expires at ${iso(ca.notAfter)}` };
  }

  const leafCert = new X509Certificate(state.tlsCert);
  const caCert = new X509Certificate(state.caCert);
  if (!leafCert.checkIssued(caCert) || !leafCert.verify(caCert.publicKey)) {
    return { kind: 'renew-leaf', reason: 'the serving certificate is not signed by the CA in the Secret' };
  }
  const leaf = validity(state.tlsCert);
  if (now >= renewalTime(leaf, policy.renewFraction) && ca.notAfter - leaf.notAfter > MIN_LEAF_GAIN_MS) {
    return { kind: 'renew-leaf', reason: `the serving certificate expires at ${iso(leaf.notAfter)}` };
  }
  return { kind: 'keep' };
}

/** The earliest instant after `now` at which `planRotation` may answer differently. */
export function nextRotationTime(state: CertState, now: number, policy: RotationPolicy): number {
  const ca = validity(state.caCert);
  const leaf = validity(state.tlsCert);
  const candidates = [ca.notAfter, renewalTime(leaf, policy.renewFraction)];
  if (state.phase === 'steady') candidates.push(renewalTime(ca, policy.renewFraction));
  if (state.phase === 'publishing') candidates.push(state.since + policy.propagationMs);
  if (state.phase === 'draining') candidates.push(state.since + policy.drainMs);
  const future = candidates.filter((t) => t > now);
  return future.length === 0 ? now : Math.min(...future);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
