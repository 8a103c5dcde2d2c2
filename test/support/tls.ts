import { generateCertificates, type GeneratedCertificates } from '../../certs/generate.js';

let cached: Promise<GeneratedCertificates> | undefined;

/**
 * A CA and a serving certificate for `localhost`, `127.0.0.1` and `::1` (plus the in-cluster names of
 * `dfs-injector.dfs-system`). Generated once per test process: key generation is the slow part.
 */
export function localCertificates(): Promise<GeneratedCertificates> {
  cached ??= generateCertificates({
    service: 'dfs-injector',
    namespace: 'dfs-system',
    dns: ['localhost'],
    ips: ['127.0.0.1', '::1'],
    days: 2,
  });
  return cached;
}
