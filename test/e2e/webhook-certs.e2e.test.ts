import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABEL_INJECTION } from '../../lib/names.js';
import { render } from '../manifests/kustomize.js';
import { needs } from '../support/prereq.js';
import { createSecretDir, type SecretDir } from '../support/secret-dir.js';
import { KubeApiError, waitFor, writeServiceAccountKubeconfig, type ControlPlane, type KubeObject } from './harness.js';
import { createPki, type CertPaths, type Pki } from './pki.js';
import { sonarr, statusOf } from './pods.js';
import { useControlPlane } from './use-control-plane.js';
import {
  WebhookProcess,
  pointAtLoopback,
  renderBase,
  servedCertificate,
  serveSupports,
  type RenderedBase,
  type MutatingWebhook,
  webhookSuitePrerequisites,
} from './webhook-process.js';

// Issue 7, scenarios 8 and 9: certificates under load and the in-cluster bootstrap, with the
// webhook run from the built CLI against a real API server.

const { available, kustomize } = webhookSuitePrerequisites();

const MWC = { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration' } as const;
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function fingerprints(pem: string): string[] {
  return [...pem.matchAll(CERT_BLOCK)].map((m) => new X509Certificate(m[0]).fingerprint256);
}

function unb64(text: string | undefined): string {
  return Buffer.from(text ?? '', 'base64').toString('utf8');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Creates labelled pods back to back on a few workers until stopped, keeping every failure. */
class CreateLoop {
  created = 0;
  readonly failures: string[] = [];
  readonly notInjected: string[] = [];
  private stopping = false;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly cp: ControlPlane,
    private readonly namespace: string,
  ) {}

  start(concurrency: number): void {
    this.workers = Array.from({ length: concurrency }, (_, w) => this.work(w));
  }

  private async work(worker: number): Promise<void> {
    for (let i = 0; !this.stopping; i++) {
      const name = `rotation-${worker}-${i}`;
      try {
        const pod = await this.cp.client.create(sonarr(name, this.namespace));
        if (statusOf(pod) === undefined) this.notInjected.push(name);
        this.created += 1;
      } catch (error) {
        this.failures.push(`${name}: ${errorText(error)}`);
      }
    }
  }

  /** Waits for `more` further successful creates: proof that admission kept working meanwhile. */
  async advance(more: number, what: string): Promise<void> {
    const target = this.created + more;
    await waitFor(`${more} more pods created (${what})`, () => this.created >= target || this.failures.length > 0, { timeoutMs: 60_000, intervalMs: 50 });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }
}

describe.skipIf(!available)('webhook certificates on a real API server', () => {
  const plane = useControlPlane();
  let base: RenderedBase;

  beforeAll(() => {
    base = renderBase(kustomize!);
  });

  describe('rotation under load: the serving files are a Kubernetes-style ..data symlink directory', () => {
    const namespace = 'e2e-rotation';
    let webhook: WebhookProcess | undefined;
    let secret: SecretDir | undefined;
    let ca1: Pki;
    let ca2: Pki;
    let leaves: Record<'a' | 'b' | 'c', { cert: string; key: string; fingerprint: string }>;

    async function pair(paths: CertPaths): Promise<{ cert: string; key: string; fingerprint: string }> {
      const cert = await readFile(paths.cert, 'utf8');
      return { cert, key: await readFile(paths.key, 'utf8'), fingerprint: new X509Certificate(cert).fingerprint256 };
    }

    async function publishBundle(cas: readonly Pki[], suffix = ''): Promise<void> {
      if (webhook === undefined) throw new Error('webhook not started');
      const configuration = pointAtLoopback(base.webhookConfiguration, webhook.port, cas.map((ca) => ca.caPem).join('') + suffix);
      await plane().client.apply(configuration);
    }

    beforeAll(async () => {
      const { dir } = plane();
      await Promise.all([mkdir(join(dir, 'ca1')), mkdir(join(dir, 'ca2'))]);
      [ca1, ca2] = await Promise.all([createPki(join(dir, 'ca1')), createPki(join(dir, 'ca2'))]);
      const leaf = (ca: Pki, name: string): Promise<CertPaths> =>
        ca.issue({ name, commonName: 'dfs-injector', dnsNames: ['dfs-injector.dfs-system.svc'], ipAddresses: ['127.0.0.1'], usage: 'server' });
      const [a, b, c] = await Promise.all([leaf(ca1, 'leaf-a'), leaf(ca1, 'leaf-b'), leaf(ca2, 'leaf-c')]);
      const [pa, pb, pc] = await Promise.all([pair(a), pair(b), pair(c)]);
      leaves = { a: pa, b: pb, c: pc };
      secret = await createSecretDir({ 'tls.crt': leaves.a.cert, 'tls.key': leaves.a.key });
      webhook = await WebhookProcess.start({
        dir,
        name: 'rotating',
        certPath: secret.path('tls.crt'),
        keyPath: secret.path('tls.key'),
        configYaml: base.configYaml,
      });
      await publishBundle([ca1]);
      await plane().createNamespace(namespace, { [LABEL_INJECTION]: 'enabled' });
      await waitFor(
        'dfs-injector to inject a dry-run pod',
        async () => statusOf((await plane().client.createWithResult(sonarr('probe', namespace), { dryRun: true })).object) !== undefined,
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    }, 180_000);

    afterAll(async () => {
      await webhook?.stop();
      await secret?.remove();
      // The bootstrap scenario registers the shipped configuration under the same name.
      await plane().client.delete(MWC.apiVersion, MWC.kind, 'dfs-injector');
    }, 60_000);

    it('serves a new leaf of the same CA, then a leaf of a new CA, without a restart and without one failed admission', async () => {
      const hook = webhook!;
      const loop = new CreateLoop(plane(), namespace);
      const served = (ca: Pki): Promise<string> => servedCertificate(hook.port, ca.caPem).then((c) => c.fingerprint256);
      loop.start(2);
      try {
        await loop.advance(10, 'before any change');

        // Same CA: only the leaf changes, the caBundle stays.
        await secret!.update({ 'tls.crt': leaves.b.cert, 'tls.key': leaves.b.key });
        await waitFor('the webhook to serve leaf B', async () => (await served(ca1)) === leaves.b.fingerprint, { timeoutMs: 30_000, intervalMs: 100 });
        await loop.advance(10, 'after the same-CA swap');

        // New CA: publish both, switch the leaf, then drop the old CA. A caBundle change gives
        // the API server a new TLS transport, so each step is a fresh handshake on its side.
        await publishBundle([ca1, ca2]);
        await sleep(2_000);
        await loop.advance(10, 'with both CAs published');
        await secret!.update({ 'tls.crt': leaves.c.cert, 'tls.key': leaves.c.key });
        await waitFor('the webhook to serve leaf C', async () => (await served(ca2)) === leaves.c.fingerprint, { timeoutMs: 30_000, intervalMs: 100 });
        await loop.advance(10, 'serving leaf C under both CAs');
        await publishBundle([ca2]);
        await sleep(2_000);
        await loop.advance(10, 'with only the new CA published');
      } finally {
        await loop.stop();
      }
      expect(loop.failures).toEqual([]);
      expect(loop.notInjected).toEqual([]);
      expect(loop.created).toBeGreaterThanOrEqual(50);
      expect(hook.running()).toBe(true);
      const reloads = (await hook.logLines()).filter((l) => l.msg === 'serving a reloaded TLS certificate');
      expect(reloads).toHaveLength(2);
      process.stderr.write(`certificate rotation: ${loop.created} pods created and injected across two certificate swaps and two caBundle changes, 0 failures\n`);

      // Control: the API server really checks the served leaf against the bundle it was given,
      // and picks bundle changes up within the waits above. The old CA alone is refused. The
      // bundle must differ in bytes from the first one: the API server caches a TLS transport
      // (and its open connection, handshaken with leaf A) per caBundle, and would reuse it.
      await publishBundle([ca1], '\n');
      const refused = await waitFor(
        'the API server to refuse leaf C under the old CA',
        async () => {
          const result = await plane()
            .client.createWithResult(sonarr('control', namespace), { dryRun: true })
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          return result instanceof KubeApiError ? result : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      expect(refused.message).toContain('failed calling webhook "pods.dfs-injector.io"');
      expect(refused.message).toMatch(/x509|certificate/);
    }, 180_000);
  });

  describe('in-cluster bootstrap: serve --tls-secret with the shipped RBAC', () => {
    const withTlsSecret = serveSupports('--tls-secret');
    const ready = needs('serve --tls-secret in the built CLI', withTlsSecret, 'The certificate bootstrap flags are not in dist/cli.js yet: commit cli/serve.ts and run npm run build.');
    const replicas: WebhookProcess[] = [];

    afterAll(async () => {
      await Promise.all(replicas.map((r) => r.stop()));
    }, 60_000);

    /** The kubeconfig the webhook pod would have: the dfs-injector ServiceAccount's token. */
    async function serviceAccountKubeconfig(): Promise<string> {
      const { client, server, credentials, dir } = plane();
      const path = join(dir, 'dfs-injector-sa.kubeconfig');
      return writeServiceAccountKubeconfig(client, { server, caPem: credentials.caPem }, { namespace: 'dfs-system', name: 'dfs-injector', path });
    }

    it.skipIf(!ready)('two replicas starting at once end up with one Secret, one CA, and that CA in every entry\'s caBundle', async () => {
      const { client, dir } = plane();
      // What a cluster has after `kubectl apply -k manifests/overlays/default`, minus the
      // workloads: the webhook configuration exactly as shipped (Service references, no
      // caBundle), and the policy that lets the ServiceAccount change only caBundle.
      const wanted = new Set(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
      const objects = render(kustomize!, 'overlays/default').filter((o) => wanted.has(o.kind));
      for (const kind of wanted) {
        for (const object of objects.filter((o) => o.kind === kind)) await client.apply(object);
      }
      await waitFor('ServiceAccount dfs-injector', () => client.get('v1', 'ServiceAccount', 'dfs-injector', 'dfs-system'));
      const kubeconfig = await serviceAccountKubeconfig();

      const started = await Promise.all(
        ['a', 'b'].map(async (name) => {
          const tlsDir = join(dir, `replica-${name}-tls`);
          await mkdir(tlsDir);
          return WebhookProcess.start({
            dir,
            name: `replica-${name}`,
            certPath: join(tlsDir, 'tls.crt'),
            keyPath: join(tlsDir, 'tls.key'),
            configYaml: base.configYaml,
            extraArgs: ['--tls-secret', 'dfs-injector-tls', '--webhook-config', 'dfs-injector', '--namespace', 'dfs-system', '--kubeconfig', kubeconfig],
            readyTimeoutMs: 120_000,
          }).then((p) => {
            replicas.push(p);
            return { process: p, tlsDir };
          });
        }),
      );

      const secrets = await client.list<KubeObject & { type?: string; data?: Record<string, string> }>('v1', 'Secret', { namespace: 'dfs-system' });
      expect(secrets.map((s) => s.metadata.name)).toEqual(['dfs-injector-tls']);
      const stored = secrets[0]!;
      expect(stored.type).toBe('kubernetes.io/tls');
      const caPem = unb64(stored.data?.['ca.crt']);
      const [ca] = fingerprints(caPem);
      expect(fingerprints(caPem)).toHaveLength(1);
      const leaf = new X509Certificate(unb64(stored.data?.['tls.crt']));
      expect(leaf.checkIssued(new X509Certificate(caPem))).toBe(true);

      const configuration = await client.get<KubeObject & { webhooks: MutatingWebhook[] }>(MWC.apiVersion, MWC.kind, 'dfs-injector');
      const shipped = base.webhookConfiguration.webhooks;
      expect(configuration!.webhooks.map((w) => w.name)).toEqual(shipped.map((w) => w.name));
      for (const [i, entry] of configuration!.webhooks.entries()) {
        expect(fingerprints(unb64(entry.clientConfig.caBundle)), entry.name).toEqual([ca]);
        // Only the caBundle was written: where the API server calls stays as shipped.
        expect(entry.clientConfig.service).toEqual({ ...shipped[i]!.clientConfig.service });
      }

      for (const { process: replica, tlsDir } of started) {
        // Each replica serves the Secret's pair, which the published bundle verifies for the
        // Service name the API server would dial.
        const served = await servedCertificate(replica.port, caPem, 'dfs-injector.dfs-system.svc');
        expect(served.fingerprint256).toBe(leaf.fingerprint256);
        expect(fingerprints(await readFile(join(tlsDir, 'ca.crt'), 'utf8'))).toEqual([ca]);
        // The lifecycle and the server share one logger, so every line names its level.
        const lines = await replica.logLines();
        expect(lines.length).toBeGreaterThan(0);
        expect(lines.filter((l) => typeof l.level !== 'string')).toEqual([]);
      }
    }, 180_000);
  });
});
