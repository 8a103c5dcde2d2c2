// Real Samba: Debian's smbd, started through the sidecar's own entrypoint and
// smb.conf template, serves the nlink0fs FUSE fixture on a loopback port.
// Without the shim it reproduces the bug; with it every byte comes through.
// The readiness check runs against the same setup.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../../test/support/prereq.js';
import {
  EPISODE_PATH,
  EPISODE_SIZE,
  FUSE_HINT,
  HELLO_TEXT,
  NFO_TEXT,
  buildShim,
  canMountFuse,
  cleanEnv,
  cleanupAll,
  episodeBytes,
  have,
  imageDir,
  mountFixture,
  run,
  smbclient,
  startSmbd,
  tempDir,
  type Fixture,
  type RunResult,
  type Smbd,
  busyboxPath,
} from './support.js';

const haveSamba = have('/usr/sbin/smbd') && have('smbclient');
const ok =
  needs('smbd and smbclient', haveSamba, 'apt-get install -y samba smbclient') &&
  needs('a FUSE mount for the nlink0fs fixture', canMountFuse(), FUSE_HINT) &&
  needs('a C toolchain (cc, make)', have('cc') && have('make'), 'apt-get install -y build-essential');

afterAll(cleanupAll);

// smbd start, several smbclient runs and readiness, on a machine that may be
// busy with other builds.
const SMBD_TIMEOUT = 120_000;

function ready(sharePath: string, stateDir: string, extra: Record<string, string> = {}, busybox?: string): Promise<RunResult> {
  return run(busybox !== undefined ? join(busybox, 'sh') : 'sh', [join(imageDir, 'ready.sh')], {
    env: cleanEnv({ DFS_SHARE_PATH: sharePath, DFS_STATE_DIR: stateDir, ...extra, ...(busybox !== undefined ? { PATH: busybox } : {}) }),
    timeoutMs: 30_000,
  });
}

/** ready.sh as this machine (and the image) runs it, and, when busybox is here, as an Alpine Samba image does: the same answer. */
async function readyEverywhere(sharePath: string, stateDir: string, extra: Record<string, string> = {}): Promise<RunResult> {
  const r = await ready(sharePath, stateDir, extra);
  const busybox = have('busybox') ? busyboxPath() : undefined;
  if (busybox !== undefined) {
    const b = await ready(sharePath, stateDir, extra, busybox);
    expect({ code: b.code, stdout: b.stdout }, 'ready.sh under busybox').toEqual({ code: r.code, stdout: r.stdout });
  }
  return r;
}

async function withSmbd<T>(sharePath: string, shim: string | undefined, body: (smbd: Smbd) => Promise<T>): Promise<T> {
  const smbd = await startSmbd(sharePath, shim !== undefined ? { shim } : {});
  try {
    return await body(smbd);
  } finally {
    await smbd.stop();
  }
}

const LISTED = ['hello.txt', '__all__', '\\__all__\\Show S01E01', 'episode.mkv', 'episode.nfo'];

async function fetchAll(port: number): Promise<{ episode: Buffer; nfo: string; hello: string }> {
  const dir = tempDir('get');
  const r = await smbclient(
    port,
    [
      `get "${EPISODE_PATH}" "${join(dir, 'episode.mkv')}"`,
      `get "__all__/Show S01E01/episode.nfo" "${join(dir, 'episode.nfo')}"`,
      `get hello.txt "${join(dir, 'hello.txt')}"`,
    ].join('; '),
  );
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return {
    episode: readFileSync(join(dir, 'episode.mkv')),
    nfo: readFileSync(join(dir, 'episode.nfo'), 'utf8'),
    hello: readFileSync(join(dir, 'hello.txt'), 'utf8'),
  };
}

describe.skipIf(!ok)('smbd sharing a FUSE filesystem that reports nlink 0', () => {
  let shim = '';
  let fx: Fixture;

  beforeAll(async () => {
    shim = await buildShim('glibc');
    fx = await mountFixture();
  });

  it('without the shim: NT_STATUS_OBJECT_PATH_NOT_FOUND for every path, and readiness says why', { timeout: SMBD_TIMEOUT }, async () => {
    await withSmbd(fx.mnt, undefined, async (smbd) => {
      const ls = await smbclient(smbd.port, 'recurse; ls');
      expect(ls.code).not.toBe(0);
      expect(ls.stdout + ls.stderr).toContain('NT_STATUS_OBJECT_PATH_NOT_FOUND listing \\*');

      const get = await smbclient(smbd.port, 'get hello.txt /dev/null');
      expect(get.code).not.toBe(0);
      expect(get.stdout + get.stderr).toContain('NT_STATUS_OBJECT_PATH_NOT_FOUND opening remote file \\hello.txt');

      // An exec probe inherits the container's LD_PRELOAD: ready.sh must
      // still see what the filesystem reports.
      const r = await readyEverywhere(fx.mnt, smbd.stateDir, { LD_PRELOAD: shim });
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.stdout).toMatch(/^not ready: .* reports st_nlink 0 and smbd runs without the nlink shim/);
      expect(r.stdout).toContain(`nlink0: seen (stat without the shim: st_nlink 0 on ${fx.mnt})`);
      expect(r.stdout).toMatch(/^smbd: pid \d+, nlink shim NOT loaded$/m);
    });
  });

  it('with the shim (LD_PRELOAD, glibc build): lists the whole tree and serves every byte', { timeout: SMBD_TIMEOUT }, async () => {
    await withSmbd(fx.mnt, shim, async (smbd) => {
      const ls = await smbclient(smbd.port, 'recurse; ls');
      expect(ls.code, ls.stdout + ls.stderr).toBe(0);
      for (const name of LISTED) expect(ls.stdout).toContain(name);
      expect(ls.stdout).toMatch(new RegExp(`episode\\.mkv\\s+\\w+\\s+${EPISODE_SIZE}\\s`));

      const got = await fetchAll(smbd.port);
      expect(got.episode.length).toBe(EPISODE_SIZE);
      expect(got.episode.equals(episodeBytes())).toBe(true);
      expect(got.nfo).toBe(NFO_TEXT);
      expect(got.hello).toBe(HELLO_TEXT);

      // The entrypoint turns the shim's log and marker on.
      expect(smbd.output()).toMatch(/^dfs-shim\[\d+\]: st_nlink 0 from \w+\(/m);
      const r = await readyEverywhere(fx.mnt, smbd.stateDir, { LD_PRELOAD: shim });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^ready: ${fx.mnt} is mounted \\(fuse\\.nlink0fs\\) and readable \\(2 entries\\)$`, 'm'));
      expect(r.stdout).toMatch(/^nlink0: seen \(shim marker .*nlink0-seen: st_nlink 0 seen by pid \d+ in \w+\)$/m);
      expect(r.stdout).toMatch(/^smbd: pid \d+, nlink shim loaded$/m);
    });
  });
});

describe.skipIf(!ok)('smbd sharing a FUSE filesystem that reports correct nlink', () => {
  let shim = '';
  let fx: Fixture;

  beforeAll(async () => {
    shim = await buildShim('glibc');
    fx = await mountFixture({ correctNlink: true });
  });

  it('works without the shim, and readiness reports that no nlink 0 was seen', { timeout: SMBD_TIMEOUT }, async () => {
    await withSmbd(fx.mnt, undefined, async (smbd) => {
      const got = await fetchAll(smbd.port);
      expect(got.episode.equals(episodeBytes())).toBe(true);
      const r = await readyEverywhere(fx.mnt, smbd.stateDir);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`nlink0: not seen (${fx.mnt} and its first entries report st_nlink >= 1)`);
      expect(r.stdout).toMatch(/^smbd: pid \d+, nlink shim NOT loaded$/m);
    });
  });

  it('with the shim nothing changes: same bytes, no log line, no marker', { timeout: SMBD_TIMEOUT }, async () => {
    await withSmbd(fx.mnt, shim, async (smbd) => {
      const ls = await smbclient(smbd.port, 'recurse; ls');
      expect(ls.code, ls.stdout + ls.stderr).toBe(0);
      for (const name of LISTED) expect(ls.stdout).toContain(name);
      const got = await fetchAll(smbd.port);
      expect(got.episode.equals(episodeBytes())).toBe(true);
      expect(smbd.output()).not.toContain('dfs-shim[');
      expect(existsSync(join(smbd.stateDir, 'shim', 'nlink0-seen'))).toBe(false);
      const r = await readyEverywhere(fx.mnt, smbd.stateDir);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('nlink0: not seen');
      expect(r.stdout).toMatch(/^smbd: pid \d+, nlink shim loaded$/m);
    });
  });
});

async function getHello(port: number): Promise<{ r: RunResult; text: string }> {
  const file = join(tempDir('hello'), 'hello.txt');
  const r = await smbclient(port, `get hello.txt "${file}"`);
  return { r, text: existsSync(file) ? readFileSync(file, 'utf8') : '' };
}

describe.skipIf(!ok)('smbd refuses the share while its path is not the FUSE mount', () => {
  it('connects with the FUSE mount in place, refuses the tree connect once it is unmounted (the empty directory left), connects again once it is back', { timeout: SMBD_TIMEOUT }, async () => {
    const shim = await buildShim('glibc');
    const fx = await mountFixture();
    await withSmbd(fx.mnt, shim, async (smbd) => {
      const before = await getHello(smbd.port);
      expect(before.r.code, before.r.stdout + before.r.stderr).toBe(0);
      expect(before.text).toBe(HELLO_TEXT);

      // The FUSE program goes away: its mount point is left, an empty directory smbd could serve.
      await fx.unmount();
      expect(readdirSync(fx.mnt)).toEqual([]);
      const gone = await smbclient(smbd.port, 'ls');
      expect(gone.code).not.toBe(0);
      expect(gone.stdout + gone.stderr).toContain('tree connect failed: NT_STATUS_ACCESS_DENIED');
      expect(gone.stdout + gone.stderr).not.toContain('blocks of size');
      // smbd's log says why: the check's own line, and Samba's.
      expect(smbd.output()).toContain(
        `dfs-smbd-ready: refusing a tree connect to ${fx.mnt}: ${fx.mnt} is not a mount point (the FUSE program has not mounted it, or it is not shared with this container)`,
      );
      expect(smbd.output()).toMatch(/root preexec gave 1 - failing connection/);
      process.stderr.write(`samba: the refused tree connect, as smbclient and smbd say it:\n${gone.stdout}${gone.stderr}${smbd.output()}\n`);
      // The readiness probe gives the same answer from the same rule.
      const r = await readyEverywhere(fx.mnt, smbd.stateDir);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^not ready: .* is not a mount point/);

      // Mounted again: the same smbd serves it again, with nothing restarted.
      const again = await mountFixture({ at: fx.mnt });
      const after = await getHello(smbd.port);
      expect(after.r.code, after.r.stdout + after.r.stderr).toBe(0);
      expect(after.text).toBe(HELLO_TEXT);
      await again.unmount();
    });
  });
});
