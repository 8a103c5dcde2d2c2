import { randomBytes } from 'node:crypto';
import forge from 'node-forge';

// Key and serial helpers shared by `certs generate` and the in-cluster issuer.

/** 16 random bytes with the top bit clear and the next set: positive, minimal DER, never zero. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

export function generateRsaKeyPair(bits: number): Promise<forge.pki.rsa.KeyPair> {
  // The callback form makes forge delegate to node:crypto's native generateKeyPair; the
  // synchronous or pure-JavaScript paths take seconds and block the event loop.
  return new Promise((resolve, reject) => {
    forge.pki.rsa.generateKeyPair({ bits, workers: -1 }, (error, keys) => {
      if (error) reject(error);
      else resolve(keys);
    });
  });
}

export function privateKeyToPkcs8Pem(key: forge.pki.rsa.PrivateKey): string {
  return forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(key)));
}
