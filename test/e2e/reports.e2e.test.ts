import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../support/run-cli.js';
import { needs } from '../support/prereq.js';
import { applyStrict, installCrds } from './crds.js';
import { findControlPlaneBinaries, type KubeObject } from './harness.js';
import { useControlPlane } from './use-control-plane.js';

// Policy reports are only useful if the tools that read them accept them: apply `audit`'s output
// to a real API server that has the upstream report CRDs installed (test/fixtures/crds), under
// strict field validation, so a misnamed or misplaced field is an error instead of being pruned.

const bins = findControlPlaneBinaries();
const GOLDEN = 'test/golden/audit';

describe.skipIf(!needs('a loopback control plane', bins.available, bins.hint))('audit reports on an API server with the report CRDs', () => {
  const plane = useControlPlane({ controllerManager: false });

  it.each([
    ['policyreport', ['wgpolicyk8s.io_policyreports.yaml', 'wgpolicyk8s.io_clusterpolicyreports.yaml']],
    ['openreports', ['openreports.io_reports.yaml', 'openreports.io_clusterreports.yaml']],
  ])('accepts every report of audit -o %s, field for field', async (format, crds) => {
    const { client } = plane();
    await installCrds(client, crds);
    // violations.yaml makes every rule fire, so every field audit writes is exercised.
    const run = await runCli(['audit', '-f', `${GOLDEN}/violations.yaml`, '--config', `${GOLDEN}/config.yaml`, '-o', format, '--fail-on', 'none']);
    expect(run.stderr).toBe('');
    const reports = parseAllDocuments(run.stdout).map((d) => d.toJS() as KubeObject);
    expect(reports.length).toBeGreaterThan(1);
    for (const ns of new Set(reports.map((r) => r.metadata.namespace).filter((n) => n !== undefined))) {
      await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    }
    for (const report of reports) {
      expect(await applyStrict(client, report, 'dfs-injector-audit')).toEqual([]);
      const stored = await client.get<KubeObject>(report.apiVersion, report.kind, report.metadata.name!, report.metadata.namespace);
      // Nothing pruned, nothing defaulted away: what audit wrote is what a reader gets.
      const { metadata: _m, ...body } = report;
      const { metadata: _s, ...storedBody } = stored!;
      expect(storedBody).toEqual(body);
    }
  });
});
