import { mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A directory laid out the way the kubelet mounts a Secret or ConfigMap volume:
 *
 *   ..2025_11_22_11_33_00.123/tls.crt   the real files, one timestamped directory per version
 *   ..data -> ..2025_11_22_11_33_00.123 switched atomically (rename of a new symlink over it)
 *   tls.crt -> ..data/tls.crt           stable names the container reads
 */
export interface SecretDir {
  readonly dir: string;
  path(name: string): string;
  /** Publishes a new version of every file at once, as the kubelet's AtomicWriter does. */
  update(files: Record<string, string>): Promise<void>;
  remove(): Promise<void>;
}

let version = 0;

export async function createSecretDir(files: Record<string, string>): Promise<SecretDir> {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-secret-'));

  async function writeVersion(contents: Record<string, string>): Promise<string> {
    version += 1;
    const name = `..${new Date().toISOString().replace(/[-:T]/g, '_').replace('Z', '')}.${process.pid}.${version}`;
    await mkdir(join(dir, name));
    await Promise.all(Object.entries(contents).map(([file, text]) => writeFile(join(dir, name, file), text)));
    return name;
  }

  const first = await writeVersion(files);
  await symlink(first, join(dir, '..data'));
  await Promise.all(Object.keys(files).map((file) => symlink(join('..data', file), join(dir, file))));

  return {
    dir,
    path: (name) => join(dir, name),
    async update(contents) {
      const previous = await readlink(join(dir, '..data'));
      const next = await writeVersion(contents);
      await symlink(next, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      await rm(join(dir, previous), { recursive: true, force: true });
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
