import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

function executable(path: string | undefined): path is string {
  if (path === undefined || path === '') return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * A tool built by test/tools/install-go-tool.sh: $DFS_<NAME>, then the tools cache
 * ($DFS_TOOLS_BIN_DIR or ~/.cache/dfs-injector/bin), then, with `onPath`, the PATH.
 */
export function findTool(name: string, options: { onPath?: boolean; env?: NodeJS.ProcessEnv } = {}): string | undefined {
  const env = options.env ?? process.env;
  const binDir = env.DFS_TOOLS_BIN_DIR ?? join(homedir(), '.cache', 'dfs-injector', 'bin');
  const found = [env[`DFS_${name.toUpperCase()}`], join(binDir, name)].find(executable);
  if (found !== undefined || options.onPath !== true) return found;
  const lookup = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', name], { encoding: 'utf8' });
  const onPath = lookup.stdout.trim();
  return lookup.status === 0 && executable(onPath) ? onPath : undefined;
}
