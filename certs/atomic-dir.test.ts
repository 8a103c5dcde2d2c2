import { watch } from 'node:fs';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { writeAtomicDir } from './atomic-dir.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dfs-atomic-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeAtomicDir', () => {
  it('lays the files out as the kubelet does: stable names through a ..data symlink', async () => {
    await writeAtomicDir(dir, { 'tls.crt': 'cert 1', 'tls.key': 'key 1' });
    expect(await readlink(join(dir, 'tls.crt'))).toBe(join('..data', 'tls.crt'));
    expect(await readlink(join(dir, '..data'))).toMatch(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\./);
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe('cert 1');
    expect((await stat(join(dir, 'tls.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'tls.crt'))).mode & 0o777).toBe(0o644);
  });

  it('swaps a new version in by renaming ..data, which a directory watch sees, and removes the old one', async () => {
    await writeAtomicDir(dir, { 'tls.crt': 'cert 1', 'tls.key': 'key 1' });
    const first = await readlink(join(dir, '..data'));
    const linkBefore = await lstat(join(dir, 'tls.crt'));

    const events: string[] = [];
    const watcher = watch(dir, (_event, name) => events.push(String(name)));
    try {
      await writeAtomicDir(dir, { 'tls.crt': 'cert 2', 'tls.key': 'key 2' });
      await vi.waitFor(() => expect(events).toContain('..data'), { timeout: 5000 });
    } finally {
      watcher.close();
    }

    expect(await readlink(join(dir, '..data'))).not.toBe(first);
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe('cert 2');
    expect(await readFile(join(dir, 'tls.key'), 'utf8')).toBe('key 2');
    // The stable names are the same links: only ..data moved.
    expect((await lstat(join(dir, 'tls.crt'))).ino).toBe(linkBefore.ino);
    const versions = (await readdir(dir)).filter((name) => name.startsWith('..') && name !== '..data');
    expect(versions).toEqual([await readlink(join(dir, '..data'))]);
  });

  it('replaces regular files left by a non-atomic writer', async () => {
    await writeFile(join(dir, 'tls.crt'), 'plain');
    await writeAtomicDir(dir, { 'tls.crt': 'cert 1' });
    expect(await readlink(join(dir, 'tls.crt'))).toBe(join('..data', 'tls.crt'));
    expect(await readFile(join(dir, 'tls.crt'), 'utf8')).toBe('cert 1');
  });

  it('removes the names a new version no longer has', async () => {
    await writeAtomicDir(dir, { 'tls.crt': 'cert 1', 'extra.pem': 'x' });
    await writeAtomicDir(dir, { 'tls.crt': 'cert 2' });
    expect((await readdir(dir)).filter((name) => !name.startsWith('..')).sort()).toEqual(['tls.crt']);
  });

  it('creates the directory when it does not exist yet', async () => {
    const nested = join(dir, 'run', 'tls');
    await writeAtomicDir(nested, { 'tls.crt': 'cert' });
    expect(await readFile(join(nested, 'tls.crt'), 'utf8')).toBe('cert');
  });
});
