import { generateRsaKeyPair, privateKeyToPkcs8Pem, randomSerial } from './keys.js';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface CertificateOptions {
  readonly service: string;
  readonly namespace: string;
  /** Extra DNS subject alternative names, beyond the four in-cluster Service names. */
  readonly dns?: readonly string[];
  /** Extra IP subject alternative names (IPv4 or IPv6). */
  readonly ips?: readonly string[];
  /** Lifetime of the serving certificate, in days. */
  readonly days?: number;
  /** Lifetime of the CA, in days; defaults to ten years, or `days` if that is longer. */
  readonly caDays?: number;
  readonly keyBits?: number;
}

/** PEM strings. Keys are unencrypted PKCS#8. */
export interface GeneratedCertificates {
  readonly caCert: string;
  readonly caKey: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
}

/** A bad option: the message names the CLI flag and the rule it broke. */
export class CertificateOptionError extends Error {
  override readonly name = 'CertificateOptionError';
}

const DAY_MS = 24 * 60 * 60 * 1000;
// A node whose clock runs a little behind the generating machine must still accept the certificate.
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DEFAULT_CA_DAYS = 3650;
const KEY_SIZES: readonly number[] = [2048, 3072, 4096];

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_RULE =
  'must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit';

/** The names a client inside the cluster may use to reach `service` in `namespace`. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export async function generateCertificates(options: CertificateOptions): Promise<GeneratedCertificates> {
  const opts = validate(options);
  const now = Date.now();

  const caKeys = await generateRsaKeyPair(opts.keyBits);
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKeys.publicKey;
  caCert.serialNumber = randomSerial();
  setValidity(caCert, now, opts.caDays);
  const caSubject = [
    { name: 'commonName', value: `dfs-injector CA for ${opts.service}.${opts.namespace}` },
    { name: 'organizationName', value: 'dfs-injector' },
  ];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caKeys.privateKey, forge.md.sha256.create());

  const leafKeys = await generateRsaKeyPair(opts.keyBits);
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = leafKeys.publicKey;
  leaf.serialNumber = randomSerial();
  setValidity(leaf, now, opts.days);
  leaf.setSubject([{ name: 'commonName', value: leafCommonName(opts.service, opts.namespace) }]);
  leaf.setIssuer(caSubject);
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: altNames(opts) },
    { name: 'subjectKeyIdentifier' },
    // forge's `keyIdentifier: true` would hash the leaf's own key, so pass the CA's identifier.
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  leaf.sign(caKeys.privateKey, forge.md.sha256.create());

  return {
    caCert: forge.pki.certificateToPem(caCert),
    caKey: privateKeyToPkcs8Pem(caKeys.privateKey),
    tlsCert: forge.pki.certificateToPem(leaf),
    tlsKey: privateKeyToPkcs8Pem(leafKeys.privateKey),
  };
}

interface ValidOptions {
  service: string;
  namespace: string;
  dns: string[];
  ips: string[];
  days: number;
  caDays: number;
  keyBits: number;
}

function validate(options: CertificateOptions): ValidOptions {
  const { service, namespace } = options;
  if (!isDnsLabel(service)) throw new CertificateOptionError(`--service ${JSON.stringify(service)} ${LABEL_RULE}`);
  if (!isDnsLabel(namespace)) throw new CertificateOptionError(`--namespace ${JSON.stringify(namespace)} ${LABEL_RULE}`);
  const dns = [...(options.dns ?? [])];
  for (const name of dns) {
    if (!isDnsName(name)) {
      throw new CertificateOptionError(
        `--dns ${JSON.stringify(name)} must be a DNS name: dot-separated DNS-1123 labels, at most 253 characters, optionally starting with "*."`,
      );
    }
  }
  const ips = [...(options.ips ?? [])];
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new CertificateOptionError(`--ip ${JSON.stringify(ip)} must be an IPv4 or IPv6 address`);
  }
  const days = options.days ?? 365;
  checkDays('--days', days);
  const caDays = options.caDays ?? Math.max(DEFAULT_CA_DAYS, days);
  checkDays('--ca-days', caDays);
  if (caDays < days) {
    throw new CertificateOptionError(`--ca-days (${caDays}) must be at least --days (${days}): a certificate cannot outlive its CA`);
  }
  const keyBits = options.keyBits ?? 2048;
  if (!KEY_SIZES.includes(keyBits)) {
    throw new CertificateOptionError(`--key-bits ${keyBits} must be one of ${KEY_SIZES.join(', ')}`);
  }
  return { service, namespace, dns, ips, days, caDays, keyBits };
}

function checkDays(flag: string, value: number): void {
  // 100 years keeps notAfter inside what every X.509 parser accepts.
  if (!Number.isInteger(value) || value < 1 || value > 36500) {
    throw new CertificateOptionError(`${flag} ${String(value)} must be a positive whole number of days (at most 36500)`);
  }
}

function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

function isDnsName(value: string): boolean {
  const name = value.startsWith('*.') ? value.slice(2) : value;
  return value.length <= 253 && name.length > 0 && name.split('.').every(isDnsLabel);
}

function leafCommonName(service: string, namespace: string): string {
  // X.520 caps commonName at 64 characters; clients match on the SANs anyway.
  const full = `${service}.${namespace}.svc`;
  return full.length <= 64 ? full : service;
}

function altNames(opts: ValidOptions): { type: number; value: string }[] {
  const names = [...new Set([...serviceDnsNames(opts.service, opts.namespace), ...opts.dns])];
  const ips = [...new Set(opts.ips.map((ip) => ipToBytes(ip)))];
  return [...names.map((value) => ({ type: 2, value })), ...ips.map((value) => ({ type: 7, value }))];
}

function setValidity(cert: forge.pki.Certificate, now: number, days: number): void {
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
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
