/**
 * A real Kubernetes control plane on loopback for end-to-end tests, in the spirit of
 * controller-runtime's envtest: etcd, kube-apiserver and kube-controller-manager, no kubelet
 * and no scheduler (pods stay Pending). One per test file: start it in beforeAll, stop it in
 * afterAll.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { findControlPlaneBinaries, type ControlPlaneBinaries, type ControlPlaneVersions } from './binaries.js';
import { KubeClient, waitFor, type Credentials, type KubeObject, type WaitOptions } from './kube-client.js';
import { parsePrometheusText, type MetricSample } from './metrics.js';
import { createPki, createServiceAccountKeys, type Pki } from './pki.js';
import { forwardFromNetns, type NetnsForward } from './netns-forward.js';
import { forgetDirectory, removeOnExit, startProcess, type ManagedProcess } from './process.js';

export { findControlPlaneBinaries } from './binaries.js';
export { KubeApiError, KubeClient, waitFor } from './kube-client.js';
export type { KubeObject, KubeResponse, WriteResult } from './kube-client.js';
export { parsePrometheusText, selectSamples, sumSamples } from './metrics.js';
export type { MetricSample } from './metrics.js';

/** The service CIDR; its first address is the `kubernetes` Service's ClusterIP. */
export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/**
 * Pods at `Request` level (so the admission patch annotations and the webhook's
 * auditAnnotations are visible), nothing else: the log stays small enough to read in a test.
 */
export const DEFAULT_AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Request
    resources:
      - group: ""
        resources: ["pods"]
  - level: None
`;

export interface ControlPlaneOptions {
  /** Defaults to findControlPlaneBinaries(); must be `available`. */
  readonly binaries?: ControlPlaneBinaries;
  /** Without it nothing creates ReplicaSets, Pods or `default` ServiceAccounts. Default true. */
  readonly controllerManager?: boolean;
  /** Appended after the harness's flags; a repeated flag overrides the earlier one. */
  readonly apiserverArgs?: readonly string[];
  readonly controllerManagerArgs?: readonly string[];
  readonly etcdArgs?: readonly string[];
  readonly auditPolicy?: string;
  /** Whole start-up budget. Default 120 s. */
  readonly startTimeoutMs?: number;
  /** Keep the temp dir (logs, etcd data, PKI) after stop(). Default: env DFS_E2E_KEEP=1. */
  readonly keepDir?: boolean;
  /**
   * Runs etcd, the API server and the controllers inside this network namespace, for tests with
   * a real node (test/node). The API server then listens on every address of the namespace,
   * advertises `address` (the `kubernetes` Service's endpoint), calls kubelets with a client
   * certificate of its own, and the test reaches it through a forwarder on the host's loopback.
   */
  readonly network?: ControlPlaneNetwork;
}

export interface ControlPlaneNetwork {
  /** An existing network namespace (`ip netns add`) whose loopback is up. */
  readonly netns: string;
  /** An address of that namespace that the node reaches, e.g. its bridge's. */
  readonly address: string;
}

/** One line of the API server's JSON audit log, reduced to what tests look at. */
export interface AuditEvent {
  readonly stage: string;
  readonly verb: string;
  readonly requestURI: string;
  readonly auditID: string;
  readonly user?: { username?: string; groups?: string[] };
  readonly objectRef?: { resource?: string; namespace?: string; name?: string; apiVersion?: string };
  readonly responseStatus?: { code?: number; message?: string; reason?: string };
  readonly annotations?: Record<string, string>;
  readonly requestObject?: unknown;
  readonly [key: string]: unknown;
}

export interface ControlPlane {
  /** Temp dir holding logs, etcd data, PKI and the kubeconfig. */
  readonly dir: string;
  /** https://127.0.0.1:<port> (with `network`: a forwarder into the namespace) */
  readonly server: string;
  /** The API server as seen from its own namespace: https://<network address or 127.0.0.1>:<port>. */
  readonly innerServer: string;
  /** Admin (system:masters) kubeconfig with embedded credentials. */
  readonly kubeconfigPath: string;
  /** The same admin credentials against `innerServer`'s port on 127.0.0.1, for components beside the API server. */
  readonly componentsKubeconfig: string;
  /** @kubernetes/client-node config loaded from kubeconfigPath, for `kc.makeApiClient(...)`. */
  readonly kc: KubeConfig;
  /** Admin REST client that exposes warnings and exact error texts. */
  readonly client: KubeClient;
  readonly credentials: Credentials;
  /** The run's CA: it signed the API server's serving cert and the admin cert, and can sign a webhook's. */
  readonly pki: Pki;
  readonly versions: ControlPlaneVersions;
  readonly ports: { readonly etcd: number; readonly apiserver: number; readonly controllerManager?: number };
  readonly logs: {
    readonly etcd: string;
    readonly apiserver: string;
    readonly controllerManager?: string;
    readonly audit: string;
  };
  /** Time from start to ready, for the test log. */
  readonly startupMs: number;
  /** The API server's `/metrics` text. */
  metricsText(): Promise<string>;
  /** The API server's `/metrics`, parsed. */
  metrics(): Promise<MetricSample[]>;
  /** Every audit event logged so far (see DEFAULT_AUDIT_POLICY for what is logged). */
  auditEvents(): Promise<AuditEvent[]>;
  /**
   * Creates a namespace and waits for its `default` ServiceAccount: until it exists the
   * ServiceAccount admission plugin rejects every pod there.
   */
  createNamespace(name: string, labels?: Record<string, string>): Promise<KubeObject>;
  /** Stops every process (process groups, SIGTERM then SIGKILL) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

async function freePorts(count: number): Promise<number[]> {
  // All listeners stay open until every port is known, so the ports are distinct.
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (a === null || typeof a === 'string') throw new Error('no TCP address');
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

function childEnv(): NodeJS.ProcessEnv {
  // A proxy from the developer's environment must never see loopback traffic (webhook calls included).
  const noProxy = ['127.0.0.1', 'localhost', process.env.NO_PROXY ?? process.env.no_proxy ?? '']
    .filter((s) => s !== '')
    .join(',');
  return { ...process.env, NO_PROXY: noProxy, no_proxy: noProxy };
}

/** A kubeconfig with one context: `user`'s client certificate against the loopback API server. */
export async function writeKubeconfig(path: string, user: string, { server, caPem, certPem, keyPem }: Credentials): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'dfs-e2e', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(certPem), 'client-key-data': b64(keyPem) } }],
    contexts: [{ name: 'dfs-e2e', context: { cluster: 'dfs-e2e', user, namespace: 'default' } }],
    'current-context': 'dfs-e2e',
  };
  await writeFile(path, JSON.stringify(config, null, 2), { mode: 0o600 });
}

/**
 * A kubeconfig with one context: a token of ServiceAccount `namespace/name` from a TokenRequest,
 * which is how the webhook's pod authenticates. Returns `path`.
 */
export async function writeServiceAccountKubeconfig(
  client: KubeClient,
  { server, caPem }: Pick<Credentials, 'server' | 'caPem'>,
  { namespace, name, path }: { namespace: string; name: string; path: string },
): Promise<string> {
  const review = await client.call({
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
  });
  const token = review.json<{ status: { token: string } }>().status.token;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'dfs-e2e', cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name, user: { token } }],
    contexts: [{ name, context: { cluster: 'dfs-e2e', user: name, namespace } }],
    'current-context': name,
  };
  await writeFile(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return path;
}

/** kube-scheduler against a control plane (its `componentsKubeconfig`), in its namespace if any. */
export function startScheduler(
  binary: string,
  kubeconfig: string,
  port: number,
  logPath: string,
  o: { cwd: string; env: NodeJS.ProcessEnv; netns: string | undefined },
): ManagedProcess {
  return startProcess({
    name: 'kube-scheduler',
    command: binary,
    args: [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--leader-elect=false',
      '--profiling=false',
      '--v=1',
    ],
    logPath,
    cwd: o.cwd,
    env: o.env,
    netns: o.netns,
  });
}

async function waitForEtcd(reachable: boolean, etcdUrl: string, o: WaitOptions): Promise<void> {
  if (!reachable) return;
  await waitFor(
    'etcd /health',
    async () => {
      const res = await fetch(`${etcdUrl}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    },
    o,
  );
}

function networkPlan(network: ControlPlaneNetwork | undefined): { netns: string | undefined; servingIps: string[]; probeEtcd: boolean } {
  if (network === undefined) return { netns: undefined, servingIps: ['127.0.0.1', '10.0.0.1'], probeEtcd: true };
  // In a namespace, etcd is out of this process's reach; the API server waits for it instead.
  return { netns: network.netns, servingIps: ['127.0.0.1', '10.0.0.1', network.address], probeEtcd: false };
}

/** Where the test and the namespace reach the API server; with a namespace, through a forwarder. */
async function apiserverEndpoints(
  network: ControlPlaneNetwork | undefined,
  port: number,
  dir: string,
): Promise<{ server: string; innerServer: string; forward: NetnsForward | undefined }> {
  if (network === undefined) {
    const server = `https://127.0.0.1:${port}`;
    return { server, innerServer: server, forward: undefined };
  }
  const forward = await forwardFromNetns(network.netns, '127.0.0.1', port, dir);
  return { server: `https://127.0.0.1:${forward.port}`, innerServer: `https://${network.address}:${port}`, forward };
}

/** API server flags for a control plane in a namespace with a node (ControlPlaneOptions.network). */
async function networkApiserverArgs(network: ControlPlaneNetwork | undefined, pki: Pki): Promise<string[]> {
  if (network === undefined) return [];
  // kubectl logs/exec: the API server's own identity towards kubelets, checked by their webhook
  // authorizer (system:masters may do anything).
  const client = await pki.issue({
    name: 'apiserver-kubelet-client',
    commonName: 'kube-apiserver-kubelet-client',
    organizations: ['system:masters'],
    usage: 'client',
  });
  return [
    '--bind-address=0.0.0.0',
    `--advertise-address=${network.address}`,
    // The advertised address is a real one here: the `kubernetes` Service gets it.
    '--endpoint-reconciler-type=lease',
    `--kubelet-client-certificate=${client.cert}`,
    `--kubelet-client-key=${client.key}`,
    `--kubelet-certificate-authority=${pki.ca.cert}`,
    // A node's host name resolves nowhere in the namespace.
    '--kubelet-preferred-address-types=InternalIP',
  ];
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/** Starts etcd, kube-apiserver and (by default) kube-controller-manager; resolves once usable. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const binaries = options.binaries ?? findControlPlaneBinaries();
  if (!binaries.available) throw new Error(`control-plane binaries missing. ${binaries.hint}`);
  const withKcm = options.controllerManager ?? true;
  const network = options.network;
  const { netns, servingIps, probeEtcd } = networkPlan(network);
  const keep = options.keepDir ?? process.env.DFS_E2E_KEEP === '1';
  const deadline = started + (options.startTimeoutMs ?? 120_000);
  const remaining = (): number => Math.max(1_000, deadline - Date.now());

  const dir = await mkdtemp(join(tmpdir(), 'dfs-e2e-cp-'));
  if (!keep) removeOnExit(dir);
  const processes: ManagedProcess[] = [];
  let client: KubeClient | undefined;
  let forward: NetnsForward | undefined;
  let stopped = false;

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    client?.close();
    await forward?.close();
    // Reverse start order: the controller manager and API server still talk to etcd while stopping.
    for (const p of [...processes].reverse()) await p.stop();
    if (keep) {
      process.stderr.write(`dfs-injector e2e: control-plane dir kept at ${dir}\n`);
    } else {
      await rm(dir, { recursive: true, force: true });
      forgetDirectory(dir);
    }
  }

  const abortIfDead = (): string | undefined => {
    const dead = processes.find((p) => !p.running());
    return dead === undefined ? undefined : `${dead.name} exited; last log lines (${dead.logPath}):\n${dead.logTail()}`;
  };

  try {
    const pkiDir = join(dir, 'pki');
    await mkdir(pkiDir);
    const pki = await createPki(pkiDir);
    const [serving, admin, sa] = await Promise.all([
      pki.issue({
        name: 'apiserver',
        commonName: 'kube-apiserver',
        dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
        ipAddresses: servingIps,
        usage: 'server',
      }),
      pki.issue({ name: 'admin', commonName: 'dfs-e2e-admin', organizations: ['system:masters'], usage: 'client' }),
      createServiceAccountKeys(pkiDir),
    ]);

    const networkArgs = await networkApiserverArgs(network, pki);

    const [etcdClientPort, etcdPeerPort, apiserverPort, kcmPort] = (await freePorts(4)) as [number, number, number, number];
    const env = childEnv();
    const logs = {
      etcd: join(dir, 'etcd.log'),
      apiserver: join(dir, 'kube-apiserver.log'),
      controllerManager: withKcm ? join(dir, 'kube-controller-manager.log') : undefined,
      audit: join(dir, 'audit.log'),
    };

    // etcd
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    processes.push(
      startProcess({
        name: 'etcd',
        command: binaries.etcd,
        args: [
          '--name=e2e',
          `--data-dir=${join(dir, 'etcd')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=e2e=${peerUrl}`,
          // Test data is thrown away; fsync only costs time on a shared disk.
          '--unsafe-no-fsync=true',
          '--log-level=warn',
          ...(options.etcdArgs ?? []),
        ],
        logPath: logs.etcd,
        cwd: dir,
        env,
        netns,
      }),
    );
    await waitForEtcd(probeEtcd, etcdUrl, { timeoutMs: remaining(), intervalMs: 100, abort: abortIfDead });

    // kube-apiserver
    const auditPolicy = join(dir, 'audit-policy.yaml');
    await writeFile(auditPolicy, options.auditPolicy ?? DEFAULT_AUDIT_POLICY);
    processes.push(
      startProcess({
        name: 'kube-apiserver',
        command: binaries.kubeApiserver,
        args: [
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiserverPort}`,
          // Never written to with the explicit serving cert, but keeps the default /var/run/kubernetes out of it.
          `--cert-dir=${join(dir, 'apiserver-certs')}`,
          `--tls-cert-file=${serving.cert}`,
          `--tls-private-key-file=${serving.key}`,
          `--client-ca-file=${pki.ca.cert}`,
          `--service-account-key-file=${sa.publicKey}`,
          `--service-account-signing-key-file=${sa.privateKey}`,
          `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
          `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
          // Endpoints may not hold a loopback address, so the default reconciler fails every few
          // seconds trying to publish 127.0.0.1 for the `kubernetes` Service.
          '--endpoint-reconciler-type=none',
          '--authorization-mode=Node,RBAC',
          '--enable-admission-plugins=MutatingAdmissionWebhook,PodSecurity',
          // Source pods run a privileged container (Bidirectional propagation needs it).
          '--allow-privileged=true',
          `--audit-policy-file=${auditPolicy}`,
          `--audit-log-path=${logs.audit}`,
          '--audit-log-format=json',
          '--audit-log-mode=blocking',
          '--profiling=false',
          '--v=1',
          ...networkArgs,
          ...(options.apiserverArgs ?? []),
        ],
        logPath: logs.apiserver,
        cwd: dir,
        env,
        netns,
      }),
    );

    const endpoints = await apiserverEndpoints(network, apiserverPort, dir);
    forward = endpoints.forward;
    const { server, innerServer } = endpoints;
    const [certPem, keyPem] = await Promise.all([readFile(admin.cert, 'utf8'), readFile(admin.key, 'utf8')]);
    const credentials: Credentials = { server, caPem: pki.caPem, certPem, keyPem };
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    await writeKubeconfig(kubeconfigPath, 'dfs-e2e-admin', credentials);
    // The controllers run beside the API server, in its namespace when there is one.
    const componentsKubeconfig = join(dir, 'components.kubeconfig');
    await writeKubeconfig(componentsKubeconfig, 'dfs-e2e-admin', { ...credentials, server: `https://127.0.0.1:${apiserverPort}` });
    const api = new KubeClient(credentials);
    client = api;
    await waitFor(
      'kube-apiserver /readyz',
      async () => (await api.request({ path: '/readyz', timeoutMs: 5_000 })).status === 200,
      { timeoutMs: remaining(), intervalMs: 250, abort: abortIfDead },
    );

    // kube-controller-manager
    if (withKcm) {
      processes.push(
        startProcess({
          name: 'kube-controller-manager',
          command: binaries.kubeControllerManager,
          args: [
            `--kubeconfig=${componentsKubeconfig}`,
            '--bind-address=127.0.0.1',
            `--secure-port=${kcmPort}`,
            `--cert-dir=${join(dir, 'kcm-certs')}`,
            `--service-account-private-key-file=${sa.privateKey}`,
            `--root-ca-file=${pki.ca.cert}`,
            // Lets certificate signing requests be approved and signed in tests of certs/.
            `--cluster-signing-cert-file=${pki.ca.cert}`,
            `--cluster-signing-key-file=${pki.ca.key}`,
            `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
            '--controllers=*',
            '--use-service-account-credentials=false',
            '--leader-elect=false',
            '--profiling=false',
            '--v=1',
            ...(options.controllerManagerArgs ?? []),
          ],
          logPath: logs.controllerManager ?? join(dir, 'kube-controller-manager.log'),
          cwd: dir,
          env,
          netns,
        }),
      );
      // The serviceaccount controller running is the signal that the controllers have started.
      await waitFor(
        'ServiceAccount default/default (kube-controller-manager running)',
        () => api.get('v1', 'ServiceAccount', 'default', 'default'),
        { timeoutMs: remaining(), intervalMs: 250, abort: abortIfDead },
      );
    }

    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const startupMs = Date.now() - started;

    return {
      dir,
      server,
      innerServer,
      kubeconfigPath,
      componentsKubeconfig,
      kc,
      client: api,
      credentials,
      pki,
      versions: binaries.versions,
      ports: { etcd: etcdClientPort, apiserver: apiserverPort, ...(withKcm ? { controllerManager: kcmPort } : {}) },
      logs: {
        etcd: logs.etcd,
        apiserver: logs.apiserver,
        audit: logs.audit,
        ...(logs.controllerManager === undefined ? {} : { controllerManager: logs.controllerManager }),
      },
      startupMs,
      metricsText: async () => (await api.call({ path: '/metrics', headers: { accept: 'text/plain' } })).body,
      metrics: async () => parsePrometheusText((await api.call({ path: '/metrics', headers: { accept: 'text/plain' } })).body),
      auditEvents: async () => {
        let text: string;
        try {
          text = await readFile(logs.audit, 'utf8');
        } catch {
          return [];
        }
        return text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as AuditEvent);
      },
      createNamespace: async (name, labels) => {
        const ns = await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels ? { labels } : {}) } });
        if (withKcm) {
          await waitFor(`ServiceAccount ${name}/default`, () => api.get('v1', 'ServiceAccount', 'default', name), {
            timeoutMs: 60_000,
            abort: abortIfDead,
          });
        }
        return ns;
      },
      stop,
    };
  } catch (err) {
    // The temp dir goes away with stop(), so the log tails travel in the error.
    const tails = processes.map((p) => `--- ${p.name} (last lines) ---\n${p.logTail(25)}`).join('\n');
    await stop();
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`control plane did not start: ${reason}${tails === '' ? '' : `\n${tails}`}`, { cause: err });
  }
}
