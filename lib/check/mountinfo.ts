// /proc/self/mountinfo as a container sees it (man 5 proc_pid_mountinfo):
//   36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
// The text comes from inside a pod, so it is treated as hostile: the caller bounds its size, each
// line is parsed in one pass, and a line that does not have the shape is skipped, not trusted.

export interface MountEntry {
  mountPoint: string;
  /** Per-mount options (field 6): ro, nosuid, nodev, noexec, relatime… */
  mountOptions: string[];
  fstype: string;
  source: string;
  /** Per-superblock options (the last field): for CIFS, vers=, cache=, soft, sec=… */
  superOptions: string[];
}

/** The kernel writes space, tab, newline and backslash in paths as \040, \011, \012, \134. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 4) continue;
    const mountPoint = fields[4] ?? '';
    if (!mountPoint.startsWith('/')) continue;
    entries.push({
      mountPoint: unescape(mountPoint),
      mountOptions: (fields[5] ?? '').split(','),
      fstype: fields[separator + 1] ?? '',
      source: unescape(fields[separator + 2] ?? ''),
      superOptions: (fields[separator + 3] ?? '').split(','),
    });
  }
  return entries;
}

/** "/mnt/dfs/" and "/mnt//dfs" name the mount point "/mnt/dfs". */
export function normalizeMountPath(path: string): string {
  const collapsed = path.replace(/\/+/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/$/, '') : collapsed;
}

/** The mount on top at `path` (the last one listed there), which is what a process there sees. */
export function topMountAt(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  const want = normalizeMountPath(path);
  let top: MountEntry | undefined;
  for (const entry of entries) if (entry.mountPoint === want) top = entry;
  return top;
}

/** Mounts strictly below `path`, in mountinfo order. */
export function mountsBelow(entries: readonly MountEntry[], path: string): MountEntry[] {
  const prefix = `${normalizeMountPath(path)}/`.replace(/^\/\/$/, '/');
  return entries.filter((e) => e.mountPoint.startsWith(prefix));
}

/** The value of `key=` in an option list, or undefined; a bare `key` gives ''. */
export function optionValue(options: readonly string[], key: string): string | undefined {
  for (const option of options) {
    if (option === key) return '';
    if (option.startsWith(`${key}=`)) return option.slice(key.length + 1);
  }
  return undefined;
}
