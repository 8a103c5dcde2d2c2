import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertificateOptionError, generateCertificates, serviceDnsNames, type GeneratedCertificates } from '../certs/generate.js';
import { defineCommand } from './command.js';
import { EXIT, UsageError, UserError } from './errors.js';
import { fileErrorReason } from './io.js';
import { positiveIntegerValue } from './values.js';

const COMMAND = 'certs generate';

export const CERT_FILES = { caCert: 'ca.crt', tlsCert: 'tls.crt', tlsKey: 'tls.key' } as const;

export const certsGenerateCommand = defineCommand({
  name: COMMAND,
  summary: 'Write a new CA and a serving certificate for the webhook Service',
  usage: 'certs generate --out DIR [options]',
  description: [
    'Writes ca.crt, tls.crt and tls.key (mode 0600) to DIR. The certificate is valid for',
    'SERVICE, SERVICE.NAMESPACE, SERVICE.NAMESPACE.svc and SERVICE.NAMESPACE.svc.cluster.local,',
    'plus any --dns and --ip. The CA key is not kept: the CA can sign nothing else.',
    'ca.crt, base64-encoded, is the caBundle of the MutatingWebhookConfiguration.',
  ].join('\n'),
  options: {
    out: { type: 'string', short: 'o', value: 'DIR', description: 'Directory to write the files to (created if missing)' },
    service: { type: 'string', value: 'NAME', description: 'Name of the webhook Service', default: 'dfs-injector' },
    namespace: { type: 'string', value: 'NS', description: 'Namespace of the webhook Service', default: 'dfs-system' },
    dns: { type: 'string', multiple: true, value: 'NAME', description: 'Extra DNS name for the certificate' },
    ip: { type: 'string', multiple: true, value: 'ADDR', description: 'Extra IP address for the certificate' },
    days: { type: 'string', value: 'N', description: 'Days the serving certificate is valid', default: '365' },
    'ca-days': { type: 'string', value: 'N', description: 'Days the CA is valid', default: '3650, or --days if longer' },
    'key-bits': { type: 'string', value: 'BITS', description: 'RSA key size: 2048, 3072 or 4096', default: '2048' },
    force: { type: 'boolean', description: 'Replace files that already exist in DIR' },
  },
  examples: [
    'dfs-injector certs generate --out ./tls',
    'dfs-injector certs generate --service dfs-injector --namespace dfs-system --out ./tls --dns webhook.example.test --ip 10.0.0.7',
  ],
  async run(args, io) {
    const out = args.string('out');
    if (out === undefined) throw new UsageError('certs generate needs --out DIR', COMMAND);
    const number = (flag: 'days' | 'ca-days' | 'key-bits'): number | undefined => {
      const text = args.string(flag);
      return text === undefined ? undefined : positiveIntegerValue(`--${flag}`, text, COMMAND);
    };
    const service = args.string('service') ?? 'dfs-injector';
    const namespace = args.string('namespace') ?? 'dfs-system';
    const days = number('days');
    const caDays = number('ca-days');
    const keyBits = number('key-bits');

    const paths = { caCert: join(out, CERT_FILES.caCert), tlsCert: join(out, CERT_FILES.tlsCert), tlsKey: join(out, CERT_FILES.tlsKey) };
    if (!args.flag('force')) await refuseToOverwrite(Object.values(paths));

    let certs: GeneratedCertificates;
    try {
      certs = await generateCertificates({
        service,
        namespace,
        dns: args.strings('dns'),
        ips: args.strings('ip'),
        ...(days === undefined ? {} : { days }),
        ...(caDays === undefined ? {} : { caDays }),
        ...(keyBits === undefined ? {} : { keyBits }),
      });
    } catch (error) {
      if (error instanceof CertificateOptionError) throw new UsageError(error.message, COMMAND);
      throw error;
    }
    await writeCertificates(out, certs);

    const expires = new X509Certificate(certs.tlsCert).validTo;
    io.stderr.write(
      [
        `wrote ${paths.caCert}, ${paths.tlsCert} and ${paths.tlsKey}`,
        `  names: ${[...serviceDnsNames(service, namespace), ...args.strings('dns'), ...args.strings('ip')].join(', ')}`,
        `  valid until: ${expires}`,
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  },
});

async function refuseToOverwrite(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    if (exists) throw new UserError(`${path} already exists; pass --force to replace it`);
  }
}

/** Writes the three files; the key is readable by its owner only. */
export async function writeCertificates(dir: string, certs: GeneratedCertificates): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, CERT_FILES.caCert), certs.caCert);
    await writeFile(join(dir, CERT_FILES.tlsCert), certs.tlsCert);
    const keyPath = join(dir, CERT_FILES.tlsKey);
    await writeFile(keyPath, certs.tlsKey, { mode: 0o600 });
    // `mode` applies only when the file is created; a replaced key keeps its old mode otherwise.
    await chmod(keyPath, 0o600);
  } catch (error) {
    throw new UserError(`--out ${dir}: ${fileErrorReason(error)}`);
  }
}
