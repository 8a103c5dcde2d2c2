import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from './kustomize.js';

// No container engine runs here, so the webhook image is checked in two halves: the Dockerfile
// says what it says (stages, files, user, entrypoint), and the same steps, run outside a
// container on a copy of the repository, give a dist/ plus production-only node_modules from
// which the entrypoint command starts.

interface Stage {
  from: string;
  name: string | undefined;
  instructions: { op: string; args: string }[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', rest = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    const upper = op.toUpperCase();
    if (upper === 'FROM') {
      const [from = '', , name] = rest.split(/\s+/);
      stages.push({ from, name, instructions: [] });
    } else if (upper === 'ARG' && stages.length === 0) {
      const [key = '', value = ''] = rest.split('=');
      args[key] = value;
    } else {
      stages.at(-1)?.instructions.push({ op: upper, args: rest });
    }
  }
  return { args, stages };
}

const DOCKERFILE = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const { args: ARGS, stages: STAGES } = parseDockerfile(DOCKERFILE);
const build = STAGES[0]!;
const final = STAGES.at(-1)!;
const image = (stage: Stage): string => stage.from.replace(/\$\{(\w+)\}/g, (_, key: string) => ARGS[key] ?? '');

/** Sources of the build stage's COPY instructions from the build context. */
function contextSources(): string[] {
  return build.instructions
    .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
    .flatMap((i) => i.args.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1));
}

describe('the webhook Dockerfile', () => {
  it('builds and runs on a Node 20 Alpine image, pinned to an Alpine release', () => {
    expect(STAGES).toHaveLength(2);
    for (const stage of STAGES) expect(image(stage)).toMatch(/^node:20(\.\d+){0,2}-alpine3\.\d+$/);
    expect(build.name).toBe('build');
  });

  it('installs with npm ci, builds, then prunes the dev dependencies', () => {
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ');
    const order = ['npm ci', 'npm run build', 'npm prune --omit=dev'].map((step) => runs.indexOf(step));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('copies only package.json, the production node_modules and dist/ into the final image', () => {
    const copies = final.instructions.filter((i) => i.op === 'COPY');
    expect(copies.every((c) => c.args.includes('--from=build'))).toBe(true);
    const destinations = copies.map((c) => c.args.split(/\s+/).at(-1));
    expect(destinations.sort()).toEqual(['./dist', './node_modules', './package.json']);
  });

  it('runs as a numeric non-root user that the webhook Deployment asks for, with node dist/cli.js serve', () => {
    const user = final.instructions.filter((i) => i.op === 'USER').at(-1)?.args ?? '';
    const [uid = '', gid = ''] = user.split(':');
    // Numeric, or the kubelet cannot check runAsNonRoot against the image.
    expect(uid).toMatch(/^[1-9]\d*$/);
    const deployment = parse(readFileSync(join(REPO_ROOT, 'manifests', 'base', 'deployment.yaml'), 'utf8'));
    const podSecurity = deployment.spec.template.spec.securityContext;
    expect(String(podSecurity.runAsUser)).toBe(uid);
    expect(String(podSecurity.runAsGroup)).toBe(gid);
    const entrypoint = JSON.parse(final.instructions.find((i) => i.op === 'ENTRYPOINT')!.args);
    const cmd = JSON.parse(final.instructions.find((i) => i.op === 'CMD')!.args);
    expect(entrypoint).toEqual(['node', '/app/dist/cli.js']);
    expect(cmd).toEqual(['serve']);
    expect(deployment.spec.template.spec.containers[0].args[0]).toBe('serve');
    expect(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).bin['dfs-injector']).toBe('dist/cli.js');
  });

  it('copies every source tsconfig.build.json compiles, and .dockerignore lets each one through', () => {
    const sources = contextSources();
    for (const source of sources) expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
    const include: string[] = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')).include;
    const copied = sources.map((s) => s.replace(/\/$/, ''));
    for (const pattern of include) expect(copied, pattern).toContain(pattern.replace(/\/\*\*\/\*\.ts$/, ''));
    // The .dockerignore is an allow-list: everything is excluded, then each source is let back in.
    const rules = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    expect(rules).toContain('**');
    for (const source of sources) expect(rules, source).toContain(`!${source}`);
  });
});

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function run(command: string, argv: string[], cwd: string): string {
  const result = spawnSync(command, argv, { cwd, encoding: 'utf8', timeout: 600_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (result.status !== 0) throw new Error(`${command} ${argv.join(' ')} failed (${result.status ?? result.signal}) in ${cwd}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

describe('the webhook image contents, assembled outside a container', () => {
  it('start `node dist/cli.js --version` from dist/ and production dependencies alone', { timeout: 900_000 }, () => {
    const root = mkdtempSync(join(tmpdir(), 'dfs-image-'));
    scratch.push(root);
    const src = join(root, 'src');
    const app = join(root, 'app');
    mkdirSync(src);
    // The build stage: its context files, and node_modules as `npm ci` leaves them (copied, not
    // installed again: no registry needed, and the lockfile is the same).
    for (const source of contextSources()) cpSync(join(REPO_ROOT, source), join(src, source), { recursive: true, filter: (p) => !p.endsWith('.test.ts') });
    cpSync(join(REPO_ROOT, 'node_modules'), join(src, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    run('npm', ['run', 'build', '--silent'], src);
    run('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], src);
    expect(existsSync(join(src, 'node_modules', 'typescript')), 'npm prune left a dev dependency').toBe(false);
    // The final stage.
    mkdirSync(app);
    for (const item of ['package.json', 'node_modules', 'dist']) cpSync(join(src, item), join(app, item), { recursive: true, verbatimSymlinks: true });
    const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
    // From /, as the container does, so nothing resolves through the repository's node_modules.
    const out = run('node', [join(app, 'dist', 'cli.js'), '--version'], '/');
    expect(out).toContain(version);
  });
});
