import { beforeAll, describe, expect, it } from 'vitest';
import { generateCertificates, type GeneratedCertificates } from '../../certs/generate.js';
import {
  checkCaBundle,
  checkDryRunAdmission,
  checkNodeMounters,
  checkSmbService,
  checkSourceSidecars,
  checkWebhookCertificate,
  checkWebhookConfiguration,
  checkWebhookDeployment,
  formatText,
  parseServiceHost,
  splitPem,
  toJson,
  MAX_CERTIFICATES,
  type CheckPod,
  type ServedCertificate,
  type WebhookConfigurationFacts,
} from './index.js';

const DAY = 24 * 60 * 60 * 1000;
const SERVICE = { namespace: 'dfs-system', name: 'dfs-injector', port: 443 };

// Certificates as `certs generate` and the webhook's --tls-secret make them: a CA and a serving
// certificate for the Service's names, RSA 2048, 365 days.
let pair: GeneratedCertificates;
let other: GeneratedCertificates;
beforeAll(async () => {
  [pair, other] = await Promise.all([
    generateCertificates({ service: 'dfs-injector', namespace: 'dfs-system', days: 365 }),
    generateCertificates({ service: 'dfs-injector', namespace: 'dfs-system', days: 365 }),
  ]);
}, 60_000);

function served(chain: string[] = [pair.tlsCert]): ServedCertificate {
  return { ok: true, address: '127.0.0.1:8443', chain };
}

function configuration(caBundle: string | undefined, service = SERVICE): WebhookConfigurationFacts {
  return {
    name: 'dfs-injector',
    entries: [
      { name: 'pods.dfs-injector.io', caBundle, service },
      { name: 'namespace-consumers.dfs-injector.io', caBundle, service },
    ],
  };
}

describe('the webhook certificate step', () => {
  it('passes a certificate with more days left than asked, and says until when', () => {
    const result = checkWebhookCertificate(served(), new Date(), 30);
    expect(result.status).toBe('pass');
    expect(result.reason).toMatch(/^valid until \d{4}-\d\d-\d\dT.*Z \((364|365) days left\)$/);
  });

  it('fails one that expires too soon, one that expired and one that is not valid yet', () => {
    const soon = checkWebhookCertificate(served(), new Date(Date.now() + 350 * DAY), 30);
    expect(soon).toMatchObject({ status: 'fail', troubleshooting: expect.stringContaining('failed calling webhook') });
    expect(soon.reason).toMatch(/, in 1[45] days \(fewer than 30\)$/);
    expect(checkWebhookCertificate(served(), new Date(Date.now() + 400 * DAY), 30).reason).toMatch(/^expired on .*: the API server refuses to call the webhook$/);
    expect(checkWebhookCertificate(served(), new Date(Date.now() - 2 * DAY), 30).reason).toMatch(/^not valid before .* \(a clock is wrong\)$/);
  });

  it('skips, and says how to reach the webhook, when nothing was served', () => {
    const result = checkWebhookCertificate({ ok: false, address: '10.0.0.17:443', error: 'timed out after 5 s' }, new Date(), 30);
    expect(result).toMatchObject({ status: 'skip', reason: 'cannot read the served certificate: timed out after 5 s', subject: 'served at 10.0.0.17:443' });
    expect(result.fix).toContain('port-forward svc/dfs-injector 8443:443');
    expect(checkWebhookCertificate(served(['not a certificate']), new Date(), 30).reason).toMatch(/presented no readable certificate/);
  });
});

describe('the caBundle step', () => {
  it('passes when every entry verifies the served certificate for the Service name', () => {
    expect(checkCaBundle(configuration(pair.caCert), served())).toMatchObject({ status: 'pass' });
    // A bundle of two CAs (a rotation in progress) verifies with either.
    expect(checkCaBundle(configuration(`${other.caCert}${pair.caCert}`), served()).status).toBe('pass');
  });

  it('fails a bundle of another CA, a missing one, and garbage, naming each entry', () => {
    // The other CA has the same name as the right one: only the signature tells them apart.
    const wrong = checkCaBundle(configuration(other.caCert), served());
    expect(wrong.status).toBe('fail');
    expect(wrong.reason).toMatch(/^2 of 2 entries would make the API server refuse the webhook: pods\.dfs-injector\.io: caBundle does not verify the served certificate \(issued by CN=dfs-injector CA for dfs-injector\.dfs-system, O=dfs-injector\); namespace-consumers/);
    expect(checkCaBundle(configuration(undefined), served()).reason).toContain('pods.dfs-injector.io: no caBundle; namespace-consumers.dfs-injector.io: no caBundle');
    expect(checkCaBundle(configuration('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), served()).reason).toContain('caBundle holds no readable certificate (certificate 1:');
  });

  it('fails a certificate that is not for the name the API server calls', () => {
    const result = checkCaBundle(configuration(pair.caCert, { namespace: 'other', name: 'dfs-injector', port: 443 }), served());
    expect(result.reason).toContain('the served certificate is not for dfs-injector.other.svc (it names DNS:dfs-injector');
  });

  it('reads at most MAX_CERTIFICATES from a bundle, in one pass', () => {
    expect(splitPem(pair.caCert.repeat(MAX_CERTIFICATES * 3))).toHaveLength(MAX_CERTIFICATES);
    expect(splitPem('-----BEGIN CERTIFICATE-----'.repeat(10_000))).toEqual([]);
  });
});

describe('the webhook configuration, Deployment and dry-run steps', () => {
  it('reports a missing configuration and what each entry calls', () => {
    expect(checkWebhookConfiguration('dfs-injector', undefined)).toMatchObject({ status: 'fail', fix: 'kubectl apply -k manifests/overlays/default (or overlays/cert-manager)' });
    expect(checkWebhookConfiguration('dfs-injector', configuration(pair.caCert)).reason).toBe('2 webhook entries, calling service dfs-system/dfs-injector:443');
  });

  it('fails a Deployment that is missing or has no available replica, with the condition message', () => {
    const ref = { namespace: 'dfs-system', name: 'dfs-injector' };
    expect(checkWebhookDeployment(ref, undefined).status).toBe('fail');
    const down = checkWebhookDeployment(ref, { ...ref, replicas: 2, availableReplicas: 0, conditions: [{ type: 'Available', status: 'False', message: 'Deployment does not have minimum availability.' }] });
    expect(down.reason).toBe('not available: 0 of 2 replicas available (Deployment does not have minimum availability.)');
    expect(down.fix).toBe('kubectl -n dfs-system describe deployment dfs-injector; kubectl -n dfs-system logs deployment/dfs-injector');
    expect(checkWebhookDeployment(ref, { ...ref, replicas: 2, availableReplicas: 1, conditions: [{ type: 'Available', status: 'True' }] })).toMatchObject({ status: 'pass', reason: 'available: 1 of 2 replicas' });
  });

  it('maps each dry-run outcome to pass, fail or an explained skip', () => {
    expect(checkDryRunAdmission({ kind: 'injected', namespace: 'media' }).status).toBe('pass');
    expect(checkDryRunAdmission({ kind: 'not-injected', namespace: 'media' }).reason).toContain('the webhook was not called');
    expect(checkDryRunAdmission({ kind: 'refused', namespace: 'media', message: 'HTTP 500: failed calling webhook' }).reason).toBe('a dry-run create of a consumer pod was refused: HTTP 500: failed calling webhook');
    expect(checkDryRunAdmission({ kind: 'forbidden', message: 'HTTP 403' })).toMatchObject({ status: 'skip', fix: expect.stringContaining('dfs-injector-checker-dry-run') });
    expect(checkDryRunAdmission({ kind: 'no-namespace' }).status).toBe('skip');
    expect(checkDryRunAdmission({ kind: 'no-namespace', only: 'legacy' })).toMatchObject({ status: 'skip', subject: 'namespace legacy' });
  });
});

function pod(name: string, role: CheckPod['role'], node: string | undefined, containers: CheckPod['containers'] = {}): CheckPod {
  return { namespace: 'media', name, role, ready: true, containers, ...(node === undefined ? {} : { nodeName: node }), phase: 'Running' };
}

describe('the data-path steps', () => {
  it('checks the sidecar of each source pod only', () => {
    const results = checkSourceSidecars(
      [
        pod('decypharr-0', 'source', 'worker-1', { decypharr: { ready: true, state: 'running' }, 'dfs-smbd': { ready: false, state: 'running' } }),
        pod('decypharr-1', 'source', 'worker-2', { decypharr: { ready: true, state: 'running' }, 'dfs-smbd': { ready: true, state: 'running' } }),
        pod('decypharr-2', 'source', undefined),
        pod('sonarr-0', 'consumer', 'worker-1'),
      ],
      'dfs-smbd',
    );
    expect(results.map((r) => `${r.status} ${r.subject}`)).toEqual(['fail pod media/decypharr-0', 'pass pod media/decypharr-1', 'fail pod media/decypharr-2']);
    expect(results[0]?.reason).toBe('dfs-smbd is not Ready (running): it turns Ready only when the FUSE mount is there and readable');
    expect(results[0]?.fix).toContain('kubectl -n media exec decypharr-0 -c dfs-smbd -- dfs-smbd-ready');
    expect(results[2]?.reason).toBe('no dfs-smbd container status (pod Running, not scheduled)');
  });

  it('fails an SMB Service that is missing or has no ready endpoint', () => {
    const ref = { namespace: 'media', name: 'dfs-smb', source: 'DFS_SMB_SERVICE=dfs-smb.media.svc.cluster.local of daemonset dfs-system/dfs-mounter' };
    expect(checkSmbService({ ...ref, exists: false, readyEndpoints: 0, notReadyEndpoints: 0 }, true).reason).toBe(`not found (named by ${ref.source}): the mounters have nothing to mount`);
    const none = checkSmbService({ ...ref, exists: true, readyEndpoints: 0, notReadyEndpoints: 1 }, true);
    expect(none).toMatchObject({ status: 'fail', subject: 'service media/dfs-smb', troubleshooting: expect.stringContaining('After the source pod restarts or moves') });
    expect(checkSmbService({ ...ref, exists: true, readyEndpoints: 2, notReadyEndpoints: 0 }, true).reason).toBe('2 ready endpoints');
    expect(checkSmbService(undefined, false).status).toBe('skip');
  });

  it('fails each node that runs consumers without a Ready mounter, and ignores nodes without consumers', () => {
    const pods = [pod('sonarr-0', 'consumer', 'worker-1'), pod('radarr-0', 'consumer', 'worker-2'), pod('lidarr-0', 'consumer', 'worker-2'), pod('decypharr-0', 'source', 'worker-3'), pod('pending-0', 'consumer', undefined)];
    const results = checkNodeMounters(pods, [
      { name: 'dfs-mounter-a', nodeName: 'worker-1', ready: true },
      { name: 'dfs-mounter-b', nodeName: 'worker-2', ready: false },
    ]);
    expect(results.map((r) => `${r.status} ${r.subject}`)).toEqual(['pass node worker-1', 'fail node worker-2']);
    expect(results[1]?.reason).toBe('dfs-mounter-b not Ready, but it runs 2 consumers (media/radarr-0, media/lidarr-0): they see an empty mount');
    expect(checkNodeMounters([pod('sonarr-0', 'consumer', 'worker-9')], [])[0]?.reason).toBe('no dfs-mounter pod runs there, but it runs 1 consumer (media/sonarr-0): they see an empty mount');
    expect(checkNodeMounters([], [])[0]?.status).toBe('skip');
  });

  it('reads a Service name from DFS_SMB_SERVICE', () => {
    expect(parseServiceHost('dfs-smb.media.svc.cluster.local')).toEqual({ namespace: 'media', name: 'dfs-smb' });
    expect(parseServiceHost('dfs-smb.media')).toEqual({ namespace: 'media', name: 'dfs-smb' });
    expect(parseServiceHost('10.0.0.7')).toBeUndefined();
    expect(parseServiceHost('dfs-smb')).toBeUndefined();
  });
});

describe('the report', () => {
  const report = {
    results: [
      checkWebhookConfiguration('dfs-injector', configuration('x')),
      checkSmbService({ namespace: 'media', name: 'dfs-smb', source: 's', exists: true, readyEndpoints: 0, notReadyEndpoints: 1 }, true),
      checkNodeMounters([pod('sonarr-0', 'consumer', 'worker-1')], [])[0]!,
      checkDryRunAdmission({ kind: 'no-namespace' }),
    ],
  };

  it('prints one line per step, the fix and the README entry under each failure, and what to fix first', () => {
    const text = formatText(report);
    const lines = text.split('\n');
    expect(lines[0]).toBe('✓ webhook-configuration mutatingwebhookconfiguration/dfs-injector: 2 webhook entries, calling service dfs-system/dfs-injector:443');
    expect(lines[1]).toMatch(/^✗ smb-endpoint service media\/dfs-smb: no ready endpoint \(1 not ready\)/);
    expect(lines[2]).toMatch(/^ {4}fix: kubectl -n media get endpointslices -l kubernetes.io\/service-name=dfs-smb/);
    expect(lines[3]).toBe('    see: README, Troubleshooting: "After the source pod restarts or moves, reads in /mnt/dfs hang or fail"');
    expect(text).toContain('\n- webhook-admission: no namespace is labelled');
    expect(text.endsWith('\n2 of 4 checks failed, 1 skipped. Fix first: smb-endpoint service media/dfs-smb: kubectl -n media get endpointslices -l kubernetes.io/service-name=dfs-smb; start the source pod, or fix its sidecar (source-sidecar step)\n')).toBe(true);
  });

  it('says all passed when nothing failed', () => {
    expect(formatText({ results: [report.results[0]!, report.results[3]!] }).endsWith('\nAll 1 checks passed, 1 skipped.\n')).toBe(true);
  });

  it('gives JSON with a summary and the first failure', () => {
    const json = toJson(report, new Date('2026-11-20T08:00:00Z')) as { summary: unknown; results: unknown[] };
    expect(json.summary).toEqual({ passed: 1, failed: 2, skipped: 1, fixFirst: report.results[1] });
    expect(json.results).toHaveLength(4);
  });
});
