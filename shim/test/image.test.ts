// The sidecar image's scripts outside a container: shellcheck, the
// entrypoint's validation and rendering (with a stand-in smbd), the rendered
// smb.conf as Samba's testparm reads it, ready.sh on paths that are not the
// FUSE mount, and the Dockerfile's promises. smbd itself: samba.test.ts.
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { needs } from '../../test/support/prereq.js';
import {
  BUSYBOX_HINT,
  busyboxPath,
  cleanEnv,
  cleanupAll,
  have,
  imageDir,
  run,
  runOk,
  shimDir,
  tempDir,
  testSrcDir,
  type RunResult,
} from './support.js';

afterAll(cleanupAll);

const entrypoint = join(imageDir, 'entrypoint.sh');
const readySh = join(imageDir, 'ready.sh');

/**
 * The image runs its scripts with Debian's dash and GNU tools, as this machine does; with
 * shim.mode init, ready.sh also runs in a user's own Samba image, which on Alpine means busybox.
 */
interface Shell {
  name: string;
  sh: string;
  env: Record<string, string>;
}
const shells: Shell[] = [{ name: 'sh with this machine\'s tools', sh: 'sh', env: {} }];
const busybox = needs('busybox', have('busybox'), BUSYBOX_HINT) ? busyboxPath() : undefined;
if (busybox !== undefined) shells.push({ name: 'busybox sh and applets, as in an Alpine Samba image', sh: join(busybox, 'sh'), env: { PATH: busybox } });

interface Rendered {
  result: RunResult;
  stateDir: string;
  conf: string;
  args: string[];
  env: Map<string, string>;
  ppid: string;
}

/** Runs the entrypoint with a stand-in smbd that records how it was exec'd. */
async function entry(env: Record<string, string>, shell: Shell = shells[0]!): Promise<Rendered> {
  const dir = tempDir('entry');
  const fake = join(dir, 'fake-smbd');
  writeFileSync(
    fake,
    ['#!/bin/sh', `printf '%s\\n' "$PPID" >"${dir}/ppid"`, `printf '%s\\n' "$@" >"${dir}/args"`, `env >"${dir}/env"`, ''].join('\n'),
  );
  chmodSync(fake, 0o755);
  const stateDir = join(dir, 'state');
  const result = await run(shell.sh, [entrypoint], {
    env: cleanEnv({ DFS_STATE_DIR: stateDir, DFS_SMBD: fake, DFS_SHARE_PATH: dir, ...shell.env, ...env }),
  });
  const read = (name: string): string => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
  const confPath = join(stateDir, 'smb.conf');
  return {
    result,
    stateDir,
    conf: existsSync(confPath) ? readFileSync(confPath, 'utf8') : '',
    args: read('args').split('\n').filter((l) => l !== ''),
    env: new Map(
      read('env')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
    ),
    ppid: read('ppid').trim(),
  };
}

describe.skipIf(!needs('shellcheck', have('shellcheck'), 'apt-get install -y shellcheck'))('shell scripts', () => {
  it('are shellcheck-clean as POSIX sh', async () => {
    const r = await run('shellcheck', ['-s', 'sh', entrypoint, readySh, join(testSrcDir, 'selftest.sh')]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe.each(shells)('entrypoint.sh under $name', (shell) => {
  const invalid: Array<[string, string, string]> = [
    ['DFS_SHARE_NAME', 'bad/name', 'must match ^[A-Za-z0-9_.-]{1,80}$'],
    ['DFS_SHARE_NAME', '', 'must match ^[A-Za-z0-9_.-]{1,80}$'],
    ['DFS_SHARE_NAME', 'x'.repeat(81), 'must match ^[A-Za-z0-9_.-]{1,80}$'],
    ['DFS_SHARE_NAME', 'dfs]\n[evil', 'must match ^[A-Za-z0-9_.-]{1,80}$'],
    ['DFS_SHARE_NAME', 'global', 'must not be a Samba special section'],
    ['DFS_SHARE_NAME', 'Homes', 'must not be a Samba special section'],
    ['DFS_SHARE_NAME', 'dfs\u00e9', 'must match ^[A-Za-z0-9_.-]{1,80}$'],
    ['DFS_SHARE_PATH', 'mnt/dfs', 'must be an absolute path'],
    ['DFS_SHARE_PATH', '/mnt/%U', 'must be an absolute path'],
    ['DFS_SHARE_PATH', '/mnt/dfs\n[x]', 'must be an absolute path'],
    ['DFS_SHARE_PATH', '/mnt/dfs ', 'no trailing space'],
    ['DFS_SHARE_PATH', '', 'must be an absolute path'],
    ['DFS_SMB_PORT', '0', 'must be an integer from 1 to 65535'],
    ['DFS_SMB_PORT', '65536', 'must be an integer from 1 to 65535'],
    ['DFS_SMB_PORT', '0445', 'must be an integer from 1 to 65535'],
    ['DFS_SMB_PORT', '44 5', 'must be an integer from 1 to 65535'],
    ['DFS_SMB_PORT', '-1', 'must be an integer from 1 to 65535'],
    ['DFS_SMB_PORT', '99999999999999999999', 'must be an integer from 1 to 65535'],
    ['DFS_SMB_PORT', '', 'must be an integer from 1 to 65535'],
    ['DFS_LOG_LEVEL', '11', 'must be an integer from 0 to 10'],
    ['DFS_LOG_LEVEL', '-1', 'must be an integer from 0 to 10'],
    ['DFS_LOG_LEVEL', 'debug', 'must be an integer from 0 to 10'],
    ['DFS_LOG_LEVEL', '', 'must be an integer from 0 to 10'],
    ['DFS_GUEST_ACCOUNT', '', 'must be a user name'],
    ['DFS_GUEST_ACCOUNT', '1abc', 'must be a user name'],
    ['DFS_GUEST_ACCOUNT', '-u', 'must be a user name'],
    ['DFS_GUEST_ACCOUNT', 'no body', 'must be a user name'],
    ['DFS_GUEST_ACCOUNT', 'dfs-no-such-user', 'must name an existing user'],
    ['DFS_SMB_INTERFACES', '', 'must be a non-empty list of interface names or addresses'],
    ['DFS_SMB_INTERFACES', 'lo;rm', 'must be a non-empty list of interface names or addresses'],
    ['DFS_STATE_DIR', 'run/dfs', 'must be an absolute path'],
    ['DFS_STATE_DIR', '/run/dfs smbd', 'must not contain spaces'],
    ['DFS_SMBD', '/nonexistent/smbd', 'must name an executable smbd'],
    ['DFS_SMBD', '', 'must name the smbd binary'],
    ['DFS_SMB_TEMPLATE', '/nonexistent/smb.conf.template', 'must be a readable smb.conf template'],
    ['DFS_SHIM_LOG', 'yes', 'must be 0 or 1'],
    ['DFS_SHIM_MARKER', 'nlink0-seen', 'must be an absolute path'],
    ['DFS_READY_SCRIPT', 'ready.sh', 'must be an absolute path'],
    ['DFS_READY_SCRIPT', '/dfs-shim/%U', 'must be an absolute path'],
    ['DFS_READY_SCRIPT', '/dfs shim/dfs-smbd-ready', 'must not contain spaces'],
    ['DFS_READY_SCRIPT', '/nonexistent/dfs-smbd-ready', 'must be a readable file'],
  ];

  it.each(invalid)('refuses %s=%j, naming the variable and the rule', async (name, value, rule) => {
    const r = await entry({ [name]: value }, shell);
    expect(r.result.code).toBe(64);
    expect(r.result.stderr).toContain(`invalid ${name}=`);
    expect(r.result.stderr).toContain(rule);
    // Nothing is started with a bad configuration.
    expect(r.args).toEqual([]);
  });

  it('renders the defaults and execs smbd in the foreground with them', async () => {
    const r = await entry({}, shell);
    expect(r.result.code, r.result.stderr).toBe(0);
    expect(r.args).toEqual(['--foreground', '--no-process-group', '--debug-stdout', '-s', join(r.stateDir, 'smb.conf')]);
    // exec, not a child of the shell: the stand-in's parent is this test process.
    expect(r.ppid).toBe(String(process.pid));
    const conf = r.conf;
    for (const line of [
      '[dfs]',
      'smb ports = 445',
      'log level = 1',
      'guest account = nobody',
      'map to guest = Bad User',
      'disable netbios = yes',
      'load printers = no',
      'disable spoolss = yes',
      'read only = yes',
      'guest ok = yes',
      'ea support = no',
      'store dos attributes = no',
      `lock directory = ${r.stateDir}/lock`,
      `state directory = ${r.stateDir}/state`,
      `cache directory = ${r.stateDir}/cache`,
      `pid directory = ${r.stateDir}/run`,
      `private dir = ${r.stateDir}/private`,
      `ncalrpc dir = ${r.stateDir}/ncalrpc`,
      '; interfaces = ',
      '; bind interfaces only = yes',
    ]) {
      expect(conf).toContain(`\n\t${line}`.replace('\t[dfs]', '[dfs]'));
    }
    expect(conf).toMatch(/^\tvfs objects =$/m);
    expect(conf).not.toMatch(/@[A-Z_]+@/);
    // Every tree connect runs the readiness script's mount check (beside the entrypoint here);
    // the share path it checks comes from smbd's environment.
    expect(conf).toContain(`\n\troot preexec = /bin/sh ${readySh} tree-connect\n\troot preexec close = yes\n`);
    expect(r.env.get('DFS_SHARE_PATH')).toBe(r.stateDir.slice(0, r.stateDir.lastIndexOf('/')));
    // The shim's knobs reach smbd.
    expect(r.env.get('DFS_SHIM_MARKER')).toBe(join(r.stateDir, 'shim', 'nlink0-seen'));
    expect(r.env.get('DFS_SHIM_LOG')).toBe('1');
    expect(statSync(join(r.stateDir, 'shim')).mode & 0o7777).toBe(0o1777);
    expect(statSync(join(r.stateDir, 'private')).mode & 0o777).toBe(0o700);
  });

  it('renders every variable it is given', async () => {
    const dir = tempDir('share');
    const marker = join(dir, 'marker');
    writeFileSync(marker, 'stale\n');
    const r = await entry({
      DFS_SHARE_NAME: 'media.v2',
      DFS_SHARE_PATH: `${dir}/with space`,
      DFS_SMB_PORT: '1445',
      DFS_LOG_LEVEL: '10',
      DFS_GUEST_ACCOUNT: 'root',
      DFS_SMB_INTERFACES: 'lo 127.0.0.1',
      DFS_SHIM_LOG: '0',
      DFS_SHIM_MARKER: marker,
    }, shell);
    expect(r.result.code, r.result.stderr).toBe(0);
    expect(r.conf).toContain('\n[media.v2]\n');
    expect(r.conf).toContain(`\n\tpath = ${dir}/with space\n`);
    expect(r.conf).toContain('\n\tsmb ports = 1445\n');
    expect(r.conf).toContain('\n\tlog level = 10\n');
    expect(r.conf).toContain('\n\tguest account = root\n');
    expect(r.conf).toContain('\n\tinterfaces = lo 127.0.0.1\n');
    expect(r.conf).toContain('\n\tbind interfaces only = yes\n');
    expect(r.env.get('DFS_SHIM_LOG')).toBe('0');
    // A marker from an earlier smbd would claim a fix this one has not made.
    expect(existsSync(marker)).toBe(false);
    expect(r.result.stdout).toContain(`serving ${dir}/with space as [media.v2] on port 1445`);
  });

  it.skipIf(!needs('testparm (Samba)', have('testparm'), 'apt-get install -y samba'))(
    'renders a smb.conf that Samba reads without complaint, with the share settings ARCHITECTURE.md asks for ("The parts": 1)',
    async () => {
      const r = await entry({ DFS_SMB_INTERFACES: '127.0.0.1' }, shell);
      expect(r.result.code, r.result.stderr).toBe(0);
      const conf = join(r.stateDir, 'smb.conf');
      const all = await runOk('testparm', ['-s', conf], { env: cleanEnv() });
      // "smb3 unix extensions" is new in Samba 4.22 (the image's); an older Samba here ignores it.
      // The image's own testparm reads the same file strictly (test/images/images.test.ts).
      const complaints = all.stderr.split('\n').filter((l) => !l.includes('"smb3 unix extensions"'));
      expect(complaints.join('\n')).not.toMatch(/unknown parameter|ignoring|error/i);
      const param = async (name: string, section?: string): Promise<string> => {
        const args = ['-s', `--parameter-name=${name}`, conf];
        if (section !== undefined) args.splice(1, 0, `--section-name=${section}`);
        return (await runOk('testparm', args, { env: cleanEnv() })).stdout.trim();
      };
      expect(await param('read only', 'dfs')).toBe('Yes');
      expect(await param('guest ok', 'dfs')).toBe('Yes');
      expect(await param('ea support', 'dfs')).toBe('No');
      expect(await param('store dos attributes', 'dfs')).toBe('No');
      expect(await param('vfs objects', 'dfs')).toBe('');
      expect(await param('map to guest')).toBe('Bad User');
      expect(await param('disable netbios')).toBe('Yes');
      expect(await param('load printers')).toBe('No');
      expect(await param('disable spoolss')).toBe('Yes');
      expect(await param('bind interfaces only')).toBe('Yes');
      expect(await param('root preexec', 'dfs')).toBe(`/bin/sh ${readySh} tree-connect`);
      expect(await param('root preexec close', 'dfs')).toBe('Yes');
    },
  );
});

describe.each(shells)('ready.sh outside the FUSE mount, under $name', (shell) => {
  const ready = (env: Record<string, string>): Promise<RunResult> =>
    run(shell.sh, [readySh], { env: cleanEnv({ ...shell.env, ...env }) });

  it('is not ready when the share path is not a mount point', async () => {
    const dir = tempDir('notmounted');
    const r = await ready({ DFS_SHARE_PATH: dir, DFS_STATE_DIR: join(dir, 'state') });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`not ready: ${dir} is not a mount point (the FUSE program has not mounted it, or it is not shared with this container)\n`);
  });

  it('tree-connect (smbd\'s root preexec): the same mount rule, its reason on stderr, nothing on stdout, no listing', async () => {
    const dir = tempDir('notmounted');
    const notMounted = await run(shell.sh, [readySh, 'tree-connect'], { env: cleanEnv({ ...shell.env, DFS_SHARE_PATH: dir }) });
    expect({ code: notMounted.code, stdout: notMounted.stdout }).toEqual({ code: 1, stdout: '' });
    expect(notMounted.stderr).toBe(
      `dfs-smbd-ready: refusing a tree connect to ${dir}: ${dir} is not a mount point (the FUSE program has not mounted it, or it is not shared with this container)\n`,
    );
    const notFuse = await run(shell.sh, [readySh, 'tree-connect'], { env: cleanEnv({ ...shell.env, DFS_SHARE_PATH: '/' }) });
    expect(notFuse.code).toBe(1);
    expect(notFuse.stderr).toMatch(/^dfs-smbd-ready: refusing a tree connect to \/: \/ is a \S+ mount, not fuse\* \(DFS_READY_FSTYPE\)/);
    // A mount of the accepted type passes silently: smbd logs nothing for a good connect.
    const any = await run(shell.sh, [readySh, 'tree-connect'], { env: cleanEnv({ ...shell.env, DFS_SHARE_PATH: '/', DFS_READY_FSTYPE: '' }) });
    expect({ code: any.code, stdout: any.stdout, stderr: any.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
    const bad = await run(shell.sh, [readySh, 'connect'], { env: cleanEnv({ ...shell.env, DFS_SHARE_PATH: '/' }) });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('dfs-smbd-ready: unknown argument connect: the only one is tree-connect');
  });

  it('is not ready when the mount there is not FUSE (an empty volume before the FUSE program mounts)', async () => {
    const r = await ready({ DFS_SHARE_PATH: '/', DFS_STATE_DIR: tempDir('state') });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^not ready: \/ is a \S+ mount, not fuse\* \(DFS_READY_FSTYPE\)/);
  });

  it('accepts any mount type with DFS_READY_FSTYPE empty, and reports nlink and smbd', async () => {
    const state = tempDir('state');
    const r = await ready({ DFS_SHARE_PATH: '/', DFS_STATE_DIR: state, DFS_READY_FSTYPE: '' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^ready: \/ is mounted \(\S+\) and readable \(\d+ entries\)$/m);
    expect(r.stdout).toContain('nlink0: not seen');
    expect(r.stdout).toContain(`smbd: not found (no pid file in ${state}/run)`);
  });

  it('refuses a bad configuration with exit 64, naming the variable', async () => {
    const rel = await ready({ DFS_SHARE_PATH: 'mnt/dfs' });
    expect(rel.code).toBe(64);
    expect(rel.stderr).toContain('invalid DFS_SHARE_PATH=mnt/dfs: must be an absolute path');
    const t = await ready({ DFS_READY_TIMEOUT: '0' });
    expect(t.code).toBe(64);
    expect(t.stderr).toContain('invalid DFS_READY_TIMEOUT=0');
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(shimDir, 'Dockerfile'), 'utf8');

  it('builds on Debian trixie slim, and builds and self-tests the shim for glibc and musl', () => {
    expect(dockerfile).toMatch(/^ARG DEBIAN_IMAGE=debian:trixie-slim$/m);
    expect(dockerfile).toMatch(/^FROM \$\{DEBIAN_IMAGE\} AS shim$/m);
    expect(dockerfile).toMatch(/^FROM \$\{DEBIAN_IMAGE\}$/m);
    expect(dockerfile).not.toMatch(/^FROM .*alpine/im);
    expect(dockerfile).toContain('make glibc musl check');
    expect(dockerfile).toContain('sh test/selftest.sh "$PWD/build/fix_nlink.so" build/probe-glibc');
    expect(dockerfile).toContain('sh test/selftest.sh "$PWD/build/fix_nlink-musl.so" build/probe-musl');
  });

  it('puts the shims at the documented paths and never sets LD_PRELOAD itself', () => {
    // This image's smbd is glibc's, so the default shim is the glibc build.
    expect(dockerfile).toMatch(/^COPY --from=shim \/src\/build\/fix_nlink\.so \/usr\/local\/lib\/dfs\/fix_nlink\.so$/m);
    expect(dockerfile).toMatch(/^COPY --from=shim \/src\/build\/fix_nlink\.so \/usr\/local\/lib\/dfs\/glibc\/fix_nlink\.so$/m);
    expect(dockerfile).toMatch(/^COPY --from=shim \/src\/build\/fix_nlink-musl\.so \/usr\/local\/lib\/dfs\/musl\/fix_nlink\.so$/m);
    expect(dockerfile).not.toMatch(/^\s*ENV\b[^\n]*LD_PRELOAD/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/dfs-smbd-entrypoint"\]$/m);
  });

  it('copies only files that exist in the build context (shim/)', () => {
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) expect(existsSync(join(shimDir, src)), src).toBe(true);
  });
});
