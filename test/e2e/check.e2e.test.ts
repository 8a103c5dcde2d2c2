// `dfs-injector check` against a real API server and controller-manager: the real webhook server
// over TLS (registered from manifests/base), pods created through it, and what a kubelet and a
// scheduler would write (a binding to a Node, a Ready status with a pod IP) written by the test,
// so that the real Deployment, DaemonSet and EndpointSlice controllers compute the rest. Each
// failure is staged on that cluster, and check must name the step, the subject and the fix.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { run as check } from '../../cli/check.js';
import { defaultConfig } from '../../lib/config.js';
import { buildServer, type WebhookServer } from '../../webhook/server.js';
import { captureIo } from '../support/cli-io.js';
import { findKustomize, KUSTOMIZE_HINT, render } from '../manifests/kustomize.js';
import { needs } from '../support/prereq.js';
import { findControlPlaneBinaries, waitFor, writeKubeconfig, type KubeObject } from './harness.js';
import { createPki } from './pki.js';
import { useControlPlane } from './use-control-plane.js';

const binaries = findControlPlaneBinaries();
const kustomize = findKustomize();
const available =
  needs('a loopback Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)', binaries.available, binaries.hint) && needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT);

const execFileAsync = promisify(execFile);
const PAUSE = 'registry.k8s.io/pause:3.10';
const WEBHOOK_DNS = 'dfs-injector.dfs-system.svc';

type Shipped = KubeObject & { webhooks: { name: string; clientConfig: Record<string, unknown> }[] };

async function shippedWebhookConfiguration(): Promise<Shipped> {
  return parse(await readFile(new URL('../../manifests/base/mutatingwebhookconfiguration.yaml', import.meta.url), 'utf8')) as Shipped;
}

function pointAt(shipped: Shipped, port: number, caPem: string): Shipped {
  const copy = structuredClone(shipped);
  for (const entry of copy.webhooks) {
    const path = (entry.clientConfig.service as { path: string }).path;
    entry.clientConfig = { url: `https://127.0.0.1:${port}${path}`, caBundle: Buffer.from(caPem).toString('base64') };
  }
  return copy;
}

interface Run {
  code: number;
  out: string;
  err: string;
  json: { summary: { failed: number; fixFirst: { step: string } | null }; results: { step: string; subject: string; status: string; reason: string; fix?: string; troubleshooting?: string }[] };
}

async function runCheck(kubeconfig: string, extra: string[] = []): Promise<Run> {
  const io = captureIo({ now: new Date() });
  // No kubelet here: the steps that exec into containers are tested on the real node
  // (test/node/check.e2e.test.ts); these are the object-level ones.
  const code = await check(['--kubeconfig', kubeconfig, '-o', 'json', '--no-exec', ...extra], io);
  return { code, out: io.out(), err: io.err(), json: io.out() === '' ? (undefined as never) : JSON.parse(io.out()) };
}

function line(result: Run, step: string, subject = ''): Run['json']['results'][number] | undefined {
  return result.json.results.find((r) => r.step === step && (subject === '' || r.subject === subject));
}

/**
 * The CSR and extensions pki.issue left behind, signed again by the same CA with dates in the past:
 * `openssl x509` (3.0) cannot set them, `openssl ca` can.
 */
async function resignExpired(dir: string, name: string): Promise<string> {
  const db = join(dir, `${name}-ca-db`);
  await mkdir(db);
  await writeFile(join(db, 'index.txt'), '');
  await writeFile(join(db, 'serial'), '1000\n');
  const config = join(db, 'ca.cnf');
  await writeFile(config, ['[ca]', 'default_ca = e2e', '[e2e]', `database = ${db}/index.txt`, `new_certs_dir = ${db}`, `serial = ${db}/serial`, 'default_md = sha256', 'policy = any', '[any]', 'commonName = supplied', ''].join('\n'));
  const yesterday = new Date(Date.now() - 24 * 60 * 60 * 1000);
  const stamp = (d: Date): string => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
  const out = join(dir, `${name}-expired.crt`);
  await execFileAsync('openssl', ['ca', '-batch', '-notext', '-config', config, '-cert', join(dir, 'ca.crt'), '-keyfile', join(dir, 'ca.key'), '-in', join(dir, `${name}.csr`), '-out', out,
    '-startdate', stamp(new Date(yesterday.getTime() - 24 * 60 * 60 * 1000)), '-enddate', stamp(yesterday), '-extfile', join(dir, `${name}-ext.cnf`), '-extensions', 'ext'], { timeout: 30_000 });
  return out;
}

describe.skipIf(!available)('check against a real API server', () => {
  // No kubelet posts node status here: the node lifecycle controller would mark every pod NotReady
  // and the pod GC would collect them. What they do on a real cluster is not what is tested.
  const plane = useControlPlane({ controllerManagerArgs: ['--controllers=*,-node-lifecycle-controller,-pod-garbage-collector-controller'] });
  const servers: WebhookServer[] = [];
  let shipped: Shipped;
  let port = 0;
  let scratch = '';

  /** A webhook server on loopback whose certificate (from the run's CA) lasts `days`, or expired yesterday. */
  async function serve(days: number | 'expired'): Promise<number> {
    const cp = plane();
    const name = `webhook-${days}-${servers.length}`;
    const cert = await cp.pki.issue({ name, commonName: 'dfs-injector', dnsNames: [WEBHOOK_DNS], ipAddresses: ['127.0.0.1'], usage: 'server', days: days === 'expired' ? 1 : days });
    const certPath = days === 'expired' ? await resignExpired(cp.pki.dir, name) : cert.cert;
    const server = buildServer({ getConfig: () => defaultConfig, tls: { cert: await readFile(certPath, 'utf8'), key: await readFile(cert.key, 'utf8') }, logger: false });
    await server.admission.listen({ port: 0, host: '127.0.0.1' });
    servers.push(server);
    return (server.admission.server.address() as AddressInfo).port;
  }

  async function bind(namespace: string, pod: string, node: string): Promise<void> {
    await plane().client.call({ method: 'POST', path: `/api/v1/namespaces/${namespace}/pods/${pod}/binding`, body: { apiVersion: 'v1', kind: 'Binding', metadata: { name: pod }, target: { apiVersion: 'v1', kind: 'Node', name: node } } });
  }

  /** What a kubelet reports: every container running, Ready or not, and the pod's IP. */
  async function setReady(namespace: string, name: string, ready: boolean | Record<string, boolean>, ip: string): Promise<void> {
    const { client } = plane();
    const pod = (await client.get<KubeObject & { spec: { containers: { name: string; image: string }[] } }>('v1', 'Pod', name, namespace))!;
    const now = new Date().toISOString();
    const readyOf = (c: string): boolean => (typeof ready === 'boolean' ? ready : (ready[c] ?? true));
    const all = pod.spec.containers.every((c) => readyOf(c.name));
    const condition = (type: string, status: boolean) => ({ type, status: status ? 'True' : 'False', lastTransitionTime: now });
    await client.call({
      method: 'PATCH',
      path: `/api/v1/namespaces/${namespace}/pods/${name}/status`,
      contentType: 'application/merge-patch+json',
      body: {
        status: {
          phase: 'Running',
          podIP: ip,
          podIPs: [{ ip }],
          hostIP: '192.0.2.1',
          startTime: now,
          conditions: [condition('PodScheduled', true), condition('Initialized', true), condition('ContainersReady', all), condition('Ready', all)],
          containerStatuses: pod.spec.containers.map((c) => ({ name: c.name, image: c.image, imageID: '', ready: readyOf(c.name), started: true, restartCount: 0, state: { running: { startedAt: now } } })),
        },
      },
    });
  }

  beforeAll(async () => {
    const cp = plane();
    const { client } = cp;
    scratch = await mkdtemp(join(tmpdir(), 'dfs-check-e2e-'));
    port = await serve(365);
    shipped = await shippedWebhookConfiguration();
    await client.apply(pointAt(shipped, port, cp.pki.caPem));
    for (const node of ['worker-1', 'worker-2']) await client.create({ apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { 'kubernetes.io/hostname': node } } });
    await cp.createNamespace('media', { 'dfs-injector.io/injection': 'enabled' });
    await waitFor('the webhook to inject a dry-run pod', async () => {
      const probe: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe', namespace: 'media', labels: { 'dfs-injector.io/role': 'consumer' } }, spec: { containers: [{ name: 'app', image: PAUSE }] } };
      const created = await client.create(probe, { dryRun: true });
      return created.metadata.annotations?.['dfs-injector.io/status'];
    });

    // The mounter as shipped (its DFS_SMB_SERVICE names dfs-smb in media); its pods bound as the scheduler would.
    await cp.createNamespace('dfs-system');
    // manifests/mounter as rendered: its ServiceAccount, script ConfigMap and DaemonSet.
    for (const object of render(kustomize!, 'mounter')) await client.create({ ...object, metadata: { ...object.metadata, namespace: 'dfs-system' } });
    const mounterPods = await waitFor('a dfs-mounter pod per node', async () => {
      const pods = await client.list<KubeObject & { spec: { affinity: any } }>('v1', 'Pod', { namespace: 'dfs-system', labelSelector: 'app.kubernetes.io/name=dfs-mounter' });
      return pods.length === 2 ? pods : undefined;
    });
    for (const [i, pod] of mounterPods.entries()) {
      const node = pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0] as string;
      await bind('dfs-system', pod.metadata.name!, node);
      await setReady('dfs-system', pod.metadata.name!, true, `192.0.2.${10 + i}`);
    }

    // The source and two consumers, created through the webhook, on the two nodes.
    await client.applyManifest(await readFile(new URL('../../manifests/components/smb-service/service.yaml', import.meta.url), 'utf8'), { namespace: 'media' });
    const pod = (name: string, role: string, node: string, privileged = false): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'media', labels: { app: name, 'dfs-injector.io/role': role } },
      spec: { nodeName: node, containers: [{ name: name.replace(/-\d+$/, ''), image: PAUSE, ...(privileged ? { securityContext: { privileged: true } } : {}) }] },
    });
    await client.create(pod('decypharr-0', 'source', 'worker-1', true));
    await client.create(pod('sonarr-0', 'consumer', 'worker-1'));
    await client.create(pod('radarr-0', 'consumer', 'worker-2'));
    await setReady('media', 'decypharr-0', true, '10.244.1.5');
    await setReady('media', 'sonarr-0', true, '10.244.1.6');
    await setReady('media', 'radarr-0', true, '10.244.2.6');
  }, 240_000);

  afterAll(async () => {
    for (const server of servers) await server.close();
    if (scratch !== '') await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it('passes every step on a healthy cluster, reading the real endpoint slices', async () => {
    // The EndpointSlice controller publishes the source's endpoint a moment after it turns Ready.
    const result = await waitFor('check to pass', async () => {
      const r = await runCheck(plane().kubeconfigPath);
      return r.code === 0 ? r : undefined;
    });
    expect(result.err).toBe('');
    expect(result.json.results.map((r) => `${r.status} ${r.step} ${r.subject}`)).toEqual([
      'pass webhook-configuration mutatingwebhookconfiguration/dfs-injector',
      `pass webhook-certificate served at 127.0.0.1:${port}`,
      'pass webhook-ca-bundle mutatingwebhookconfiguration/dfs-injector',
      'pass webhook-admission namespace media',
      'pass source-sidecar pod media/decypharr-0',
      'pass smb-endpoint service media/dfs-smb',
      'pass node-mounter node worker-1',
      'pass node-mounter node worker-2',
    ]);
    expect(line(result, 'smb-endpoint')?.reason).toBe('1 ready endpoint');
    // One object per list request: the same answer, read page by page.
    const paged = await runCheck(plane().kubeconfigPath, ['--page-size', '1']);
    expect(paged.json.results.map((r) => `${r.status} ${r.step} ${r.subject}`)).toEqual(result.json.results.map((r) => `${r.status} ${r.step} ${r.subject}`));
    expect(line(result, 'webhook-certificate')?.reason).toMatch(/^valid until .* \((364|365) days left\)$/);
    // The dry run created nothing.
    expect((await plane().client.list('v1', 'Pod', { namespace: 'media' })).map((p) => p.metadata.name).sort()).toEqual(['decypharr-0', 'radarr-0', 'sonarr-0']);

    const io = captureIo({ now: new Date() });
    expect(await check(['--kubeconfig', plane().kubeconfigPath, '--no-exec'], io)).toBe(0);
    expect(io.out()).toContain('✓ smb-endpoint service media/dfs-smb: 1 ready endpoint\n');
    expect(io.out()).toMatch(/\nAll 8 checks passed\.\n$/);
  }, 90_000);

  it('fails the sidecar and the SMB endpoint when the source is not ready, and says to fix the sidecar first', async () => {
    await setReady('media', 'decypharr-0', { 'dfs-smbd': false }, '10.244.1.5');
    try {
      const result = await waitFor('the endpoint to turn not ready', async () => {
        const r = await runCheck(plane().kubeconfigPath);
        return line(r, 'smb-endpoint')?.status === 'fail' ? r : undefined;
      });
      expect(result.code).toBe(1);
      expect(line(result, 'source-sidecar')).toMatchObject({ status: 'fail', subject: 'pod media/decypharr-0' });
      expect(line(result, 'source-sidecar')?.reason).toContain('dfs-smbd is not Ready (running)');
      expect(line(result, 'smb-endpoint')?.reason).toMatch(/^no ready endpoint \(1 not ready\)/);
      expect(line(result, 'smb-endpoint')?.troubleshooting).toContain('After the source pod restarts or moves');
      expect(result.json.summary.fixFirst?.step).toBe('source-sidecar');
      const text = captureIo({ now: new Date() });
      expect(await check(['--kubeconfig', plane().kubeconfigPath, '--no-exec'], text)).toBe(1);
      expect(text.out()).toMatch(/\n2 of 8 checks failed\. Fix first: source-sidecar pod media\/decypharr-0: kubectl -n media describe pod decypharr-0/);
    } finally {
      await setReady('media', 'decypharr-0', true, '10.244.1.5');
    }
  }, 90_000);

  it('fails the node whose mounter is not ready while consumers run there, and only that node', async () => {
    const { client, kubeconfigPath } = plane();
    const onWorker2 = (await client.list<KubeObject & { spec: { nodeName: string } }>('v1', 'Pod', { namespace: 'dfs-system', labelSelector: 'app.kubernetes.io/name=dfs-mounter' })).find((p) => p.spec.nodeName === 'worker-2')!;
    await setReady('dfs-system', onWorker2.metadata.name!, false, '192.0.2.11');
    try {
      const result = await runCheck(kubeconfigPath);
      expect(result.code).toBe(1);
      expect(line(result, 'node-mounter', 'node worker-1')?.status).toBe('pass');
      expect(line(result, 'node-mounter', 'node worker-2')).toMatchObject({
        status: 'fail',
        reason: `${onWorker2.metadata.name} not Ready, but it runs 1 consumer (media/radarr-0): they see an empty mount`,
        troubleshooting: 'README, Troubleshooting: "A consumer sees an empty /mnt/dfs"',
      });
    } finally {
      await setReady('dfs-system', onWorker2.metadata.name!, true, '192.0.2.11');
    }
  }, 60_000);

  it('fails a certificate that expires within --cert-min-days, while the API server still calls it', async () => {
    const cp = plane();
    const shortLived = await serve(2);
    await cp.client.apply(pointAt(shipped, shortLived, cp.pki.caPem));
    try {
      const result = await runCheck(cp.kubeconfigPath);
      expect(result.code).toBe(1);
      expect(line(result, 'webhook-certificate')?.reason).toMatch(/^expires on \S+, in 1 day \(fewer than 30\)$/);
      expect(line(result, 'webhook-ca-bundle')?.status).toBe('pass');
      expect(line(result, 'webhook-admission')?.status).toBe('pass');
      expect((await runCheck(cp.kubeconfigPath, ['--cert-min-days', '1'])).code).toBe(0);
    } finally {
      await cp.client.apply(pointAt(shipped, port, cp.pki.caPem));
    }
  }, 60_000);

  it('fails an expired certificate, which the API server refuses to call, and keeps the caBundle step apart', async () => {
    const cp = plane();
    const expired = await serve('expired');
    await cp.client.apply(pointAt(shipped, expired, cp.pki.caPem));
    try {
      const result = await waitFor('the API server to call the expired webhook', async () => {
        const r = await runCheck(cp.kubeconfigPath);
        return line(r, 'webhook-admission')?.status === 'fail' ? r : undefined;
      });
      expect(result.code).toBe(1);
      expect(line(result, 'webhook-certificate')?.reason).toMatch(/^expired on \S+: the API server refuses to call the webhook$/);
      // Same CA: the bundle still verifies the signature; the dates are the certificate step's.
      expect(line(result, 'webhook-ca-bundle')?.status).toBe('pass');
      expect(line(result, 'webhook-admission')?.reason).toMatch(/refused: dry-run create: HTTP 500: .*failed calling webhook "pods\.dfs-injector\.io".*x509: certificate has expired/);
      expect(result.json.summary.fixFirst?.step).toBe('webhook-certificate');
    } finally {
      await cp.client.apply(pointAt(shipped, port, cp.pki.caPem));
    }
  }, 60_000);

  it('fails a caBundle that does not verify the served certificate, and the API server refuses the dry run', async () => {
    const cp = plane();
    await mkdir(join(scratch, 'other-ca'));
    const other = await createPki(join(scratch, 'other-ca'));
    await cp.client.apply(pointAt(shipped, port, other.caPem));
    try {
      const result = await waitFor('the API server to use the wrong caBundle', async () => {
        const r = await runCheck(cp.kubeconfigPath);
        return line(r, 'webhook-admission')?.status === 'fail' ? r : undefined;
      });
      expect(result.code).toBe(1);
      expect(line(result, 'webhook-certificate')?.status).toBe('pass');
      expect(line(result, 'webhook-ca-bundle')?.status).toBe('fail');
      expect(line(result, 'webhook-ca-bundle')?.reason).toMatch(/^4 of 4 entries would make the API server refuse the webhook: pods\.dfs-injector\.io: caBundle does not verify the served certificate/);
      expect(line(result, 'webhook-admission')?.reason).toMatch(/^a dry-run create of a consumer pod was refused: dry-run create: HTTP 500: .*failed calling webhook "pods\.dfs-injector\.io".*x509/);
      expect(result.json.summary.fixFirst?.step).toBe('webhook-ca-bundle');
    } finally {
      await cp.client.apply(pointAt(shipped, port, cp.pki.caPem));
    }
  }, 60_000);

  it('runs as a user bound to the auditor and checker roles, and dry-runs only with the dry-run role', async () => {
    const cp = plane();
    const user = 'dfs-e2e-checker';
    const cert = await cp.pki.issue({ name: user, commonName: user, usage: 'client' });
    const kubeconfig = join(cp.dir, `${user}.kubeconfig`);
    await writeKubeconfig(kubeconfig, user, { server: cp.server, caPem: cp.pki.caPem, certPem: await readFile(cert.cert, 'utf8'), keyPem: await readFile(cert.key, 'utf8') });
    const bindRole = (role: string) =>
      cp.client.apply({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: `${user}-${role}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
      });
    for (const path of ['../../manifests/auditor/clusterrole.yaml', '../../manifests/auditor-check/clusterrole.yaml']) {
      await cp.client.applyManifest(await readFile(new URL(path, import.meta.url), 'utf8'));
    }

    await bindRole('dfs-injector-auditor');
    const auditorOnly = await waitFor('the auditor binding to apply', async () => {
      const r = await runCheck(kubeconfig);
      return /mutatingwebhookconfigurations/.test(r.err) ? r : undefined;
    });
    expect(auditorOnly.code).toBe(3);
    expect(auditorOnly.out).toBe('');
    expect(auditorOnly.err).toMatch(/^error: cannot read mutatingwebhookconfiguration dfs-injector: HTTP 403: .*"dfs-e2e-checker" cannot get resource "mutatingwebhookconfigurations"/);

    await bindRole('dfs-injector-checker');
    const reads = await waitFor('the checker binding to apply', async () => {
      const r = await runCheck(kubeconfig);
      return r.code === 3 ? undefined : r;
    });
    expect(reads.err).toBe('');
    expect(reads.code).toBe(0);
    expect(line(reads, 'webhook-admission')).toMatchObject({ status: 'skip', fix: 'bind the dfs-injector-checker-dry-run ClusterRole (manifests/auditor-check) to run this step' });
    expect(reads.json.results.filter((r) => r.status !== 'pass').map((r) => r.step)).toEqual(['webhook-admission']);

    await bindRole('dfs-injector-checker-dry-run');
    const all = await waitFor('the dry-run binding to apply', async () => {
      const r = await runCheck(kubeconfig);
      return line(r, 'webhook-admission')?.status === 'pass' ? r : undefined;
    });
    expect(all.code).toBe(0);
    expect(all.json.results.every((r) => r.status === 'pass')).toBe(true);
  }, 120_000);

  it('exits 3 when the API server cannot be reached', async () => {
    const kubeconfig = join(scratch, 'nowhere.kubeconfig');
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    await writeFile(kubeconfig, ['apiVersion: v1', 'kind: Config', 'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]', 'users: [{name: u, user: {token: t}}]', 'contexts: [{name: x, context: {cluster: c, user: u}}]', 'current-context: x', ''].join('\n'));
    const io = captureIo();
    expect(await check(['--kubeconfig', kubeconfig], io)).toBe(3);
    expect(io.out()).toBe('');
    expect(io.err()).toMatch(/^error: cannot read mutatingwebhookconfiguration dfs-injector: .*ECONNREFUSED/);
  }, 30_000);

  // Last: with a Service-backed configuration the API server would call the webhook at a ClusterIP,
  // which on this machine routes off the host. So no pod is admitted through it from here on, and
  // check runs with --namespace dfs-system (not opted in), where it makes no dry run either.
  it('fails a webhook Deployment that is not available, and passes it once its pod is Ready', async () => {
    const cp = plane();
    const { client } = cp;
    const caBundle = Buffer.from(cp.pki.caPem).toString('base64');
    const byService = structuredClone(shipped);
    for (const entry of byService.webhooks) entry.clientConfig = { ...entry.clientConfig, caBundle };
    await client.apply(byService);
    await client.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'dfs-injector', namespace: 'dfs-system' }, spec: { selector: { app: 'dfs-injector' }, ports: [{ name: 'https', port: 443, targetPort: 8443 }] } });
    await client.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'dfs-injector', namespace: 'dfs-system' },
      spec: { replicas: 1, selector: { matchLabels: { app: 'dfs-injector' } }, template: { metadata: { labels: { app: 'dfs-injector' } }, spec: { containers: [{ name: 'webhook', image: PAUSE }] } } },
    });
    // From outside the cluster the ClusterIP is not reachable: the port-forward path, to the loopback server.
    const args = ['--webhook-address', `127.0.0.1:${port}`, '-n', 'dfs-system'];

    const down = await waitFor('the Deployment to report no availability', async () => {
      const r = await runCheck(cp.kubeconfigPath, args);
      return line(r, 'webhook-deployment')?.reason.includes('minimum availability') === true ? r : undefined;
    });
    expect(down.code).toBe(1);
    expect(line(down, 'webhook-deployment')).toMatchObject({ status: 'fail', subject: 'deployment dfs-system/dfs-injector', troubleshooting: 'README, Troubleshooting: "Pods with a role label are refused: failed calling webhook"' });
    expect(line(down, 'webhook-deployment')?.reason).toMatch(/^not available: 0 of 1 replicas available \(Deployment does not have minimum availability\.\)$/);
    // The certificate is for the Service's name, which the caBundle verifies.
    expect(line(down, 'webhook-certificate')?.status).toBe('pass');
    expect(line(down, 'webhook-ca-bundle')?.status).toBe('pass');
    expect(line(down, 'webhook-admission')).toMatchObject({ status: 'skip', subject: 'namespace dfs-system' });
    expect(down.json.summary.fixFirst?.step).toBe('webhook-deployment');

    // A webhook address that accepts the connection and never answers: the step is skipped after
    // its bound, with the way to reach the webhook. (The Service's ClusterIP is not tried here:
    // on this machine it would route off the host.)
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const hung = await runCheck(cp.kubeconfigPath, ['--webhook-address', `127.0.0.1:${(silent.address() as AddressInfo).port}`, '-n', 'dfs-system']);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(line(hung, 'webhook-certificate')).toMatchObject({ status: 'skip', reason: 'cannot read the served certificate: timed out after 5 s' });
      expect(line(hung, 'webhook-certificate')?.fix).toContain('--webhook-address 127.0.0.1:8443');
      expect(line(hung, 'webhook-ca-bundle')?.status).toBe('skip');
    } finally {
      silent.close();
    }

    const pod = await waitFor('the Deployment pod', async () => (await client.list('v1', 'Pod', { namespace: 'dfs-system', labelSelector: 'app=dfs-injector' }))[0]);
    await bind('dfs-system', pod.metadata.name!, 'worker-1');
    await setReady('dfs-system', pod.metadata.name!, true, '10.244.1.9');
    const up = await waitFor('the Deployment to turn available', async () => {
      const r = await runCheck(cp.kubeconfigPath, args);
      return line(r, 'webhook-deployment')?.status === 'pass' ? r : undefined;
    });
    expect(line(up, 'webhook-deployment')?.reason).toBe('available: 1 of 1 replicas');
  }, 120_000);
});
