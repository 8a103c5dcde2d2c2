const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/**
 * The certificates in a PEM text, each re-wrapped the same way, so that two bundles that differ
 * only in line breaks or surrounding text compare equal. Anything that is not a certificate
 * block is dropped.
 */
export function splitCertificates(pem: string): string[] {
  const blocks: string[] = [];
  for (const match of pem.matchAll(CERTIFICATE_BLOCK)) {
    const body = (match[1] ?? '').replace(/\s+/g, '');
    if (body === '') continue;
    const lines = body.match(/.{1,64}/g) ?? [];
    blocks.push(['-----BEGIN CERTIFICATE-----', ...lines, '-----END CERTIFICATE-----'].join('\n'));
  }
  return blocks;
}

/** Concatenates certificates into one bundle, in order, without duplicates. */
export function joinCertificates(pems: readonly string[]): string {
  const blocks = [...new Set(pems.flatMap(splitCertificates))];
  return blocks.length === 0 ? '' : `${blocks.join('\n')}\n`;
}

/** True when both texts hold the same certificates in the same order. */
export function sameCertificates(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const left = splitCertificates(a);
  const right = splitCertificates(b);
  return left.length === right.length && left.every((block, i) => block === right[i]);
}
