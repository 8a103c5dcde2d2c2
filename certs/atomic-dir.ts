import { lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

const DATA_LINK = '..data';
const DATA_LINK_TMP = '..data_tmp';

/**
 * Publishes `files` into `dir` the way the kubelet updates a Secret volume, so that a reader
 * never sees half of a new certificate with half of an old key:
 *
 *   ..2026_11_22_11_33_00.AbCdEf/tls.crt  the real files, one timestamped directory per version
 *   ..data -> ..2026_11_22_11_33_00.AbCdEf switched by renaming a new symlink over it
 *   tls.crt -> ..data/tls.crt              stable names the server reads
 *
 * The rename of `..data` is one event in `dir`, which is what the webhook's directory watch
 * reacts to. Files whose name ends in `.key` are written 0600, the others 0644.
 */
export async function writeAtomicDir(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const previous = await readlink(join(dir, DATA_LINK)).catch(ignoreMissing);
  const version = await mkdtemp(join(dir, `..${timestamp()}.`));
  await Promise.all(
    Object.entries(files).map(([name, text]) => {
      checkName(name);
      return writeFile(join(version, name), text, { mode: name.endsWith('.key') ? 0o600 : 0o644 });
    }),
  );

  // A crash between these two steps leaves a stray ..data_tmp, which the next write replaces.
  await rm(join(dir, DATA_LINK_TMP), { force: true });
  await symlink(basename(version), join(dir, DATA_LINK_TMP));
  await rename(join(dir, DATA_LINK_TMP), join(dir, DATA_LINK));

  for (const name of Object.keys(files)) await ensureLink(dir, name);
  if (previous !== undefined) await removeStaleLinks(dir, previous, files);
  await removeOldVersions(dir, basename(version));
}

async function ensureLink(dir: string, name: string): Promise<void> {
  const target = join(DATA_LINK, name);
  const path = join(dir, name);
  const existing = await readlink(path).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    // EINVAL: a regular file, left by something that wrote the directory non-atomically.
    if (code === 'ENOENT' || code === 'EINVAL') return undefined;
    throw error;
  });
  if (existing === target) return;
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, path);
}

/** Names the previous version had and this one does not would otherwise dangle. */
async function removeStaleLinks(dir: string, previous: string, files: Readonly<Record<string, string>>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(join(dir, previous));
  } catch (error) {
    ignoreMissing(error);
    return;
  }
  for (const name of names) {
    if (name in files) continue;
    const link = await readlink(join(dir, name)).catch(() => undefined);
    if (link === join(DATA_LINK, name)) await rm(join(dir, name), { force: true });
  }
}

async function removeOldVersions(dir: string, current: string): Promise<void> {
  for (const entry of await readdir(dir)) {
    if (!entry.startsWith('..') || entry === current || entry === DATA_LINK || entry === DATA_LINK_TMP) continue;
    const stat = await lstat(join(dir, entry)).catch(() => undefined);
    if (stat?.isDirectory() === true) await rm(join(dir, entry), { recursive: true, force: true });
  }
}

function checkName(name: string): void {
  if (name === '' || name.startsWith('.') || name.includes('/')) {
    throw new Error(`file name ${JSON.stringify(name)} must be a plain name that does not start with "."`);
  }
}

function timestamp(): string {
  // The kubelet's format: ..2006_01_02_15_04_05.<random>
  return new Date().toISOString().slice(0, 19).replace(/[-T:]/g, '_');
}

function ignoreMissing(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw error;
}
