import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from './kustomize.js';

// What the webhook Dockerfile says (base, stages, files, user, entrypoint) against the Deployment
// and the supported Node.js lines. The image itself is built and run in test/images/.

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
  it('builds and runs on the official Node.js image of an LTS line CI tests, on Debian trixie slim', () => {
    expect(STAGES).toHaveLength(2);
    for (const stage of STAGES) expect(image(stage)).toMatch(/^node:\d+-trixie-slim$/);
    expect(build.name).toBe('build');
    const major = Number(/^node:(\d+)-/.exec(image(final))![1]);
    // Even majors become LTS; 20 is past its end of life, so it may stay in engines for the
    // development commands but never be what the image runs.
    expect(major % 2).toBe(0);
    expect(major).toBeGreaterThanOrEqual(22);
    const lines = readFileSync(join(REPO_ROOT, 'test', 'tools', 'node-versions'), 'utf8')
      .split('\n')
      .filter((l) => /^\d/.test(l))
      .map((l) => Number(l.split('.')[0]));
    expect(lines).toContain(major);
  });

  it('installs with npm ci, builds the bundle, then prunes the dev dependencies', () => {
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ');
    const order = ['npm ci', 'npm run bundle', 'npm prune --omit=dev'].map((step) => runs.indexOf(step));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // `npm run bundle` compiles first: the image runs what the tests run, bundled.
    const scripts = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    expect(scripts.bundle).toMatch(/^npm run build --silent && .*rolldown -c rolldown\.config\.js$/);
    expect(final.instructions.find((i) => i.op === 'COPY' && i.args.includes('./dist'))?.args).toContain('/src/dist-image ./dist');
  });

  it('ships a compile cache made by the uid that runs, read-only, with the start-up path itself', () => {
    const env = final.instructions.filter((i) => i.op === 'ENV').map((i) => i.args);
    expect(env).toContain('NODE_COMPILE_CACHE=/app/.compile-cache');
    const user = final.instructions.filter((i) => i.op === 'USER').at(-1)?.args ?? '';
    const warm = final.instructions.find((i) => i.op === 'RUN' && i.args.includes('.compile-cache'))?.args ?? '';
    const [uid = '', gid = ''] = user.split(':');
    expect(warm).toContain(`setpriv --reuid=${uid} --regid=${gid}`);
    expect(warm).toContain('/app/dist/cli.js serve --tls-secret');
    expect(warm).toContain('chmod -R a+rX,a-w .compile-cache');
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
