// Which containers check's runtime steps exec in, with which argv, and what it does with pods it
// cannot look into. The exec itself is a recorder that answers with outputs captured on the test
// node; the transport is tested on the real node (test/node/check.e2e.test.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MOUNT_OPTIONS, mountProbe, SIDECAR_READINESS, SOURCE_MOUNTINFO, type CheckPod, type ExecOutcome } from '../lib/check/index.js';
import type { ExecRequest } from './check-exec.js';
import { nodeAndConsumerRuntimeSteps, sourceRuntimeSteps } from './check-runtime.js';

const fixture = (name: string): string => readFileSync(new URL(`../test/fixtures/check-exec/${name}`, import.meta.url), 'utf8');

function recorder(answer: (r: ExecRequest) => ExecOutcome): { exec: (r: ExecRequest, timeoutMs: number) => Promise<ExecOutcome>; calls: { request: ExecRequest; timeoutMs: number }[] } {
  const calls: { request: ExecRequest; timeoutMs: number }[] = [];
  return {
    calls,
    exec: (request, timeoutMs) => {
      calls.push({ request, timeoutMs });
      return Promise.resolve(answer(request));
    },
  };
}

const pod = (name: string, role: 'source' | 'consumer', mounts: string[], nodeName = 'dfs-node', phase = 'Running'): CheckPod => ({ namespace: 'media', name, nodeName, role, phase, ready: true, containers: {}, mounts });
const exited = (stdout: string, code = 0): ExecOutcome => ({ kind: 'exited', code, stdout, stderr: '', truncated: false });
const SHARE = { container: 'mounter', hostPath: '/mnt/decypharr-dfs', shareName: 'dfs', options: DEFAULT_MOUNT_OPTIONS, source: 'daemonset dfs-system/dfs-mounter' };
const ARGS = { sidecar: 'dfs-smbd', execTimeoutSeconds: 10, sample: undefined };

describe('the source runtime steps', () => {
  it('look into the container the status names as the source, and into the sidecar, with the fixed commands', async () => {
    const r = recorder((req) => exited(req.container === 'fuse' ? fixture('source-mountinfo.txt') : fixture('sidecar-ready.txt')));
    const results = await sourceRuntimeSteps(r, [pod('fuse-source-0', 'source', ['fuse:/mnt/dfs:Bidirectional'])], ARGS);
    expect(r.calls).toEqual([
      { request: { namespace: 'media', pod: 'fuse-source-0', container: 'fuse', command: SOURCE_MOUNTINFO }, timeoutMs: 10_000 },
      { request: { namespace: 'media', pod: 'fuse-source-0', container: 'dfs-smbd', command: SIDECAR_READINESS }, timeoutMs: 10_000 },
    ]);
    expect(results.map((x) => `${x.status} ${x.step}`)).toEqual(['pass source-fuse-mount', 'pass source-smbd']);
  });

  it('skip a pod that is not running, and one whose status names no source container, without exec', async () => {
    const r = recorder(() => exited(fixture('sidecar-ready.txt')));
    const results = await sourceRuntimeSteps(r, [pod('a', 'source', ['fuse:/mnt/dfs:Bidirectional'], 'n1', 'Pending'), pod('b', 'source', ['fuse:/mnt/dfs'])], ARGS);
    expect(results.map((x) => `${x.status} ${x.step} ${x.subject}: ${x.reason}`)).toEqual([
      'skip source-fuse-mount pod media/a: pod is Pending: nothing to exec in',
      "skip source-fuse-mount pod media/b: its dfs-injector.io/status annotation names no source container",
      'skip source-smbd pod media/a: pod is Pending: nothing to exec in',
      'pass source-smbd pod media/b container dfs-smbd: /mnt/dfs is mounted (fuse.nlink0fs) and readable (2 entries); nlink0 seen (shim marker /run/dfs-smbd/shim/nlink0-seen: st_nlink 0 seen by pid 194 in stat); smbd pid 1, nlink shim loaded',
    ]);
    expect(r.calls.map((c) => c.request.pod)).toEqual(['b']);
  });
});

describe('the node and consumer runtime steps', () => {
  it('look through the mounter on each node with consumers and into each consumer, the path as an argument', async () => {
    const r = recorder((req) => exited(fixture(req.namespace === 'dfs-system' ? 'mounter-probe.txt' : 'consumer-probe.txt')));
    const results = await nodeAndConsumerRuntimeSteps(r, [pod('sonarr-0', 'consumer', ['sonarr:/mnt/dfs'])], [{ name: 'dfs-mounter-x', nodeName: 'dfs-node', ready: true, running: true }], SHARE, ARGS);
    expect(r.calls.map((c) => c.request)).toEqual([
      { namespace: 'dfs-system', pod: 'dfs-mounter-x', container: 'mounter', command: mountProbe('/mnt/decypharr-dfs', 5) },
      { namespace: 'media', pod: 'sonarr-0', container: 'sonarr', command: mountProbe('/mnt/dfs', 5) },
    ]);
    expect(results.map((x) => `${x.status} ${x.step} ${x.subject}`)).toEqual(['pass node-share node dfs-node', 'pass consumer-mount pod media/sonarr-0 container sonarr']);
  });

  it('say what was left out: a node without a running mounter, consumers beyond --sample, consumers not running', async () => {
    const r = recorder(() => exited(fixture('consumer-probe.txt')));
    const pods = [pod('a', 'consumer', ['app:/mnt/dfs'], 'n1'), pod('b', 'consumer', ['app:/mnt/dfs'], 'n1'), pod('c', 'consumer', ['app:/mnt/dfs'], 'n2', 'Pending')];
    const results = await nodeAndConsumerRuntimeSteps(r, pods, [{ name: 'dfs-mounter-y', nodeName: 'n1', ready: false }], SHARE, { ...ARGS, sample: 1 });
    expect(results.map((x) => `${x.status} ${x.step} ${x.subject}: ${x.reason}`)).toEqual([
      'skip node-share node n1: no running dfs-mounter pod there to look through (see node-mounter)',
      'skip node-share node n2: no running dfs-mounter pod there to look through (see node-mounter)',
      expect.stringMatching(/^pass consumer-mount pod media\/a container app: /),
      'skip consumer-mount : 1 more running consumer pod not looked into (--sample 1)',
      'skip consumer-mount : 1 consumer pod is not running: nothing to exec in',
    ]);
  });
});
