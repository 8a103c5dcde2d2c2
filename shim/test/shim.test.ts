// The nlink shim itself: its exports, and every wrapped entry point called by
// a probe on a FUSE filesystem that reports nlink 0, on an unlinked open file
// and on ordinary files, without the shim and with the glibc and musl builds.
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../../test/support/prereq.js';
import {
  FUSE_HINT,
  buildProbe,
  buildShim,
  canMountFuse,
  cleanEnv,
  cleanupAll,
  compile,
  have,
  mountFixture,
  parseProbe,
  run,
  runOk,
  shimDir,
  tempDir,
  testSrcDir,
  type Fixture,
  type Libc,
  type ProbeRecord,
} from './support.js';

const EXPORTS = [
  '__fxstat',
  '__fxstat64',
  '__fxstatat',
  '__fxstatat64',
  '__lxstat',
  '__lxstat64',
  '__xstat',
  '__xstat64',
  'fstat',
  'fstat64',
  'fstatat',
  'fstatat64',
  'lstat',
  'lstat64',
  'stat',
  'stat64',
  'statx',
];
// Entry points that take a file descriptor (or *at with AT_EMPTY_PATH): the
// only ones that reach an unlinked file.
const FD_CALLS = ['__fxstat', '__fxstat64', '__fxstatat', '__fxstatat64', 'fstat', 'fstat64', 'fstatat', 'fstatat64', 'statx'];

const haveCc = have('cc') && have('make') && have('nm');
const haveMusl = haveCc && have('musl-gcc');
const haveFuse = canMountFuse();
const CC_HINT = 'apt-get install -y build-essential';
const MUSL_HINT = 'apt-get install -y musl-tools';

afterAll(cleanupAll);

// Asked once each, so a missing tool is reported once.
const ccOk = needs('a C toolchain (cc, make, nm)', haveCc, CC_HINT);
const muslOk = needs('musl-gcc', haveMusl, MUSL_HINT);
const fuseOk = needs('a FUSE mount for the nlink0fs fixture', haveFuse, FUSE_HINT);

// Compiles and FUSE round trips on a machine that may be busy with other builds.
const SLOW = 90_000;

function key(r: ProbeRecord): string {
  return `${r.target} ${r.call}`;
}

/** One comparable line per call, so a failure shows every differing call at once. */
function outcome(r: ProbeRecord): string {
  if (r.absent) return 'absent';
  if (r.rc !== 0) return `rc=${r.rc} ${r.errno_name ?? ''}`;
  return `nlink=${r.nlink} dir=${r.dir} errno_kept=${r.errno_kept}`;
}

function outcomes(records: readonly ProbeRecord[]): Record<string, string> {
  return Object.fromEntries(records.map((r) => [key(r), outcome(r)]));
}

async function probe(bin: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ records: ProbeRecord[]; stderr: string }> {
  const r = await runOk(bin, args, { env: cleanEnv(env) });
  return { records: parseProbe(r.stdout), stderr: r.stderr };
}

async function exportedSymbols(so: string): Promise<string[]> {
  const r = await runOk('nm', ['-D', '--defined-only', so]);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => (f[1] === 'T' || f[1] === 'W') && f[2] !== '_init' && f[2] !== '_fini')
    .map((f) => f[2]!)
    .sort();
}

/** A directory with a file that has two links, a subdirectory, and room for an unlinked file. */
function ordinaryTree(): { dir: string; targets: string[] } {
  const dir = tempDir('plain');
  writeFileSync(join(dir, 'file'), 'plain\n');
  linkSync(join(dir, 'file'), join(dir, 'file-link'));
  mkdirSync(join(dir, 'sub'));
  return { dir, targets: [`file=${join(dir, 'file')}`, `sub=${join(dir, 'sub')}`, `missing=${join(dir, 'missing')}`] };
}

describe.skipIf(!ccOk)('fix_nlink.so for glibc', () => {
  let shim = '';
  let probeBin = '';

  beforeAll(async () => {
    shim = await buildShim('glibc');
    probeBin = await buildProbe('glibc');
  });

  it('exports exactly the wrapped entry points, by their real names', { timeout: SLOW }, async () => {
    expect(await exportedSymbols(shim)).toEqual(EXPORTS);
    await runOk('make', ['-s', '-C', shimDir, 'check-glibc']);
  });

  it.skipIf(process.arch !== 'x64' && process.arch !== 'arm64')(
    'needs no glibc symbol version newer than the ABI baseline, so it loads on glibc < 2.34',
    async () => {
      const r = await runOk('nm', ['-D', '--undefined-only', shim]);
      const versions = new Set([...r.stdout.matchAll(/@(GLIBC_[0-9.]+)/g)].map((m) => m[1]));
      expect([...versions]).toEqual([process.arch === 'x64' ? 'GLIBC_2.2.5' : 'GLIBC_2.17']);
    },
  );

  it('leaves correct nlink values and errors untouched, and fixes an unlinked open file', { timeout: SLOW }, async () => {
    const { dir, targets } = ordinaryTree();
    const without = await probe(probeBin, ['--unlinked', dir, ...targets]);
    const withShim = await probe(probeBin, ['--unlinked', dir, ...targets], { LD_PRELOAD: shim });

    // Every wrapped entry point was called on every path target.
    for (const t of ['file', 'sub', 'missing']) {
      expect(withShim.records.filter((r) => r.target === t).map((r) => r.call).sort()).toEqual(EXPORTS);
    }
    expect(withShim.records.filter((r) => r.target === 'unlinked').map((r) => r.call).sort()).toEqual(FD_CALLS);

    const before = outcomes(without.records);
    const after = outcomes(withShim.records);
    const expected: Record<string, string> = {};
    for (const [k, v] of Object.entries(before)) {
      if (k.startsWith('file ')) expect(v).toBe('nlink=2 dir=false errno_kept=true');
      if (k.startsWith('sub ')) expect(v).toMatch(/^nlink=\d+ dir=true errno_kept=true$/);
      if (k.startsWith('missing ')) expect(v).toMatch(/^rc=-1 (ENOENT|EBADF)$/);
      if (k.startsWith('unlinked ')) expect(v).toBe('nlink=0 dir=false errno_kept=true');
      expected[k] = k.startsWith('unlinked ') ? 'nlink=1 dir=false errno_kept=true' : v;
    }
    expect(after).toEqual(expected);
  });

  it('is silent and creates no marker when nothing needed a fix', { timeout: SLOW }, async () => {
    const { targets } = ordinaryTree();
    const marker = join(tempDir('marker'), 'nlink0-seen');
    const r = await probe(probeBin, targets, { LD_PRELOAD: shim, DFS_SHIM_LOG: '1', DFS_SHIM_MARKER: marker });
    expect(r.stderr).toBe('');
    expect(existsSync(marker)).toBe(false);
  });

  it('rewrites statx nlink only when stx_mask has STATX_NLINK', { timeout: SLOW }, async () => {
    const fake = await compile('cc', [join(testSrcDir, 'fake_statx.c')], 'fake_statx.so', ['-shared', '-fPIC', '-ldl']);
    const args = ['nomask=/dfs-fake-nomask/x', 'withmask=/dfs-fake-nlink0/x'];
    const statx = (records: ProbeRecord[]): Record<string, string> =>
      outcomes(records.filter((r) => r.call === 'statx'));
    // The fake alone: both report nlink 0.
    expect(statx((await probe(probeBin, args, { LD_PRELOAD: fake })).records)).toEqual({
      'nomask statx': 'nlink=0 dir=false errno_kept=true',
      'withmask statx': 'nlink=0 dir=false errno_kept=true',
    });
    // The shim above the fake: its RTLD_NEXT statx is the fake's.
    const both = (await probe(probeBin, args, { LD_PRELOAD: `${shim}:${fake}` })).records;
    expect(statx(both)).toEqual({
      'nomask statx': 'nlink=0 dir=false errno_kept=true',
      'withmask statx': 'nlink=1 dir=false errno_kept=true',
    });
    expect(both.find((r) => r.target === 'nomask' && r.call === 'statx')?.nlink_valid).toBe(false);
  });

  it('passes selftest.sh, the check the image build runs', { timeout: SLOW }, async () => {
    const r = await runOk('sh', [join(testSrcDir, 'selftest.sh'), shim, probeBin], { env: cleanEnv() });
    expect(r.stdout).toMatch(/^selftest: OK \(26 calls, 0 ENOSYS/m);
  });
});

describe('selftest.sh', () => {
  // A stand-in probe replaying what musl >= 1.2.4 would show: no stat64
  // export, stat present; with the shim, stat64 must then work.
  async function replay(withShim: string): Promise<{ code: number | null; stdout: string }> {
    const dir = tempDir('fakeprobe');
    const line = (call: string, rest: string): string =>
      `{"target":"unlinked","call":"${call}","how":"dlsym","absent":${rest}}`;
    const without = [line('fstat', 'false,"rc":0,"errno":0,"errno_kept":true,"nlink":0,"dir":false,"nlink_valid":true}'), line('fstat64', 'true}')];
    const fake = join(dir, 'probe');
    writeFileSync(join(dir, 'without'), `${without.join('\n')}\n`);
    writeFileSync(join(dir, 'with'), `${[line('fstat', 'false,"rc":0,"errno":0,"errno_kept":true,"nlink":1,"dir":false,"nlink_valid":true}'), withShim].join('\n')}\n`);
    writeFileSync(fake, `#!/bin/sh\nif [ -n "$LD_PRELOAD" ]; then cat "${dir}/with"; else cat "${dir}/without"; fi\n`);
    chmodSync(fake, 0o755);
    const r = await run('sh', [join(testSrcDir, 'selftest.sh'), '/dev/null', fake], { env: cleanEnv() });
    return { code: r.code, stdout: r.stdout };
  }

  it('accepts a *64 call that works through the fallback to its plain name', async () => {
    const r = await replay('{"target":"unlinked","call":"fstat64","how":"dlsym","absent":false,"rc":0,"errno":0,"errno_kept":true,"nlink":1,"dir":false,"nlink_valid":true}');
    expect(r).toEqual({ code: 0, stdout: 'selftest: OK (2 calls, 0 ENOSYS for symbols this libc lacks)\n' });
  });

  it('rejects ENOSYS for a *64 call whose plain name the libc has', async () => {
    const r = await replay('{"target":"unlinked","call":"fstat64","how":"dlsym","absent":false,"rc":-1,"errno":38,"errno_name":"ENOSYS"}');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('selftest: FAIL: unlinked fstat64: ENOSYS although fstat exists (LFS64 fallback)');
  });
});

describe.skipIf(!muslOk)('fix_nlink-musl.so', () => {
  let shim = '';
  let probeBin = '';

  beforeAll(async () => {
    shim = await buildShim('musl');
    probeBin = await buildProbe('musl');
  });

  it('exports exactly the wrapped entry points, by their real names', { timeout: SLOW }, async () => {
    expect(await exportedSymbols(shim)).toEqual(EXPORTS);
    await runOk('make', ['-s', '-C', shimDir, 'check-musl']);
  });

  it('fixes an unlinked open file and fails calls into symbols musl lacks with ENOSYS (selftest.sh)', { timeout: SLOW }, async () => {
    const r = await runOk('sh', [join(testSrcDir, 'selftest.sh'), shim, probeBin], { env: cleanEnv() });
    expect(r.stdout).toMatch(/^selftest: OK \(26 calls, \d+ ENOSYS/m);
  });

  it('leaves correct nlink values and errors untouched', { timeout: SLOW }, async () => {
    const { targets } = ordinaryTree();
    const without = outcomes((await probe(probeBin, targets)).records);
    const withShim = outcomes((await probe(probeBin, targets, { LD_PRELOAD: shim })).records);
    const expected = Object.fromEntries(
      Object.entries(without).map(([k, v]) => [k, v === 'absent' ? 'rc=-1 ENOSYS' : v]),
    );
    expect(withShim).toEqual(expected);
  });
});

function fixtureTargets(fx: Fixture): { args: string[]; dirs: Set<string> } {
  const show = join(fx.mnt, '__all__', 'Show S01E01');
  return {
    args: [
      `root=${fx.mnt}`,
      `all=${join(fx.mnt, '__all__')}`,
      `show=${show}`,
      `episode=${join(show, 'episode.mkv')}`,
      `hello=${join(fx.mnt, 'hello.txt')}`,
    ],
    dirs: new Set(['root', 'all', 'show']),
  };
}

async function fixtureRun(libc: Libc): Promise<{ before: ProbeRecord[]; after: ProbeRecord[]; dirs: Set<string> }> {
  const shim = await buildShim(libc);
  const bin = await buildProbe(libc);
  const fx = await mountFixture();
  const { args, dirs } = fixtureTargets(fx);
  const before = (await probe(bin, args)).records;
  const after = (await probe(bin, args, { LD_PRELOAD: shim })).records;
  await fx.unmount();
  return { before, after, dirs };
}

describe.skipIf(!ccOk || !fuseOk)(
  'fix_nlink.so for glibc on a FUSE filesystem that reports nlink 0',
  () => {
    let shim = '';
    let probeBin = '';
    let fx: Fixture;
    let targets: { args: string[]; dirs: Set<string> };

    beforeAll(async () => {
      shim = await buildShim('glibc');
      probeBin = await buildProbe('glibc');
      fx = await mountFixture();
      targets = fixtureTargets(fx);
    });

    it('reproduces the bug: without the shim every entry point reports nlink 0', { timeout: SLOW }, async () => {
      const { records } = await probe(probeBin, targets.args);
      expect(records).toHaveLength(targets.args.length * EXPORTS.length);
      for (const r of records) expect(outcome(r), key(r)).toBe(`nlink=0 dir=${targets.dirs.has(r.target)} errno_kept=true`);
    });

    it('with the shim every entry point reports 2 for directories and 1 for files', { timeout: SLOW }, async () => {
      const { records, stderr } = await probe(probeBin, targets.args, { LD_PRELOAD: shim });
      expect(records).toHaveLength(targets.args.length * EXPORTS.length);
      const expected = Object.fromEntries(
        records.map((r) => [key(r), targets.dirs.has(r.target) ? 'nlink=2 dir=true errno_kept=true' : 'nlink=1 dir=false errno_kept=true']),
      );
      expect(outcomes(records)).toEqual(expected);
      // Logging is off unless DFS_SHIM_LOG=1.
      expect(stderr).toBe('');
    });

    it('DFS_SHIM_LOG=1 logs the first fix of each process once; DFS_SHIM_MARKER is created once', { timeout: SLOW }, async () => {
      const marker = join(tempDir('marker'), 'nlink0-seen');
      const env = { LD_PRELOAD: shim, DFS_SHIM_LOG: '1', DFS_SHIM_MARKER: marker };
      const first = await probe(probeBin, targets.args, env);
      const lines = first.stderr.split('\n').filter((l) => l !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(`^dfs-shim\\[\\d+\\]: st_nlink 0 from stat\\("${fx.mnt}"\\), reporting 2 \\(directory\\); created marker ${marker}; `),
      );
      const content = readFileSync(marker, 'utf8');
      expect(content).toMatch(/^st_nlink 0 seen by pid \d+ in stat\n$/);

      const second = await probe(probeBin, targets.args, env);
      expect(second.stderr).toMatch(/^dfs-shim\[\d+\]: .*; marker already present; later fixes in this process are not logged\n$/);
      expect(readFileSync(marker, 'utf8')).toBe(content);
    });

    it('a marker it cannot create is reported, not fatal, and errno stays untouched', { timeout: SLOW }, async () => {
      const marker = join(tempDir('marker'), 'no-such-dir', 'nlink0-seen');
      const r = await probe(probeBin, targets.args, { LD_PRELOAD: shim, DFS_SHIM_LOG: '1', DFS_SHIM_MARKER: marker });
      expect(r.stderr).toContain(`could not create marker ${marker} (errno 2)`);
      expect(r.records.every((rec) => rec.rc === 0 && rec.errno_kept === true)).toBe(true);
    });

    it('ignores a relative marker path (smbd runs inside the share)', { timeout: SLOW }, async () => {
      const cwd = tempDir('cwd');
      const r = await run(probeBin, targets.args, { cwd, env: cleanEnv({ LD_PRELOAD: shim, DFS_SHIM_LOG: '1', DFS_SHIM_MARKER: 'marker' }) });
      expect(r.code).toBe(0);
      expect(existsSync(join(cwd, 'marker'))).toBe(false);
      expect(r.stderr).not.toContain('marker');
    });

    it('threads racing on their first fix: every result fixed, one log line', { timeout: SLOW }, async () => {
      const r = await probe(probeBin, ['--threads', '8', `episode=${join(fx.mnt, '__all__', 'Show S01E01', 'episode.mkv')}`], {
        LD_PRELOAD: shim,
        DFS_SHIM_LOG: '1',
      });
      expect(r.records).toEqual([{ threads: 8, calls: 16000, zero: 0, errors: 0 }]);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('dfs-shim['))).toHaveLength(1);
    });
  },
);

describe.skipIf(!muslOk || !fuseOk)('fix_nlink-musl.so on a FUSE filesystem that reports nlink 0', () => {
  it('every entry point musl has is fixed; those it lacks fail with ENOSYS instead of crashing', { timeout: SLOW }, async () => {
    const { before, after, dirs } = await fixtureRun('musl');
    expect(after).toHaveLength(5 * EXPORTS.length);
    const expected: Record<string, string> = {};
    for (const r of before) {
      // Without the shim the fixture really gives 0 wherever musl has the call.
      if (!r.absent) expect(outcome(r), key(r)).toBe(`nlink=0 dir=${dirs.has(r.target)} errno_kept=true`);
      expected[key(r)] = r.absent ? 'rc=-1 ENOSYS' : `nlink=${dirs.has(r.target) ? 2 : 1} dir=${dirs.has(r.target)} errno_kept=true`;
    }
    expect(outcomes(after)).toEqual(expected);
    const absent = [...new Set(before.filter((r) => r.absent).map((r) => r.call))];
    // Debian's musl 1.2.3 has no statx: the ENOSYS path is exercised there.
    console.info(`musl lacks: ${absent.join(', ') || 'nothing'}`);
  });
});
