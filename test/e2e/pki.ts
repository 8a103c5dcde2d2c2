import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

// Test infrastructure only: the openssl CLI is quicker to drive than building X.509 by hand,
// and the product's own certs/ code must not be what proves the product works.
const run = promisify(execFile);

async function openssl(cwd: string, args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr.trim() || String(err)}`, { cause: err });
  }
}

export interface CertPaths {
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  /** File stem inside the PKI directory: writes `<name>.crt` and `<name>.key`. */
  readonly name: string;
  readonly commonName: string;
  readonly organizations?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly usage: 'server' | 'client' | 'both';
  readonly days?: number;
}

export interface Pki {
  readonly dir: string;
  readonly ca: CertPaths;
  readonly caPem: string;
  /** Issues a certificate signed by the run's CA, e.g. a webhook serving certificate. */
  issue(options: IssueOptions): Promise<CertPaths>;
}

// A config of our own, so the result does not depend on the distribution's openssl.cnf defaults.
// openssl 3.0's `req` has no -extfile, so the CA's extensions live here too.
const REQ_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
`;

/** Creates a CA (ECDSA P-256, valid for two days) in `dir`. */
export async function createPki(dir: string): Promise<Pki> {
  const reqConfig = join(dir, 'openssl-req.cnf');
  await writeFile(reqConfig, REQ_CONFIG);
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  await openssl(dir, [
    'req', '-x509', '-new', '-config', reqConfig, '-key', 'ca.key', '-subj', '/CN=dfs-injector-e2e-ca',
    '-days', '2', '-extensions', 'ca_ext', '-out', 'ca.crt',
  ]);
  const ca: CertPaths = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  const caPem = await readFile(ca.cert, 'utf8');
  let serial = 1;

  async function issue(o: IssueOptions): Promise<CertPaths> {
    const san = [...(o.dnsNames ?? []).map((d) => `DNS:${d}`), ...(o.ipAddresses ?? []).map((ip) => `IP:${ip}`)];
    const eku = o.usage === 'server' ? 'serverAuth' : o.usage === 'client' ? 'clientAuth' : 'serverAuth,clientAuth';
    const ext = [
      '[ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage = ${eku}`,
      'authorityKeyIdentifier = keyid',
      ...(san.length > 0 ? [`subjectAltName = ${san.join(',')}`] : []),
    ].join('\n');
    const extFile = `${o.name}-ext.cnf`;
    await writeFile(join(dir, extFile), `${ext}\n`);
    // Subject fields are escaped for openssl's /K=V form; names in tests are plain anyway.
    const esc = (s: string): string => s.replace(/[/\\]/g, (c) => `\\${c}`);
    const subject = `/CN=${esc(o.commonName)}${(o.organizations ?? []).map((org) => `/O=${esc(org)}`).join('')}`;
    await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${o.name}.key`]);
    await openssl(dir, ['req', '-new', '-config', reqConfig, '-key', `${o.name}.key`, '-subj', subject, '-out', `${o.name}.csr`]);
    await openssl(dir, [
      'x509', '-req', '-in', `${o.name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key',
      '-set_serial', String(++serial), '-days', String(o.days ?? 2),
      '-extensions', 'ext', '-extfile', extFile, '-out', `${o.name}.crt`,
    ]);
    return { cert: join(dir, `${o.name}.crt`), key: join(dir, `${o.name}.key`) };
  }

  return { dir, ca, caPem, issue };
}

/** RSA key pair for signing and verifying service-account tokens. */
export async function createServiceAccountKeys(dir: string): Promise<{ privateKey: string; publicKey: string }> {
  await openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']);
  await openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
  return { privateKey: join(dir, 'sa.key'), publicKey: join(dir, 'sa.pub') };
}
