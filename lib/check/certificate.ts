// Certificate facts for the webhook steps: pure X.509 computation (no network), so the steps can
// be tested on fixtures and the CLI only has to fetch what the webhook serves.
import { X509Certificate } from 'node:crypto';

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';
/** A caBundle or a served chain longer than this is not a bundle anyone deploys. */
export const MAX_CERTIFICATES = 100;

/** The certificates of a PEM bundle, in order; one pass over the text, at most MAX_CERTIFICATES. */
export function splitPem(text: string): string[] {
  const blocks: string[] = [];
  let from = 0;
  while (blocks.length < MAX_CERTIFICATES) {
    const start = text.indexOf(BEGIN, from);
    if (start < 0) break;
    const end = text.indexOf(END, start + BEGIN.length);
    if (end < 0) break;
    blocks.push(`${text.slice(start, end + END.length)}\n`);
    from = end + END.length;
  }
  return blocks;
}

export function parseCertificates(pems: readonly string[]): { certificates: X509Certificate[]; errors: string[] } {
  const certificates: X509Certificate[] = [];
  const errors: string[] = [];
  pems.forEach((pem, i) => {
    try {
      certificates.push(new X509Certificate(pem));
    } catch (error) {
      errors.push(`certificate ${i + 1}: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  return { certificates, errors };
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Whether `leaf` chains to one of `roots` through `intermediates` (signatures and issuer names
 * only: validity dates are the certificate step's business, so an expired certificate does not
 * also read as a wrong caBundle). Bounded: at most one hop per intermediate.
 */
export function chainsTo(leaf: X509Certificate, intermediates: readonly X509Certificate[], roots: readonly X509Certificate[]): boolean {
  let current = leaf;
  const unused = [...intermediates];
  for (let hop = 0; hop <= intermediates.length; hop++) {
    if (roots.some((root) => root.fingerprint256 === current.fingerprint256 || signedBy(current, root))) return true;
    const next = unused.findIndex((candidate) => candidate.fingerprint256 !== current.fingerprint256 && signedBy(current, candidate));
    if (next < 0) return false;
    current = unused.splice(next, 1)[0] as X509Certificate;
  }
  return false;
}

/** Whether the certificate names `host` (a DNS name or an IP address) in its subject alternative names. */
export function namesHost(cert: X509Certificate, host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIpAddress(bare) ? cert.checkIP(bare) !== undefined : cert.checkHost(bare) !== undefined;
}

/** An IPv4 dotted quad or anything with a colon (IPv6); host names have neither. */
function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
