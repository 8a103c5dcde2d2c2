// `dfs-injector audit` and `explain` against a real API server: pods created through the webhook
// (the real server from webhook/, registered with the selectors from manifests/base) pass, and
// pods written by hand are reported.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { run as audit } from '../../cli/audit.js';
import { run as explain } from '../../cli/explain.js';
import { defaultConfig } from '../../lib/config.js';
import { buildServer, type WebhookServer } from '../../webhook/server.js';
import { captureIo } from '../support/cli-io.js';
import { needs } from '../support/prereq.js';
import { findControlPlaneBinaries, KubeApiError, KubeClient, waitFor, writeKubeconfig, type ControlPlane, type KubeObject } from './harness.js';
import type { Credentials } from './kube-client.js';
import { useControlPlane } from './use-control-plane.js';

const binaries = findControlPlaneBinaries();
const available = needs('a loopback Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)', binaries.available, binaries.hint);
const CONFIG = new URL('../golden/audit/config.yaml', import.meta.url).pathname;

function pod(name: string, namespace: string, labels: Record<string, string>, extra: { privileged?: boolean; hostPath?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app: name, ...labels } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.k8s.io/pause:3.10',
          ...(extra.privileged === true ? { securityContext: { privileged: true } } : {}),
          ...(extra.hostPath === true ? { volumeMounts: [{ name: 'dfs', mountPath: '/mnt/dfs', readOnly: true, mountPropagation: 'HostToContainer' }] } : {}),
        },
      ],
      ...(extra.hostPath === true ? { volumes: [{ name: 'dfs', hostPath: { path: '/mnt/decypharr-dfs', type: 'Directory' } }] } : {}),
    },
  };
}

/** A client certificate for `user` (no groups), signed by the CA the API server trusts for clients. */
async function userCredentials(cp: ControlPlane, user: string): Promise<Credentials> {
  const cert = await cp.pki.issue({ name: user, commonName: user, usage: 'client' });
  const [certPem, keyPem] = await Promise.all([readFile(cert.cert, 'utf8'), readFile(cert.key, 'utf8')]);
  return { server: cp.server, caPem: cp.pki.caPem, certPem, keyPem };
}

describe.skipIf(!available)('audit and explain against a real API server', () => {
  const plane = useControlPlane();
  let webhook: WebhookServer | undefined;

  beforeAll(async () => {
    const cp = plane();
    const cert = await cp.pki.issue({ name: 'dfs-injector', commonName: 'dfs-injector', ipAddresses: ['127.0.0.1'], usage: 'server' });
    webhook = buildServer({ getConfig: () => defaultConfig, tls: { cert: await readFile(cert.cert, 'utf8'), key: await readFile(cert.key, 'utf8') }, logger: false });
    await webhook.admission.listen({ port: 0, host: '127.0.0.1' });
    const port = (webhook.admission.server.address() as AddressInfo).port;

    // The shipped MutatingWebhookConfiguration, each entry pointed at the loopback server by URL.
    const shipped = parse(await readFile(new URL('../../manifests/base/mutatingwebhookconfiguration.yaml', import.meta.url), 'utf8')) as KubeObject & {
      webhooks: { clientConfig: { service?: { path?: string }; url?: string; caBundle?: string } }[];
    };
    for (const entry of shipped.webhooks) {
      entry.clientConfig = { url: `https://127.0.0.1:${port}${entry.clientConfig.service?.path ?? '/mutate'}`, caBundle: Buffer.from(cp.pki.caPem).toString('base64') };
    }
    await cp.client.apply(shipped);
    await cp.createNamespace('media', { 'dfs-injector.io/injection': 'enabled' });
    await cp.createNamespace('legacy');
    // A new webhook configuration reaches the admission chain a moment later.
    await waitFor('the webhook to inject a dry-run pod', async () => {
      const created = await plane().client.create(pod('probe', 'media', { 'dfs-injector.io/role': 'consumer' }), { dryRun: true });
      return created.metadata.annotations?.['dfs-injector.io/status'];
    });

    const { client } = cp;
    await client.create(pod('sonarr-0', 'media', { 'dfs-injector.io/role': 'consumer' }));
    await client.create(pod('radarr-0', 'media', { 'dfs-injector.io/role': 'consumer' }));
    await client.create(pod('decypharr-0', 'media', { 'dfs-injector.io/role': 'source' }, { privileged: true }));
    // By hand: a hostPath of the DFS without the webhook, and a role label the webhook never sees.
    await client.create(pod('handmade-0', 'media', {}, { hostPath: true }));
    await client.create(pod('tautulli-0', 'legacy', { 'dfs-injector.io/role': 'consumer' }));
  }, 240_000);

  afterAll(async () => {
    await webhook?.close();
  }, 60_000);

  it('reports the pods made by hand and nothing about the injected ones, reading page by page', async () => {
    const io = captureIo();
    const code = await audit(['--kubeconfig', plane().kubeconfigPath, '--config', CONFIG, '--page-size', '2', '-o', 'json'], io);
    expect(io.err()).toBe('');
    const report = JSON.parse(io.out());
    expect(report.findings.map((f: any) => `${f.rule} ${f.resource.namespace}/${f.resource.name}`)).toEqual(['DFS003 media/handmade-0', 'DFS010 legacy/tautulli-0']);
    expect(report.checked.pods).toBeGreaterThanOrEqual(5);
    // No nodes and no mounter pods: nothing is scheduled, so no node has consumers.
    expect(report.skipped).toEqual([]);
    expect(code).toBe(0);
    expect(await audit(['--kubeconfig', plane().kubeconfigPath, '--config', CONFIG, '--fail-on', 'medium'], captureIo())).toBe(1);
  }, 60_000);

  it('records what the webhook injected in the audit log, under the entry name', async () => {
    const event = await waitFor('the audit event of sonarr-0', async () =>
      (await plane().auditEvents()).find((e) => e.verb === 'create' && e.objectRef?.name === 'sonarr-0' && e.stage === 'ResponseComplete'),
    );
    expect(event.annotations?.['pods.dfs-injector.io/role']).toBe('consumer');
    expect(event.annotations?.['pods.dfs-injector.io/injected']).toBe('volumes=dfs-injector-dfs mounts=app:/mnt/dfs');
  }, 60_000);

  it('explains a live pod with the labels of its namespace', async () => {
    const io = captureIo();
    expect(await explain(['media/sonarr-0', '--kubeconfig', plane().kubeconfigPath], io)).toBe(0);
    expect(io.out()).toContain('labels (from the cluster): dfs-injector.io/injection=enabled, kubernetes.io/metadata.name=media');
    expect(io.out()).toContain('Result: sent to /mutate; already injected, so nothing changes');
    const legacy = captureIo();
    await explain(['legacy/tautulli-0', '--kubeconfig', plane().kubeconfigPath], legacy);
    expect(legacy.out()).toContain('→ no entry serves this namespace: the namespace is not opted in');
  }, 60_000);

  it('explains a live Deployment and CronJob by their pod templates', async () => {
    const { client, kubeconfigPath } = plane();
    const template = { metadata: { labels: { app: 'radarr', 'dfs-injector.io/role': 'consumer' } }, spec: { containers: [{ name: 'radarr', image: 'registry.k8s.io/pause:3.10' }] } };
    // No replicas and a schedule that is never due: only the templates matter, no pod changes the audit above.
    await client.create({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'radarr', namespace: 'media' }, spec: { replicas: 0, selector: { matchLabels: { app: 'radarr' } }, template } });
    await client.create({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'scan', namespace: 'media' },
      spec: { schedule: '0 0 31 2 *', suspend: true, jobTemplate: { spec: { template: { ...template, spec: { ...template.spec, restartPolicy: 'Never' } } } } },
    });

    const deploy = captureIo();
    expect(await explain(['deploy/radarr', '-n', 'media', '--kubeconfig', kubeconfigPath], deploy)).toBe(0);
    expect(deploy.err()).toBe('');
    expect(deploy.out().startsWith('Deployment media/radarr (pod template)\n')).toBe(true);
    expect(deploy.out()).toContain('labels (from the cluster): dfs-injector.io/injection=enabled, kubernetes.io/metadata.name=media');
    expect(deploy.out()).toContain('Result: INJECTED by /mutate as a consumer');
    // The template as the API server stored it, defaults filled in; its status right after it is left out.
    expect(deploy.out()).toContain('          terminationMessagePath: /dev/termination-log\n');
    expect(deploy.out()).not.toMatch(/^ status:/m);

    const cron = captureIo();
    expect(await explain(['media/cronjob/scan', '--kubeconfig', kubeconfigPath], cron)).toBe(0);
    expect(cron.out().startsWith('CronJob media/scan (pod template)\n')).toBe(true);
    expect(cron.out()).toContain('Result: INJECTED by /mutate as a consumer');

    const missing = captureIo();
    expect(await explain(['media/sts/nope', '--kubeconfig', kubeconfigPath], missing)).toBe(3);
    expect(missing.err()).toBe('error: statefulset media/nope not found\n');
  }, 60_000);

  it('runs audit and explain as a user bound to manifests/auditor and nothing else', async () => {
    const cp = plane();
    const user = 'dfs-e2e-auditor';
    const credentials = await userCredentials(cp, user);
    const kubeconfig = join(cp.dir, `${user}.kubeconfig`);
    await writeKubeconfig(kubeconfig, user, credentials);
    const auditAs = async (): Promise<{ code: number; out: string; err: string }> => {
      const io = captureIo();
      const code = await audit(['--kubeconfig', kubeconfig, '--config', CONFIG, '-o', 'json'], io);
      return { code, out: io.out(), err: io.err() };
    };

    const denied = await auditAs();
    expect(denied.code).toBe(3);
    expect(denied.err).toMatch(/HTTP 403: .*"dfs-e2e-auditor" cannot list resource "namespaces"/);

    await cp.client.apply(parse(await readFile(new URL('../../manifests/auditor/clusterrole.yaml', import.meta.url), 'utf8')) as KubeObject);
    await cp.client.apply({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: user },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'dfs-injector-auditor' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    });
    // The authorizer learns of new bindings through a watch, a moment after the write.
    const allowed = await waitFor('audit to run as the auditor', async () => {
      const result = await auditAs();
      return result.code === 3 ? undefined : result;
    });
    expect(allowed.err).toBe('');
    const findings = JSON.parse(allowed.out).findings.map((f: any) => `${f.rule} ${f.resource.namespace}/${f.resource.name}`);
    expect(findings).toEqual(['DFS003 media/handmade-0', 'DFS010 legacy/tautulli-0']);

    await cp.client.create({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'plex', namespace: 'media' },
      spec: {
        replicas: 0,
        serviceName: 'plex',
        selector: { matchLabels: { app: 'plex' } },
        template: { metadata: { labels: { app: 'plex', 'dfs-injector.io/role': 'consumer' } }, spec: { containers: [{ name: 'plex', image: 'registry.k8s.io/pause:3.10' }] } },
      },
    });
    for (const target of ['media/sonarr-0', 'media/sts/plex']) {
      const io = captureIo();
      expect(await explain([target, '--kubeconfig', kubeconfig], io), `${target}: ${io.err()}`).toBe(0);
    }
    // Read-only: the role grants no write, so the auditor cannot create a pod.
    const forbidden = await new KubeClient(credentials).create(pod('intruder', 'media', {}), { dryRun: true }).catch((error: unknown) => error);
    expect(forbidden).toBeInstanceOf(KubeApiError);
    expect((forbidden as KubeApiError).status).toBe(403);
  }, 90_000);
});
