import { readdirSync, readFileSync, existsSync, unlinkSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureIo } from '../test/support/cli-io.js';
import { expectGolden } from '../test/support/golden.js';
import { runCli } from '../test/support/run-cli.js';
import { main } from './main.js';
import { formatManifests, parseManifests } from './manifests.js';

const GOLDEN_DIR = new URL('../test/golden/inject/', import.meta.url);
const INPUTS = readdirSync(GOLDEN_DIR)
  .filter((name) => name.endsWith('.yaml'))
  .sort();

/**
 * The exit code a golden input promises: a `# exit: N` comment, else 1 when stderr has an error
 * (a refusal) and 0 when it has none.
 */
function exitOf(name: string, stderr: string): number {
  const promised = /^# exit: (\d+)$/m.exec(readFileSync(new URL(name, GOLDEN_DIR), 'utf8'))?.[1];
  return promised === undefined ? (/^error: /m.test(stderr) ? 1 : 0) : Number(promised);
}

/** Extra arguments for a golden input, from a leading `# args: …` comment. */
function argsOf(name: string): string[] {
  const args = /^# args: (.*)$/m.exec(readFileSync(new URL(name, GOLDEN_DIR), 'utf8'))?.[1];
  return args === undefined ? [] : args.trim().split(/\s+/);
}

function docsOf(yaml: string): unknown[] {
  return parseManifests(yaml, 'x.yaml').filter((doc) => doc !== null);
}

async function inject(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(stdin === undefined ? {} : { stdin });
  const code = await main(['inject', ...args], io);
  return { code, out: io.out(), err: io.err() };
}

describe('dfs-injector inject golden files (test/golden/inject; UPDATE_GOLDEN=1 rewrites them)', () => {
  it('has the cases it promises', () => {
    expect(INPUTS).toEqual(
      expect.arrayContaining([
        'pod-sonarr.yaml',
        'deployment-radarr.yaml',
        'statefulset-decypharr.yaml',
        'cronjob-symlink-cleaner.yaml',
        'list.yaml',
        'configmap.yaml',
        'consumer-nfs-media.yaml',
        'role-none.yaml',
        'source-not-privileged.yaml',
        'invalid-pod-shape.yaml',
      ]),
    );
  });

  for (const name of INPUTS) {
    it(`turns ${name} into ${name}.injected`, async () => {
      const result = await runCli(['inject', '-f', `test/golden/inject/${name}`, ...argsOf(name)]);
      expectGolden(result.stdout, new URL(`${name}.injected`, GOLDEN_DIR));
      const stderrUrl = new URL(`${name}.stderr`, GOLDEN_DIR);
      if (process.env.UPDATE_GOLDEN === '1' && result.stderr === '') {
        if (existsSync(stderrUrl)) unlinkSync(stderrUrl);
      } else if (result.stderr !== '' || existsSync(stderrUrl)) {
        expectGolden(result.stderr, stderrUrl);
      }
      expect(result.code).toBe(exitOf(name, result.stderr));
    });
  }

  it('leaves every golden output unchanged when injected again', async () => {
    for (const name of INPUTS.filter((n) => readFileSync(new URL(`${n}.injected`, GOLDEN_DIR), 'utf8') !== '')) {
      const injected = readFileSync(new URL(`${name}.injected`, GOLDEN_DIR), 'utf8');
      const again = await inject(['-f', '-', ...argsOf(name)], injected);
      expect(again.code, name).toBe(0);
      expect(again.out, name).toBe(injected);
    }
  });
});

describe('dfs-injector inject', () => {
  const input = (name: string): string => readFileSync(new URL(name, GOLDEN_DIR), 'utf8');
  const output = (name: string): string => readFileSync(new URL(`${name}.injected`, GOLDEN_DIR), 'utf8');

  it('injects what helm template writes when a map or a list is left empty (null), instead of crashing', async () => {
    const helm = [
      '# Source: media/templates/sonarr.yaml',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: sonarr',
      'spec:',
      '  template:',
      '    metadata:',
      '      labels:',
      '        dfs-injector.io/role: consumer',
      '      annotations:',
      '        # {{- with .Values.podAnnotations }}',
      '    spec:',
      '      containers:',
      '        - name: sonarr',
      '          image: ghcr.io/home-operations/sonarr:4.0.16',
      '          volumeMounts:',
      '      volumes:',
      '',
    ].join('\n');
    const result = await inject(['-f', '-'], helm);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    const [out] = docsOf(result.out) as Record<string, any>[];
    const template = out?.spec.template;
    expect(Object.keys(template.metadata.annotations)).toEqual(['dfs-injector.io/status']);
    expect(template.spec.volumes).toEqual([{ name: 'dfs-injector-dfs', hostPath: { path: '/mnt/decypharr-dfs', type: 'Directory' } }]);
    expect(template.spec.containers[0].volumeMounts).toEqual([{ name: 'dfs-injector-dfs', mountPath: '/mnt/dfs', readOnly: true, mountPropagation: 'HostToContainer' }]);
  });

  it('writes a document that is not a workload back equal to its input', () => {
    expect(docsOf(output('configmap.yaml'))).toEqual(docsOf(input('configmap.yaml')));
    expect(output('configmap.yaml')).toContain("ENABLED: 'yes'");
    expect(output('configmap.yaml')).toContain("MODE: '0644'");
  });

  it('leaves a pod with role none alone, even in a default-role consumer namespace', () => {
    const [optedOut, defaulted] = docsOf(output('role-none.yaml')) as Record<string, any>[];
    expect(optedOut).toEqual(docsOf(input('role-none.yaml'))[0]);
    expect(defaulted?.spec.volumes).toContainEqual({ name: 'dfs-injector-dfs', hostPath: { path: '/mnt/decypharr-dfs', type: 'Directory' } });
  });

  it('keeps existing NFS mounts and never overwrites a mount already at the DFS path', () => {
    const before = docsOf(input('consumer-nfs-media.yaml'))[0] as Record<string, any>;
    const after = docsOf(output('consumer-nfs-media.yaml'))[0] as Record<string, any>;
    const spec = after.spec.template.spec;
    expect(spec.volumes.slice(0, 3)).toEqual(before.spec.template.spec.volumes);
    expect(spec.containers[1]).toEqual(before.spec.template.spec.containers[1]);
    expect(spec.containers[0].volumeMounts).toContainEqual({ name: 'media', mountPath: '/mnt/streaming-media' });
    expect(readFileSync(new URL('consumer-nfs-media.yaml.stderr', GOLDEN_DIR), 'utf8')).toMatch(/^warning: .*"exportarr".*\/mnt\/dfs/);
  });

  it('reads stdin with -f - and JSON as well as YAML', async () => {
    const json = readFileSync(new URL('../test/fixtures/pods/sonarr.json', import.meta.url), 'utf8');
    const result = await runCli(['inject', '-f', '-'], { input: json });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(output('pod-sonarr.yaml'));
  });

  it('writes the documents of several -f files in order', async () => {
    const result = await inject(['-f', join('test/golden/inject', 'configmap.yaml'), '-f', join('test/golden/inject', 'list.yaml')]);
    expect(result.out).toBe(`${output('configmap.yaml')}---\n${output('list.yaml')}`);
  });

  it('writes nothing to stdout and exits 1 when any document is refused', async () => {
    const result = await inject(['-f', 'test/golden/inject/deployment-radarr.yaml', '-f', 'test/golden/inject/source-not-privileged.yaml']);
    expect(result.code).toBe(1);
    expect(result.out).toBe('');
    expect(result.err).toMatch(/^error: test\/golden\/inject\/source-not-privileged\.yaml document 1: Pod\/decypharr-test: source container "decypharr" must set securityContext\.privileged: true/m);
  });

  it('exits 3 for a pod of the wrong shape read from stdin, and still names a refused document beside it', async () => {
    const refused = input('source-not-privileged.yaml');
    const cronJob = [
      'apiVersion: batch/v1',
      'kind: CronJob',
      'metadata: {name: cleaner}',
      'spec:',
      '  schedule: "@daily"',
      '  jobTemplate: {spec: {template: {spec: {containers: [{name: clean, image: busybox}], volumes: {name: data}}}}}',
      '',
    ].join('\n');
    const result = await inject(['-f', '-'], `${refused}---\n${cronJob}`);
    expect(result.code).toBe(3);
    expect(result.out).toBe('');
    expect(result.err.split('\n')).toEqual([
      expect.stringMatching(/^error: <stdin> document 1: Pod\/decypharr-test: source container "decypharr" must set securityContext.privileged: true/),
      'error: <stdin> document 2: CronJob/cleaner /spec/jobTemplate/spec/template: spec.volumes must be an array, not an object',
      '',
    ]);
  });

  it('reports invalid YAML with the file and line, and no stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dfs-inject-'));
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [sonarr\n');
    const result = await runCli(['inject', '-f', file]);
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^error: ${file.replaceAll('.', '\\.')}:5:1: invalid YAML: .+\\n$`));
  });

  it('names the file, line and field of an invalid config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dfs-inject-'));
    const config = join(dir, 'dfs-injector.yaml');
    await writeFile(config, 'hostPath: /mnt/decypharr-dfs\nconsumer:\n  mountPath: relative/path\n');
    const result = await runCli(['inject', '-f', 'test/golden/inject/deployment-radarr.yaml', '--config', config]);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe(`error: ${config}:3: consumer.mountPath: must be an absolute path without "..", ":" or a trailing "/"\n`);
  });

  it('applies a config file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dfs-inject-'));
    const config = join(dir, 'dfs-injector.yaml');
    await writeFile(config, 'hostPath: /srv/dfs\nconsumer:\n  mountPath: /data/dfs\n');
    const result = await inject(['-f', 'test/golden/inject/deployment-radarr.yaml', '--config', config]);
    expect(result.code).toBe(0);
    const spec = (docsOf(result.out)[0] as Record<string, any>).spec.template.spec;
    expect(spec.volumes).toContainEqual({ name: 'dfs-injector-dfs', hostPath: { path: '/srv/dfs', type: 'Directory' } });
    expect(spec.containers[0].volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/data/dfs' }));
  });

  it('injects 5,000 documents in well under 3 seconds of CPU', async () => {
    const deployment = input('deployment-radarr.yaml');
    const stream = Array.from({ length: 5000 }, (_, i) => deployment.replace('name: radarr\n', `name: radarr-${i}\n`)).join('---\n');
    const cpu = process.cpuUsage();
    const started = performance.now();
    const result = await inject(['-f', '-'], stream);
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    process.stderr.write(`inject: 5,000 documents (${(stream.length / 1e6).toFixed(1)} MB) in ${cpuMs.toFixed(0)} ms CPU, ${(performance.now() - started).toFixed(0)} ms wall\n`);
    expect(result.code).toBe(0);
    expect(result.out.split('\n---\n')).toHaveLength(5000);
    // CPU, not wall time: the CI machine is shared; wall time is printed above.
    expect(cpuMs).toBeLessThan(3000);
  });

  it('round-trips the golden outputs through its own reader and writer', () => {
    for (const name of INPUTS) {
      const text = output(name);
      expect(formatManifests(docsOf(text)), name).toBe(text);
    }
  });
});
