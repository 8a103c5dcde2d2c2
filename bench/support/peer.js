// The controller-runtime peer (bench/peer): built with Go from the module proxy, as test
// infrastructure, and cached outside the repository by the hash of its sources and the Go
// version, so a second run starts it at once.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './procs.js';
import { ROOT } from './setup.js';

const PEER_DIR = fileURLToPath(new URL('bench/peer/', ROOT));
const SOURCES = ['go.mod', 'go.sum', 'main.go'];

function goBinary() {
  for (const candidate of [process.env.GO, '/usr/local/go/bin/go']) if (candidate && existsSync(candidate)) return candidate;
  return 'go';
}

/**
 * The peer's binary, built on first use: ~/.cache/dfs-injector/bench-peer/KEY/peer.
 * @returns {Promise<{ path: string, builtMs?: number, goVersion: string, controllerRuntime: string }>}
 */
export async function peerBinary(log) {
  const go = goBinary();
  const version = await run(go, ['env', 'GOVERSION'], { timeoutMs: 30_000 }).catch(() => undefined);
  if (version === undefined || version.code !== 0) throw new Error('Go is needed to build the controller-runtime peer (bench/peer): install Go, or pass --no-peer');
  const goVersion = version.stdout.trim();
  const hash = createHash('sha256').update(goVersion);
  for (const file of SOURCES) hash.update(file).update(readFileSync(join(PEER_DIR, file)));
  const key = hash.digest('hex').slice(0, 16);
  const controllerRuntime = /sigs\.k8s\.io\/controller-runtime (v\S+)/.exec(readFileSync(join(PEER_DIR, 'go.mod'), 'utf8'))?.[1] ?? 'unknown';
  const dir = join(process.env.DFS_CACHE_DIR ?? join(homedir(), '.cache/dfs-injector'), 'bench-peer', key);
  const path = join(dir, 'peer');
  if (existsSync(path)) return { path, goVersion, controllerRuntime };
  mkdirSync(dir, { recursive: true });
  log(`peer: building bench/peer (controller-runtime ${controllerRuntime}, ${goVersion}) into ${dir}; the first build takes minutes`);
  const partial = join(dir, `peer.partial-${process.pid}`);
  const built = await run(go, ['build', '-trimpath', '-o', partial, '.'], { timeoutMs: 30 * 60_000, cwd: PEER_DIR });
  if (built.code !== 0) throw new Error(`go build of bench/peer failed (${built.code}):\n${built.stderr.slice(-3000)}`);
  renameSync(partial, path);
  log(`peer: built in ${(built.ms / 1000).toFixed(0)} s`);
  return { path, builtMs: built.ms, goVersion, controllerRuntime };
}
