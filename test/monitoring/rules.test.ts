import { spawnSync } from 'node:child_process';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { findTool } from '../charts/helm.js';
import type { MetricSample } from '../e2e/metrics.js';
import { BUILT_CLI_HINT, WebhookProcess, builtCliAvailable, generateLoopbackCertificates } from '../e2e/webhook-process.js';
import { REPO_ROOT } from '../manifests/kustomize.js';
import { admissionReviewFor, loadPod } from '../support/fixtures.js';
import { needs } from '../support/prereq.js';
import { post, type ClientResponse } from '../support/webhook-client.js';

// The alert rules and the dashboard are checked against the series a running webhook really
// exports: the webhook is started from dist/, sent a consumer it injects, a source it denies and a
// malformed review, and its /metrics is scraped. Every dfs_injector_* name a rule or panel uses
// must be in that scrape, and the promtool unit tests below are written with the scraped names and
// label sets (plus the target labels a PodMonitor adds), never with names typed by hand.
// kube_* series come from kube-state-metrics; their names are its documented, stable ones, and
// the values the data-path alerts match in them (the dfs-injector.io/status annotation of a
// consumer and of a source, the smbd sidecar's container name) are taken from the pods the webhook
// injected here, so a change to either format fails the alert tests instead of silencing an alert.

const MONITORING = join(REPO_ROOT, 'manifests', 'components', 'monitoring');
const KUBE_STATE_METRICS = new Set([
  'kube_deployment_status_replicas_available',
  'kube_pod_info',
  'kube_pod_status_ready',
  'kube_pod_container_status_ready',
  'kube_pod_container_status_restarts_total',
  'kube_pod_annotations',
]);
// PromQL keywords and aggregation operators: `sum by (x) (...)` has no parenthesis right after `sum`.
const PROMQL_WORDS = new Set(['by', 'on', 'and', 'or', 'unless', 'group_left', 'group_right', 'without', 'ignoring', 'bool', 'offset', 'sum', 'min', 'max', 'avg', 'count', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values']);

const promtool = findTool('promtool');
const available =
  needs('promtool', promtool !== undefined, 'Install it with: bash test/tools/install-promtool.sh (builds it from the Go module proxy into ~/.cache/dfs-injector/bin), or set DFS_PROMTOOL.') &&
  needs('the built CLI (dist/cli.js)', builtCliAvailable(), BUILT_CLI_HINT);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
}

function ruleGroups(): { name: string; rules: Rule[] }[] {
  const rule = parse(readFileSync(join(MONITORING, 'prometheusrule.yaml'), 'utf8')) as { spec: { groups: { name: string; rules: Rule[] }[] } };
  return rule.spec.groups;
}

/** The PromQL of every dashboard panel, with Grafana's variables replaced by what Prometheus reads. */
function dashboardExpressions(): { panel: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replaceAll('$__rate_interval', '5m').replaceAll('"$job"', '".+"') })),
  );
}

/** Metric names in a PromQL expression: identifiers followed by `{`, `[`, a space or the end, minus keywords and functions. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = [...withoutStrings.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]!);
  // Label names inside by (...)/on (...) and {...} are identifiers too: drop what sits in those.
  const grouped = new Set([...withoutStrings.matchAll(/(?:by|on|without|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim())));
  const labelNames = new Set([...withoutStrings.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*""/g)].map((m) => m[1]!));
  return [...new Set(names)].filter((n) => !PROMQL_WORDS.has(n) && !grouped.has(n) && !labelNames.has(n) && !/^\d/.test(n));
}

/** A sample's series as promtool writes it, with the target labels a PodMonitor scrape adds. */
function series(sample: MetricSample, target: Record<string, string>): string {
  const labels = { ...sample.labels, ...target };
  return `${sample.name}{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(',')}}`;
}

function runPromtool(args: string[]): { status: number | null; output: string } {
  const result = spawnSync(promtool!, args, { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('metric names in PromQL', () => {
  it('finds the series names of an expression, and no keyword, function, label or duration', () => {
    const expr = 'max by (namespace, pod, node) (kube_pod_info{created_by_kind="DaemonSet"}) and on (namespace, pod) (sum by (le) (rate(dfs_injector_admission_duration_seconds_bucket{job=~".+"}[5m])) > 14 * 24 * 3600)';
    expect(metricNames(expr).sort()).toEqual(['dfs_injector_admission_duration_seconds_bucket', 'kube_pod_info']);
  });
});

describe('runbooks', () => {
  it("links every alert to its own section of docs/monitoring.md, and that section says what to do", () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'monitoring.md'), 'utf8');
    const runbooks = doc.slice(doc.indexOf('\n## Alerts and runbooks\n'));
    // "### Name" up to the next heading of level 2 or 3; GitHub's anchor of a one-word heading is its lower case.
    const sections = new Map([...runbooks.matchAll(/^### (\S+)\n([\s\S]*?)(?=^##|(?![\s\S]))/gm)].map((m) => [m[1]!, m[2]!.trim()]));
    const alerts = ruleGroups().flatMap((g) => g.rules.filter((r) => r.alert !== undefined)) as (Rule & { alert: string; annotations: Record<string, string> })[];
    expect(alerts.length).toBeGreaterThan(5);
    for (const rule of alerts) {
      expect(rule.annotations.runbook_url, rule.alert).toBe(`https://github.com/dfs-injector/dfs-injector/blob/main/docs/monitoring.md#${rule.alert.toLowerCase()}`);
      expect(sections.get(rule.alert)?.length ?? 0, `docs/monitoring.md has a runbook for ${rule.alert}`).toBeGreaterThan(200);
    }
    // And no runbook is left for an alert that no longer exists.
    expect([...sections.keys()].sort()).toEqual(alerts.map((r) => r.alert).sort());
  });
});

describe.skipIf(!available)('alert rules and dashboard against a live webhook scrape', () => {
  let dir: string;
  let webhook: WebhookProcess | undefined;
  let scraped: MetricSample[] = [];
  // What the webhook wrote on the pods it injected: the dfs-injector.io/status annotation (which
  // kube-state-metrics exports as a label) and the sidecar's container name.
  let consumerStatus = '';
  let sourceStatus = '';
  let sidecarName = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dfs-rules-'));
    const certs = await generateLoopbackCertificates(dir);
    webhook = await WebhookProcess.start({ dir, certPath: certs.certPath, keyPath: certs.keyPath });
    const send = (body: unknown): Promise<ClientResponse> => post(webhook!.port, '/mutate', body, { ca: certs.caPem });
    const injected = async (pod: Record<string, any>): Promise<Record<string, any>> => {
      const { response } = (await send(admissionReviewFor(pod, { namespace: 'media' }))).json();
      if (response?.allowed !== true || typeof response.patch !== 'string') throw new Error(`the webhook did not inject ${pod.metadata.name}: ${JSON.stringify(response)}`);
      return jsonpatch.applyPatch(structuredClone(pod), JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[], true, false).newDocument;
    };
    const consumer = await injected(loadPod('sonarr'));
    consumerStatus = consumer.metadata.annotations['dfs-injector.io/status'];
    const sourcePod = loadPod('decypharr-source');
    const source = await injected(sourcePod);
    sourceStatus = source.metadata.annotations['dfs-injector.io/status'];
    const before = new Set(sourcePod.spec.containers.map((c: { name: string }) => c.name));
    const added = source.spec.containers.filter((c: { name: string }) => !before.has(c.name));
    if (added.length !== 1) throw new Error(`expected one sidecar on the source, got ${JSON.stringify(added.map((c: { name: string }) => c.name))}`);
    sidecarName = added[0].name;
    const unprivileged = loadPod('decypharr-source');
    for (const c of unprivileged.spec.containers) delete c.securityContext;
    await send(admissionReviewFor(unprivileged, { namespace: 'media' }));
    await send('{"not": "an AdmissionReview"');
    scraped = await webhook.metrics();
  }, 120_000);

  afterAll(async () => {
    await webhook?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const find = (name: string, labels: Record<string, string> = {}): MetricSample => {
    const found = scraped.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (found === undefined) throw new Error(`the webhook's /metrics has no ${name} ${JSON.stringify(labels)}; it has: ${[...new Set(scraped.map((s) => s.name))].join(', ')}`);
    return found;
  };

  it('uses only metric names the webhook exports (dfs_injector_*, process and Node.js) or kube-state-metrics documents', () => {
    const exported = new Set(scraped.map((s) => s.name));
    const used = [
      ...ruleGroups().flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr }))),
      ...dashboardExpressions().map((d) => ({ where: `panel ${d.panel}`, expr: d.expr })),
    ];
    const unknown = used.flatMap(({ where, expr }) => metricNames(expr).filter((n) => !exported.has(n) && !KUBE_STATE_METRICS.has(n)).map((n) => `${where}: ${n}`));
    expect(unknown).toEqual([]);
    // The names the rules depend on are really there (a rename in webhook/metrics.ts fails here).
    for (const name of ['dfs_injector_admissions_total', 'dfs_injector_certificate_expiry_timestamp_seconds', 'dfs_injector_config_reload_failures_total', 'dfs_injector_tls_reload_failures_total']) {
      expect(exported.has(name), name).toBe(true);
    }
  });

  it('passes promtool check rules, and every dashboard query parses as PromQL', () => {
    const rules = join(dir, 'rules.yaml');
    writeFileSync(rules, stringify({ groups: ruleGroups() }));
    const checked = runPromtool(['check', 'rules', rules]);
    expect(checked.output).toContain('SUCCESS');
    expect(checked.status).toBe(0);
    // promtool parses expressions in rule files only: each panel query becomes a recording rule.
    const panels = join(dir, 'dashboard-rules.yaml');
    writeFileSync(panels, stringify({ groups: [{ name: 'dashboard', rules: dashboardExpressions().map((d, i) => ({ record: `dashboard:panel_${i}`, expr: d.expr })) }] }));
    const parsed = runPromtool(['check', 'rules', panels]);
    expect(parsed.output).toContain('SUCCESS');
    expect(parsed.status).toBe(0);
  });

  it('fires each alert on the scraped series when it should, and not when it should not (promtool test rules)', () => {
    const target = (pod: string): Record<string, string> => ({ job: 'dfs-injector', namespace: 'dfs-system', pod, instance: `${pod}:8080`, service: 'dfs-injector' });
    const expiry = find('dfs_injector_certificate_expiry_timestamp_seconds');
    const denied = find('dfs_injector_admissions_total', { outcome: 'denied' });
    const injected = find('dfs_injector_admissions_total', { outcome: 'injected' });
    const badRequest = find('dfs_injector_admissions_total', { outcome: 'bad-request' });
    const configReload = find('dfs_injector_config_reload_failures_total');
    const tlsReload = find('dfs_injector_tls_reload_failures_total');
    const day = 24 * 3600;
    const ksm = (name: string, labels: Record<string, string>): string => `${name}{${Object.entries({ job: 'kube-state-metrics', ...labels }).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    const mounterInfo = (pod: string, node: string): string => ksm('kube_pod_info', { namespace: 'dfs-system', pod, node, created_by_kind: 'DaemonSet', created_by_name: 'dfs-mounter' });
    const ready = (ns: string, pod: string, condition: string): string => ksm('kube_pod_status_ready', { namespace: ns, pod, condition });
    const firing = (alertname: string, labels: Record<string, string>): { labels: string; value: number } => ({
      labels: `ALERTS{${Object.entries({ alertname, alertstate: 'firing', ...labels }).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`,
      value: 1,
    });
    const alerts = (at: string, alertname: string, expected: { labels: string; value: number }[]): unknown => ({
      expr: `ALERTS{alertname="${alertname}", alertstate="firing"}`,
      eval_time: at,
      exp_samples: expected,
    });
    const tests = {
      rule_files: ['rules.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          name: 'webhook series, as scraped',
          interval: '1m',
          input_series: [
            // pod a serves a certificate 10 days from expiry, pod b one with 60 days left.
            { series: series(expiry, target('dfs-injector-a')), values: `${10 * day}x180` },
            { series: series(expiry, target('dfs-injector-b')), values: `${60 * day}x180` },
            // 3 denials a minute from one workload for 3 h; injections at 20 a minute.
            { series: series(denied, target('dfs-injector-a')), values: '0+3x180' },
            { series: series(injected, target('dfs-injector-a')), values: '0+20x180' },
            // Malformed reviews: none for 1 h, then 5 a minute (20 % of the admissions).
            { series: series(badRequest, target('dfs-injector-a')), values: '0x60 0+5x120' },
            { series: series(configReload, target('dfs-injector-a')), values: '0x90 1x90' },
            { series: series(tlsReload, target('dfs-injector-b')), values: '0x180' },
          ],
          promql_expr_test: [
            alerts('50m', 'DfsInjectorCertificateExpiringSoon', []),
            alerts('70m', 'DfsInjectorCertificateExpiringSoon', [firing('DfsInjectorCertificateExpiringSoon', { namespace: 'dfs-system', pod: 'dfs-injector-a', severity: 'warning' })]),
            alerts('10m', 'DfsInjectorAdmissionsDenied', []),
            alerts('40m', 'DfsInjectorAdmissionsDenied', [
              firing('DfsInjectorAdmissionsDenied', { namespace: 'dfs-system', role: denied.labels.role!, reason: denied.labels.reason!, severity: 'warning' }),
            ]),
            alerts('60m', 'DfsInjectorAdmissionsFailing', []),
            alerts('80m', 'DfsInjectorAdmissionsFailing', [firing('DfsInjectorAdmissionsFailing', { namespace: 'dfs-system', severity: 'critical' })]),
            alerts('80m', 'DfsInjectorReloadFailing', []),
            alerts('100m', 'DfsInjectorReloadFailing', [firing('DfsInjectorReloadFailing', { namespace: 'dfs-system', pod: 'dfs-injector-a', severity: 'warning' })]),
          ],
        },
        {
          name: 'kube-state-metrics series',
          interval: '1m',
          input_series: [
            { series: ksm('kube_deployment_status_replicas_available', { namespace: 'dfs-system', deployment: 'dfs-injector' }), values: '2x10 0x20' },
            // node-1 runs a consumer, node-2 none; both mounters turn not ready at 10m.
            { series: mounterInfo('dfs-mounter-1', 'node-1'), values: '1x60' },
            { series: mounterInfo('dfs-mounter-2', 'node-2'), values: '1x60' },
            { series: ready('dfs-system', 'dfs-mounter-1', 'true'), values: '1x10 0x50' },
            { series: ready('dfs-system', 'dfs-mounter-2', 'true'), values: '1x10 0x50' },
            { series: ksm('kube_pod_info', { namespace: 'media', pod: 'sonarr-0', node: 'node-1', created_by_kind: 'StatefulSet', created_by_name: 'sonarr' }), values: '1x60' },
            {
              series: ksm('kube_pod_annotations', { namespace: 'media', pod: 'sonarr-0', annotation_dfs_injector_io_status: consumerStatus }),
              values: '1x60',
            },
            { series: ksm('kube_pod_info', { namespace: 'media', pod: 'decypharr-0', node: 'node-2', created_by_kind: 'StatefulSet', created_by_name: 'decypharr' }), values: '1x60' },
            {
              series: ksm('kube_pod_annotations', { namespace: 'media', pod: 'decypharr-0', annotation_dfs_injector_io_status: sourceStatus }),
              values: '1x60',
            },
            { series: ksm('kube_pod_container_status_ready', { namespace: 'media', pod: 'decypharr-0', container: sidecarName }), values: '1x20 0x40' },
            { series: ksm('kube_pod_container_status_ready', { namespace: 'media', pod: 'decypharr-0', container: 'decypharr' }), values: '1x60' },
          ],
          promql_expr_test: [
            alerts('10m', 'DfsInjectorNoReadyReplica', []),
            alerts('14m', 'DfsInjectorNoReadyReplica', [firing('DfsInjectorNoReadyReplica', { namespace: 'dfs-system', deployment: 'dfs-injector', severity: 'critical' })]),
            alerts('14m', 'DfsMounterNotReadyOnConsumerNode', []),
            alerts('17m', 'DfsMounterNotReadyOnConsumerNode', [firing('DfsMounterNotReadyOnConsumerNode', { namespace: 'dfs-system', pod: 'dfs-mounter-1', node: 'node-1', severity: 'critical' })]),
            alerts('17m', 'DfsMounterNotReady', []),
            alerts('22m', 'DfsMounterNotReady', [
              firing('DfsMounterNotReady', { namespace: 'dfs-system', pod: 'dfs-mounter-1', node: 'node-1', severity: 'warning' }),
              firing('DfsMounterNotReady', { namespace: 'dfs-system', pod: 'dfs-mounter-2', node: 'node-2', severity: 'warning' }),
            ]),
            alerts('24m', 'DfsSmbdNotReady', []),
            alerts('27m', 'DfsSmbdNotReady', [firing('DfsSmbdNotReady', { namespace: 'media', pod: 'decypharr-0', severity: 'critical' })]),
          ],
        },
      ],
    };
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: ruleGroups() }));
    writeFileSync(join(dir, 'rules.test.yaml'), stringify(tests));
    const result = runPromtool(['test', 'rules', join(dir, 'rules.test.yaml')]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });
});
