// What a release publishes and what the repository says it publishes agree: the image tags in the
// manifests, the config defaults and the docs, the release workflow's matrix, and the Node.js
// lines CI tests against package.json's engines. The workflows themselves pass actionlint.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defaultConfig } from '../../lib/config.js';
import { needs } from '../support/prereq.js';
import { findTool } from '../support/tools.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; engines: { node: string } };
const VERSION = pkg.version;
const REGISTRY = 'ghcr.io/dfs-injector';
/** Image name in the registry -> Dockerfile and build context. */
const IMAGES = {
  'dfs-injector': { file: 'Dockerfile', context: '.' },
  smbd: { file: 'shim/Dockerfile', context: 'shim' },
  mounter: { file: 'manifests/mounter/Dockerfile', context: 'manifests/mounter' },
} as const;

describe('image tags', () => {
  it('the manifests run the images of this version', () => {
    const deployment = parse(read('manifests/base/deployment.yaml'));
    expect(deployment.spec.template.spec.containers[0].image).toBe(`${REGISTRY}/dfs-injector:${VERSION}`);
    const daemonset = parse(read('manifests/mounter/daemonset.yaml'));
    expect(daemonset.spec.template.spec.containers[0].image).toBe(`${REGISTRY}/mounter:${VERSION}`);
    const config = parse(read('manifests/base/config.yaml'));
    expect(config.source.sidecar.image).toBe(`${REGISTRY}/smbd:${VERSION}`);
  });

  it('the config default injects the smbd image of this version', () => {
    expect(defaultConfig.source.sidecar.image).toBe(`${REGISTRY}/smbd:${VERSION}`);
  });

  it('the chart deploys the images of this version and is released with them', () => {
    const chart = parse(read('charts/dfs-injector/Chart.yaml'));
    expect(chart.appVersion).toBe(VERSION);
    const values = parse(read('charts/dfs-injector/values.yaml'));
    expect(values.webhook.image).toMatchObject({ repository: `${REGISTRY}/dfs-injector`, tag: VERSION });
    expect(values.mounter.image).toMatchObject({ repository: `${REGISTRY}/mounter`, tag: VERSION });
    expect(values.config.source.sidecar.image).toBe(`${REGISTRY}/smbd:${VERSION}`);
  });

  it('every image the docs, Dockerfiles, manifests and chart name is one a release publishes, at this version', () => {
    // Every Markdown file and Dockerfile outside the tests and build output, and every file of
    // the manifests and the chart: a page added later is checked without being listed here.
    const skip = new Set(['node_modules', '.git', 'dist', 'dist-image', '.dev', '.tmp', 'test']);
    const files = (dir: string): string[] =>
      readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? (skip.has(e.name) ? [] : files(join(dir, e.name))) : e.isFile() ? [join(dir, e.name)] : [],
      );
    const docs = files('').filter((f) => /\.md$|(^|\/)Dockerfile$/.test(f) || (/^(manifests|charts)\//.test(f) && /\.(ya?ml|json)$/.test(f)));
    for (const expected of ['README.md', 'docs/images.md', 'Dockerfile', 'shim/Dockerfile', 'manifests/base/deployment.yaml', 'charts/dfs-injector/values.yaml']) expect(docs).toContain(expected);
    let named = 0;
    for (const doc of docs) {
      for (const m of read(doc).matchAll(/ghcr\.io\/dfs-injector\/([\w.-]+)(?::([\w.-]+))?/g)) {
        named++;
        expect(Object.keys(IMAGES), `${doc}: ${m[0]}`).toContain(m[1]);
        if (m[2] !== undefined && m[2] !== 'TAG') expect(m[2], `${doc}: ${m[0]}`).toBe(VERSION);
      }
    }
    expect(named).toBeGreaterThan(5);
  });

  it('the release workflow builds exactly the three images, for amd64 and arm64, tagged with package.json\'s version', () => {
    const workflow = parse(read('.github/workflows/release.yml'));
    expect(workflow.on.push.tags).toEqual(['v*.*.*']);
    const job = workflow.jobs.images;
    expect(job.needs).toBe('test');
    expect(workflow.jobs.test.uses).toBe('./.github/workflows/ci.yml');
    const matrix = job.strategy.matrix.include as { image: string; context: string; file: string }[];
    expect(Object.fromEntries(matrix.map((m) => [m.image, { file: m.file, context: m.context }]))).toEqual(IMAGES);
    const steps = job.steps as { id?: string; uses?: string; run?: string; with?: Record<string, unknown> }[];
    expect(steps.find((s) => s.id === 'version')?.run).toContain('"v$version"');
    const build = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'))!;
    expect(build.with).toMatchObject({
      platforms: 'linux/amd64,linux/arm64',
      push: true,
      sbom: true,
      provenance: 'mode=max',
      tags: `${REGISTRY}/\${{ matrix.image }}:\${{ steps.version.outputs.version }}`,
    });
  });
});

describe('supported Node.js lines', () => {
  const lines = read('test/tools/node-versions')
    .split('\n')
    .filter((l) => /^\d/.test(l));

  it('CI tests one release of exactly each line package.json engines admits', () => {
    // engines is a list of caret ranges, one per line: ^MAJOR.MINOR.PATCH || ...
    const ranges = pkg.engines.node.split('||').map((r) => r.trim());
    for (const r of ranges) expect(r).toMatch(/^\^\d+\.\d+\.\d+$/);
    const min = new Map(ranges.map((r) => r.slice(1).split('.').map(Number) as [number, number, number]).map((v) => [v[0], v]));
    expect(lines.map((l) => Number(l.split('.')[0]))).toEqual([...min.keys()]);
    for (const line of lines) {
      const [major, minor, patch] = line.split('.').map(Number) as [number, number, number];
      const [, minMinor, minPatch] = min.get(major)!;
      expect(minor * 1e6 + patch, `${line} is below the engines range`).toBeGreaterThanOrEqual(minMinor * 1e6 + minPatch);
    }
  });

  it('the webhook image runs a line CI tests', () => {
    const base = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(read('Dockerfile'))?.[1];
    expect(lines.map((l) => l.split('.')[0])).toContain(base);
  });

  // The Node.js release schedule (github.com/nodejs/Release, schedule.json): when each line
  // became an LTS line and when its support ends. A line past its end fails the first test below
  // on that day: the admission path must not run an unsupported runtime.
  const SCHEDULE: Record<string, { lts: string; end: string }> = {
    '20': { lts: '2023-10-24', end: '2026-04-30' },
    '22': { lts: '2024-10-29', end: '2027-04-30' },
    '24': { lts: '2025-10-28', end: '2028-04-30' },
    '26': { lts: '2026-10-28', end: '2029-04-30' },
  };
  const today = new Date().toISOString().slice(0, 10);

  it('the webhook image runs an LTS line that is supported today (Active or Maintenance LTS)', () => {
    const base = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(read('Dockerfile'))?.[1] ?? '';
    const line = SCHEDULE[base];
    expect(line, `Node.js ${base} is not in this test's release schedule: add it`).toBeDefined();
    expect(today >= line!.lts, `Node.js ${base} is not an LTS line until ${line!.lts}`).toBe(true);
    expect(today < line!.end, `Node.js ${base} reached its end of life on ${line!.end}: move ARG NODE_IMAGE in Dockerfile to a supported LTS line`).toBe(true);
  });

  it('the README says which of the lines engines admits have reached their end of life', () => {
    const readme = read('README.md').replace(/\s+/g, ' ');
    for (const line of lines.map((l) => l.split('.')[0]!)) {
      expect(SCHEDULE[line], `Node.js ${line} is not in this test's release schedule: add it`).toBeDefined();
      if (today >= SCHEDULE[line]!.end) expect(readme.includes(`Node.js ${line} reached its end of life`), `README.md must say "Node.js ${line} reached its end of life"`).toBe(true);
    }
  });
});

const lint = findTool('actionlint', { onPath: true });
describe.runIf(needs('actionlint', lint !== undefined, 'bash test/tools/install-actionlint.sh (builds it from the Go module proxy)'))('the GitHub workflows', () => {
  it('pass actionlint, with shellcheck on their run steps', () => {
    const files = readdirSync(join(ROOT, '.github', 'workflows')).filter((f) => /\.ya?ml$/.test(f));
    expect(files.sort()).toEqual(['ci.yml', 'release.yml']);
    const r = spawnSync(lint!, ['-no-color', ...files.map((f) => join('.github', 'workflows', f))], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

const haveShellcheck = spawnSync('sh', ['-c', 'command -v shellcheck'], { encoding: 'utf8' }).status === 0;
describe.runIf(needs('shellcheck', haveShellcheck, 'apt-get install -y shellcheck'))('the build and CI scripts', () => {
  it('are shellcheck-clean', () => {
    const scripts = ['.ci/run', 'test/setup.sh', 'test/images/build.sh', 'test/tools/install-node.sh', 'test/tools/install-actionlint.sh', 'test/tools/install-cert-manager-crds.sh'];
    const r = spawnSync('shellcheck', ['-s', 'bash', ...scripts], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
