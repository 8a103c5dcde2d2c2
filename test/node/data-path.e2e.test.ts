// The data path on the real node (test/node/node.ts), as a user installs and uses it (the
// README's steps 1 to 4): the shipped manifests through real kustomize, the three shipped images
// imported into containerd, a FUSE source whose file reports st_nlink 0, the smbd sidecar the
// webhook injects, the mounter mounting the SMB Service's ClusterIP with the kernel CIFS client,
// and a consumer that reads the file through the node's hostPath. Each step asserts what a user
// sees: pod conditions, the objects the API server stores, and `kubectl exec` output.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../support/prereq.js';
import { waitFor, type KubeObject } from '../e2e/harness.js';
import { buildImages, IMAGE_TOOLS_HINT, imageToolsMissing } from '../images/podman.js';
import { findKustomize, KUSTOMIZE_HINT, render } from '../manifests/kustomize.js';
import { findNodeArtifacts, startNode, type TestNode } from './node.js';

const found = findNodeArtifacts();
const kustomize = findKustomize();
const imageTools = imageToolsMissing();
const ready =
  needs('a test node (QEMU VM with kubelet and containerd)', found.available, found.available ? '' : found.hint) &&
  needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT) &&
  needs(`image build tools (${imageTools.join(', ')})`, imageTools.length === 0, IMAGE_TOOLS_HINT);

// Where the shipped images are exported for the node (docker-archives that keep their tags).
const ARCHIVES = join(homedir(), '.cache', 'dfs-injector', 'images', 'node-archives');

interface Condition {
  type: string;
  status: string;
}
interface PodStatus {
  phase?: string;
  podIP?: string;
  conditions?: Condition[];
  containerStatuses?: { name: string; ready: boolean; restartCount: number }[];
}
interface PodSpec {
  hostNetwork?: boolean;
  containers: { name: string; image: string; env?: { name: string; value?: string }[] }[];
  volumes?: { name: string; hostPath?: { path: string }; emptyDir?: object }[];
}
type Pod = KubeObject & { spec: PodSpec; status?: PodStatus };

const isReady = (p: Pod | undefined): boolean => p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** Objects as one `kubectl apply -f -` input. */
const asList = (objects: readonly object[]): string => JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects });

describe.skipIf(!ready)('the data path on a real node (README steps 1 to 4)', () => {
  let node: TestNode;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    if (!found.available) return;
    const built = await buildImages(['webhook', 'smbd', 'mounter'], { exportDir: ARCHIVES });
    const archives = [...built.keys()].map((name) => join(ARCHIVES, `${name}.tar`));
    node = await startNode(found.artifacts, { images: archives });
    const t = node.timings;
    process.stderr.write(`data path: node Ready ${t.nodeReady} ms, CoreDNS ready ${t.dnsReady} ms after start\n`);
  }, 1_500_000);

  afterAll(async () => {
    process.stderr.write(`data path timings (ms): ${JSON.stringify(timings)}\n`);
    await node?.stop();
  }, 60_000);

  async function diagnostics(namespace: string): Promise<string> {
    const pods = await node.kubectl(['get', 'pods', '-A', '-o', 'wide']);
    const events = await node.kubectl(['get', 'events', '-n', namespace, '--sort-by=.lastTimestamp']);
    return `pods:\n${pods.stdout}\nevents in ${namespace}:\n${events.stdout}\nkubelet:\n${node.logTail('kubelet', 30)}`;
  }

  /** The one pod matching the selector, once Ready. */
  async function readyPod(namespace: string, labelSelector: string, timeoutMs = 300_000): Promise<Pod> {
    return waitFor(
      `a Ready pod ${labelSelector} in ${namespace}`,
      async () => {
        const pods = await node.cp.client.list<Pod>('v1', 'Pod', { namespace, labelSelector });
        return pods.find(isReady);
      },
      { timeoutMs, intervalMs: 1_000 },
    ).catch(async (e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await diagnostics(namespace)}`);
    });
  }

  async function kubectlOk(args: readonly string[], input?: string): Promise<string> {
    const r = await node.kubectl(args, { timeoutMs: 120_000, ...(input !== undefined ? { input } : {}) });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
    return r.stdout;
  }

  it('1. installs the default overlay: the webhook turns Available with its own certificate, reached through its Service', async () => {
    const started = Date.now();
    // `kubectl apply -k manifests/` with the kustomize the manifest tests use, plus the startupProbe
    // that TCG's slowness needs (test/node/data-path/install/kustomization.yaml says why).
    await kubectlOk(['apply', '-f', '-'], asList(render(kustomize!, '../test/node/data-path/install')));
    await waitFor(
      'deployment/dfs-injector Available with 2 ready replicas',
      async () => {
        const d = await node.cp.client.get('apps/v1', 'Deployment', 'dfs-injector', 'dfs-system');
        const s = d?.status as { readyReplicas?: number; conditions?: Condition[] } | undefined;
        return s?.readyReplicas === 2 && s.conditions?.some((c) => c.type === 'Available' && c.status === 'True');
      },
      { timeoutMs: 400_000, intervalMs: 1_000 },
    ).catch(async (e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await diagnostics('dfs-system')}`);
    });
    timings.webhookAvailable = Date.now() - started;
    // The certificate the webhook made for itself, and the caBundle it put in place.
    const secret = await node.cp.client.get('v1', 'Secret', 'dfs-injector-tls', 'dfs-system');
    expect(Object.keys((secret?.data as Record<string, string> | undefined) ?? {})).toEqual(expect.arrayContaining(['tls.crt', 'tls.key']));
    const mwc = await waitFor(
      'the caBundle in the webhook configuration',
      async () => {
        const m = await node.cp.client.get('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', 'dfs-injector');
        const hooks = (m?.webhooks as { clientConfig: { caBundle?: string; service?: object; url?: string } }[] | undefined) ?? [];
        return hooks.length > 0 && hooks.every((h) => (h.clientConfig.caBundle ?? '') !== '') ? hooks : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    // The API server calls the webhook by its Service, as in any cluster: no URL anywhere.
    for (const hook of mwc) {
      expect(hook.clientConfig.url).toBeUndefined();
      expect(hook.clientConfig.service).toMatchObject({ name: 'dfs-injector', namespace: 'dfs-system', port: 443 });
    }
    // The mounter DaemonSet came with the overlay; it waits for the SMB Service (step 3).
    expect(await node.cp.client.get('apps/v1', 'DaemonSet', 'dfs-mounter', 'dfs-system')).toBeDefined();
  }, 600_000);

  it('2. injects the smbd sidecar into a FUSE source whose file has st_nlink 0, and the sidecar turns Ready', async () => {
    const started = Date.now();
    // The examples' application side, with the nlink0fs fixture in place of decypharr.
    await kubectlOk(['apply', '-f', '-'], asList(render(kustomize!, '../test/node/data-path')));
    const source = await readyPod('media', 'app.kubernetes.io/name=fuse-source');
    timings.sourceReady = Date.now() - started;
    // The webhook (failurePolicy Fail, reached through its Service) added the sidecar.
    expect(source.spec.containers.map((c) => c.name)).toEqual(['fuse', 'dfs-smbd']);
    expect(source.spec.containers[1]!.image).toBe('ghcr.io/dfs-injector/smbd:0.1.0');
    expect(source.status?.containerStatuses?.every((c) => c.ready && c.restartCount === 0)).toBe(true);
    const name = source.metadata.name ?? '';
    // The FUSE file as its own container sees it (nlink 0), and as the sidecar sees it.
    const inFuse = await kubectlOk(['exec', '-n', 'media', name, '-c', 'fuse', '--', 'stat', '-c', '%h', '/mnt/dfs/hello.txt']);
    expect(inFuse).toBe('0\n');
    const inSidecar = await kubectlOk(['exec', '-n', 'media', name, '-c', 'dfs-smbd', '--', 'cat', '/mnt/dfs/hello.txt']);
    expect(inSidecar).toBe('hello from nlink0fs\n');
  }, 400_000);

  it('3. the mounter mounts the dfs-smb Service by its ClusterIP with the kernel CIFS client and turns Ready', async () => {
    const started = Date.now();
    const svc = await node.cp.client.get('v1', 'Service', 'dfs-smb', 'media');
    const clusterIP = (svc?.spec as { clusterIP?: string } | undefined)?.clusterIP ?? '';
    expect(clusterIP).toMatch(/^10\.0\.0\.\d+$/);
    const mounter = await readyPod('dfs-system', 'app.kubernetes.io/name=dfs-mounter');
    timings.mounterReadyAfterSource = Date.now() - started;
    expect(mounter.spec.hostNetwork).toBe(true);
    // On the node itself: the share of the Service's address, CIFS, read-only.
    const mount = await node.exec('findmnt -n -o SOURCE,FSTYPE,OPTIONS /mnt/decypharr-dfs');
    const [source, fstype, options] = mount.stdout.trim().split(/\s+/);
    expect(source).toBe(`//${clusterIP}/dfs`);
    expect(fstype).toBe('cifs');
    expect(options?.split(',')).toContain('ro');
    const onNode = await node.exec('cat /mnt/decypharr-dfs/hello.txt; stat -c %h /mnt/decypharr-dfs/hello.txt');
    expect(onNode.stdout).toBe('hello from nlink0fs\n1\n');
  }, 400_000);

  it('4. a consumer reads the file under /mnt/dfs with Links: 1, and a symlink into /mnt/dfs from another volume resolves', async () => {
    const started = Date.now();
    const consumer = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'consumer', namespace: 'media' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'consumer' } },
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': 'consumer', 'dfs-injector.io/role': 'consumer' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'app',
                image: 'localhost/dfs-toolbox:1',
                imagePullPolicy: 'Never',
                command: ['/bin/sh', '-c', 'exec sleep 1000000'],
                volumeMounts: [{ name: 'library', mountPath: '/library' }],
              },
            ],
            volumes: [{ name: 'library', emptyDir: {} }],
          },
        },
      },
    };
    await kubectlOk(['apply', '-f', '-'], asList([consumer]));
    const pod = await readyPod('media', 'app.kubernetes.io/name=consumer');
    // The webhook's hostPath of the node's mount point.
    expect(pod.spec.volumes?.some((v) => v.hostPath?.path === '/mnt/decypharr-dfs')).toBe(true);
    const name = pod.metadata.name ?? '';
    const read = await kubectlOk(['exec', '-n', 'media', name, '--', 'sh', '-c', 'cat /mnt/dfs/hello.txt; stat /mnt/dfs/hello.txt']);
    timings.consumerFirstRead = Date.now() - started;
    expect(read).toMatch(/^hello from nlink0fs\n/);
    expect(read).toMatch(/Links: 1\b/);
    // The field notes' Sonarr check: a symlink in the app's own volume into the shared tree.
    const link = await kubectlOk(['exec', '-n', 'media', name, '--', 'sh', '-c', 'ln -sf /mnt/dfs/hello.txt /library/hello.txt && cat /library/hello.txt && stat -L -c %h /library/hello.txt']);
    expect(link).toBe('hello from nlink0fs\n1\n');
    // Read-only, as injected.
    const write = await node.kubectl(['exec', '-n', 'media', name, '--', 'sh', '-c', 'echo x > /mnt/dfs/new.txt']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
  }, 400_000);
});
