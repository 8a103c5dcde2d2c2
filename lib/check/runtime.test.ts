// The runtime steps' verdicts, on outputs captured on the test node (test/fixtures/check-exec/,
// see its README for how), and on the hostile and broken outputs a cluster can produce.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  checkConsumerMount,
  checkNodeShare,
  checkSourceFuseMount,
  checkSourceSmbd,
  DEFAULT_MOUNT_OPTIONS,
  missingMountOptions,
  mountProbe,
  parseMountinfo,
  parseMountProbe,
  sampleAcrossNodes,
  topMountAt,
  TROUBLESHOOTING,
  type ExecOutcome,
  type ShareExpectation,
} from './index.js';

const fixture = (name: string): string => readFileSync(new URL(`../../test/fixtures/check-exec/${name}`, import.meta.url), 'utf8');
const exited = (stdout: string, code = 0, stderr = ''): ExecOutcome => ({ kind: 'exited', code, stdout, stderr, truncated: false });

const SOURCE = { namespace: 'media', pod: 'fuse-source-0', container: 'fuse', path: '/mnt/dfs' };
const CONSUMER = { namespace: 'media', pod: 'consumer-7c9f-abcde', container: 'app', path: '/mnt/dfs' };
const SHARE: ShareExpectation = { container: 'mounter', hostPath: '/mnt/decypharr-dfs', shareName: 'dfs', options: DEFAULT_MOUNT_OPTIONS, source: 'daemonset dfs-system/dfs-mounter' };

describe('the README troubleshooting entries the steps point at', () => {
  it('each names the start of a symptom in the README table, code marks aside', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Troubleshooting'));
    const symptoms = section
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| symptom'))
      .map((l) => (l.split(' | ')[0] ?? '').slice(2).replaceAll('`', ''));
    for (const entry of Object.values(TROUBLESHOOTING)) {
      const quoted = /^README, Troubleshooting: "(.*)"$/.exec(entry)?.[1] ?? '';
      expect(symptoms.some((s) => s.startsWith(quoted)), entry).toBe(true);
    }
  });

  it('DEFAULT_MOUNT_OPTIONS is the mounter script default', () => {
    const script = readFileSync(new URL('../../manifests/mounter/dfs-mounter.sh', import.meta.url), 'utf8');
    expect(script).toContain(`DEFAULT_OPTIONS='${DEFAULT_MOUNT_OPTIONS}'`);
  });
});

describe('the mount probe command', () => {
  it('passes the path and the time limit as arguments of a fixed script, never inside it', () => {
    const hostile = "/mnt/dfs'; rm -rf / #$(reboot)";
    const argv = mountProbe(hostile, 5);
    expect(argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(argv[2]).toBe(mountProbe('/mnt/dfs', 5)[2]);
    expect(argv.slice(3)).toEqual(['dfs-injector-check', hostile, '5']);
    expect(mountProbe('/x', 0.4)[5]).toBe('1');
  });

  it('splits what it printed into the mount table, the stat and its exit status', () => {
    const out = parseMountProbe('1 2 0:1 / / rw - ext4 /dev/vda rw\n--- dfs-injector check: stat\ndirectory, 2 links\n--- dfs-injector check: exit 0\n');
    expect(out).toEqual({ mountinfo: '1 2 0:1 / / rw - ext4 /dev/vda rw', stat: 'directory, 2 links', statExit: 0 });
    expect(parseMountProbe('--- dfs-injector check: stat\n--- dfs-injector check: exit 124\n')).toEqual({ mountinfo: '', stat: '', statExit: 124 });
    // Cut off before the stat finished (the transport's timeout or its output limit).
    expect(parseMountProbe('1 2 0:1 / / rw - ext4 /dev/vda rw\n--- dfs-injector check: stat\n').statExit).toBeUndefined();
    expect(parseMountProbe('garbage').statExit).toBeUndefined();
  });
});

describe('mountinfo', () => {
  it('unescapes paths, takes the last mount at a path as the one on top, and skips lines of the wrong shape', () => {
    const text = [
      '10 1 0:5 / /mnt/my\\040dfs rw,relatime shared:1 - ext4 /dev/vda rw',
      'not a mountinfo line',
      '11 10 0:6 / /mnt/my\\040dfs rw,nosuid master:2 - fuse.nlink0fs nlink0fs rw,user_id=0',
      '12 10 0:7 / /mnt/my\\040dfs/fs rw - fuse.rclone r rw',
      `13 1 0:8 / /${'a'.repeat(5000)} rw - tmpfs tmpfs rw`,
    ].join('\n');
    const entries = parseMountinfo(text);
    expect(entries).toHaveLength(4);
    expect(topMountAt(entries, '/mnt/my dfs/')?.fstype).toBe('fuse.nlink0fs');
    expect(topMountAt(entries, '/mnt/other')).toBeUndefined();
  });

  it('parses a large table in linear time', () => {
    const line = '10 1 0:5 / /mnt/x rw,relatime shared:1 - ext4 /dev/vda rw\n';
    const started = Date.now();
    expect(parseMountinfo(line.repeat(4000))).toHaveLength(4000);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('source-fuse-mount', () => {
  it('passes the FUSE mount on top at the source path (captured)', () => {
    const result = checkSourceFuseMount(SOURCE, exited(fixture('source-mountinfo.txt')));
    expect(result).toMatchObject({ step: 'source-fuse-mount', status: 'pass', subject: 'pod media/fuse-source-0 container fuse' });
    expect(result.reason).toBe('fuse.nlink0fs nlink0fs mounted at /mnt/dfs');
  });

  it('passes one in a directory below the source path, as the crash-proof layout has it', () => {
    const text = '10 1 0:5 / /mnt/dfs rw - ext4 /dev/vda rw\n11 10 0:6 / /mnt/dfs/fs rw - fuse.rclone remote: rw\n';
    expect(checkSourceFuseMount(SOURCE, exited(text)).reason).toBe('fuse.rclone remote: mounted at /mnt/dfs/fs, below the shared /mnt/dfs');
  });

  it('fails the pod volume alone on top (captured after the FUSE program unmounted), naming the log to read', () => {
    const result = checkSourceFuseMount(SOURCE, exited(fixture('source-mountinfo-nofuse.txt')));
    expect(result).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.fuseMissing, fix: expect.stringMatching(/^kubectl -n media logs fuse-source-0 -c fuse;/) });
    expect(result.reason).toMatch(/^no FUSE mount at or below \/mnt\/dfs \(on top there: \S+ \S+, the pod's volume\)/);
  });

  it('skips, and says what to bind, when exec is forbidden; skips an image without cat', () => {
    expect(checkSourceFuseMount(SOURCE, { kind: 'forbidden', message: 'Unexpected server response: 403' })).toMatchObject({ status: 'skip', fix: expect.stringContaining('dfs-injector-checker-exec') });
    expect(checkSourceFuseMount(SOURCE, { kind: 'error', message: fixture('exec-not-found.txt') })).toMatchObject({ status: 'skip', reason: expect.stringMatching(/^cannot exec cat \/proc\/self\/mountinfo: .*no such file or directory/) });
  });
});

describe('source-smbd', () => {
  const pod = { namespace: 'media', name: 'fuse-source-0' };

  it('passes a ready sidecar and reports nlink 0 and the shim (captured)', () => {
    const result = checkSourceSmbd(pod, 'dfs-smbd', exited(fixture('sidecar-ready.txt')));
    expect(result.status).toBe('pass');
    expect(result.reason).toBe('/mnt/dfs is mounted (fuse.nlink0fs) and readable (2 entries); nlink0 seen (shim marker /run/dfs-smbd/shim/nlink0-seen: st_nlink 0 seen by pid 194 in stat); smbd pid 1, nlink shim loaded');
  });

  it('fails an unready one with its own words', () => {
    const result = checkSourceSmbd(pod, 'dfs-smbd', exited(fixture('sidecar-not-ready.txt'), 1));
    expect(result).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.fuseMissing, fix: 'kubectl -n media exec fuse-source-0 -c dfs-smbd -- dfs-smbd-ready' });
    expect(result.reason).toBe('/dev/shm is a tmpfs mount, not fuse* (DFS_READY_FSTYPE): the FUSE program has not mounted it yet');
  });

  it('fails nlink 0 without the shim, pointing at the nlink entry', () => {
    const out = [
      'not ready: /mnt/dfs reports st_nlink 0 and smbd runs without the nlink shim, so every path of the share fails with NT_STATUS_OBJECT_PATH_NOT_FOUND (preload /usr/local/lib/dfs/fix_nlink.so: shim.mode image or init)',
      'nlink0: seen (stat without the shim: st_nlink 0 on /mnt/dfs/hello.txt)',
      'smbd: pid 12, nlink shim NOT loaded',
    ].join('\n');
    expect(checkSourceSmbd(pod, 'dfs-smbd', exited(out, 1))).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.nlinkShim, fix: expect.stringContaining('LD_PRELOAD') });
  });

  it('skips a sidecar without the script, and cuts a flood of output', () => {
    expect(checkSourceSmbd(pod, 'dfs-smbd', exited('', 127, 'dfs-smbd-ready is in neither /usr/local/bin nor /dfs-shim'))).toMatchObject({ status: 'skip' });
    const flood = checkSourceSmbd(pod, 'dfs-smbd', exited(`not ready: ${'x'.repeat(100_000)}`, 1));
    expect(flood.reason.length).toBeLessThan(1000);
  });
});

describe('node-share', () => {
  it('passes the CIFS mount with the shipped options and a stat that answered (captured)', () => {
    const result = checkNodeShare('dfs-node', 'dfs-mounter-x', SHARE, exited(fixture('mounter-probe.txt')), 5);
    expect(result).toMatchObject({ step: 'node-share', subject: 'node dfs-node', status: 'pass' });
    expect(result.reason).toMatch(/^\/\/10\.0\.0\.\d+\/dfs mounted at \/mnt\/decypharr-dfs \(cifs, ro, options as DFS_MOUNT_OPTIONS asks\); stat \/mnt\/decypharr-dfs answered \(directory, \d+ links\)$/);
  });

  it('compares what the kernel shows of each option, and always wants ro', () => {
    const probe = parseMountProbe(fixture('mounter-probe.txt'));
    const mount = topMountAt(parseMountinfo(probe.mountinfo), '/mnt/decypharr-dfs')!;
    expect(missingMountOptions(DEFAULT_MOUNT_OPTIONS, mount)).toEqual([]);
    expect(missingMountOptions('vers=3.0,hard,serverino_is_unknown,cache=none,echo_interval=60', mount)).toEqual(['vers=3.0', 'hard', 'cache=none', 'echo_interval=60']);
    const writable = { ...mount, mountOptions: mount.mountOptions.map((o) => (o === 'ro' ? 'rw' : o)) };
    expect(missingMountOptions('nosuid', writable)).toEqual(['ro']);
    const result = checkNodeShare('dfs-node', 'dfs-mounter-x', { ...SHARE, options: `${DEFAULT_MOUNT_OPTIONS},hard` }, exited(fixture('mounter-probe.txt')), 5);
    expect(result).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.mountOptions, fix: expect.stringContaining('umount /mnt/decypharr-dfs') });
    expect(result.reason).toMatch(/is mounted without hard, which DFS_MOUNT_OPTIONS of daemonset dfs-system\/dfs-mounter asks for/);
  });

  it('fails another share, and a host path with no CIFS mount', () => {
    expect(checkNodeShare('dfs-node', 'dfs-mounter-x', { ...SHARE, shareName: 'media' }, exited(fixture('mounter-probe.txt')), 5).reason).toMatch(/^\/mnt\/decypharr-dfs mounts \/\/10\.0\.0\.\d+\/dfs, not the share media/);
    const bare = checkNodeShare('dfs-node', 'dfs-mounter-x', { ...SHARE, hostPath: '/mnt/elsewhere' }, exited(fixture('mounter-probe.txt')), 5);
    expect(bare).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.emptyMount, reason: expect.stringMatching(/^the share is not mounted at \/mnt\/elsewhere \(not a mount point\)/) });
  });

  it('fails a stat that did not answer while the source was away (captured), and an exec that timed out', () => {
    const result = checkNodeShare('dfs-node', 'dfs-mounter-x', SHARE, exited(fixture('mounter-probe-outage.txt')), 5);
    expect(result).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.staleMount });
    expect(result.reason).toMatch(/^\/\/10\.0\.0\.\d+\/dfs is mounted at \/mnt\/decypharr-dfs, but stat \/mnt\/decypharr-dfs (did not answer within 5 s|failed \(exit 1: .*\))/);
    expect(checkNodeShare('dfs-node', 'dfs-mounter-x', SHARE, { kind: 'timeout', seconds: 10 }, 5)).toMatchObject({ status: 'fail', reason: expect.stringMatching(/^the mount probe in dfs-system\/dfs-mounter-x timed out after 10 s/) });
  });
});

describe('consumer-mount', () => {
  it('passes the CIFS share on top at the mount path and a stat through it (captured)', () => {
    const result = checkConsumerMount(CONSUMER, 'dfs-node', exited(fixture('consumer-probe.txt')), 5);
    expect(result).toMatchObject({ step: 'consumer-mount', subject: 'pod media/consumer-7c9f-abcde container app', status: 'pass' });
    expect(result.reason).toMatch(/^\/\/10\.0\.0\.\d+\/dfs \(cifs\) at \/mnt\/dfs; stat \/mnt\/dfs answered \(directory, \d+ links\)$/);
  });

  it("fails the node's empty directory on top, and nothing mounted at all", () => {
    const empty = '100 1 0:5 / / rw - overlay overlay rw\n101 100 254:1 /mnt/decypharr-dfs /mnt/dfs ro,relatime - ext4 /dev/vda rw\n--- dfs-injector check: stat\ndirectory, 2 links\n--- dfs-injector check: exit 0\n';
    expect(checkConsumerMount(CONSUMER, 'dfs-node', exited(empty), 5)).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.emptyMount, reason: expect.stringMatching(/^\/mnt\/dfs shows ext4 \/dev\/vda, the node's empty directory/) });
    const none = '100 1 0:5 / / rw - overlay overlay rw\n--- dfs-injector check: stat\nstat: can\'t stat \'/mnt/dfs\': No such file or directory\n--- dfs-injector check: exit 1\n';
    expect(checkConsumerMount(CONSUMER, 'dfs-node', exited(none), 5)).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.notInjected, fix: 'dfs-injector explain media/consumer-7c9f-abcde' });
  });

  it('fails a stat through the share while the source was away (captured)', () => {
    const result = checkConsumerMount(CONSUMER, 'dfs-node', exited(fixture('consumer-probe-outage.txt')), 5);
    expect(result).toMatchObject({ status: 'fail', troubleshooting: TROUBLESHOOTING.staleMount });
  });

  it('skips an image without a shell', () => {
    expect(checkConsumerMount(CONSUMER, 'dfs-node', { kind: 'error', message: fixture('exec-not-found.txt') }, 5)).toMatchObject({ status: 'skip' });
  });
});

describe('the consumer sample', () => {
  it('takes one pod per node before a second from any, in name order', () => {
    const pods = [
      { namespace: 'media', name: 'sonarr-b', nodeName: 'n1' },
      { namespace: 'media', name: 'sonarr-a', nodeName: 'n1' },
      { namespace: 'media', name: 'radarr', nodeName: 'n2' },
      { namespace: 'media', name: 'plex', nodeName: 'n3' },
    ];
    expect(sampleAcrossNodes(pods, 3).map((p) => p.name)).toEqual(['sonarr-a', 'radarr', 'plex']);
    expect(sampleAcrossNodes(pods, 4).map((p) => p.name)).toEqual(['sonarr-a', 'radarr', 'plex', 'sonarr-b']);
    expect(sampleAcrossNodes(pods, 10)).toHaveLength(4);
  });
});
