import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, type KubeObject } from '../manifests/kustomize.js';
import { findTool as findGoTool } from '../support/tools.js';

export const CHART = join(REPO_ROOT, 'charts', 'dfs-injector');
export const RELEASE = 'dfs-injector';
export const NAMESPACE = 'dfs-system';

export const HELM_HINT =
  'Install it with: bash test/tools/install-helm.sh (builds Helm from the Go module proxy into ~/.cache/dfs-injector/bin), or set DFS_HELM to its path.';

/** A tool built by test/tools/install-go-tool.sh: $DFS_<NAME>, then the tools cache. */
export function findTool(name: 'helm' | 'promtool', env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findGoTool(name, { env });
}

export interface HelmResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs helm with a throw-away config/cache dir, so nothing leaks in from (or out to) ~/.config/helm. */
export function helm(bin: string, args: readonly string[], env: Record<string, string> = {}): HelmResult {
  const home = join(REPO_ROOT, '.tmp', 'helm-home');
  const result = spawnSync(bin, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
    env: { ...process.env, HELM_CONFIG_HOME: join(home, 'config'), HELM_CACHE_HOME: join(home, 'cache'), HELM_DATA_HOME: join(home, 'data'), ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `--set-json` arguments for a values object (each top-level key as one JSON value). */
export function setJson(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([key, value]) => ['--set-json', `${key}=${JSON.stringify(value)}`]);
}

export function parseObjects(yamlText: string, what: string): KubeObject[] {
  return parseAllDocuments(yamlText)
    .map((doc, i) => {
      if (doc.errors.length > 0) throw new Error(`${what}: document ${i}: ${doc.errors[0]!.message}`);
      return doc.toJS() as KubeObject | null;
    })
    .filter((o): o is KubeObject => o !== null);
}

/** `helm template` of the chart as release dfs-injector in dfs-system; throws with helm's stderr. */
export function template(bin: string, values: Record<string, unknown> = {}, extraArgs: readonly string[] = []): KubeObject[] {
  const result = helm(bin, ['template', RELEASE, CHART, '--namespace', NAMESPACE, ...setJson(values), ...extraArgs]);
  if (result.status !== 0) throw new Error(`helm template failed (${result.status}):\n${result.stderr}`);
  return parseObjects(result.stdout, 'helm template');
}

/** A value other than its default for every value that sets a field of the base's objects. */
export const NON_DEFAULT_VALUES = {
  namespace: { create: false },
  webhook: {
    replicas: 3,
    revisionHistoryLimit: 2,
    image: { repository: 'registry.example/dfs-injector', tag: '9.9.9', pullPolicy: 'Always' },
    resources: { requests: { cpu: '100m', memory: '200Mi' }, limits: { memory: '400Mi' } },
    failurePolicy: 'Ignore',
    timeoutSeconds: 10,
    excludeNamespaces: ['kube-system', 'flux-system'],
    namespaceSelectorExtra: [{ key: 'team', operator: 'NotIn', values: ['payments'] }],
    preStopSleepSeconds: 0,
    terminationGracePeriodSeconds: 45,
    podDisruptionBudget: { enabled: true, minAvailable: 2 },
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }],
  },
  mounter: {
    image: { repository: 'registry.example/dfs-mounter', tag: '9.9.9', pullPolicy: 'Always' },
    resources: { requests: { cpu: '20m', memory: '32Mi' }, limits: { memory: '96Mi' } },
    env: { DFS_SHARE_NAME: 'media', DFS_CHECK_INTERVAL: '20' },
    priorityClassName: '',
    tolerations: [],
    nodeSelector: { 'node-role.example/media': 'true' },
    maxUnavailable: '20%',
    terminationGracePeriodSeconds: 20,
  },
};
