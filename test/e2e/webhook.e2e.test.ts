import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configHash, parseConfigText, type Config } from '../../lib/config.js';
import { LABEL_DEFAULT_ROLE, LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE, LABEL_ROLE } from '../../lib/names.js';
import { VERSION } from '../../lib/version.js';
import { SMBD_STATE_DIR, SMBD_STATE_VOLUME } from '../../lib/source.js';
import {
  KubeApiError,
  sumSamples,
  waitFor,
  type KubeObject,
  type MetricSample,
} from './harness.js';
import { ms, quantile, sampleDelta, summarizeHistogram } from './latency.js';
import { container, decypharr, mountsAt, sonarr, statusOf, untouched, volumesNamed, type Pod } from './pods.js';
import { useControlPlane } from './use-control-plane.js';
import {
  WebhookProcess,
  generateLoopbackCertificates,
  pointAtLoopback,
  renderBase,
  type RenderedBase,
  webhookSuitePrerequisites,
} from './webhook-process.js';

// Issue 7, parts 2-4: the webhook built from the CLI, registered from manifests/base, against a
// real API server. Every assertion is on the object as the API server stored it (or on the error
// the client got), never on the webhook's answer alone.
//
// Rendering and applying every manifest (scenario 1) is test/manifests/manifests.e2e.test.ts.

const { available, kustomize } = webhookSuitePrerequisites();

const WEBHOOK_METRIC = 'apiserver_admission_webhook_admission_duration_seconds';
const ENABLED = { [LABEL_INJECTION]: 'enabled' };

const NS = {
  optIn: 'e2e-opt-in',
  plain: 'e2e-plain',
  disabled: 'e2e-opted-out',
  defaultRole: 'e2e-default-consumer',
  baseline: 'e2e-psa-baseline',
  baselineDefault: 'e2e-psa-baseline-default',
  warnOnly: 'e2e-psa-warn',
  reinvoke: 'e2e-reinvoke',
} as const;

describe.skipIf(!available)('dfs-injector serve on a real API server', () => {
  const plane = useControlPlane();
  let webhook: WebhookProcess | undefined;
  let base: RenderedBase;
  let config: Config;
  let entryNames: string[];

  beforeAll(async () => {
    const cp = plane();
    base = renderBase(kustomize!);
    config = parseConfigText(base.configYaml, 'manifests/base/config.yaml');
    entryNames = base.webhookConfiguration.webhooks.map((w) => w.name);
    const tls = await generateLoopbackCertificates(join(cp.dir, 'webhook-tls'));
    webhook = await WebhookProcess.start({ dir: cp.dir, certPath: tls.certPath, keyPath: tls.keyPath, configYaml: base.configYaml });
    await cp.client.apply(pointAtLoopback(base.webhookConfiguration, webhook.port, tls.caPem));
    await Promise.all([
      cp.createNamespace(NS.optIn, ENABLED),
      cp.createNamespace(NS.plain),
      cp.createNamespace(NS.disabled, { [LABEL_INJECTION]: 'disabled' }),
      cp.createNamespace(NS.defaultRole, { ...ENABLED, [LABEL_DEFAULT_ROLE]: 'consumer' }),
    ]);
    await waitUntilInjecting(NS.optIn);
    process.stderr.write(`control plane ready in ${cp.startupMs} ms; webhook pid ${webhook.pid} on ${webhook.url()}\n`);
  }, 180_000);

  afterAll(async () => {
    await webhook?.stop();
  }, 60_000);

  function hook(): WebhookProcess {
    if (webhook === undefined) throw new Error('webhook not started');
    return webhook;
  }

  /** A configuration reaches the admission chain through an informer: poll with dry runs. */
  async function waitUntilInjecting(namespace: string): Promise<void> {
    await waitFor(
      'dfs-injector to inject a dry-run pod',
      async () => statusOf((await plane().client.createWithResult(sonarr('probe', namespace), { dryRun: true })).object) !== undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }

  async function create(pod: Pod): Promise<{ stored: Pod; warnings: string[] }> {
    const { client } = plane();
    const result = await client.createWithResult(pod);
    const stored = await client.get<Pod>('v1', 'Pod', pod.metadata.name!, pod.metadata.namespace);
    if (stored === undefined) throw new Error(`pod ${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''} was created but cannot be read back`);
    return { stored, warnings: result.warnings };
  }

  async function refusal(pod: Pod): Promise<KubeApiError> {
    const error = await plane()
      .client.create(pod)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    if (!(error instanceof KubeApiError)) throw new Error(`expected the API server to refuse pod ${pod.metadata.name ?? ''}, got ${String(error)}`);
    // Refused means not stored, not half-stored.
    expect(await plane().client.get('v1', 'Pod', pod.metadata.name!, pod.metadata.namespace)).toBeUndefined();
    return error;
  }

  /** How often the API server called any of our entries (dry runs included). */
  async function apiserverCallsToUs(samples?: MetricSample[]): Promise<number> {
    const all = samples ?? (await plane().metrics());
    return entryNames.reduce((n, name) => n + sumSamples(all, `${WEBHOOK_METRIC}_count`, { name }), 0);
  }

  function expectConsumerInjected(pod: Pod, containers: readonly string[]): void {
    const { hostPath, consumer } = config;
    expect(volumesNamed(pod, consumer.volumeName)).toEqual([{ name: consumer.volumeName, hostPath: { path: hostPath, type: 'Directory' } }]);
    for (const name of containers) {
      expect(mountsAt(container(pod, name), consumer.mountPath), `mount in ${name}`).toEqual([
        { name: consumer.volumeName, mountPath: consumer.mountPath, readOnly: true, mountPropagation: 'HostToContainer' },
      ]);
    }
    const status = statusOf(pod);
    expect(status).toMatchObject({ role: 'consumer', configHash: configHash(config), version: VERSION });
    expect(status?.mounts).toEqual(expect.arrayContaining(containers.map((c) => `${c}:${consumer.mountPath}`)));
  }

  it('injects a labelled consumer pod in an opted-in namespace: hostPath volume, read-only HostToContainer mount, status', async () => {
    const { stored } = await create(sonarr('sonarr', NS.optIn));
    expectConsumerInjected(stored, ['sonarr']);
    // The fixture's volumes keep their order; the injected one is appended, and the
    // ServiceAccount token volume the server adds is there exactly once.
    const names = (stored.spec.volumes ?? []).map((v) => v.name);
    expect(names.slice(0, 3)).toEqual(['config', 'media', 'tmp']);
    expect(names.filter((n) => n.startsWith('kube-api-access-'))).toHaveLength(1);
    expect(stored.metadata.annotations?.['kubectl.kubernetes.io/restartedAt']).toBe('2026-11-20T08:14:02Z');

    const line = await waitFor('the webhook log line for pod sonarr', async () =>
      (await hook().admissionLines((l) => l.namespace === NS.optIn && l.pod === 'sonarr' && l.dryRun === false))[0],
    );
    expect(line).toMatchObject({ path: '/mutate', role: 'consumer', outcome: 'injected' });
    const event = await waitFor('the audit event of pod sonarr', async () =>
      (await plane().auditEvents()).find(
        (e) => e.verb === 'create' && e.objectRef?.namespace === NS.optIn && e.objectRef.name === 'sonarr' && e.stage === 'ResponseComplete',
      ),
    );
    expect(event.annotations?.['pods.dfs-injector.io/role']).toBe('consumer');
    expect(event.annotations?.['pods.dfs-injector.io/injected']).toContain(`volumes=${config.consumer.volumeName}`);
  }, 90_000);

  it('leaves the same pod without a role label untouched, and the webhook is not called for it', async () => {
    const before = await hook().admissions();
    const { stored } = await create(sonarr('sonarr-unlabelled', NS.optIn, null));
    expect(untouched(stored, config.hostPath)).toBe(true);
    expect(await hook().admissions()).toBe(before);
  }, 60_000);

  it('leaves a labelled pod untouched where the namespace has not opted in (no label, or disabled), and the webhook is never called', async () => {
    const [webhookBefore, apiserverBefore] = await Promise.all([hook().admissions(), apiserverCallsToUs()]);
    for (const namespace of [NS.plain, NS.disabled]) {
      for (const role of ['consumer', 'source'] as const) {
        const pod = role === 'consumer' ? sonarr(`sonarr-${role}`, namespace, role) : decypharr(`decypharr-${role}`, namespace);
        const { stored } = await create(pod);
        expect(untouched(stored, config.hostPath), `${namespace}/${pod.metadata.name ?? ''}`).toBe(true);
      }
    }
    // Both sides of the call: the webhook counted nothing, and the API server made no call.
    expect(await hook().admissions()).toBe(webhookBefore);
    expect(await apiserverCallsToUs()).toBe(apiserverBefore);
    const lines = await hook().admissionLines((l) => l.namespace === NS.plain || l.namespace === NS.disabled);
    expect(lines).toEqual([]);
  }, 90_000);

  it('does not call the webhook for role: none, and the pod is stored untouched', async () => {
    const [webhookBefore, apiserverBefore] = await Promise.all([hook().admissions(), apiserverCallsToUs()]);
    const { stored } = await create(sonarr('sonarr-none', NS.optIn, 'none'));
    expect(untouched(stored, config.hostPath)).toBe(true);
    expect(await hook().admissions()).toBe(webhookBefore);
    expect(await apiserverCallsToUs()).toBe(apiserverBefore);
  }, 60_000);

  it('refuses a misspelt role with a message that names the label and the roles there are', async () => {
    const pod = sonarr('sonarr-misspelt', NS.optIn);
    pod.metadata.labels![LABEL_ROLE] = 'consumr';
    const error = await refusal(pod);
    expect(error.message).toContain('admission webhook "pods.dfs-injector.io" denied the request');
    expect(error.message).toContain(`label ${LABEL_ROLE}="consumr" is not a role: it must be one of source, consumer, none`);
  }, 60_000);

  it('injects unlabelled pods as consumers where the namespace says default-role: consumer, but not role: none', async () => {
    const { stored } = await create(sonarr('sonarr-by-default', NS.defaultRole, null));
    expectConsumerInjected(stored, ['sonarr']);
    const line = await waitFor('the webhook log line for pod sonarr-by-default', async () =>
      (await hook().admissionLines((l) => l.pod === 'sonarr-by-default' && l.dryRun === false))[0],
    );
    expect(line).toMatchObject({ path: '/mutate/namespace-consumer', role: 'consumer', reason: 'namespace-default' });

    const { stored: none } = await create(sonarr('sonarr-opted-out', NS.defaultRole, 'none'));
    expect(untouched(none, config.hostPath)).toBe(true);
  }, 60_000);

  it('adds the smbd sidecar to a privileged source pod, with a Bidirectional mount the API server accepts', async () => {
    const { sidecar, path, volumeName } = config.source;
    const { stored } = await create(decypharr('decypharr-0', NS.optIn));
    expect(stored.spec.containers.map((c) => c.name)).toEqual(['decypharr', sidecar.name]);
    expect(volumesNamed(stored, volumeName)).toEqual([{ name: volumeName, emptyDir: {} }]);
    expect(mountsAt(container(stored, 'decypharr'), path)).toEqual([{ name: volumeName, mountPath: path, mountPropagation: 'Bidirectional' }]);
    const smbd = container(stored, sidecar.name);
    expect(smbd.image).toBe(sidecar.image);
    expect(mountsAt(smbd, path)).toEqual([{ name: volumeName, mountPath: path, readOnly: true, mountPropagation: 'HostToContainer' }]);
    // A read-only root filesystem, with smbd's state in an emptyDir of its own.
    expect(smbd.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(volumesNamed(stored, SMBD_STATE_VOLUME)).toEqual([{ name: SMBD_STATE_VOLUME, emptyDir: { sizeLimit: '64Mi' } }]);
    expect(mountsAt(smbd, SMBD_STATE_DIR)).toEqual([{ name: SMBD_STATE_VOLUME, mountPath: SMBD_STATE_DIR }]);
    expect(statusOf(stored)).toMatchObject({ role: 'source', containers: [sidecar.name] });
  }, 60_000);

  it('refuses a non-privileged source pod with the webhook message; the API server would refuse its Bidirectional mount too', async () => {
    const error = await refusal(decypharr('decypharr-unprivileged', NS.optIn, false));
    expect(error.status).toBe(403);
    expect(error.message).toContain('admission webhook "pods.dfs-injector.io" denied the request');
    expect(error.message).toContain('source container "decypharr" must set securityContext.privileged: true');

    // Why the webhook refuses instead of injecting: the API server's own validation rejects
    // Bidirectional in an unprivileged container (shown where the webhook is not called).
    const pod = decypharr('bidirectional-unprivileged', NS.plain, false);
    pod.spec.volumes = [...(pod.spec.volumes ?? []), { name: 'fuse', emptyDir: {} }];
    pod.spec.containers[0]!.volumeMounts = [...(pod.spec.containers[0]!.volumeMounts ?? []), { name: 'fuse', mountPath: '/mnt/dfs', mountPropagation: 'Bidirectional' }];
    const invalid = await refusal(pod);
    expect(invalid.status).toBe(422);
    expect(invalid.message).toMatch(/Bidirectional mount propagation is available only to privileged containers/);
  }, 60_000);

  it('denies consumer and source pods where Pod Security enforces baseline, naming the label, before PodSecurity does', async () => {
    await Promise.all([
      plane().createNamespace(NS.baseline, { ...ENABLED, [LABEL_POD_SECURITY_ENFORCE]: 'baseline' }),
      plane().createNamespace(NS.baselineDefault, { ...ENABLED, [LABEL_DEFAULT_ROLE]: 'consumer', [LABEL_POD_SECURITY_ENFORCE]: 'baseline' }),
    ]);
    const consumer = await waitFor('the pod-security entry to deny a consumer', async () => {
      const e = await refusal(sonarr('sonarr', NS.baseline));
      return e.message.includes('pods-pod-security.dfs-injector.io') ? e : undefined;
    });
    expect(consumer.status).toBe(403);
    expect(consumer.message).toContain('admission webhook "pods-pod-security.dfs-injector.io" denied the request');
    expect(consumer.message).toContain(LABEL_POD_SECURITY_ENFORCE);
    expect(consumer.message).toContain('a hostPath volume');
    expect(consumer.message).not.toContain('violates PodSecurity');

    const source = await refusal(decypharr('decypharr-0', NS.baseline));
    expect(source.message).toContain('admission webhook "pods-pod-security.dfs-injector.io" denied the request');
    expect(source.message).toContain('a privileged source container');

    // Namespace-wide consumers there: every pod without its own role is refused the same way.
    const byDefault = await refusal(sonarr('sonarr', NS.baselineDefault, null));
    expect(byDefault.message).toContain('admission webhook "namespace-consumers-pod-security.dfs-injector.io" denied the request');
    expect(byDefault.message).toContain(LABEL_POD_SECURITY_ENFORCE);

    // role: none is not refused: it never reaches the webhook, and the denial is about injection.
    const { stored } = await create(sonarr('sonarr-none', NS.baseline, 'none'));
    expect(untouched(stored, config.hostPath)).toBe(true);
  }, 90_000);

  it('injects under enforce: privileged + warn: baseline, and the client sees PodSecurity\'s hostPath warning', async () => {
    await plane().createNamespace(NS.warnOnly, {
      ...ENABLED,
      [LABEL_POD_SECURITY_ENFORCE]: 'privileged',
      'pod-security.kubernetes.io/warn': 'baseline',
    });
    const { stored, warnings } = await create(sonarr('sonarr', NS.warnOnly));
    expectConsumerInjected(stored, ['sonarr']);
    expect(warnings.some((w) => w.includes('would violate PodSecurity "baseline:latest"') && w.includes('hostPath volumes') && w.includes(config.consumer.volumeName))).toBe(true);
  }, 60_000);

  it('injects the pods the ReplicaSet controller creates for a Deployment whose template carries the consumer label', async () => {
    const { client } = plane();
    const template = sonarr('unused', NS.optIn);
    const labels = { 'app.kubernetes.io/name': 'sonarr-deployment', [LABEL_ROLE]: 'consumer' };
    const deployment: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'sonarr', namespace: NS.optIn },
      spec: {
        replicas: 2,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'sonarr-deployment' } },
        template: { metadata: { labels }, spec: template.spec },
      },
    };
    await client.create(deployment);
    const pods = await waitFor(
      'two pods of Deployment sonarr',
      async () => {
        const items = await client.list<Pod>('v1', 'Pod', { namespace: NS.optIn, labelSelector: 'app.kubernetes.io/name=sonarr-deployment' });
        return items.length === 2 ? items : undefined;
      },
      { timeoutMs: 60_000 },
    );
    for (const pod of pods) {
      expect(pod.metadata.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
      expectConsumerInjected(pod, ['sonarr']);
    }
    // The webhook mutates pods only: the stored template is as written.
    const stored = await client.get<KubeObject & { spec: { template: Pod } }>('apps/v1', 'Deployment', 'sonarr', NS.optIn);
    expect(untouched(stored!.spec.template, config.hostPath)).toBe(true);
  }, 120_000);

  it('is reinvoked after a later webhook adds a container: the new container gets the mount, nothing is duplicated', async () => {
    const { client, pki } = plane();
    await plane().createNamespace(NS.reinvoke, { ...ENABLED, 'e2e-reinvoke': 'enabled' });
    const cert = await pki.issue({ name: 'reinvoke-stub', commonName: 'reinvoke-stub', ipAddresses: ['127.0.0.1'], usage: 'server' });
    let stubCalls = 0;
    const stub: Server = createServer({ cert: await readFile(cert.cert), key: await readFile(cert.key) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        stubCalls += 1;
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string; object: Pod } };
        // Idempotent, as a webhook with reinvocationPolicy IfNeeded must be.
        const has = review.request.object.spec.containers.some((c) => c.name === 'helper');
        const patch = has ? [] : [{ op: 'add', path: '/spec/containers/-', value: { name: 'helper', image: 'registry.k8s.io/pause:3.10' } }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: { uid: review.request.uid, allowed: true, ...(has ? {} : { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }) },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    // Mutating webhooks run sorted by configuration name (k8s.io/apiserver
    // mutating_webhook_manager.go), then in entry order: "zz-…" runs after "dfs-injector".
    const configurationName = 'zz-e2e-add-container';
    try {
      await client.apply({
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: configurationName },
        webhooks: [
          {
            name: 'add-container.e2e.dfs-injector.io',
            clientConfig: { url: `https://127.0.0.1:${(stub.address() as AddressInfo).port}/mutate`, caBundle: Buffer.from(pki.caPem).toString('base64') },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            namespaceSelector: { matchLabels: { 'e2e-reinvoke': 'enabled' } },
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            reinvocationPolicy: 'IfNeeded',
            timeoutSeconds: 5,
          },
        ],
      });
      await waitFor(
        'the container-adding webhook to be active',
        async () => (await client.createWithResult(sonarr('probe', NS.reinvoke), { dryRun: true })).object.spec.containers.some((c) => c.name === 'helper'),
        { timeoutMs: 60_000, intervalMs: 500 },
      );

      const { stored } = await create(sonarr('sonarr', NS.reinvoke));
      expect(stored.spec.containers.map((c) => c.name)).toEqual(['sonarr', 'helper']);
      expectConsumerInjected(stored, ['sonarr', 'helper']);
      expect(stubCalls).toBeGreaterThan(0);

      const calls = await waitFor('two calls of dfs-injector for the pod', async () => {
        const lines = await hook().admissionLines((l) => l.namespace === NS.reinvoke && l.pod === 'sonarr' && l.dryRun === false);
        return lines.length >= 2 ? lines : undefined;
      });
      expect(calls.map((l) => l.outcome)).toEqual(['injected', 'injected']);

      // The API server records each patch by round: round 1 is the reinvocation.
      const event = await waitFor('the audit event of the reinvoked pod', async () =>
        (await plane().auditEvents()).find(
          (e) => e.verb === 'create' && e.objectRef?.namespace === NS.reinvoke && e.objectRef.name === 'sonarr' && e.stage === 'ResponseComplete',
        ),
      );
      const rounds = Object.entries(event.annotations ?? {}).filter(([k]) => k.startsWith('patch.webhook.admission.k8s.io/round_1_'));
      expect(rounds.some(([, v]) => v.includes('"webhook":"pods.dfs-injector.io"'))).toBe(true);
    } finally {
      await client.delete('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', configurationName);
      await new Promise<void>((resolve) => stub.close(() => resolve()));
    }
  }, 120_000);

  it('prints the admission latency figures (API server histogram for our entries, pod creates with and without the webhook)', async () => {
    const { client } = plane();
    const n = 40;
    const timeCreates = async (make: (i: number) => Pod): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const started = process.hrtime.bigint();
        await client.create(make(i));
        times.push(Number(process.hrtime.bigint() - started) / 1e9);
      }
      return times;
    };
    const [apiBefore, hookBefore] = await Promise.all([plane().metrics(), hook().metrics()]);
    const injected = await timeCreates((i) => sonarr(`latency-injected-${i}`, NS.optIn));
    const [apiAfter, hookAfter] = await Promise.all([plane().metrics(), hook().metrics()]);
    const filtered = await timeCreates((i) => sonarr(`latency-unlabelled-${i}`, NS.optIn, null));
    const plain = await timeCreates((i) => sonarr(`latency-plain-${i}`, NS.plain));

    const run = sampleDelta(apiAfter, apiBefore);
    const ours = summarizeHistogram(run, WEBHOOK_METRIC, { name: 'pods.dfs-injector.io', operation: 'CREATE', type: 'admit' });
    const suite = summarizeHistogram(apiAfter, WEBHOOK_METRIC, { type: 'admit', operation: 'CREATE' });
    const inside = summarizeHistogram(sampleDelta(hookAfter, hookBefore), 'dfs_injector_admission_duration_seconds');
    const row = (what: string, values: number[]): string => `  ${what.padEnd(58)} median ${ms(quantile(values, 0.5)).padStart(9)}  p99 ${ms(quantile(values, 0.99)).padStart(9)}`;
    const lines = [
      '',
      `dfs-injector e2e figures (${n} sequential creates per row, kube-apiserver ${plane().versions.kubernetes}, loopback, 2 busy cores)`,
      `  ${WEBHOOK_METRIC}{name="pods.dfs-injector.io"}, this run:`,
      `    count ${ours.count}  p50 ${ms(ours.p50)}  p99 ${ms(ours.p99)}  mean ${ms(ours.sum / ours.count)}`,
      `  ${WEBHOOK_METRIC}, every admit call in the suite so far (all webhooks): count ${suite.count}  p50 ${ms(suite.p50)}  p99 ${ms(suite.p99)}`,
      `  dfs_injector_admission_duration_seconds (inside the webhook), this run: count ${inside.count}  p50 ${ms(inside.p50)}  p99 ${ms(inside.p99)}`,
      '  pod create, client round trip:',
      row('labelled consumer, opted-in namespace (webhook called)', injected),
      row('unlabelled, opted-in namespace (objectSelector: no call)', filtered),
      row('labelled, namespace not opted in (no call)', plain),
      '',
    ];
    console.log(lines.join('\n'));

    expect(ours.count).toBe(n);
    expect(inside.count).toBe(n);
    expect(Number.isFinite(ours.p99)).toBe(true);
  }, 180_000);

  it('with the webhook down, refuses labelled pods in opted-in namespaces naming the webhook, and still admits unlabelled and role: none ones', async () => {
    await hook().stop();
    try {
      const error = await refusal(sonarr('sonarr-while-down', NS.optIn));
      expect(error.message).toContain('failed calling webhook "pods.dfs-injector.io"');
      expect(error.message).toContain(`127.0.0.1:${hook().port}`);
      // A misspelt role is refused too (when the webhook is up, with a message that names it).
      const misspelt = sonarr('misspelt-while-down', NS.optIn);
      misspelt.metadata.labels![LABEL_ROLE] = 'consumr';
      expect((await refusal(misspelt)).message).toContain('failed calling webhook "pods.dfs-injector.io"');

      const { stored: optedOut } = await create(sonarr('none-while-down', NS.optIn, 'none'));
      expect(untouched(optedOut, config.hostPath)).toBe(true);

      const { stored } = await create(sonarr('unlabelled-while-down', NS.optIn, null));
      expect(untouched(stored, config.hostPath)).toBe(true);
      const { stored: elsewhere } = await create(sonarr('sonarr-while-down', NS.plain));
      expect(untouched(elsewhere, config.hostPath)).toBe(true);
    } finally {
      await hook().restart();
    }
    // Back on the same port, the registered configuration works again without any change.
    await waitUntilInjecting(NS.optIn);
    const { stored } = await create(sonarr('sonarr-after-restart', NS.optIn));
    expectConsumerInjected(stored, ['sonarr']);
  }, 120_000);
});
