import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CERT_MANAGER_CRDS_HINT, certManagerCrds, installCrds } from '../e2e/crds.js';
import { findControlPlaneBinaries, writeServiceAccountKubeconfig, type KubeObject } from '../e2e/harness.js';
import { useControlPlane } from '../e2e/use-control-plane.js';
import { BUILT_CLI_HINT, WebhookProcess, builtCliAvailable } from '../e2e/webhook-process.js';
import { KUSTOMIZE_HINT, findKustomize, render } from '../manifests/kustomize.js';
import { needs } from '../support/prereq.js';
import { CHART, HELM_HINT, NAMESPACE, NON_DEFAULT_VALUES, RELEASE, findTool, helm, setJson, template } from './helm.js';

// The chart on a real kube-apiserver: every object it can render is accepted under strict field
// validation; `helm install` creates what `kubectl apply -k` creates; and `helm upgrade` to a
// changed config leaves the mounter pods' template, the webhook's own Secret and the caBundle it
// wrote exactly as they were. There is no kubelet: outcomes are checked on the objects.

const bins = findControlPlaneBinaries();
const helmBin = findTool('helm');
const kustomize = findKustomize();
const certManager = certManagerCrds();
const available =
  needs('a loopback control plane', bins.available, bins.hint) &&
  needs('helm', helmBin !== undefined, HELM_HINT) &&
  needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT) &&
  needs("cert-manager's CRDs", certManager !== undefined, CERT_MANAGER_CRDS_HINT) &&
  needs('the built CLI (dist/cli.js)', builtCliAvailable(), BUILT_CLI_HINT);

describe.skipIf(!available)('the Helm chart on a real API server', () => {
  const plane = useControlPlane({ controllerManager: false });
  const bin = helmBin!;

  function helmOk(args: string[]): string {
    const result = helm(bin, [...args, '--kubeconfig', plane().kubeconfigPath]);
    if (result.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${result.status}):\n${result.stderr}`);
    return result.stdout;
  }

  async function live(o: KubeObject): Promise<any> {
    const got = await plane().client.get<KubeObject>(o.apiVersion, o.kind, o.metadata.name!, o.metadata.namespace);
    if (got === undefined) throw new Error(`${o.kind}/${o.metadata.name} does not exist`);
    return got;
  }

  it('accepts every object the chart renders, in every mode, under strict field validation (server-side dry-run)', async () => {
    const { client } = plane();
    // A namespace of its own, so the install below starts from nothing.
    const ns = 'chart-dry-run';
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'media' } });
    await installCrds(client, ['monitoring.coreos.com_podmonitors.yaml', 'monitoring.coreos.com_prometheusrules.yaml', ...certManager!]);
    const everything = { auditor: { enabled: true, check: true }, smbService: { enabled: true, networkPolicy: { enabled: true, nodeCIDRs: ['192.168.10.0/24', 'fd00:10::/64'] } }, metrics: { podMonitor: { enabled: true }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } } };
    const renders = [
      template(bin, everything, ['--namespace', ns]),
      template(bin, { ...everything, certificates: { mode: 'cert-manager' } }, ['--namespace', ns]),
      template(bin, NON_DEFAULT_VALUES, ['--namespace', ns]),
      // The kustomize component's own objects (the same, but checked as shipped).
      render(kustomize!, 'overlays/monitoring').filter((o) => o.apiVersion.startsWith('monitoring.coreos.com/')).map((o) => ({ ...o, metadata: { ...o.metadata, namespace: ns } })),
    ];
    const warnings: string[] = [];
    let checked = 0;
    const kinds = new Set<string>();
    for (const objects of renders) {
      for (const object of objects) {
        const path = await client.resourcePath(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
        const res = await client.request({
          method: 'PATCH',
          path: `${path}?fieldManager=helm-dry-run&force=true&fieldValidation=Strict&dryRun=All`,
          body: object,
          contentType: 'application/apply-patch+yaml',
        });
        if (res.status > 299) throw new Error(`${object.kind}/${object.metadata.name}: ${res.status} ${res.body}`);
        warnings.push(...res.warnings.map((w) => `${object.kind}/${object.metadata.name}: ${w}`));
        kinds.add(`${object.apiVersion} ${object.kind}`);
        checked++;
      }
    }
    expect(warnings).toEqual([]);
    expect(checked).toBeGreaterThan(20);
    // The kinds only some values render were among them (cert-manager's through its real CRDs).
    for (const kind of ['cert-manager.io/v1 Issuer', 'cert-manager.io/v1 Certificate', 'networking.k8s.io/v1 NetworkPolicy', 'monitoring.coreos.com/v1 PodMonitor', 'monitoring.coreos.com/v1 PrometheusRule']) {
      expect(kinds, kind).toContain(kind);
    }
  });

  it('refuses a misspelt value at helm install, before anything is created', async () => {
    const result = helm(bin, ['install', RELEASE, CHART, '-n', NAMESPACE, '--kubeconfig', plane().kubeconfigPath, ...setJson({ mounter: { imagee: {} } })]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("additional properties 'imagee' not allowed");
    expect(await plane().client.get('v1', 'Namespace', NAMESPACE)).toBeUndefined();
  });

  it('helm install creates the objects kubectl apply -k creates; an upgrade to a new config keeps the mounter template, the Secret and the caBundle', async () => {
    const { client, server, credentials, dir } = plane();
    helmOk(['install', RELEASE, CHART, '-n', NAMESPACE, '--create-namespace']);

    // Every object of manifests/overlays/default exists, and applying the kustomize object over it
    // (server-side, dry run) changes nothing: Helm created what kubectl apply -k would.
    for (const object of render(kustomize!, 'overlays/default')) {
      const before = await live(object);
      const path = await client.resourcePath(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
      const res = await client.call({
        method: 'PATCH',
        path: `${path}?fieldManager=kubectl-kustomize&force=true&dryRun=All`,
        body: object,
        contentType: 'application/apply-patch+yaml',
      });
      const after = res.json<any>();
      // The one listed difference that reaches the server: the config file's text (the chart
      // writes it from values, without the base's comments). Its content must be the same.
      if (object.kind === 'ConfigMap' && object.metadata.name === 'dfs-injector-config') {
        expect(parse(after.data['config.yaml'])).toEqual(parse(before.data['config.yaml']));
        after.data['config.yaml'] = before.data['config.yaml'];
      }
      // And the listed order difference: the chart writes the mounter's env sorted by name.
      const sortedEnv = (o: any): void => {
        if (o.kind === 'DaemonSet') for (const c of o.spec.template.spec.containers) c.env?.sort((a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name));
      };
      const { metadata: _b, ...beforeBody } = structuredClone(before);
      const { metadata: _a, ...afterBody } = after;
      sortedEnv(beforeBody);
      sortedEnv(afterBody);
      expect(afterBody, `${object.kind}/${object.metadata.name}`).toEqual(beforeBody);
      // The labels and annotations kustomize sets are on the live object too.
      expect(before.metadata.labels ?? {}, `${object.kind}/${object.metadata.name} labels`).toMatchObject(object.metadata.labels ?? {});
      expect(before.metadata.annotations ?? {}, `${object.kind}/${object.metadata.name} annotations`).toMatchObject(object.metadata.annotations ?? {});
    }

    // The webhook's certificate bootstrap, as a pod would run it: the chart's ServiceAccount and
    // RBAC create Secret dfs-injector-tls and write the caBundle.
    const kubeconfig = await writeServiceAccountKubeconfig(
      client,
      { server, caPem: credentials.caPem },
      { namespace: NAMESPACE, name: 'dfs-injector', path: join(dir, 'chart-webhook.kubeconfig') },
    );
    const tlsDir = join(dir, 'chart-webhook-tls');
    await mkdir(tlsDir);
    const webhook = await WebhookProcess.start({
      dir,
      name: 'chart-webhook',
      certPath: join(tlsDir, 'tls.crt'),
      keyPath: join(tlsDir, 'tls.key'),
      extraArgs: ['--tls-secret', 'dfs-injector-tls', '--webhook-config', 'dfs-injector', '--namespace', NAMESPACE, '--kubeconfig', kubeconfig],
      readyTimeoutMs: 120_000,
    });
    // Stopped before the upgrade, so it cannot repair what an upgrade might break.
    await webhook.stop();

    const secretRef = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dfs-injector-tls', namespace: NAMESPACE } };
    const mwcRef = { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'dfs-injector' } };
    const dsRef = { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'dfs-mounter', namespace: NAMESPACE } };
    const deployRef = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'dfs-injector', namespace: NAMESPACE } };
    const configRef = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dfs-injector-config', namespace: NAMESPACE } };
    const secret = await live(secretRef);
    const caBundles = ((await live(mwcRef)).webhooks as { clientConfig: { caBundle?: string } }[]).map((w) => w.clientConfig.caBundle);
    expect(caBundles).toHaveLength(4);
    for (const bundle of caBundles) expect(Buffer.from(bundle ?? '', 'base64').toString('utf8')).toContain('-----BEGIN CERTIFICATE-----');
    expect(secret.data['tls.crt']).toBeDefined();
    const daemonSet = await live(dsRef);
    const deployment = await live(deployRef);
    const config = await live(configRef);

    helmOk(['upgrade', RELEASE, CHART, '-n', NAMESPACE, ...setJson({ config: { consumer: { waitForMount: { enabled: true } } }, webhook: { replicas: 3 } })]);

    const upgradedConfig = await live(configRef);
    expect(upgradedConfig.data['config.yaml']).not.toEqual(config.data['config.yaml']);
    expect(upgradedConfig.data['config.yaml']).toContain('enabled: true');
    expect((await live(deployRef)).spec.replicas).toBe(3);
    // The mounters are not touched: same generation, same template, so no pod is replaced.
    const upgradedDaemonSet = await live(dsRef);
    expect(upgradedDaemonSet.metadata.generation).toBe(daemonSet.metadata.generation);
    expect(upgradedDaemonSet.spec.template).toEqual(daemonSet.spec.template);
    // The webhook reloads its config file by itself: its pod template is unchanged too.
    expect((await live(deployRef)).spec.template).toEqual(deployment.spec.template);
    // The webhook's own certificates survive: the Secret is not Helm's, and the caBundle it wrote
    // is a field Helm never set.
    const upgradedSecret = await live(secretRef);
    expect(upgradedSecret.metadata.resourceVersion).toBe(secret.metadata.resourceVersion);
    expect(upgradedSecret.data).toEqual(secret.data);
    expect(upgradedSecret.metadata.annotations?.['meta.helm.sh/release-name']).toBeUndefined();
    expect(((await live(mwcRef)).webhooks as { clientConfig: { caBundle?: string } }[]).map((w) => w.clientConfig.caBundle)).toEqual(caBundles);
  });
});
