// The cluster reads of `dfs-injector check`, on @kubernetes/client-node; loaded only when the
// command runs (see LazyClusterReader for why). Every list is paged; every network wait is bounded.
import { connect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';
import { ApiException, AppsV1Api, CoreV1Api, DiscoveryV1Api, AdmissionregistrationV1Api, type KubeConfig, type V1ContainerState, type V1DaemonSet, type V1Pod } from '@kubernetes/client-node';
import { isPodReady, MOUNTER } from '../lib/audit/index.js';
import type { CheckPod, DeploymentFacts, DryRunOutcome, ExecOutcome, MounterPodFacts, ServedCertificate, ShareExpectation, SmbServiceFacts, WebhookConfigurationFacts } from '../lib/check/index.js';
import { DEFAULT_MOUNT_OPTIONS, EXEC_OUTPUT_LIMIT, parseServiceHost } from '../lib/check/index.js';
import { ANNOTATION_STATUS, LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE, LABEL_ROLE } from '../lib/names.js';
import { parseStatus } from '../lib/status.js';
import type { CheckCluster } from './check.js';
import { describeApiError } from './kube-reader.js';
import { KubePodExec, type ExecRequest } from './check-exec.js';

/** A pod's status annotation is the pod owner's to edit: only this many of its mount entries are kept. */
const MAX_RECORDED_MOUNTS = 16;

function notFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}

function containerState(state: V1ContainerState | undefined): string {
  if (state?.running !== undefined) return 'running';
  if (state?.waiting !== undefined) return `waiting: ${state.waiting.reason ?? 'unknown'}`;
  if (state?.terminated !== undefined) return `terminated: ${state.terminated.reason ?? 'unknown'}`;
  return 'no state yet';
}

function checkPod(pod: V1Pod): CheckPod {
  const meta = pod.metadata ?? {};
  const containers: CheckPod['containers'] = {};
  for (const status of pod.status?.containerStatuses ?? []) containers[status.name] = { ready: status.ready, state: containerState(status.state) };
  const status = parseStatus(meta.annotations?.[ANNOTATION_STATUS]);
  const result: CheckPod = { namespace: meta.namespace ?? '', name: meta.name ?? '(unnamed)', role: status?.role, ready: isPodReady(pod.status), containers };
  if (status !== undefined) result.mounts = status.mounts.slice(0, MAX_RECORDED_MOUNTS);
  if (pod.spec?.nodeName !== undefined && pod.spec.nodeName !== '') result.nodeName = pod.spec.nodeName;
  if (pod.status?.phase !== undefined) result.phase = pod.status.phase;
  return result;
}

function toPem(raw: Buffer): string {
  const base64 = raw.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${base64}-----END CERTIFICATE-----\n`;
}

/** Leaf first, then each issuer the server sent, stopping at a self-signed one or a repeat. */
function chainOf(peer: DetailedPeerCertificate): string[] {
  const chain: string[] = [];
  const seen = new Set<string>();
  let current: PeerCertificate | DetailedPeerCertificate | undefined = peer;
  while (current?.raw !== undefined && !seen.has(current.fingerprint256) && chain.length < 10) {
    seen.add(current.fingerprint256);
    chain.push(toPem(current.raw));
    current = (current as DetailedPeerCertificate).issuerCertificate;
  }
  return chain;
}

export class KubeCheckCluster implements CheckCluster {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly discovery: DiscoveryV1Api;
  private readonly admission: AdmissionregistrationV1Api;

  private readonly podExec: KubePodExec;

  constructor(kc: KubeConfig, private readonly pageSize: number) {
    this.podExec = new KubePodExec(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.admission = kc.makeApiClient(AdmissionregistrationV1Api);
  }

  async readWebhookConfiguration(name: string): Promise<WebhookConfigurationFacts | undefined> {
    try {
      const config = await this.admission.readMutatingWebhookConfiguration({ name });
      return {
        name,
        entries: (config.webhooks ?? []).map((w) => {
          const bundle = w.clientConfig.caBundle;
          const entry: WebhookConfigurationFacts['entries'][number] = { name: w.name, caBundle: bundle === undefined || bundle === '' ? undefined : Buffer.from(bundle, 'base64').toString('utf8') };
          if (w.clientConfig.url !== undefined) entry.url = w.clientConfig.url;
          const svc = w.clientConfig.service;
          if (svc !== undefined) entry.service = { namespace: svc.namespace, name: svc.name, port: svc.port ?? 443 };
          return entry;
        }),
      };
    } catch (error) {
      if (notFound(error)) return undefined;
      throw describeApiError(error, `cannot read mutatingwebhookconfiguration ${name}`);
    }
  }

  async readDeployment(namespace: string, name: string): Promise<DeploymentFacts | undefined> {
    try {
      const d = await this.apps.readNamespacedDeployment({ namespace, name });
      return {
        namespace,
        name,
        replicas: d.spec?.replicas ?? 1,
        availableReplicas: d.status?.availableReplicas ?? 0,
        conditions: (d.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, ...(c.reason === undefined ? {} : { reason: c.reason }), ...(c.message === undefined ? {} : { message: c.message }) })),
      };
    } catch (error) {
      if (notFound(error)) return undefined;
      throw describeApiError(error, `cannot read deployment ${namespace}/${name}`);
    }
  }

  /** Every page, keeping only what `keep` returns for each pod: memory holds one page of full pods. */
  private async listAllPods<T>(what: string, request: (token: string | undefined) => Promise<{ items: V1Pod[]; metadata?: { _continue?: string } }>, keep: (pod: V1Pod) => T | undefined): Promise<T[]> {
    const kept: T[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await request(token);
      } catch (error) {
        throw describeApiError(error, what);
      }
      for (const pod of page.items) {
        const value = keep(pod);
        if (value !== undefined) kept.push(value);
      }
      token = page.metadata?._continue;
    } while (token !== undefined && token !== '');
    return kept;
  }

  async listDfsPods(namespace: string | undefined): Promise<CheckPod[]> {
    // No label selector: pods of a namespace-consumer namespace carry no role label, only the
    // webhook's status annotation, which a selector cannot match.
    const common = (token: string | undefined) => ({ limit: this.pageSize, ...(token === undefined ? {} : { _continue: token }) });
    return this.listAllPods(
      namespace === undefined ? 'cannot list pods in all namespaces' : `cannot list pods in namespace ${namespace}`,
      (token) => (namespace === undefined ? this.core.listPodForAllNamespaces(common(token)) : this.core.listNamespacedPod({ namespace, ...common(token) })),
      (pod) => {
        const summary = checkPod(pod);
        return summary.role === undefined ? undefined : summary;
      },
    );
  }

  async listMounterPods(): Promise<MounterPodFacts[]> {
    return this.listAllPods(
      `cannot list the ${MOUNTER.name} pods in namespace ${MOUNTER.namespace}`,
      (token) => this.core.listNamespacedPod({ namespace: MOUNTER.namespace, labelSelector: `${MOUNTER.labelKey}=${MOUNTER.labelValue}`, limit: this.pageSize, ...(token === undefined ? {} : { _continue: token }) }),
      (p) => {
        const nodeName = p.spec?.nodeName;
        return nodeName === undefined || nodeName === '' ? undefined : { name: p.metadata?.name ?? '(unnamed)', nodeName, ready: isPodReady(p.status), running: p.status?.phase === 'Running' };
      },
    );
  }

  /** The mounter DaemonSet, or undefined when it is not installed. */
  private async mounterDaemonSet(): Promise<V1DaemonSet | undefined> {
    try {
      return await this.apps.readNamespacedDaemonSet({ namespace: MOUNTER.namespace, name: MOUNTER.name });
    } catch (error) {
      if (notFound(error)) return undefined;
      throw describeApiError(error, `cannot read daemonset ${MOUNTER.namespace}/${MOUNTER.name}`);
    }
  }

  async mounterSmbService(): Promise<{ namespace: string; name: string; source: string } | undefined> {
    const ds = await this.mounterDaemonSet();
    if (ds === undefined) return undefined;
    for (const container of ds.spec?.template.spec?.containers ?? []) {
      const value = container.env?.find((e) => e.name === 'DFS_SMB_SERVICE')?.value;
      const parsed = value === undefined ? undefined : parseServiceHost(value);
      if (parsed !== undefined) return { ...parsed, source: `DFS_SMB_SERVICE=${value} of daemonset ${MOUNTER.namespace}/${MOUNTER.name}` };
    }
    return undefined;
  }

  async mounterShare(): Promise<ShareExpectation | undefined> {
    const ds = await this.mounterDaemonSet();
    if (ds === undefined) return undefined;
    for (const container of ds.spec?.template.spec?.containers ?? []) {
      const env = (name: string): string | undefined => container.env?.find((e) => e.name === name)?.value;
      const hostPath = env('DFS_HOST_PATH');
      if (hostPath === undefined || !hostPath.startsWith('/')) continue;
      // The script's defaults (manifests/mounter/dfs-mounter.sh) when the variables are not set.
      return {
        container: container.name,
        hostPath,
        shareName: env('DFS_SHARE_NAME') ?? 'dfs',
        options: env('DFS_MOUNT_OPTIONS') ?? DEFAULT_MOUNT_OPTIONS,
        source: `daemonset ${MOUNTER.namespace}/${MOUNTER.name}`,
      };
    }
    return undefined;
  }

  exec(request: ExecRequest, timeoutMs: number): Promise<ExecOutcome> {
    return this.podExec.run(request, timeoutMs, EXEC_OUTPUT_LIMIT);
  }

  async readSmbService(ref: { namespace: string; name: string; source: string }): Promise<SmbServiceFacts> {
    try {
      await this.core.readNamespacedService(ref);
    } catch (error) {
      if (notFound(error)) return { ...ref, exists: false, readyEndpoints: 0, notReadyEndpoints: 0 };
      throw describeApiError(error, `cannot read service ${ref.namespace}/${ref.name}`);
    }
    let ready = 0;
    let notReady = 0;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.discovery.listNamespacedEndpointSlice({ namespace: ref.namespace, labelSelector: `kubernetes.io/service-name=${ref.name}`, limit: this.pageSize, ...(token === undefined ? {} : { _continue: token }) });
      } catch (error) {
        throw describeApiError(error, `cannot list the endpointslices of service ${ref.namespace}/${ref.name}`);
      }
      for (const slice of page.items) {
        // A slice of a Service without pods comes without `endpoints` at all, typings aside.
        for (const endpoint of (slice.endpoints as typeof slice.endpoints | undefined) ?? []) {
          // An unset ready condition means ready (discovery.k8s.io/v1).
          if (endpoint.conditions?.ready === false) notReady++;
          else ready++;
        }
      }
      token = page.metadata?._continue;
    } while (token !== undefined && token !== '');
    return { ...ref, exists: true, readyEndpoints: ready, notReadyEndpoints: notReady };
  }

  async serviceAddress(namespace: string, name: string, port: number): Promise<string | undefined> {
    try {
      const svc = await this.core.readNamespacedService({ namespace, name });
      const ip = svc.spec?.clusterIP;
      return ip === undefined || ip === '' || ip === 'None' ? undefined : `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    } catch (error) {
      if (notFound(error)) return undefined;
      throw describeApiError(error, `cannot read service ${namespace}/${name}`);
    }
  }

  async optedInNamespace(only: string | undefined): Promise<string | undefined> {
    const candidates: { name: string; labels: Record<string, string> }[] = [];
    if (only !== undefined) {
      try {
        const ns = await this.core.readNamespace({ name: only });
        candidates.push({ name: only, labels: ns.metadata?.labels ?? {} });
      } catch (error) {
        if (!notFound(error)) throw describeApiError(error, `cannot read namespace ${only}`);
      }
    } else {
      let token: string | undefined;
      do {
        let page;
        try {
          page = await this.core.listNamespace({ labelSelector: `${LABEL_INJECTION}=enabled`, limit: this.pageSize, ...(token === undefined ? {} : { _continue: token }) });
        } catch (error) {
          throw describeApiError(error, 'cannot list namespaces');
        }
        for (const ns of page.items) candidates.push({ name: ns.metadata?.name ?? '', labels: ns.metadata?.labels ?? {} });
        token = page.metadata?._continue;
      } while (token !== undefined && token !== '');
    }
    return candidates
      .filter((ns) => ns.labels[LABEL_INJECTION] === 'enabled' && !['kube-system', MOUNTER.namespace].includes(ns.name) && !['baseline', 'restricted'].includes(ns.labels[LABEL_POD_SECURITY_ENFORCE] ?? ''))
      .map((ns) => ns.name)
      .sort()[0];
  }

  async dryRunConsumer(namespace: string): Promise<DryRunOutcome> {
    try {
      const pod = await this.core.createNamespacedPod({
        namespace,
        dryRun: 'All',
        body: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { generateName: 'dfs-injector-check-', labels: { [LABEL_ROLE]: 'consumer', 'app.kubernetes.io/name': 'dfs-injector-check' } },
          spec: { containers: [{ name: 'check', image: 'registry.k8s.io/pause:3.10' }] },
        },
      });
      return pod.metadata?.annotations?.[ANNOTATION_STATUS] === undefined ? { kind: 'not-injected', namespace } : { kind: 'injected', namespace };
    } catch (error) {
      const described = describeApiError(error, 'dry-run create');
      if (described.code === 403 && /cannot create resource "pods"/.test(described.message)) return { kind: 'forbidden', message: described.message };
      if (described.code === undefined) throw described;
      return { kind: 'refused', namespace, message: described.message };
    }
  }

  servedCertificate(address: string, servername: string | undefined, timeoutMs: number): Promise<ServedCertificate> {
    const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
    if (match === null) return Promise.resolve({ ok: false, address, error: `${address} is not HOST:PORT` });
    const host = (match[1] ?? '').replace(/^\[|\]$/g, '');
    return new Promise((resolve) => {
      let settled = false;
      const finish = (result: ServedCertificate): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(result);
      };
      // Verification is done by the steps, against the caBundle, not against this machine's roots.
      const socket = connect({ host, port: Number(match[2]), rejectUnauthorized: false, ...(servername === undefined || /^[\d.]+$|:/.test(servername) ? {} : { servername }) });
      const timer = setTimeout(() => finish({ ok: false, address, error: `timed out after ${timeoutMs / 1000} s` }), timeoutMs);
      socket.once('secureConnect', () => finish({ ok: true, address, chain: chainOf(socket.getPeerCertificate(true)) }));
      socket.once('error', (error: Error) => finish({ ok: false, address, error: error.message }));
    });
  }
}
