import { z } from 'zod';
import { configSchema } from './config-schema.js';

// charts/dfs-injector/values.schema.json, generated (npm run chart:schema) so the chart's `config`
// block is checked by the same rules as the webhook's config file, and a test keeps the committed
// file equal to this. Every object is closed (additionalProperties: false): Helm validates values
// against this schema on install, upgrade, template and lint, so a misspelt key fails there with a
// message naming it, instead of being ignored.

type JsonSchema = Record<string, unknown>;

const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string, minimum: number, maximum?: number): JsonSchema => ({
  type: 'integer',
  description,
  minimum,
  ...(maximum === undefined ? {} : { maximum }),
});
const bool = (description: string): JsonSchema => ({ type: 'boolean', description });
const closed = (description: string, properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  type: 'object',
  description,
  properties,
  ...(required.length > 0 ? { required } : {}),
  additionalProperties: false,
});
// Kubernetes structures passed through as they are (the API server validates them).
const k8s = (type: 'object' | 'array', description: string): JsonSchema => ({ type, description });

const quantity: JsonSchema = {
  anyOf: [{ type: 'string', pattern: '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' }, { type: 'number', minimum: 0 }],
};
const resources = closed('Kubernetes resource requests and limits', {
  requests: { type: 'object', additionalProperties: quantity },
  limits: { type: 'object', additionalProperties: quantity },
});
const image = (what: string): JsonSchema =>
  closed(`The ${what} image`, {
    repository: str('Image repository', { minLength: 1, pattern: '^\\S+$' }),
    tag: str('Image tag', { minLength: 1, pattern: '^\\S+$' }),
    pullPolicy: str('imagePullPolicy', { enum: ['Always', 'IfNotPresent', 'Never'] }),
  }, ['repository', 'tag']);
const duration = (description: string): JsonSchema => str(description, { pattern: '^([0-9]+(\\.[0-9]+)?(h|m|s|ms))+$' });
const dnsLabel = (description: string): JsonSchema => str(description, { pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' });
const labels = (description: string): JsonSchema => ({ type: 'object', description, additionalProperties: { type: 'string' } });
/**
 * The variables manifests/mounter/dfs-mounter.sh reads (its "Environment" header, which a test
 * keeps equal to this list), less DFS_HOST_PATH, which the chart sets from config.hostPath. A
 * DFS_* name outside it is a typo the script would ignore, so the schema refuses it.
 */
export const MOUNTER_ENV_NAMES = [
  'DFS_SMB_SERVICE',
  'DFS_SMB_ADDRESS',
  'DFS_SHARE_NAME',
  'DFS_MOUNT_OPTIONS',
  'DFS_CHECK_INTERVAL',
  'DFS_STAT_TIMEOUT',
  'DFS_MOUNT_TIMEOUT',
  'DFS_FAILURE_THRESHOLD',
  'DFS_BACKOFF_INITIAL',
  'DFS_BACKOFF_MAX',
  'DFS_READY_FILE',
  'DFS_READY_MAX_AGE',
  'DFS_PROBE_DIR',
  'DFS_UNMOUNT_ON_EXIT',
  'DFS_MOUNTINFO',
] as const;
const envValue: JsonSchema = {
  anyOf: [
    { type: 'string' },
    closed('valueFrom of an env var', { fieldRef: { type: 'object' }, resourceFieldRef: { type: 'object' }, configMapKeyRef: { type: 'object' }, secretKeyRef: { type: 'object' } }),
  ],
};

/** The webhook's config block: the config file's own schema, as the file's reader accepts it. */
function configBlockSchema(): JsonSchema {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return { ...schema, description: "The webhook's config file (docs/configuration.md); hot-reloaded, so changing it restarts nothing" };
}

export function chartValuesSchema(): JsonSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'dfs-injector chart values',
    ...closed('Values of the dfs-injector chart', {
      namespace: closed('The release namespace', {
        create: bool('Render the Namespace with the Pod Security and injection labels it needs'),
      }),
      webhook: closed('The admission webhook Deployment', {
        replicas: int('Replicas; failurePolicy Fail makes 2 or more the safe choice', 1),
        revisionHistoryLimit: int('Old ReplicaSets kept', 0),
        image: image('webhook'),
        resources,
        port: int('Admission (HTTPS) container port', 1, 65535),
        metricsPort: int('Probe and /metrics (HTTP) port, in the container and on the Service', 1, 65535),
        failurePolicy: str('What the API server does when the webhook cannot answer', { enum: ['Fail', 'Ignore'] }),
        timeoutSeconds: int('How long the API server waits for an answer', 1, 30),
        excludeNamespaces: { type: 'array', description: 'Namespaces never sent to the webhook, besides the release namespace', items: dnsLabel('A namespace name') },
        namespaceSelectorExtra: k8s('array', 'Extra matchExpressions ANDed into every entry\'s namespaceSelector'),
        preStopSleepSeconds: int('preStop sleep; 0 removes preStop (clusters before 1.30)', 0, 60),
        terminationGracePeriodSeconds: int('Pod termination grace period', 1),
        podDisruptionBudget: closed('The webhook PodDisruptionBudget', { enabled: bool('Render it'), minAvailable: int('Replicas kept through voluntary disruptions', 0) }),
        nodeSelector: labels('nodeSelector of the webhook pods'),
        tolerations: k8s('array', 'tolerations of the webhook pods'),
      }),
      config: configBlockSchema(),
      certificates: closed('The webhook serving certificate', {
        mode: str('self-managed: the webhook keeps its own CA and certificate in secretName; cert-manager: cert-manager issues them', { enum: ['self-managed', 'cert-manager'] }),
        secretName: dnsLabel('The Secret holding the serving pair (never rendered by this chart in self-managed mode)'),
        certManager: closed('cert-manager mode only', {
          caDuration: duration('Validity of the CA'),
          caRenewBefore: duration('Renew the CA this long before it expires'),
          duration: duration('Validity of the serving certificate'),
          renewBefore: duration('Renew the serving certificate this long before it expires'),
        }),
      }),
      mounter: closed('The mounter DaemonSet', {
        enabled: bool('Render the mounter'),
        image: image('mounter'),
        resources,
        env: {
          type: 'object',
          description: 'Environment of the mounter (a string is a value, a map a valueFrom); DFS_HOST_PATH comes from config.hostPath; a DFS_* name must be one dfs-mounter.sh reads',
          propertyNames: { pattern: '^[A-Z_][A-Z0-9_]*$', not: { const: 'DFS_HOST_PATH' }, if: { pattern: '^DFS_' }, then: { enum: [...MOUNTER_ENV_NAMES] } },
          additionalProperties: envValue,
        },
        priorityClassName: str('priorityClassName of the mounter pods; empty for none'),
        tolerations: k8s('array', 'tolerations of the mounter pods'),
        nodeSelector: labels('nodeSelector of the mounter pods'),
        maxUnavailable: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^[0-9]+%$' }], description: 'Rolling update: mounters restarted at once' },
        terminationGracePeriodSeconds: int('Mounter termination grace period', 1),
      }),
      smbService: closed("The SMB Service in the source pod's namespace", {
        enabled: bool('Render it (the source namespace must exist)'),
        name: dnsLabel('Service name'),
        namespace: dnsLabel("The source pod's namespace"),
        port: int('Service port', 1, 65535),
        networkPolicy: closed('A NetworkPolicy admitting the smbd port of the source pods from the nodes only (manifests/README.md, "Trust boundary")', {
          enabled: bool('Render it (the source namespace must exist)'),
          nodeCIDRs: {
            type: 'array',
            description: "The networks of the nodes' addresses (kubectl get nodes -o wide, INTERNAL-IP)",
            minItems: 1,
            items: str('An IPv4 or IPv6 network in CIDR notation', { pattern: '^[0-9a-fA-F:.]+/[0-9]{1,3}$' }),
          },
        }),
      }),
      auditor: closed('The read-only ClusterRoles of manifests/auditor and manifests/auditor-check, bound by you', {
        enabled: bool('Render dfs-injector-auditor (audit, explain)'),
        check: bool('Render the dfs-injector-checker roles (check)'),
      }),
      metrics: closed('Prometheus Operator objects (monitoring.coreos.com/v1)', {
        podMonitor: closed("A PodMonitor for the webhook pods' /metrics", {
          enabled: bool('Render it'),
          interval: duration('Scrape interval'),
          labels: labels('Extra labels, e.g. the one your Prometheus selects by'),
        }),
        prometheusRule: closed('The alerting rules (docs/monitoring.md)', {
          enabled: bool('Render it'),
          labels: labels('Extra labels, e.g. the one your Prometheus selects by'),
        }),
        grafanaDashboard: closed("The Grafana dashboard, for Grafana's dashboard sidecar", { enabled: bool('Render its ConfigMap') }),
      }),
    }),
  };
}
