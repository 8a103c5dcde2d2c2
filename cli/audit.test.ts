import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { RULE_IDS } from '../lib/audit/index.js';
import { captureIo } from '../test/support/cli-io.js';
import { expectGolden } from '../test/support/golden.js';
import { run } from './audit.js';

const GOLDEN = new URL('../test/golden/audit/', import.meta.url);
const path = (name: string): string => new URL(name, GOLDEN).pathname;
const CONFIG = path('config.yaml');

async function audit(argv: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(stdin === undefined ? {} : { stdin });
  const code = await run(argv, io, () => {
    throw new Error('this test audits manifests; it must not read a cluster');
  });
  return { code, out: io.out(), err: io.err() };
}

describe('audit golden output', () => {
  for (const set of ['violations', 'clean'] as const) {
    for (const [format, ext] of [['table', 'table'], ['json', 'json'], ['policyreport', 'policyreport.yaml'], ['openreports', 'openreports.yaml']] as const) {
      it(`renders ${set}.yaml as ${format}`, async () => {
        const result = await audit(['-f', path(`${set}.yaml`), '--config', CONFIG, '-o', format, '--fail-on', 'none']);
        expect(result.err).toBe('');
        expect(result.code).toBe(0);
        expectGolden(result.out.replaceAll(GOLDEN.pathname, 'test/golden/audit/'), new URL(`${set}.${ext}`, GOLDEN));
      });
    }
  }

  it('finds every rule exactly once in violations.yaml', async () => {
    const { out } = await audit(['-f', path('violations.yaml'), '--config', CONFIG, '-o', 'json', '--fail-on', 'none']);
    const report = JSON.parse(out);
    expect(report.findings.map((f: { rule: string }) => f.rule).sort()).toEqual([...RULE_IDS]);
    expect(report.skipped).toEqual([]);
  });

  it('reports nothing for clean.yaml, and says which rules it could not check', async () => {
    const { out } = await audit(['-f', path('clean.yaml'), '--config', CONFIG, '-o', 'json']);
    const report = JSON.parse(out);
    expect(report.findings).toEqual([]);
    expect(report.skipped).toEqual([
      { rules: ['DFS004', 'DFS008', 'DFS010'], reason: expect.stringContaining('namespace monitoring are not known') },
      { rules: ['DFS009'], reason: expect.stringContaining('node state is unknown') },
    ]);
  });

  it('writes PolicyReports that carry the wgpolicyk8s.io/v1alpha2 fields Policy Reporter reads', async () => {
    const { out } = await audit(['-f', path('violations.yaml'), '--config', CONFIG, '-o', 'policyreport', '--fail-on', 'none']);
    const reports = parseAllDocuments(out).map((d) => d.toJS());
    const kinds = reports.map((r) => `${r.kind}/${r.metadata.namespace ?? ''}`);
    expect(kinds).toEqual(['PolicyReport/legacy', 'PolicyReport/media', 'PolicyReport/media-restricted', 'ClusterPolicyReport/']);
    for (const report of reports) {
      expect(report.apiVersion).toBe('wgpolicyk8s.io/v1alpha2');
      const counted = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 } as Record<string, number>;
      for (const r of report.results) {
        expect(r).toMatchObject({ policy: 'dfs-injector', source: 'dfs-injector', timestamp: { seconds: Math.floor(Date.parse('2026-11-20T08:00:00Z') / 1000), nanos: 250_000_000 } });
        expect(['fail', 'warn']).toContain(r.result);
        expect(r.resources).toHaveLength(1);
        counted[r.result] = (counted[r.result] ?? 0) + 1;
      }
      expect(report.summary).toEqual(counted);
    }
    const node = reports.at(-1).results[0];
    expect(node).toMatchObject({ rule: 'DFS009', severity: 'critical', result: 'fail', resources: [{ apiVersion: 'v1', kind: 'Node', name: 'node-b' }] });
    const drift = reports[1].results.find((r: { rule: string }) => r.rule === 'DFS005');
    expect(drift).toMatchObject({ severity: 'low', result: 'warn', resources: [{ kind: 'Pod', namespace: 'media', name: 'bazarr-84f6d7c9b-t7v9n', uid: '0b1c2d3e-0005-4000-8000-000000000005' }] });
  });

  it('writes openreports.io/v1alpha1 Reports with the same results as the PolicyReports, and the source on the report', async () => {
    const args = ['-f', path('violations.yaml'), '--config', CONFIG, '--fail-on', 'none', '-o'];
    const wg = parseAllDocuments((await audit([...args, 'policyreport'])).out).map((d) => d.toJS());
    const open = parseAllDocuments((await audit([...args, 'openreports'])).out).map((d) => d.toJS());
    expect(open.map((r) => `${r.apiVersion} ${r.kind}/${r.metadata.namespace ?? ''}`)).toEqual([
      'openreports.io/v1alpha1 Report/legacy',
      'openreports.io/v1alpha1 Report/media',
      'openreports.io/v1alpha1 Report/media-restricted',
      'openreports.io/v1alpha1 ClusterReport/',
    ]);
    for (const [i, report] of open.entries()) {
      expect(report.source).toBe('dfs-injector');
      expect({ metadata: report.metadata, summary: report.summary, results: report.results }).toEqual({ metadata: wg[i].metadata, summary: wg[i].summary, results: wg[i].results });
    }
  });

  it('lists skipped rules as skip results in the ClusterPolicyReport', async () => {
    const { out } = await audit(['-f', path('clean.yaml'), '-o', 'policyreport']);
    const cluster = parseAllDocuments(out).map((d) => d.toJS()).at(-1);
    expect(cluster.kind).toBe('ClusterPolicyReport');
    expect(cluster.results.map((r: { rule: string; result: string }) => `${r.rule}:${r.result}`)).toEqual([
      'DFS004:skip',
      'DFS008:skip',
      'DFS010:skip',
      'DFS005:skip',
      'DFS009:skip',
    ]);
    expect(cluster.summary).toEqual({ pass: 0, fail: 0, warn: 0, error: 0, skip: 5 });
  });

  it('skips drift without --config, and says why', async () => {
    const { out } = await audit(['-f', path('violations.yaml'), '--fail-on', 'none']);
    expect(out).not.toMatch(/^low\s+DFS005/m);
    expect(out).toContain('DFS005: no --config given');
  });
});

describe('audit exit status', () => {
  it.each([
    [[], 1, 'the default --fail-on high fails on a critical finding'],
    [['--fail-on', 'critical'], 1, 'critical fails on the critical node finding'],
    [['--fail-on', 'none'], 0, 'none never fails'],
  ] as const)('%j → %i (%s)', async (extra, expected, _why) => {
    expect((await audit(['-f', path('violations.yaml'), '--config', CONFIG, ...extra])).code).toBe(expected);
  });

  it('fails on a low finding only when --fail-on is low or below', async () => {
    // Only the drift of the bazarr pod: a low finding.
    const drifted = driftOnly;
    expect((await audit(['-f', '-', '--config', CONFIG, '--fail-on', 'medium'], drifted)).code).toBe(0);
    expect((await audit(['-f', '-', '--config', CONFIG, '--fail-on', 'low'], drifted)).code).toBe(1);
    expect((await audit(['-f', '-', '--config', CONFIG, '--fail-on', 'info'], drifted)).code).toBe(1);
  });

  it('passes a clean set at every threshold', async () => {
    for (const failOn of ['info', 'low', 'medium', 'high', 'critical']) {
      expect((await audit(['-f', path('clean.yaml'), '--config', CONFIG, '--fail-on', failOn])).code).toBe(0);
    }
  });

  it.each([
    [['--fail-on', 'severe'], '--fail-on "severe" is not a severity: use info, low, medium, high, critical, none'],
    [['-o', 'yaml'], '--output "yaml" must be "table" or "json" or "policyreport" or "openreports"'],
    [['--page-size', '0'], '--page-size "0" must be a positive whole number'],
    [['--fail-onn', 'high'], 'unknown option --fail-onn for "dfs-injector audit" (did you mean --fail-on?)'],
    [['-f', 'x.yaml', '--kubeconfig', 'k'], '-f audits manifests, --kubeconfig and --context the cluster: give one or the other'],
  ])('exits 2 on %j', async (argv, message) => {
    const result = await audit([...argv]);
    expect(result.code).toBe(2);
    expect(result.err).toBe(`error: ${message}; see "dfs-injector audit --help"\n`);
    expect(result.out).toBe('');
  });

  it('exits 3 when an input cannot be read, naming it', async () => {
    const result = await audit(['-f', path('no-such-file.yaml')]);
    expect(result.code).toBe(3);
    expect(result.err).toBe(`error: -f ${path('no-such-file.yaml')}: no such file or directory\n`);
  });

  it('exits 3 on YAML it cannot read, naming the input, line and column', async () => {
    const result = await audit(['-f', '-'], 'apiVersion: v1\nkind: Pod\nmetadata: [\n');
    expect(result.code).toBe(3);
    expect(result.err).toMatch(/<stdin>:4:1: invalid YAML: /);
  });

  it('exits 3 on a config the webhook would refuse, naming the field and line', async () => {
    const config = join(mkdtempSync(join(tmpdir(), 'dfs-audit-')), 'config.yaml');
    writeFileSync(config, 'consumer:\n  mountPath: relative\n');
    const result = await audit(['-f', path('clean.yaml'), '--config', config]);
    expect(result.code).toBe(3);
    expect(result.err).toBe(`error: ${config}:2: consumer.mountPath: must be an absolute path without "..", ":" or a trailing "/"\n`);
  });

  it('prints help with the rule list and exits 0', async () => {
    const result = await audit(['--help']);
    expect(result.code).toBe(0);
    for (const id of RULE_IDS) expect(result.out).toContain(id);
  });
});

const driftOnly = `
apiVersion: v1
kind: Namespace
metadata: { name: media, labels: { dfs-injector.io/injection: enabled } }
---
apiVersion: v1
kind: Pod
metadata:
  name: bazarr-0
  namespace: media
  labels: { dfs-injector.io/role: consumer }
  annotations:
    dfs-injector.io/status: '{"role":"consumer","volumes":["dfs-injector-dfs"],"mounts":["bazarr:/mnt/dfs"],"containers":[],"initContainers":[],"configHash":"0000000000000000","version":"0.0.9"}'
spec:
  containers:
    - name: bazarr
      image: lscr.io/linuxserver/bazarr:1.4.5
      volumeMounts: [{ name: dfs-injector-dfs, mountPath: /mnt/dfs, readOnly: true, mountPropagation: HostToContainer }]
  volumes: [{ name: dfs-injector-dfs, hostPath: { path: /mnt/decypharr-dfs, type: Directory } }]
`;

describe('audit of a hostPath above the DFS host path', () => {
  it('reports the writable //mnt/./ mount of a golden inject input, which the webhook refuses, as DFS001', async () => {
    const { code, out, err } = await audit(['-f', 'test/golden/inject/consumer-host-mnt-writable.yaml', '-o', 'json', '--fail-on', 'high']);
    expect({ code, err }).toEqual({ code: 1, err: '' });
    expect(JSON.parse(out).findings.map((f: { rule: string; message: string }) => `${f.rule} ${f.message}`)).toEqual([
      'DFS001 container "tdarr" mounts volume "host-mnt" at /host/mnt writable (readOnly is not true), a hostPath of //mnt/./, which holds the DFS host path /mnt/decypharr-dfs',
    ]);
  });

  it('reports nothing for the read-only / of a golden inject input, which the webhook injects', async () => {
    const { code, out, err } = await audit(['-f', 'test/golden/inject/consumer-host-root-read-only.yaml.injected', '-o', 'json', '--fail-on', 'info']);
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(JSON.parse(out).findings).toEqual([]);
  });
});
