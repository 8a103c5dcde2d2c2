import { createPrivateKey, X509Certificate } from 'node:crypto';

/** A certificate chain (leaf first) and its private key, both PEM. */
export interface TlsPair {
  readonly cert: string;
  readonly key: string;
}

export interface TlsPairInfo {
  readonly subject: string;
  readonly serialNumber: string;
  readonly fingerprint256: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export class TlsPairError extends Error {
  override readonly name = 'TlsPairError';
}

/**
 * Checks what a TLS handshake would otherwise find out too late: both PEMs parse and the key
 * belongs to the leaf certificate. `source` names where the pair came from, for the message.
 */
export function validateTlsPair(pair: TlsPair, source: string): TlsPairInfo {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.cert);
  } catch (error) {
    throw new TlsPairError(`${source}: the certificate is not a PEM X.509 certificate (${describe(error)})`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(pair.key);
  } catch (error) {
    throw new TlsPairError(`${source}: the private key is not an unencrypted PEM private key (${describe(error)})`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new TlsPairError(
      `${source}: the private key does not belong to the certificate (serial ${certificate.serialNumber}, ${certificate.subject.replace(/\n/g, ', ')})`,
    );
  }
  return {
    subject: certificate.subject.replace(/\n/g, ', '),
    serialNumber: certificate.serialNumber,
    fingerprint256: certificate.fingerprint256,
    notBefore: new Date(Date.parse(certificate.validFrom)),
    notAfter: new Date(Date.parse(certificate.validTo)),
  };
}

/**
 * Why a certificate cannot be served at `now` (expired, or not valid yet), or undefined when it
 * can. Every TLS client refuses a certificate outside its validity, so serving one fails every
 * handshake.
 */
export function validityProblem(info: TlsPairInfo, now: number): string | undefined {
  if (now >= info.notAfter.getTime()) return `the certificate (serial ${info.serialNumber}) expired at ${info.notAfter.toISOString()}`;
  if (now < info.notBefore.getTime()) return `the certificate (serial ${info.serialNumber}) is not valid before ${info.notBefore.toISOString()}`;
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
