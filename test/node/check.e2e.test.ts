// `dfs-injector check` on the real node (test/node/node.ts): the data path installed as a user
// installs it (the same kustomizations as data-path.e2e.test.ts: the shipped manifests, a FUSE
// source with st_nlink 0, the mounter's CIFS mount, a consumer), then check run in-process as the
// CLI runs, its runtime steps exec'ing into the real containers over the API server's WebSocket
// exec. Healthy, every step passes; with the FUSE mount gone from the source container, the
// source steps fail; with the source scaled to 0, the right steps fail, with the fix, and exit 1.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as check } from '../../cli/check.js';
import { formatText, type StepResult } from '../../lib/check/index.js';
import { waitFor, writeKubeconfig, type KubeObject } from '../e2e/harness.js';
import { render } from '../manifests/kustomize.js';
import { captureIo } from '../support/cli-io.js';
import { asList, dataPathPrerequisites, isReady, startDataPathNode } from './data-path/setup.js';
import type { TestNode } from './node.js';
import { toolboxDeployment } from './toolbox.js';

const { found, kustomize, ready } = dataPathPrerequisites();

const RUNTIME_STEPS = ['source-fuse-mount', 'source-smbd', 'node-share', 'consumer-mount'];

type Pod = KubeObject & { status?: { phase?: string; conditions?: { type: string; status: string }[] } };

interface Line {
  step: string;
  subject: string;
  status: string;
  reason: string;
  fix?: string;
  troubleshooting?: string;
}
interface Run {
  code: number;
  text: string;
  err: string;
  ms: number;
  results: Line[];
  fixFirst: Line | null;
}

// A consumer that only sleeps: check's consumer-mount step looks into it.
const CONSUMER = toolboxDeployment('consumer', 'media', ['/bin/sh', '-c', 'exec sleep 1000000'], { labels: { 'dfs-injector.io/role': 'consumer' } });

describe.skipIf(!ready)('dfs-injector check on a real node', () => {
  let node: TestNode;
  let forward: ChildProcess | undefined;
  let webhookAddress = '';
  const timings: Record<string, number> = {};

  async function kubectlOk(args: readonly string[], input?: string): Promise<string> {
    const r = await node.kubectl(args, { timeoutMs: 120_000, ...(input !== undefined ? { input } : {}) });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
    return r.stdout;
  }

  async function diagnostics(): Promise<string> {
    const pods = await node.kubectl(['get', 'pods', '-A', '-o', 'wide']);
    return `pods:\n${pods.stdout}\nkubelet:\n${node.logTail('kubelet', 20)}`;
  }

  async function readyPod(namespace: string, labelSelector: string, timeoutMs = 400_000): Promise<Pod> {
    return waitFor(`a Ready pod ${labelSelector} in ${namespace}`, async () => (await node.cp.client.list<Pod>('v1', 'Pod', { namespace, labelSelector })).find(isReady), { timeoutMs, intervalMs: 1_000 }).catch(
      async (e: unknown) => {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await diagnostics()}`);
      },
    );
  }

  /** `kubectl port-forward` to the webhook Service: its ClusterIP answers only inside the node's network. */
  async function forwardWebhook(): Promise<string> {
    const child = spawn(found.available ? found.artifacts.binaries.kubectl : 'kubectl', ['--kubeconfig', node.cp.kubeconfigPath, '-n', 'dfs-system', 'port-forward', '--address', '127.0.0.1', 'svc/dfs-injector', ':443'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    forward = child;
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kubectl port-forward printed no address in 60 s: ${out}`)), 60_000);
      const take = (d: Buffer): void => {
        out += d.toString('utf8');
        const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(`127.0.0.1:${m[1]}`);
        }
      };
      child.stdout?.on('data', take);
      child.stderr?.on('data', take);
      child.once('exit', (code) => reject(new Error(`kubectl port-forward exited (${code}): ${out}`)));
    });
  }

  async function runCheck(kubeconfig: string, extra: readonly string[] = []): Promise<Run> {
    const started = Date.now();
    const io = captureIo({ now: new Date() });
    const code = await check(['--kubeconfig', kubeconfig, '--webhook-address', webhookAddress, '-o', 'json', ...extra], io);
    const ms = Date.now() - started;
    const json = (io.out() === '' ? { results: [], summary: { fixFirst: null } } : JSON.parse(io.out())) as { results: Line[]; summary: { fixFirst: Line | null } };
    // The same report as text, as a user reads it (check's own formatter), for the log and asserts.
    const text = formatText({ results: json.results as StepResult[] });
    return { code, text, err: io.err(), ms, results: json.results, fixFirst: json.summary.fixFirst };
  }

  const lines = (run: Run, step: string): Line[] => run.results.filter((r) => r.step === step);
  const one = (run: Run, step: string): Line => {
    const found = lines(run, step);
    if (found.length !== 1) throw new Error(`expected one ${step} line, got ${found.length}:\n${run.text}`);
    return found[0] as Line;
  };

  beforeAll(async () => {
    if (!found.available) return;
    const started = Date.now();
    node = await startDataPathNode(found.artifacts);
    timings.nodeReady = Date.now() - started;
    // As data-path.e2e.test.ts installs: the default overlay unchanged, then the examples'
    // application side with the nlink0fs fixture as the FUSE source.
    await kubectlOk(['apply', '-f', '-'], asList(render(kustomize!, '.')));
    await waitFor(
      'deployment/dfs-injector with a ready replica and the caBundle patched in',
      async () => {
        const d = await node.cp.client.get('apps/v1', 'Deployment', 'dfs-injector', 'dfs-system');
        const m = await node.cp.client.get('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', 'dfs-injector');
        const hooks = (m?.webhooks as { clientConfig: { caBundle?: string } }[] | undefined) ?? [];
        return ((d?.status as { readyReplicas?: number } | undefined)?.readyReplicas ?? 0) >= 1 && hooks.length > 0 && hooks.every((h) => (h.clientConfig.caBundle ?? '') !== '');
      },
      { timeoutMs: 400_000, intervalMs: 1_000 },
    ).catch(async (e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await diagnostics()}`);
    });
    await kubectlOk(['apply', '-f', '-'], asList(render(kustomize!, '../test/node/data-path')));
    await readyPod('media', 'app.kubernetes.io/name=fuse-source');
    await kubectlOk(['apply', '-f', '-'], asList([CONSUMER]));
    await readyPod('dfs-system', 'app.kubernetes.io/name=dfs-mounter');
    await readyPod('media', 'app.kubernetes.io/name=consumer');
    // Both webhook replicas, or check's deployment step would report one still starting.
    await waitFor('deployment/dfs-injector Available with 2 ready replicas', async () => {
      const d = await node.cp.client.get('apps/v1', 'Deployment', 'dfs-injector', 'dfs-system');
      return (d?.status as { readyReplicas?: number } | undefined)?.readyReplicas === 2;
    }, { timeoutMs: 300_000, intervalMs: 1_000 });
    webhookAddress = await forwardWebhook();
    timings.installed = Date.now() - started;
  }, 1_800_000);

  afterAll(async () => {
    process.stderr.write(`check on a real node, timings (ms since the file started): ${JSON.stringify(timings)}\n`);
    forward?.kill('SIGTERM');
    await node?.stop();
  }, 60_000);

  it('passes every step on the healthy data path, the runtime steps inside the real containers included', async () => {
    // The webhook's own rollout can trail the pods' readiness by a probe period or two.
    const healthy = await waitFor('check to pass', async () => {
      const r = await runCheck(node.cp.kubeconfigPath);
      return r.code === 0 ? r : undefined;
    }, { timeoutMs: 120_000, intervalMs: 5_000 }).catch(async (e: unknown) => {
      const last = await runCheck(node.cp.kubeconfigPath);
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${last.text}\n${last.err}`);
    });
    timings.healthyCheck = healthy.ms;
    process.stderr.write(`healthy check (${healthy.ms} ms):\n${healthy.text}`);
    expect(healthy.results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(one(healthy, 'source-fuse-mount').reason).toBe('fuse.nlink0fs nlink0fs mounted at /mnt/dfs');
    // The fixture reports st_nlink 0; the shipped sidecar preloads the shim, and says so.
    expect(one(healthy, 'source-smbd').reason).toMatch(/^\/mnt\/dfs is mounted \(fuse\.nlink0fs\) and readable .*nlink0 seen .*smbd pid \d+, nlink shim loaded$/);
    expect(one(healthy, 'node-share')).toMatchObject({ subject: 'node dfs-node', reason: expect.stringMatching(/^\/\/10\.0\.0\.\d+\/dfs mounted at \/mnt\/decypharr-dfs \(cifs, ro, options as DFS_MOUNT_OPTIONS asks\); stat \/mnt\/decypharr-dfs answered/) });
    expect(one(healthy, 'consumer-mount')).toMatchObject({ subject: expect.stringMatching(/^pod media\/consumer-\S+ container app$/), reason: expect.stringMatching(/^\/\/10\.0\.0\.\d+\/dfs \(cifs\) at \/mnt\/dfs; stat \/mnt\/dfs answered/) });
    // --no-exec: the object-level steps alone.
    // Retried like the run above: under TCG a mounter readiness probe can miss once (failureThreshold 1).
    const objectsOnly = await waitFor('check --no-exec to pass', async () => {
      const r = await runCheck(node.cp.kubeconfigPath, ['--no-exec']);
      if (r.code !== 0) process.stderr.write(`check --no-exec, exit ${r.code}:\n${r.text}${r.err}`);
      return r.code === 0 ? r : undefined;
    }, { timeoutMs: 90_000, intervalMs: 5_000 });
    expect(objectsOnly.results.map((r) => r.step).filter((s) => RUNTIME_STEPS.includes(s))).toEqual([]);
  }, 300_000);

  it('runs the runtime steps as a user with the shipped roles, exec bound only in dfs-system and media', async () => {
    const user = 'dfs-node-checker';
    const cert = await node.cp.pki.issue({ name: user, commonName: user, usage: 'client' });
    const kubeconfig = join(node.shareDir, `${user}.kubeconfig`);
    await writeKubeconfig(kubeconfig, user, { server: node.cp.server, caPem: node.cp.pki.caPem, certPem: await readFile(cert.cert, 'utf8'), keyPem: await readFile(cert.key, 'utf8') });
    for (const path of ['../../manifests/auditor/clusterrole.yaml', '../../manifests/auditor-check/clusterrole.yaml']) await node.cp.client.applyManifest(await readFile(new URL(path, import.meta.url), 'utf8'));
    const subjects = [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }];
    for (const role of ['dfs-injector-auditor', 'dfs-injector-checker', 'dfs-injector-checker-dry-run']) {
      await node.cp.client.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: `${user}-${role}` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects });
    }
    const noExec = await waitFor('the cluster role bindings to apply', async () => {
      const r = await runCheck(kubeconfig);
      return r.code === 0 && one(r, 'webhook-admission').status === 'pass' ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 2_000 });
    // Without the exec role: every runtime step skipped, saying which role to bind; nothing fails.
    for (const step of RUNTIME_STEPS) for (const l of lines(noExec, step)) expect(l).toMatchObject({ status: 'skip', fix: expect.stringContaining('dfs-injector-checker-exec') });
    for (const namespace of ['dfs-system', 'media']) {
      await node.cp.client.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: `${user}-exec`, namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'dfs-injector-checker-exec' }, subjects });
    }
    const all = await waitFor('the exec role bindings to apply', async () => {
      const r = await runCheck(kubeconfig);
      return r.results.every((l) => l.status === 'pass') ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 2_000 }).catch(async (e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${(await runCheck(kubeconfig)).text}`);
    });
    expect(all.code).toBe(0);
    expect(all.results.filter((r) => RUNTIME_STEPS.includes(r.step))).toHaveLength(4);
  }, 240_000);

  it('fails the source steps when the FUSE mount is gone from the source container, and names its log', async () => {
    const source = (await node.cp.client.list<Pod>('v1', 'Pod', { namespace: 'media', labelSelector: 'app.kubernetes.io/name=fuse-source' }))[0]!;
    const name = source.metadata.name!;
    await kubectlOk(['exec', '-n', 'media', name, '-c', 'fuse', '--', 'umount', '/mnt/dfs']);
    const run = await runCheck(node.cp.kubeconfigPath);
    process.stderr.write(`FUSE unmounted (${run.ms} ms):\n${run.text}`);
    expect(run.code).toBe(1);
    expect(one(run, 'source-fuse-mount')).toMatchObject({
      status: 'fail',
      subject: `pod media/${name} container fuse`,
      reason: expect.stringMatching(/^no FUSE mount at or below \/mnt\/dfs \(on top there: /),
      fix: `kubectl -n media logs ${name} -c fuse; it must mount at /mnt/dfs (the source path) or a directory below it`,
      troubleshooting: 'README, Troubleshooting: "The dfs-smbd sidecar is not Ready, or check finds no FUSE mount in the source container"',
    });
    // The sidecar still sees its copy of the FUSE mount (smbd has it open; the unmount does not
    // reach it), so its readiness (source-sidecar, source-smbd) stays green, and only the look
    // into the source container itself tells.
    expect(run.fixFirst?.step).toBe('source-fuse-mount');
    // Back to a working source: the StatefulSet makes a new pod with a fresh volume.
    await kubectlOk(['delete', 'pod', '-n', 'media', name, '--wait=true']);
    await readyPod('media', 'app.kubernetes.io/name=fuse-source');
  }, 300_000);

  it('a staged outage (source scaled to 0): smb-endpoint is the fix first, the node share and the consumer fail with why, exit 1', async () => {
    await kubectlOk(['scale', '-n', 'media', 'statefulset/fuse-source', '--replicas=0']);
    await waitFor('the source pod gone', async () => (await node.cp.client.list<Pod>('v1', 'Pod', { namespace: 'media', labelSelector: 'app.kubernetes.io/name=fuse-source' })).length === 0, { timeoutMs: 120_000, intervalMs: 1_000 });
    // Right after the pod is gone, a stat may still answer from the client's cache (actimeo=1) or
    // a connection not yet torn down; the CIFS client notices within echo_interval (10 s).
    let last: Run | undefined;
    const run = await waitFor('node-share to fail', async () => {
      last = await runCheck(node.cp.kubeconfigPath);
      process.stderr.write(`outage, exit ${last.code} in ${last.ms} ms: ${last.err}${last.results.filter((l) => l.status !== 'pass').map((l) => `${l.status} ${l.step}: ${l.reason}`).join(' | ')}\n`);
      return lines(last, 'node-share').some((l) => l.status === 'fail') ? last : undefined;
    }, { timeoutMs: 150_000, intervalMs: 5_000 }).catch(async (e: unknown) => {
      const mounter = await node.kubectl(['logs', '-n', 'dfs-system', '-l', 'app.kubernetes.io/name=dfs-mounter', '--tail', '30']);
      const onNode = await node.exec('findmnt -n /mnt/decypharr-dfs; timeout 5 stat /mnt/decypharr-dfs; echo stat $?', 30_000);
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${last?.text ?? ''}\nmounter:\n${mounter.stdout}\nnode:\n${onNode.stdout}${onNode.stderr}\n${await diagnostics()}`);
    });
    timings.outageCheck = run.ms;
    process.stderr.write(`source scaled to 0 (${run.ms} ms):\n${run.text}`);
    expect(run.code).toBe(1);
    expect(one(run, 'source-sidecar')).toMatchObject({ status: 'skip', reason: 'no source pod' });
    expect(one(run, 'smb-endpoint')).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(/^no ready endpoint/),
      fix: expect.stringContaining('start the source pod'),
      troubleshooting: 'README, Troubleshooting: "After the source pod restarts or moves, reads in /mnt/dfs hang or fail"',
    });
    expect(run.fixFirst?.step).toBe('smb-endpoint');
    // The kernel's CIFS client: a stat of the share root blocks until the server is back (stopped
    // by `timeout` inside the mounter), or fails at once once it knows the server is down. On a
    // starved TCG guest the exec itself can outlast --exec-timeout first (seen once at load 10-13):
    // the same blocked mount, reported by the exec's own limit.
    expect(one(run, 'node-share')).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(
        /^(\/\/10\.0\.0\.\d+\/dfs is mounted at \/mnt\/decypharr-dfs, but stat \/mnt\/decypharr-dfs (did not answer within 5 s|failed \(exit \d+: .+\))|the mount probe in dfs-system\/dfs-mounter-\S+ timed out after 10 s: a process in the container is blocked)/,
      ),
      troubleshooting: 'README, Troubleshooting: "After the source pod restarts or moves, reads in /mnt/dfs hang or fail"',
    });
    expect(one(run, 'consumer-mount')).toMatchObject({ status: 'fail', troubleshooting: 'README, Troubleshooting: "After the source pod restarts or moves, reads in /mnt/dfs hang or fail"' });
    // Bounded: every exec gives up after --exec-timeout (10 s), the stat inside after 5 s.
    expect(run.ms).toBeLessThan(60_000);
    // The text report names the fix and the entry, and says what to fix first.
    expect(run.text).toMatch(/^✗ smb-endpoint service media\/dfs-smb: no ready endpoint/m);
    expect(run.text).toMatch(/\. Fix first: smb-endpoint service media\/dfs-smb: kubectl -n media get endpointslices/);
  }, 300_000);
});
