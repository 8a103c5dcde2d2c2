// The test node itself (test/node/node.ts): a kubelet in a VM with Debian's kernel registers
// with the control plane in the test's network namespace, turns Ready, runs pods from images
// imported into containerd, and the API server reaches it for exec and logs, and pods through
// Services. What every data-path scenario stands on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../support/prereq.js';
import { waitFor, type KubeObject } from '../e2e/harness.js';
import { findNodeArtifacts, NODE_NAME, startNode, type TestNode } from './node.js';

const found = findNodeArtifacts();

interface PodStatus {
  phase?: string;
  podIP?: string;
  conditions?: { type: string; status: string }[];
  containerStatuses?: { name: string; ready: boolean; restartCount: number; state?: Record<string, unknown> }[];
}

function toolboxPod(name: string, command: string, extra: Record<string, unknown> = {}, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'node-test', labels },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: 'localhost/dfs-toolbox:1',
          // The image was imported into containerd at boot; no registry is reachable.
          imagePullPolicy: 'Never',
          command: ['/bin/sh', '-c', command],
          ...extra,
        },
      ],
    },
  };
}

describe.skipIf(!needs('a test node (QEMU VM with kubelet and containerd)', found.available, found.available ? '' : found.hint))(
  'a real node',
  () => {
    let node: TestNode;

    beforeAll(async () => {
      if (!found.available) return;
      node = await startNode(found.artifacts);
      const t = node.timings;
      process.stderr.write(
        `test node: control plane ${t.controlPlane} ms, node init done ${t.nodeInit} ms, node Ready ${t.nodeReady} ms, ` +
          `CoreDNS ready ${t.dnsReady} ms after start\n`,
      );
      await node.cp.createNamespace('node-test');
    }, 600_000);

    afterAll(async () => {
      await node?.stop();
    }, 60_000);

    async function runningPod(pod: KubeObject, timeoutMs = 180_000): Promise<PodStatus> {
      const created = Date.now();
      await node.cp.client.create(pod);
      const name = pod.metadata?.name ?? '';
      const status = await waitFor(
        `pod ${name} Ready`,
        async () => {
          const p = await node.cp.client.get('v1', 'Pod', name, 'node-test');
          const s = p?.status as PodStatus | undefined;
          return s?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true ? s : undefined;
        },
        { timeoutMs, intervalMs: 500 },
      ).catch(async (e: unknown) => {
        const events = await node.kubectl(['get', 'events', '-n', 'node-test', '--sort-by=.lastTimestamp']);
        throw new Error(`${e instanceof Error ? e.message : String(e)}\nevents:\n${events.stdout}\nkubelet:\n${node.logTail('kubelet', 30)}`);
      });
      process.stderr.write(`test node: pod ${name} Ready after ${Date.now() - created} ms\n`);
      return status;
    }

    it('registers the node, which turns Ready with the kernel, runtime and kubelet it was built from', async () => {
      const n = await node.cp.client.get('v1', 'Node', NODE_NAME);
      const info = (n?.status as { nodeInfo?: Record<string, string> } | undefined)?.nodeInfo ?? {};
      expect(info.kubeletVersion).toBe(node.cp.versions.kubernetes);
      expect(info.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.7\./);
      expect(info.kernelVersion).toMatch(/\+deb13-amd64$/);
      expect(info.osImage).toMatch(/Debian GNU\/Linux 13/);
      // cgroup v2 and a shared root: what the kubelet and mount propagation rely on.
      const r = await node.exec('stat -f -c %T /sys/fs/cgroup; findmnt -n -o PROPAGATION /');
      expect(r.stdout.split('\n').slice(0, 2)).toEqual(['cgroup2fs', 'shared']);
    }, 60_000);

    it('runs a pod from an image imported into containerd, and kubectl exec and logs reach it', async () => {
      const status = await runningPod(toolboxPod('toolbox', 'echo started; exec sleep 100000'));
      expect(status.podIP).toMatch(/^10\.244\.0\.\d+$/);
      const exec = await node.kubectl(['exec', '-n', 'node-test', 'toolbox', '--', 'sh', '-c', 'echo "hello from $(hostname)"; id -u']);
      expect(exec.stderr).toBe('');
      expect(exec.stdout).toBe('hello from toolbox\n0\n');
      const logs = await node.kubectl(['logs', '-n', 'node-test', 'toolbox']);
      expect(logs.stdout).toBe('started\n');
    }, 240_000);

    it('routes Service traffic: the API server to a pod through a ClusterIP, and a pod to the API server', async () => {
      await runningPod(
        toolboxPod(
          'web',
          'mkdir -p /www && echo served-by-web >/www/index.html && exec httpd -f -p 8080 -h /www',
          { ports: [{ containerPort: 8080 }] },
          { app: 'web' },
        ),
      );
      await node.cp.client.create({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'node-test' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
      });
      // The API server's service proxy resolves the Service to its endpoint and connects from
      // the host's namespace, across the VM's routing.
      const body = await waitFor(
        'GET through the API server service proxy',
        async () => {
          const r = await node.cp.client.request({ path: '/api/v1/namespaces/node-test/services/web:80/proxy/', timeoutMs: 5_000 });
          return r.status === 200 ? r.body : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(body).toBe('served-by-web\n');
      // From a pod: the ClusterIP of `web` (kube-proxy's rules in the VM) and of `kubernetes`.
      const svc = await node.cp.client.get('v1', 'Service', 'web', 'node-test');
      const clusterIP = (svc?.spec as { clusterIP?: string } | undefined)?.clusterIP ?? '';
      // The service proxy above dials the endpoint itself; the ClusterIP needs kube-proxy to have
      // synced the new Service into its rules, which it does on its own schedule: retry until then.
      // HTTP by hand over nc, so the status line is checked too.
      const fromPod = await waitFor(
        'the ClusterIP of web from a pod',
        async () => {
          const r = await node.kubectl([
            'exec', '-n', 'node-test', 'toolbox', '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${clusterIP} 80`,
          ]);
          return r.stdout.includes('served-by-web') ? r.stdout : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 1_000 },
      ).catch(async (e: unknown) => {
        // What kube-proxy programmed and what the pod sees, to tell a rule from a route problem.
        const podIP = ((await node.cp.client.get('v1', 'Pod', 'web', 'node-test'))?.status as { podIP?: string } | undefined)?.podIP ?? '';
        const inPod = await node.kubectl([
          'exec', '-n', 'node-test', 'toolbox', '--', 'sh', '-c',
          `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${podIP} 8080; echo "direct: $?"; ip route`,
        ]);
        const rules = await node.exec(`iptables-save -t nat | grep -e web -e KUBE-SERVICES -e POSTROUTING; conntrack -L 2>&1 | grep -e ${clusterIP} -e ${podIP}`);
        throw new Error(
          `${String(e)}\nfrom the pod (exit ${inPod.code}):\n${inPod.stdout}${inPod.stderr}\non the node:\n${rules.stdout}${rules.stderr}`,
          { cause: e },
        );
      });
      expect(fromPod).toMatch(/^HTTP\/1\.[01] 200 OK\r\n/);
      expect(fromPod).toMatch(/\r\n\r\nserved-by-web\n$/);
      // BusyBox's TLS cannot talk to the API server (ECDSA): plain HTTP to its TLS port gets
      // Go's own answer, which proves the connection reached the API server.
      const toApiServer = await node.kubectl([
        'exec', '-n', 'node-test', 'toolbox', '--', 'sh', '-c',
        `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.0.0.1 443`,
      ]);
      expect(toApiServer.stdout).toContain('Client sent an HTTP request to an HTTPS server.');
      // Cluster DNS: the Service's name resolves to its ClusterIP, from a pod and from a
      // hostNetwork pod with ClusterFirstWithHostNet (the mounter's setting).
      const lookup = await node.kubectl(['exec', '-n', 'node-test', 'toolbox', '--', 'nslookup', 'web.node-test.svc.cluster.local']);
      expect(lookup.stdout).toContain(`Address: ${clusterIP}`);
      const hostNet = toolboxPod('hostnet', 'exec sleep 100000');
      Object.assign(hostNet.spec as object, { hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' });
      await runningPod(hostNet);
      const fromHost = await node.kubectl(['exec', '-n', 'node-test', 'hostnet', '--', 'nslookup', 'web.node-test.svc.cluster.local']);
      expect(fromHost.stdout).toContain(`Address: ${clusterIP}`);
    }, 240_000);

    // The design's first question. The operator whose field notes this project grew from ran smbd
    // inside the FUSE program's container because "a sidecar can never see the FUSE mount"; the
    // source injection rests on the opposite: an emptyDir mounted Bidirectional in the privileged
    // FUSE container and HostToContainer in the sidecar carries the mount across.
    function fusePod(name: string, mountPoint: string, beforeMount: string): KubeObject {
      const volumeMount = { name: 'dfs', mountPath: '/mnt/dfs' };
      return {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'node-test' },
        spec: {
          terminationGracePeriodSeconds: 1,
          volumes: [{ name: 'dfs', emptyDir: {} }],
          containers: [
            {
              name: 'fuse',
              image: 'localhost/dfs-toolbox:1',
              imagePullPolicy: 'Never',
              securityContext: { privileged: true },
              // PID 1 with a TERM trap, so the test can end the container (a shell ignores TERM
              // otherwise). The FUSE daemon dies with the container, as on a crash: no unmount.
              command: ['/bin/sh', '-c', `trap 'exit 1' TERM; ${beforeMount} ${fuseMount(mountPoint)} || exit 2; while :; do sleep 1; done`],
              volumeMounts: [{ ...volumeMount, mountPropagation: 'Bidirectional' }],
            },
            {
              name: 'reader',
              image: 'localhost/dfs-toolbox:1',
              imagePullPolicy: 'Never',
              command: ['/bin/sh', '-c', 'exec sleep 1000000'],
              volumeMounts: [{ ...volumeMount, readOnly: true, mountPropagation: 'HostToContainer' }],
            },
          ],
        },
      };
    }
    const fuseMount = (at: string): string => `nlink0fs -o allow_other,fsname=nlink0fs,subtype=nlink0fs ${at}`;
    const inContainer = (pod: string, container: string, script: string): Promise<{ code: number; stdout: string; stderr: string }> =>
      node.kubectl(['exec', '-n', 'node-test', pod, '-c', container, '--', 'sh', '-c', script]);
    const readBack = (at: string): string => `cat ${at}/hello.txt; stat -c "%h %F" ${at}/hello.txt; grep -c " ${at} fuse.nlink0fs " /proc/mounts`;
    async function containerStatus(pod: string, container: string): Promise<NonNullable<PodStatus['containerStatuses']>[number] | undefined> {
      const p = await node.cp.client.get('v1', 'Pod', pod, 'node-test');
      return (p?.status as PodStatus | undefined)?.containerStatuses?.find((c) => c.name === container);
    }

    it('carries a FUSE mount from a privileged Bidirectional container to a HostToContainer sidecar, also after the FUSE program mounts again', async () => {
      await runningPod(fusePod('fuse-source', '/mnt/dfs', ''));
      // 1. The sidecar sees the mount the privileged container made after both had started.
      expect((await inContainer('fuse-source', 'reader', readBack('/mnt/dfs'))).stdout).toBe('hello from nlink0fs\n0 regular file\n1\n');

      // 2. The FUSE program unmounts, starts again and mounts again, inside the same container.
      const remount = await inContainer('fuse-source', 'fuse', `umount /mnt/dfs && ${fuseMount('/mnt/dfs')}`);
      expect(remount.stderr).toBe('');
      expect((await inContainer('fuse-source', 'reader', readBack('/mnt/dfs'))).stdout).toBe('hello from nlink0fs\n0 regular file\n1\n');

      // 3. The FUSE container dies without unmounting (a crash): its dead mount stays on the
      //    emptyDir's own directory on the node, and the kubelet cannot start the container again.
      await inContainer('fuse-source', 'fuse', 'kill -TERM 1');
      const stuck = await waitFor(
        'the restart of the FUSE container to fail',
        async () => {
          const waiting = (await containerStatus('fuse-source', 'fuse'))?.state?.waiting as { reason?: string; message?: string } | undefined;
          return waiting?.reason === 'CreateContainerError' ? waiting : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 1_000 },
      );
      expect(stuck.message).toContain('transport endpoint is not connected');
    }, 400_000);

    it('lets a restarted FUSE container mount again when the mount point is a subdirectory of the shared volume', async () => {
      // The volume's own directory stays a plain directory, so the kubelet can start the
      // container again; the new FUSE process first lazily unmounts its predecessor's dead mount.
      await runningPod(fusePod('fuse-subdir', '/mnt/dfs/fs', 'mkdir -p /mnt/dfs/fs; umount -l /mnt/dfs/fs 2>/dev/null;'));
      expect((await inContainer('fuse-subdir', 'reader', readBack('/mnt/dfs/fs'))).stdout).toBe('hello from nlink0fs\n0 regular file\n1\n');
      const restarted = Date.now();
      await inContainer('fuse-subdir', 'fuse', 'kill -TERM 1');
      const after = await waitFor(
        'the reader reads through the FUSE mount of the restarted container',
        async () => {
          if (((await containerStatus('fuse-subdir', 'fuse'))?.restartCount ?? 0) < 1) return undefined;
          const r = await inContainer('fuse-subdir', 'reader', readBack('/mnt/dfs/fs'));
          return r.code === 0 ? r.stdout : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 1_000 },
      );
      process.stderr.write(`test node: FUSE container crash to a good read in the sidecar: ${Date.now() - restarted} ms\n`);
      expect(after).toBe('hello from nlink0fs\n0 regular file\n1\n');
    }, 400_000);
  },
);
