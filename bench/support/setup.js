// What every benchmark entry point needs first: the built CLI, h2load, a certificate for
// 127.0.0.1 from the CLI itself, the request body, and a config file.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { admissionReviewFor, loadPod } from './fixtures.js';
import { run } from './procs.js';

export const ROOT = new URL('../../', import.meta.url);
export const BARE_SERVER = fileURLToPath(new URL('bench/bare-server.js', ROOT));
export const FASTIFY_SERVER = fileURLToPath(new URL('bench/fastify-server.js', ROOT));

/**
 * The build under test: dist/ by default; another directory compares builds (it must sit where
 * Node finds this repository's node_modules, e.g. under the repository, or beside a symlink).
 * @param {string | undefined} dir
 */
export function buildUnderTest(dir) {
  const path = resolve(fileURLToPath(ROOT), dir ?? 'dist');
  return { dist: pathToFileURL(`${path}/`), cli: join(path, 'cli.js') };
}

export function preflight(cli) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first (npm run bench does)`);
  try {
    execFileSync('h2load', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('h2load is not installed: apt-get install -y nghttp2-client');
  }
}

export async function prepare(cli, { keep = false } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'dfs-bench-'));
  const certDir = join(dir, 'certs');
  const gen = await run(process.execPath, [cli, 'certs', 'generate', '--ip', '127.0.0.1', '--out', certDir], { timeoutMs: 60_000 });
  if (gen.code !== 0) throw new Error(`certs generate failed (${gen.code}):\n${gen.stderr}`);
  const certs = { cert: join(certDir, 'tls.crt'), key: join(certDir, 'tls.key'), ca: join(certDir, 'ca.crt') };
  const ca = await readFile(certs.ca);

  const review = admissionReviewFor(loadPod('sonarr'));
  const body = JSON.stringify(review);
  const bodyFile = join(dir, 'review.json');
  await writeFile(bodyFile, body);

  // The embedded defaults, but read from a file, as the Helm chart's ConfigMap is.
  const config = join(dir, 'config.yaml');
  await writeFile(config, '# dfs-injector benchmark: the embedded defaults\n{}\n');

  return {
    dir,
    certs,
    ca,
    body,
    bodyFile,
    config,
    cleanup: async () => {
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function machine() {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const h2loadVersion = execFileSync('h2load', ['--version'], { encoding: 'utf8' }).trim();
  const git = (args) => {
    try {
      return execFileSync('git', args, { cwd: fileURLToPath(ROOT), encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    cpuModel: model,
    cores: cpus().length,
    node: process.version,
    h2load: h2loadVersion,
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    loadAvgAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
}
