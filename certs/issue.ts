import { generateRsaKeyPair, privateKeyToPkcs8Pem, randomSerial } from './keys.js';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { ipToBytes, serviceDnsNames } from './generate.js';

/**
 * Issuing with an existing CA and at a given instant. `generate.ts` (the `certs generate`
 * command) always makes a fresh CA at the wall-clock time; renewal needs to sign a new leaf with
 * the CA kept in the Secret, and tests need to issue at an injected time.
 */

/** A certificate and its unencrypted PKCS#8 key, both PEM. */
export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  readonly service: string;
  readonly namespace: string;
  /** Extra DNS names for the serving certificate, beyond the in-cluster Service names. */
  readonly dns?: readonly string[];
  /** Extra IP addresses for the serving certificate. */
  readonly ips?: readonly string[];
  readonly lifetimeMs: number;
  /** The issuing instant, ms since the epoch. */
  readonly now: number;
  readonly keyBits?: number;
}

// A node whose clock runs a little behind must still accept a certificate issued just now.
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DEFAULT_KEY_BITS = 2048;

export async function issueCertificateAuthority(options: IssueOptions): Promise<KeyPair> {
  const keys = await generateRsaKeyPair(options.keyBits ?? DEFAULT_KEY_BITS);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(options.now - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(options.now + options.lifetimeMs);
  // The date tells two generations apart when both sit in a caBundle during a rotation.
  const issued = new Date(options.now).toISOString().slice(0, 19);
  const subject = [
    { name: 'commonName', value: `dfs-injector CA for ${options.service}.${options.namespace} ${issued}Z` },
    { name: 'organizationName', value: 'dfs-injector' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKeyToPkcs8Pem(keys.privateKey) };
}

/** A serving certificate signed by `ca`; it never outlives the CA. */
export async function issueServingCertificate(ca: KeyPair, options: IssueOptions): Promise<KeyPair> {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = await generateRsaKeyPair(options.keyBits ?? DEFAULT_KEY_BITS);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(options.now - CLOCK_SKEW_MS);
  const notAfter = Math.min(options.now + options.lifetimeMs, caCert.validity.notAfter.getTime());
  cert.validity.notAfter = new Date(notAfter);
  const full = `${options.service}.${options.namespace}.svc`;
  // X.520 caps commonName at 64 characters; clients match on the SANs anyway.
  cert.setSubject([{ name: 'commonName', value: full.length <= 64 ? full : options.service }]);
  cert.setIssuer(caCert.subject.attributes);
  const names = [...new Set([...serviceDnsNames(options.service, options.namespace), ...(options.dns ?? [])])];
  const ips = [...new Set(options.ips ?? [])].filter((ip) => isIP(ip) !== 0);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...names.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, value: ipToBytes(ip) }))],
    },
    { name: 'subjectKeyIdentifier' },
    // forge's `keyIdentifier: true` would hash the leaf's own key, so pass the CA's identifier.
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKeyToPkcs8Pem(keys.privateKey) };
}

