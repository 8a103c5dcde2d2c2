import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';
import { issueCertificateAuthority, issueServingCertificate, type KeyPair } from './issue.js';
import { joinCertificates, sameCertificates, splitCertificates } from './pem.js';
import { nextRotationTime, planRotation, type RotationPolicy } from './rotation.js';
import { caBundleFor, decodeCertState, encodeCertState, type CertState } from './tls-secret.js';

const DAY = 24 * 60 * 60 * 1000;
const T0 = Date.parse('2026-01-01T00:00:00Z');
const POLICY: RotationPolicy = { renewFraction: 1 / 3, propagationMs: 10 * 60 * 1000, drainMs: 2 * 60 * 60 * 1000 };
const NAMES = { service: 'dfs-injector', namespace: 'dfs-system' };

let caA: KeyPair;
let caB: KeyPair;
let leafA: KeyPair;
let steady: CertState;

beforeAll(async () => {
  [caA, caB] = await Promise.all([
    issueCertificateAuthority({ ...NAMES, lifetimeMs: 30 * DAY, now: T0 }),
    issueCertificateAuthority({ ...NAMES, lifetimeMs: 30 * DAY, now: T0 + 20 * DAY }),
  ]);
  leafA = await issueServingCertificate(caA, { ...NAMES, ips: ['10.0.0.1'], lifetimeMs: 9 * DAY, now: T0 });
  steady = { phase: 'steady', caCert: caA.cert, caKey: caA.key, tlsCert: leafA.cert, tlsKey: leafA.key };
});

describe('issueServingCertificate', () => {
  it('signs with the given CA, at the given time, for the Service names and extra addresses', () => {
    const leaf = new X509Certificate(leafA.cert);
    expect(leaf.checkIssued(new X509Certificate(caA.cert))).toBe(true);
    expect(leaf.verify(new X509Certificate(caA.cert).publicKey)).toBe(true);
    expect(Date.parse(leaf.validTo)).toBe(T0 + 9 * DAY);
    expect(leaf.subjectAltName).toContain('DNS:dfs-injector.dfs-system.svc');
    expect(leaf.subjectAltName).toContain('IP Address:10.0.0.1');
  });

  it('never lets a serving certificate outlive its CA', async () => {
    const leaf = await issueServingCertificate(caA, { ...NAMES, lifetimeMs: 365 * DAY, now: T0 });
    expect(Date.parse(new X509Certificate(leaf.cert).validTo)).toBe(T0 + 30 * DAY);
  });
});

describe('planRotation', () => {
  it('keeps a serving certificate with more than a third of its lifetime left', () => {
    expect(planRotation(steady, T0 + 5.9 * DAY, POLICY)).toEqual({ kind: 'keep' });
  });

  it('renews the serving certificate when less than a third of its lifetime is left', () => {
    expect(planRotation(steady, T0 + 6.1 * DAY, POLICY)).toMatchObject({ kind: 'renew-leaf' });
  });

  it('renews a serving certificate that another CA signed', () => {
    const mixed: CertState = { ...steady, caCert: caB.cert, caKey: caB.key };
    expect(planRotation(mixed, T0 + 21 * DAY, POLICY)).toMatchObject({ kind: 'renew-leaf', reason: expect.stringContaining('not signed') });
  });

  it('begins a CA rotation when less than a third of the CA’s lifetime is left', () => {
    expect(planRotation(steady, T0 + 20.1 * DAY, POLICY)).toMatchObject({ kind: 'begin-ca-rotation' });
  });

  it('switches to the new CA only after the propagation delay', () => {
    const publishing: CertState = { ...steady, phase: 'publishing', nextCaCert: caB.cert, nextCaKey: caB.key, since: T0 + DAY };
    expect(planRotation(publishing, T0 + DAY + POLICY.propagationMs - 1, POLICY)).toEqual({ kind: 'keep' });
    expect(planRotation(publishing, T0 + DAY + POLICY.propagationMs, POLICY)).toEqual({ kind: 'switch-ca' });
  });

  it('drops the old CA only after the drain period', () => {
    const draining: CertState = { ...steady, phase: 'draining', previousCaCert: caB.cert, since: T0 + DAY };
    expect(planRotation(draining, T0 + DAY + POLICY.drainMs - 1, POLICY)).toEqual({ kind: 'keep' });
    expect(planRotation(draining, T0 + DAY + POLICY.drainMs, POLICY)).toEqual({ kind: 'end-ca-rotation' });
  });

  it('replaces everything once the CA has expired', () => {
    expect(planRotation(steady, T0 + 31 * DAY, POLICY)).toMatchObject({ kind: 'reissue' });
  });

  it('schedules the next check at the earliest instant the answer can change', () => {
    // The leaf's lifetime includes the five minutes of clock-skew allowance before T0.
    expect(nextRotationTime(steady, T0, POLICY)).toBe(T0 + 6 * DAY - (5 * 60 * 1000) / 3);
    const publishing: CertState = { ...steady, phase: 'publishing', nextCaCert: caB.cert, nextCaKey: caB.key, since: T0 };
    expect(nextRotationTime(publishing, T0, POLICY)).toBe(T0 + POLICY.propagationMs);
  });
});

describe('the Secret format', () => {
  it('round-trips every phase', () => {
    const states: CertState[] = [
      steady,
      { ...steady, phase: 'publishing', nextCaCert: caB.cert, nextCaKey: caB.key, since: T0 },
      { ...steady, phase: 'draining', previousCaCert: caB.cert, since: T0 },
    ];
    for (const state of states) expect(decodeCertState(encodeCertState(state))).toEqual({ ok: true, state });
  });

  it('names the key that is wrong', () => {
    const data = encodeCertState(steady);
    expect(decodeCertState({ ...data, 'ca.key': leafA.key })).toEqual({ ok: false, reason: 'ca.key is not the private key of ca.crt' });
    expect(decodeCertState({ ...data, 'tls.crt': 'junk' })).toMatchObject({ ok: false, reason: expect.stringMatching(/^tls\.crt is not a PEM/) });
    const { 'ca.key': _dropped, ...withoutCaKey } = data;
    expect(decodeCertState(withoutCaKey)).toEqual({ ok: false, reason: 'ca.key is missing' });
    expect(decodeCertState({ ...data, 'rotation-phase': 'later' })).toMatchObject({ ok: false, reason: expect.stringContaining('rotation-phase') });
  });

  it('publishes both CAs while a rotation is under way, in the same order in both phases', () => {
    const publishing = caBundleFor({ ...steady, phase: 'publishing', nextCaCert: caB.cert, nextCaKey: caB.key, since: T0 });
    const draining = caBundleFor({ ...steady, phase: 'draining', caCert: caB.cert, previousCaCert: caA.cert, since: T0 });
    expect(splitCertificates(publishing)).toHaveLength(2);
    expect(draining).toBe(publishing);
    expect(caBundleFor(steady)).toBe(joinCertificates([caA.cert]));
  });
});

describe('PEM bundles', () => {
  it('compares certificates, not line breaks', () => {
    const flat = caA.cert.replace(/\n(?!-----END)/g, '').replace('-----BEGIN CERTIFICATE-----', '-----BEGIN CERTIFICATE-----\n');
    expect(sameCertificates(`comment\n${flat}`, caA.cert)).toBe(true);
    expect(sameCertificates(joinCertificates([caA.cert, caB.cert]), joinCertificates([caB.cert, caA.cert]))).toBe(false);
    expect(sameCertificates(undefined, caA.cert)).toBe(false);
    expect(joinCertificates([caA.cert, caA.cert])).toBe(joinCertificates([caA.cert]));
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay, stays in the upper half, and is capped', () => {
    const options = { initialMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, options, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect(backoffDelay(3, options, () => 0.999999)).toBeCloseTo(400, 0);
    expect(backoffDelay(80, options, () => 1)).toBe(1000);
  });
});
