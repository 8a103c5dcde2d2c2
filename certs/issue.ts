import { generateRsaKeyPair, privateKeyToPkcs8Pem, randomSerial } from './keys.js';
import { isIP } from 'node:net';
import forge from 'node-forge';

/**
 * The one certificate issuer: a CA, and serving certificates signed by a CA, at a given instant.
 * `certs generate` (generate.ts) issues a fresh pair at the wall-clock time; the in-cluster
 * lifecycle (cert-sync.ts) signs renewals with the CA kept in the Secret; tests issue at an
 * injected time.
 */

/** A certificate and its unencrypted PKCS#8 key, both PEM. */
export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

/**
 * Whom the certificates are for: the webhook's Service and its namespace name the serving
 * certificate, with any extra names. `certs generate`, the lifecycle and the issuer share it, so a
 * new kind of name is added once.
 */
export interface CertificateSubject {
  readonly service: string;
  readonly namespace: string;
  /** Extra DNS subject alternative names, beyond the four in-cluster Service names. */
  readonly dns?: readonly string[];
  /** Extra IP subject alternative names (IPv4 or IPv6). */
  readonly ips?: readonly string[];
  readonly keyBits?: number;
}

export interface IssueOptions extends CertificateSubject {
  readonly lifetimeMs: number;
  /** The issuing instant, ms since the epoch. */
  readonly now: number;
  /**
   * The CA's commonName ends with the issuing time (default true), which tells two generations
   * apart when both sit in a caBundle during a rotation; `certs generate` makes a single CA.
   */
  readonly datedCa?: boolean;
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
  const issued = options.datedCa === false ? '' : ` ${new Date(options.now).toISOString().slice(0, 19)}Z`;
  const subject = [
    { name: 'commonName', value: `dfs-injector CA for ${options.service}.${options.namespace}${issued}` },
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
  // By bytes, so ::1 and 0:0::1 are one name; an address isIP refuses is left out.
  const ips = [...new Set((options.ips ?? []).filter((ip) => isIP(ip) !== 0).map(ipToBytes))];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...names.map((value) => ({ type: 2, value })), ...ips.map((value) => ({ type: 7, value }))],
    },
    { name: 'subjectKeyIdentifier' },
    // forge's `keyIdentifier: true` would hash the leaf's own key, so pass the CA's identifier.
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKeyToPkcs8Pem(keys.privateKey) };
}

/** The names a client inside the cluster may use to reach `service` in `namespace`. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

/** Network-order bytes of an address already accepted by `isIP`, as a binary string for forge. */
export function ipToBytes(ip: string): string {
  if (isIP(ip) === 4) return String.fromCharCode(...ip.split('.').map(Number));
  // forge's own IPv6 parser mishandles embedded IPv4 (::ffff:10.0.0.1), so expand it here.
  let text = ip.split('%')[0] ?? ip;
  const embedded = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (embedded !== undefined) text = `${text.slice(0, -embedded.length)}0:0`;
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const before = parse(head);
  const after = tail === undefined ? [] : parse(tail);
  const groups = [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  if (embedded !== undefined) bytes.splice(12, 4, ...embedded.split('.').map(Number));
  return String.fromCharCode(...bytes);
}
