// The three release images, built here from the repository's Dockerfiles (test/images/build.sh)
// and run with podman as their pods run them: the smbd sidecar exactly as the webhook injects it,
// serving the nlink-0 FUSE fixture to a real smbclient; the webhook as its Deployment runs it,
// answering a real AdmissionReview over TLS; the mounter's script and mount.cifs where the
// DaemonSet expects them. Mounting CIFS for real is the VM suite's.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { reviewAdmission } from '../../lib/admission.js';
import { configSchema, defaultConfig, type Config } from '../../lib/config.js';
import { DEFAULT_ENTRY } from '../../lib/entry.js';
import {
  EPISODE_PATH,
  FUSE_HINT,
  HELLO_TEXT,
  NFO_TEXT,
  canMountFuse,
  cleanupAll,
  episodeBytes,
  mountFixture,
  tempDir,
  type Fixture,
} from '../../shim/test/support.js';
import { admissionReviewFor, loadPod } from '../support/fixtures.js';
import { needs } from '../support/prereq.js';
import { localCertificates } from '../support/tls.js';
import {
  IMAGE_TOOLS_HINT,
  REPO_ROOT,
  buildImages,
  containerFlags,
  emptyDir,
  imageToolsMissing,
  podmanOk,
  runOnce,
  shellIn,
  start,
  stopAll,
  waitUntil,
  type BuiltImage,
  type K8sContainer,
  type Running,
} from './podman.js';

const missing = imageToolsMissing();
const ok =
  needs(`container tools (${missing.join(', ')})`, missing.length === 0, IMAGE_TOOLS_HINT) &&
  needs('a FUSE mount for the nlink0fs fixture', canMountFuse(), FUSE_HINT);

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let images = new Map<string, BuiltImage>();
const image = (name: string): string => images.get(name)!.tag;

afterAll(async () => {
  await stopAll();
  await cleanupAll();
});

/** The source pod after the webhook's patch, under a config. */
function injectedSource(config: Config): { containers: K8sContainer[]; initContainers: K8sContainer[] } {
  const pod = loadPod('decypharr-source');
  const result = reviewAdmission(admissionReviewFor(pod), DEFAULT_ENTRY, config);
  if (result.kind !== 'response' || result.review.response.patch === undefined) throw new Error('the webhook did not patch the source pod');
  const ops = JSON.parse(Buffer.from(result.review.response.patch, 'base64').toString('utf8'));
  const out = jsonpatch.applyPatch(pod, ops, true, false).newDocument as { spec: { containers: K8sContainer[]; initContainers?: K8sContainer[] } };
  return { containers: out.spec.containers, initContainers: out.spec.initContainers ?? [] };
}

/** smbclient in the pod's network namespace, with a config and state of its own. */
async function smbclient(pod: Running, command: string): Promise<{ code: number | null; out: string }> {
  const dir = tempDir('smbclient');
  const conf = join(dir, 'client.conf');
  writeFileSync(conf, ['[global]', `lock directory = ${dir}`, `state directory = ${dir}`, `cache directory = ${dir}`, `private dir = ${dir}`, ''].join('\n'));
  const r = await pod.inNetns('smbclient', ['//127.0.0.1/dfs', '-N', '-s', conf, '-c', command]);
  return { code: r.code, out: r.stdout + r.stderr };
}

const CAP_BITS: Record<string, number> = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, KILL: 5, SETGID: 6, SETUID: 7, NET_BIND_SERVICE: 10, SYS_ADMIN: 21 };
const capMask = (caps: readonly string[]): bigint => caps.reduce((m, c) => m | (1n << BigInt(CAP_BITS[c]!)), 0n);
const capEff = (status: string): bigint => BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? 'x'}`);

describe.runIf(ok)('release images', () => {
  beforeAll(async () => {
    images = await buildImages(['webhook', 'smbd', 'mounter']);
  }, 1_800_000);

  it('are tagged as a release publishes them: ghcr.io/dfs-injector/NAME:VERSION', () => {
    expect([...images.values()].map((i) => i.tag).sort()).toEqual(
      ['dfs-injector', 'mounter', 'smbd'].map((n) => `ghcr.io/dfs-injector/${n}:${VERSION}`),
    );
  });

  // The table in docs/images.md is what a user reads before pulling; a change that moves an
  // image's size by more than a tenth (a new dependency, a lost prune) must update it.
  it.each(['webhook', 'smbd', 'mounter'])('%s is the size docs/images.md records, within a tenth', (name) => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'images.md'), 'utf8');
    const recorded = new RegExp(`^\\| ${name} \\| (\\d+) MB \\|`, 'm').exec(doc)?.[1];
    expect(recorded, `docs/images.md has no size row for ${name}`).toBeDefined();
    const built = images.get(name)!.size / 1e6;
    expect(Math.abs(built - Number(recorded)) / built, `${name} is ${built.toFixed(0)} MB; docs/images.md says ${recorded} MB`).toBeLessThanOrEqual(0.1);
  });

  it.each(['webhook', 'smbd', 'mounter'])('%s carries no compiler, package cache, npm cache or test file', async (name) => {
    const r = await shellIn(
      image(name),
      [
        'for c in cc gcc g++ make musl-gcc ld tsc; do command -v "$c"; done',
        // apt's empty lock files may stay; package lists and downloaded packages may not.
        'find /var/lib/apt/lists /var/cache/apt -type f ! -name lock',
        // Dependencies are shipped as published (zod and pino carry their own tests); none of
        // this project's tests, and no npm cache.
        'find / -xdev -path /app/node_modules -prune -o \\( -name "*.test.*" -o -name "*.deb" -o -name ".npm" -o -name "_cacache" \\) -print',
        // The webhook's own source maps are removed; its sources are not in the image at all.
        'find /app/dist -name "*.map" -o -name "*.ts" ! -name "*.d.ts" 2>/dev/null',
        'ls -d /app/node_modules/typescript /app/node_modules/vitest /src 2>/dev/null',
      ].join('; '),
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('');
  });
});

describe.runIf(ok)('the smbd sidecar image, as the webhook injects it', () => {
  let fixture: Fixture;
  let sidecar: K8sContainer;
  let pod: Running;
  let volumes: Record<string, string>;

  beforeAll(async () => {
    images = images.size > 0 ? images : await buildImages(['webhook', 'smbd', 'mounter']);
    fixture = await mountFixture();
    sidecar = injectedSource(defaultConfig).containers.find((c) => c.name === 'dfs-smbd')!;
    volumes = { 'dfs-injector-source': fixture.mnt, 'dfs-injector-smbd-state': emptyDir('smbd-state') };
    pod = await start(sidecar.image, containerFlags(sidecar, volumes));
    await waitUntil(pod, 'smbd to answer on 127.0.0.1:445 in the pod', async () => (await smbclient(pod, 'ls')).code === 0);
  }, 1_800_000);

  it('runs the image the webhook names, with LD_PRELOAD, a read-only root and only three capabilities', async () => {
    expect(sidecar.image).toBe(image('smbd'));
    expect(sidecar.env).toContainEqual({ name: 'LD_PRELOAD', value: '/usr/local/lib/dfs/fix_nlink.so' });
    expect(sidecar.securityContext).toMatchObject({ readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SETGID', 'SETUID'] } });
    // smbd (PID 1 after the entrypoint's exec) holds exactly those capabilities.
    const status = await pod.exec(['cat', '/proc/1/status']);
    expect(capEff(status.stdout)).toBe(capMask(['NET_BIND_SERVICE', 'SETGID', 'SETUID']));
    const write = await pod.exec(['sh', '-c', 'echo x >/usr/local/dfs-probe']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
    // Nothing smbd wanted to write was refused.
    expect(await pod.logs()).not.toMatch(/Read-only file system|Permission denied|NT_STATUS_ACCESS_DENIED|Failed to create|mkdir failed/);
  });

  // Each of the three is needed: without NET_BIND_SERVICE smbd cannot bind 445, without SETGID
  // it cannot drop its groups, without SETUID it cannot become the guest account for a tree.
  it.each(['NET_BIND_SERVICE', 'SETGID', 'SETUID'])('cannot serve the share without %s', async (cap) => {
    const fewer = { ...sidecar, securityContext: { ...sidecar.securityContext, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SETGID', 'SETUID'].filter((c) => c !== cap) } } };
    const other = await start(sidecar.image, containerFlags(fewer, { ...volumes, 'dfs-injector-smbd-state': emptyDir(`state-no-${cap}`) }));
    try {
      // Either smbd exits, or it runs and refuses the tree connect; give it the time a start takes.
      let served = false;
      for (let i = 0; i < 20 && !served; i++) {
        const state = (await podmanOk(['inspect', '--format', '{{.State.Status}}', other.name])).stdout.trim();
        if (state !== 'running') break;
        served = (await smbclient(other, 'get hello.txt /dev/null')).code === 0;
        if (!served) await new Promise((r) => setTimeout(r, 250));
      }
      expect(served).toBe(false);
    } finally {
      await other.stop();
    }
  });

  it('refuses the tree connect while the share path is not the FUSE mount (the bare volume), with the same read-only root and capabilities', async () => {
    const bare = await start(sidecar.image, containerFlags(sidecar, { 'dfs-injector-source': emptyDir('bare-source'), 'dfs-injector-smbd-state': emptyDir('smbd-state-bare') }));
    try {
      let r = await smbclient(bare, 'ls');
      for (let i = 0; i < 40 && !r.out.includes('tree connect failed'); i++) {
        await new Promise((res) => setTimeout(res, 250));
        r = await smbclient(bare, 'ls');
      }
      expect(r.code).not.toBe(0);
      expect(r.out).toContain('tree connect failed: NT_STATUS_ACCESS_DENIED');
      const logs = await bare.logs();
      expect(logs).toMatch(/dfs-smbd-ready: refusing a tree connect to \/mnt\/dfs: \/mnt\/dfs is a \S+ mount, not fuse\* \(DFS_READY_FSTYPE\): the FUSE program has not mounted it yet/);
      expect(logs).toContain('root preexec gave 1 - failing connection');
      const conf = await bare.exec(['testparm', '-s', '--section-name=dfs', '--parameter-name=root preexec', '/run/dfs-smbd/smb.conf']);
      expect(conf.stdout.trim()).toBe('/bin/sh /usr/local/bin/dfs-smbd-ready tree-connect');
    } finally {
      await bare.stop();
    }
  });

  it('serves every file of the nlink-0 FUSE mount, byte for byte, through the shim', async () => {
    const list = await smbclient(pod, 'recurse; ls');
    expect(list.code, list.out).toBe(0);
    for (const name of ['hello.txt', '__all__', 'Show S01E01', 'episode.mkv', 'episode.nfo']) expect(list.out).toContain(name);
    const dir = tempDir('get');
    chmodSync(dir, 0o777);
    const get = await smbclient(
      pod,
      [`get "${EPISODE_PATH}" "${dir}/episode.mkv"`, `get "__all__/Show S01E01/episode.nfo" "${dir}/episode.nfo"`, `get hello.txt "${dir}/hello.txt"`].join('; '),
    );
    expect(get.code, get.out).toBe(0);
    expect(readFileSync(join(dir, 'episode.mkv')).equals(episodeBytes())).toBe(true);
    expect(readFileSync(join(dir, 'episode.nfo'), 'utf8')).toBe(NFO_TEXT);
    expect(readFileSync(join(dir, 'hello.txt'), 'utf8')).toBe(HELLO_TEXT);
  });

  it('is ready, and its readiness check reports that nlink 0 was seen and the shim is loaded', async () => {
    const [command, ...args] = (sidecar as unknown as { readinessProbe: { exec: { command: string[] } } }).readinessProbe.exec.command;
    const r = await pod.exec([command!, ...args]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ready: \/mnt\/dfs is mounted \(fuse\.nlink0fs\) and readable/);
    expect(r.stdout).toMatch(/^nlink0: seen \(shim marker \/run\/dfs-smbd\/shim\/nlink0-seen/m);
    expect(r.stdout).toMatch(/^smbd: pid \d+, nlink shim loaded$/m);
  });

  it('renders a smb.conf that its own Samba reads without a warning, with the safety settings pinned', async () => {
    const all = await pod.exec(['testparm', '-s', '/run/dfs-smbd/smb.conf']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr).not.toMatch(/unknown parameter|ignoring|deprecated|error/i);
    const param = async (name: string, section?: string): Promise<string> => {
      const args = ['testparm', '-s', `--parameter-name=${name}`, ...(section !== undefined ? [`--section-name=${section}`] : []), '/run/dfs-smbd/smb.conf'];
      return (await pod.exec(args)).stdout.trim();
    };
    expect(await param('wide links', 'dfs')).toBe('No');
    expect(await param('allow insecure wide links')).toBe('No');
    expect(await param('read only', 'dfs')).toBe('Yes');
    expect(await param('guest only', 'dfs')).toBe('Yes');
    expect(await param('server min protocol')).toMatch(/^SMB3(_11)?$/);
    expect(await param('ntlm auth')).toBe('ntlmv2-only');
    expect(await param('smb1 unix extensions')).toBe('No');
    expect(await param('smb3 unix extensions')).toBe('No');
    expect(await param('host msdfs')).toBe('No');
  });

  it('exits with status 64 naming a bad variable, before starting smbd', async () => {
    const r = await runOnce(image('smbd'), [], [...containerFlags(sidecar, volumes), '--env', 'DFS_SHARE_NAME=global']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("dfs-smbd-entrypoint: invalid DFS_SHARE_NAME='global': must not be a Samba special section");
    expect(r.stdout).not.toContain('serving');
  });

  it('shim.mode init: the init container copies the shims and the readiness script from the image\'s own paths', async () => {
    const config = configSchema.parse({ source: { shim: { mode: 'init' } } });
    const injected = injectedSource(config);
    const init = injected.initContainers.find((c) => c.name === 'dfs-shim-install')!;
    const shimDir = emptyDir('shim');
    const r = await runOnce(init.image, [], containerFlags(init, { 'dfs-injector-shim': shimDir }));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The copies are the image's files, byte for byte.
    for (const [copy, original] of [
      ['fix_nlink.so', '/usr/local/lib/dfs/glibc/fix_nlink.so'],
      ['dfs-smbd-ready', '/usr/local/bin/dfs-smbd-ready'],
    ] as const) {
      const inImage = await shellIn(image('smbd'), `sha256sum ${original}`);
      const copied = await runOnce(image('smbd'), ['-c', `sha256sum /copy/${copy}`], ['--entrypoint', '/bin/sh', '--volume', `${shimDir}:/copy:ro`]);
      expect(copied.stdout.split(' ')[0]).toBe(inImage.stdout.split(' ')[0]);
    }
    // Every shim the docs point at is in the image: glibc (also the default) and musl.
    const files = await shellIn(image('smbd'), 'ls /usr/local/lib/dfs/fix_nlink.so /usr/local/lib/dfs/glibc/fix_nlink.so /usr/local/lib/dfs/musl/fix_nlink.so');
    expect(files.code, files.stderr).toBe(0);

    // The sidecar of mode init, with this image standing in for a Samba image of the user's own:
    // it preloads the copy and runs the copied readiness script.
    const sidecarInit = injected.containers.find((c) => c.name === 'dfs-smbd')!;
    const podInit = await start(
      sidecarInit.image,
      containerFlags(sidecarInit, { ...volumes, 'dfs-injector-smbd-state': emptyDir('smbd-state-init'), 'dfs-injector-shim': shimDir }),
    );
    try {
      await waitUntil(podInit, 'smbd (mode init) to answer', async () => (await smbclient(podInit, 'ls')).code === 0);
      const get = await smbclient(podInit, `get "${EPISODE_PATH}" /dev/null`);
      expect(get.code, get.out).toBe(0);
      const readiness = (sidecarInit as unknown as { readinessProbe: { exec: { command: string[] } } }).readinessProbe.exec.command;
      expect(readiness).toEqual(['sh', '/dfs-shim/dfs-smbd-ready']);
      const ready = await podInit.exec(readiness);
      expect(ready.code, ready.stdout).toBe(0);
      expect(ready.stdout).toMatch(/^smbd: pid \d+, nlink shim loaded$/m);
    } finally {
      await podInit.stop();
    }
  });
});

describe.runIf(ok)('the webhook image, as its Deployment runs it', () => {
  let pod: Running;
  let caFile: string;

  beforeAll(async () => {
    images = images.size > 0 ? images : await buildImages(['webhook', 'smbd', 'mounter']);
    const certs = await localCertificates();
    // The Deployment's tls emptyDir, as `serve --tls-secret` leaves it; the kubelet gives the pod's
    // fsGroup read access, which mode 0644 stands in for here.
    const tls = emptyDir('tls');
    writeFileSync(join(tls, 'tls.crt'), certs.tlsCert, { mode: 0o644 });
    writeFileSync(join(tls, 'tls.key'), certs.tlsKey, { mode: 0o644 });
    caFile = join(tempDir('ca'), 'ca.crt');
    writeFileSync(caFile, certs.caCert);
    const configDir = emptyDir('config');
    writeFileSync(join(configDir, 'config.yaml'), readFileSync(join(REPO_ROOT, 'manifests', 'base', 'config.yaml')), { mode: 0o644 });

    const deployment = parse(readFileSync(join(REPO_ROOT, 'manifests', 'base', 'deployment.yaml'), 'utf8'));
    const spec = deployment.spec.template.spec;
    const c = spec.containers[0] as K8sContainer & { args: string[] };
    // The Deployment's args without --tls-secret and its companions: those need an API server.
    const args: string[] = [];
    for (let i = 0; i < c.args.length; i++) {
      if (['--tls-secret', '--webhook-config', '--namespace'].includes(c.args[i]!)) i++;
      else args.push(c.args[i]!);
    }
    const flags = containerFlags({ ...c, env: [] }, { config: configDir, tls, tmp: emptyDir('tmp') }, spec.securityContext);
    pod = await start(c.image, flags, args);
    await waitUntil(pod, 'the webhook to be ready', async () => (await pod.inNetns('curl', ['-fsS', 'http://127.0.0.1:8080/readyz'])).code === 0);
  }, 1_800_000);

  it('runs as UID 65532 with a read-only root filesystem and no capabilities', async () => {
    const inspect = await podmanOk(['image', 'inspect', '--format', '{{.Config.User}}', image('webhook')]);
    expect(inspect.stdout.trim()).toBe('65532:65532');
    const status = await pod.exec(['cat', '/proc/1/status']);
    expect(status.stdout).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    expect(capEff(status.stdout)).toBe(0n);
    const write = await pod.exec(['node', '-e', 'require("fs").writeFileSync("/app/probe", "x")']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/EROFS|read-only file system/i);
  });

  it('answers /readyz and a real AdmissionReview over TLS with the certificate from the mounted directory', async () => {
    const ready = await pod.inNetns('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:8080/readyz']);
    expect(ready.stdout).toBe('200');
    const body = join(tempDir('review'), 'review.json');
    writeFileSync(body, JSON.stringify(admissionReviewFor(loadPod('sonarr'))));
    const r = await pod.inNetns('curl', [
      '-sS', '--fail-with-body', '--cacert', caFile,
      '--resolve', 'dfs-injector.dfs-system.svc:8443:127.0.0.1',
      '-H', 'Content-Type: application/json', '--data-binary', `@${body}`,
      'https://dfs-injector.dfs-system.svc:8443/mutate',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const review = JSON.parse(r.stdout) as { response: { allowed: boolean; patch?: string } };
    expect(review.response.allowed).toBe(true);
    const ops = JSON.parse(Buffer.from(review.response.patch!, 'base64').toString('utf8')) as { path: string }[];
    expect(ops.map((o) => o.path)).toContain('/metadata/annotations/dfs-injector.io~1status');
    expect(await pod.logs()).not.toMatch(/EROFS|EACCES/);
  });

  it('--version prints package.json\'s version', async () => {
    const r = await runOnce(image('webhook'), ['--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${VERSION}\n`);
  });

  it('runs the Node.js release CI tests for the line its Dockerfile names', async () => {
    const line = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'))?.[1];
    const tested = readFileSync(join(REPO_ROOT, 'test', 'tools', 'node-versions'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${line}.`));
    expect(tested, `test/tools/node-versions has no Node.js ${line} release`).toBeDefined();
    const r = await runOnce(image('webhook'), ['--version'], ['--entrypoint', 'node']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`v${tested}\n`);
  });
});

describe.runIf(ok)('the mounter image, as its DaemonSet runs it', () => {
  const daemonset = parse(readFileSync(join(REPO_ROOT, 'manifests', 'mounter', 'daemonset.yaml'), 'utf8'));
  const c = daemonset.spec.template.spec.containers[0] as K8sContainer & { readinessProbe: { exec: { command: string[] } } };

  beforeAll(async () => {
    images = images.size > 0 ? images : await buildImages(['webhook', 'smbd', 'mounter']);
  }, 1_800_000);

  it('has the script where the DaemonSet runs it, and mount.cifs and the tools it calls on the PATH', async () => {
    expect(c.command).toEqual(['/bin/sh', '/opt/dfs-mounter/dfs-mounter.sh']);
    const r = await shellIn(
      image('mounter'),
      'stat -c "%a %U" /opt/dfs-mounter/dfs-mounter.sh; for t in mount.cifs umount getent awk stat date sleep mv cat; do command -v "$t" >/dev/null || echo "missing $t"; done; dpkg-query -W -f "\\${Version}\\n" cifs-utils',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^555 root\n/);
    expect(r.stdout).not.toContain('missing');
    expect(r.stdout).toMatch(/^2:7\.\d/m);
    // The image's copy is the repository's script (the ConfigMap's copy shadows it in a cluster).
    const copy = await shellIn(image('mounter'), 'cat /opt/dfs-mounter/dfs-mounter.sh');
    expect(copy.stdout).toBe(readFileSync(join(REPO_ROOT, 'manifests', 'mounter', 'dfs-mounter.sh'), 'utf8'));
  });

  it('runs its loop under the image\'s /bin/sh: a failed mount.cifs is logged and retried, and SIGTERM ends it at once', async () => {
    // Nothing answers SMB in the container's own network namespace (and this kernel may lack
    // CIFS): mount.cifs fails either way, which is the path this checks.
    const volumes = { dfs: emptyDir('dfs-loop'), script: join(REPO_ROOT, 'manifests', 'mounter'), run: emptyDir('run-loop') };
    const flags = containerFlags({ ...c, volumeMounts: c.volumeMounts!.filter((m) => m.name !== 'script') }, volumes);
    const mounter = await start(image('mounter'), [...flags, '--env', 'DFS_SMB_ADDRESS=127.0.0.1', '--env', 'DFS_BACKOFF_MAX=2']);
    try {
      await waitUntil(mounter, 'a failed mount to be retried', async () => (await mounter.logs()).includes('retrying in'));
      expect(await mounter.logs()).toMatch(/dfs-mounter: mounting \/\/127\.0\.0\.1\/dfs at \/mnt\/decypharr-dfs[\s\S]*dfs-mounter: mount of \/\/127\.0\.0\.1\/dfs failed with status \d+/);
      const started = Date.now();
      await podmanOk(['stop', '--time', '10', mounter.name]);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', mounter.name])).stdout.trim()).toBe('0');
      expect(await mounter.logs()).toContain('dfs-mounter: received SIGTERM');
    } finally {
      await mounter.stop();
    }
  });

  it('check-ready fails with its message when nothing is mounted', async () => {
    const volumes = { dfs: emptyDir('dfs'), script: join(REPO_ROOT, 'manifests', 'mounter'), run: emptyDir('run') };
    // The readiness probe's command, in a container with the DaemonSet's env and mounts; the
    // image's own copy of the script is used (not the ConfigMap's).
    const flags = containerFlags({ ...c, volumeMounts: c.volumeMounts!.filter((m) => m.name !== 'script'), command: c.readinessProbe.exec.command }, volumes);
    const r = await runOnce(image('mounter'), [], flags);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not ready: /run/dfs-mounter/ready is missing: the share is not mounted or failed its last health check');
  });
});
