import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { generateCertificates } from '../certs/generate.js';
import { CERT_FILES, writeCertificates } from './certs.js';
import { UserError } from './errors.js';
import { fileErrorReason } from './io.js';
import { sampleAdmissionReview } from './sample-review.js';

export const DEV_HOST = '127.0.0.1';
const DEV_NAMES = { dns: ['localhost'], ips: [DEV_HOST, '::1'] } as const;
// Renew a little before expiry, so a long-running dev server never starts with a dying certificate.
const RENEW_BEFORE_MS = 24 * 60 * 60 * 1000;

export interface DevFiles {
  readonly dir: string;
  readonly caCert: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly sampleReview: string;
  /** Why a new certificate was made, or undefined when the existing one was reused. */
  readonly generated: string | undefined;
}

/**
 * The development CA and certificate in `dir`, generated on first use and reused while they
 * still fit (valid for a day more, for 127.0.0.1, matching key, issued by the CA beside it).
 */
export async function prepareDevFiles(dir: string): Promise<DevFiles> {
  const paths = {
    dir,
    caCert: join(dir, CERT_FILES.caCert),
    tlsCert: join(dir, CERT_FILES.tlsCert),
    tlsKey: join(dir, CERT_FILES.tlsKey),
    sampleReview: join(dir, 'sample-review.json'),
  };
  const problem = await reuseProblem(paths);
  if (problem !== undefined) {
    const certs = await generateCertificates({ service: 'dfs-injector', namespace: 'dfs-system', ...DEV_NAMES, days: 365 });
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      throw new UserError(`development directory ${dir}: ${fileErrorReason(error)}`);
    });
    await writeCertificates(dir, certs);
  }
  await writeSampleReview(paths.sampleReview);
  return { ...paths, generated: problem };
}

async function reuseProblem(paths: { caCert: string; tlsCert: string; tlsKey: string }): Promise<string | undefined> {
  let texts: string[];
  try {
    texts = await Promise.all([paths.caCert, paths.tlsCert, paths.tlsKey].map((path) => readFile(path, 'utf8')));
  } catch {
    return 'first run';
  }
  const [caText = '', certText = '', keyText = ''] = texts;
  try {
    const ca = new X509Certificate(caText);
    const cert = new X509Certificate(certText);
    if (new Date(cert.validTo).getTime() - Date.now() < RENEW_BEFORE_MS) return 'the old certificate expires within a day';
    if (cert.checkIP(DEV_HOST) === undefined) return `the old certificate is not valid for ${DEV_HOST}`;
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'the old certificate was not issued by the CA beside it';
    if (!cert.checkPrivateKey(createPrivateKey(keyText))) return 'the old key does not match the certificate';
  } catch {
    return 'the old files could not be read as a certificate and key';
  }
  return undefined;
}

async function writeSampleReview(path: string): Promise<void> {
  try {
    await writeFile(path, `${JSON.stringify(sampleAdmissionReview(), null, 2)}\n`);
  } catch (error) {
    throw new UserError(`${path}: ${fileErrorReason(error)}`);
  }
}

/** `path` as the user should type it from `cwd`: relative when inside it, absolute otherwise. */
export function displayPath(path: string, cwd: string): string {
  const absolute = resolve(cwd, path);
  const rel = relative(cwd, absolute);
  return rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel) ? absolute : rel;
}

/** Quotes for a POSIX shell only when needed, so the common case stays readable. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export function curlCommand(files: DevFiles, url: string, cwd: string): string {
  const ca = shellQuote(displayPath(files.caCert, cwd));
  const data = shellQuote(`@${displayPath(files.sampleReview, cwd)}`);
  return `curl --cacert ${ca} -H 'Content-Type: application/json' --data ${data} ${url}`;
}
