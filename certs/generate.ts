import { isIP } from 'node:net';
import { issueCertificateAuthority, issueServingCertificate, type CertificateSubject } from './issue.js';

// `certs generate`: its options, checked and named by flag, then the one issuer (certs/issue.ts).
export { ipToBytes, serviceDnsNames } from './issue.js';

export interface CertificateOptions extends CertificateSubject {
  /** Lifetime of the serving certificate, in days. */
  readonly days?: number;
  /** Lifetime of the CA, in days; defaults to ten years, or `days` if that is longer. */
  readonly caDays?: number;
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
const DEFAULT_CA_DAYS = 3650;
const KEY_SIZES: readonly number[] = [2048, 3072, 4096];

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_RULE =
  'must be a DNS-1123 label: at most 63 lower-case letters, digits or "-", starting and ending with a letter or digit';

/** A fresh CA and a serving certificate signed by it, at the wall-clock time (`certs generate`, `serve --dev`). */
export async function generateCertificates(options: CertificateOptions): Promise<GeneratedCertificates> {
  const opts = validate(options);
  const now = Date.now();
  const base = { service: opts.service, namespace: opts.namespace, dns: opts.dns, ips: opts.ips, keyBits: opts.keyBits, now };
  const ca = await issueCertificateAuthority({ ...base, lifetimeMs: opts.caDays * DAY_MS, datedCa: false });
  const leaf = await issueServingCertificate(ca, { ...base, lifetimeMs: opts.days * DAY_MS });
  return { caCert: ca.cert, caKey: ca.key, tlsCert: leaf.cert, tlsKey: leaf.key };
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
