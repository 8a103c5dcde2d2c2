import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { defaultConfig, parseConfigText } from '../../lib/config.js';
import { ENTRY_PATHS, entryForPath, type EntryContext } from '../../lib/entry.js';
import { injectDocument } from '../../lib/inject.js';
import { LABEL_DEFAULT_ROLE, LABEL_INJECTION, LABEL_POD_SECURITY_ENFORCE, LABEL_ROLE } from '../../lib/names.js';
import { needs } from '../support/prereq.js';
import { KUSTOMIZE_HINT, MANIFESTS, find, findKustomize, render, type KubeObject } from './kustomize.js';
import { podSecurityViolations } from './pod-security.js';
import { validateObject } from './schema.js';
import { selectorMatches } from './selectors.js';

const kustomize = findKustomize();
const available = needs('kustomize', kustomize !== undefined, KUSTOMIZE_HINT);

const NAMESPACE = 'dfs-system';
const TLS_SECRET = 'dfs-injector-tls';
const WEBHOOK = 'dfs-injector';
const BUILDS = ['.', 'base', 'overlays/default', 'overlays/cert-manager', 'overlays/examples', 'auditor', 'auditor-check'] as const;
const CLUSTER_SIDE = ['base', 'overlays/default', 'overlays/cert-manager'] as const;

const build = (dir: string): KubeObject[] => render(kustomize!, dir);
const container = (workload: KubeObject, name: string): any => {
  const found = workload.spec.template.spec.containers.find((c: any) => c.name === name);
  if (found === undefined) throw new Error(`${workload.kind}/${workload.metadata.name} has no container ${name}`);
  return found;
};
const flagValue = (args: string[], flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
};
const envValue = (c: any, name: string): string | undefined => c.env?.find((e: any) => e.name === name)?.value;

describe.skipIf(!available)('rendered manifests', () => {
  describe.each(BUILDS)('kustomize build manifests/%s', (dir) => {
    it('renders, and every object validates against its Kubernetes (or cert-manager) schema', () => {
      const objects = build(dir);
      expect(objects.length).toBeGreaterThan(0);
      const failures: string[] = [];
      for (const object of objects) {
        try {
          validateObject(object);
        } catch (error) {
          failures.push(error instanceof Error ? error.message : String(error));
        }
      }
      expect(failures).toEqual([]);
    });

    it('has no two objects of the same kind, namespace and name', () => {
      const keys = build(dir).map((o) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
      expect(keys.length).toBe(new Set(keys).size);
    });

    it('grants no wildcard in any RBAC rule', () => {
      for (const role of build(dir).filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole')) {
        for (const rule of role.rules ?? []) {
          for (const field of ['verbs', 'resources', 'apiGroups', 'resourceNames', 'nonResourceURLs']) {
            expect(rule[field] ?? [], `${role.kind}/${role.metadata.name} ${field}`).not.toContain('*');
            expect((rule[field] ?? []).some((v: string) => v.includes('*')), `${role.kind}/${role.metadata.name} ${field}`).toBe(false);
          }
        }
      }
    });
  });

  // `kubectl apply -k` uses the kustomize built into kubectl, often older than ours (kubectl 1.32
  // has v5.5, which crashed on a multi-document delete patch). Optional: CI installs no kubectl.
  const kubectl = spawnSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();
  if (kubectl === '') process.stderr.write('kubectl is not on PATH: the `kubectl kustomize` compatibility check is skipped\n');
  it.skipIf(kubectl === '').each(BUILDS)('renders manifests/%s the same with the kustomize built into kubectl', (dir) => {
    const result = spawnSync(kubectl, ['kustomize', join(MANIFESTS, dir)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(parseAllDocuments(result.stdout).map((d) => d.toJS())).toEqual(build(dir));
  });

  it('manifests/ renders exactly the default overlay, so `kubectl apply -k manifests/` installs it', () => {
    expect(build('.')).toEqual(build('overlays/default'));
  });

  describe.each(CLUSTER_SIDE)('cluster side in manifests/%s', (dir) => {
    it('puts every namespaced object in dfs-system, a namespace that admits the privileged mounter', () => {
      const objects = build(dir);
      const cluster = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
      for (const o of objects.filter((x) => !cluster.has(x.kind))) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(NAMESPACE);
      const ns = find(objects, 'Namespace', NAMESPACE);
      expect(ns.metadata.labels?.[LABEL_POD_SECURITY_ENFORCE]).toBe('privileged');
      expect(ns.metadata.labels?.[LABEL_INJECTION]).not.toBe('enabled');
    });

    it('runs 2 webhook replicas, spread over nodes, with a PodDisruptionBudget keeping one', () => {
      const objects = build(dir);
      const deployment = find(objects, 'Deployment', WEBHOOK);
      const pdb = find(objects, 'PodDisruptionBudget', WEBHOOK);
      expect(deployment.spec.replicas).toBe(2);
      expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
      expect(pdb.spec.minAvailable).toBe(1);
      const podLabels = deployment.spec.template.metadata.labels;
      expect(selectorMatches(pdb.spec.selector, podLabels)).toBe(true);
      const spread = deployment.spec.template.spec.topologySpreadConstraints;
      expect(spread).toHaveLength(1);
      expect(spread[0].topologyKey).toBe('kubernetes.io/hostname');
      expect(selectorMatches(spread[0].labelSelector, podLabels)).toBe(true);
    });

    it('runs the webhook pod under Pod Security restricted', () => {
      const spec = find(build(dir), 'Deployment', WEBHOOK).spec.template.spec;
      expect(podSecurityViolations(spec, 'restricted')).toEqual([]);
      const c = container(find(build(dir), 'Deployment', WEBHOOK), 'webhook');
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    });

    it('probes /readyz and /healthz on the metrics port, and serves admission on 8443 behind Service port 443, its only port', () => {
      const objects = build(dir);
      const c = container(find(objects, 'Deployment', WEBHOOK), 'webhook');
      const ports = Object.fromEntries(c.ports.map((p: any) => [p.name, p.containerPort]));
      expect(ports).toEqual({ https: 8443, metrics: 8080 });
      expect(flagValue(c.args, '--port')).toBe('8443');
      expect(flagValue(c.args, '--metrics-port')).toBe('8080');
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      // A slow start never trips the liveness probe: it waits for the startup probe's first success.
      expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(300);
      const service = find(objects, 'Service', WEBHOOK);
      // Only admission on the Service: probes and /metrics stay on the pod's metrics port.
      expect(service.spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
      expect(selectorMatches({ matchLabels: service.spec.selector }, find(objects, 'Deployment', WEBHOOK).spec.template.metadata.labels)).toBe(true);
    });

    it('waits before SIGTERM with the kubelet sleep action, inside the termination grace period', () => {
      const deployment = find(build(dir), 'Deployment', WEBHOOK);
      const c = container(deployment, 'webhook');
      // Not `exec: sleep`: the image has no sleep binary to run.
      expect(c.lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
      // preStop, then the server's own 5 s SIGTERM grace period, then draining.
      expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(5 + 5 + 10);
      expect(c.resources.requests).toBeDefined();
      expect(c.resources.limits.memory).toBeDefined();
    });

    it('mounts the dfs-injector-config ConfigMap read-only, and its config.yaml is exactly the embedded defaults', () => {
      const objects = build(dir);
      const deployment = find(objects, 'Deployment', WEBHOOK);
      const c = container(deployment, 'webhook');
      const configPath = flagValue(c.args, '--config')!;
      const mount = c.volumeMounts.find((m: any) => configPath.startsWith(`${m.mountPath}/`));
      expect(mount.readOnly).toBe(true);
      const volume = deployment.spec.template.spec.volumes.find((v: any) => v.name === mount.name);
      expect(volume.configMap.name).toBe('dfs-injector-config');
      const configMap = find(objects, 'ConfigMap', 'dfs-injector-config');
      const text = configMap.data[configPath.slice(mount.mountPath.length + 1)];
      expect(parseConfigText(text, 'config.yaml')).toEqual(defaultConfig);
    });

    it('points the webhook configuration at the webhook Service on port 443, with the pod CREATE rule on every entry', () => {
      const objects = build(dir);
      const config = find(objects, 'MutatingWebhookConfiguration', WEBHOOK);
      const service = find(objects, 'Service', WEBHOOK);
      expect(config.webhooks).toHaveLength(4);
      for (const hook of config.webhooks) {
        expect(hook.clientConfig.service).toMatchObject({ name: service.metadata.name, namespace: service.metadata.namespace, port: 443 });
        expect(hook.clientConfig.caBundle).toBeUndefined();
        expect(hook.clientConfig.url).toBeUndefined();
        expect(hook.rules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
        expect(hook).toMatchObject({ failurePolicy: 'Fail', timeoutSeconds: 5, sideEffects: 'None', reinvocationPolicy: 'IfNeeded', admissionReviewVersions: ['v1'], matchPolicy: 'Equivalent' });
        expect(hook.name).toMatch(/\.dfs-injector\.io$/);
      }
    });
  });

  describe('the webhook configuration entries', () => {
    const hooks = (): any[] => find(build('base'), 'MutatingWebhookConfiguration', WEBHOOK).webhooks;

    it('serve exactly the paths of lib/entry.ts ENTRY_PATHS', () => {
      expect(hooks().map((h) => h.clientConfig.service.path).sort()).toEqual([...ENTRY_PATHS].sort());
    });

    it('each select the namespaces that the entry context of its path describes', () => {
      for (const hook of hooks()) {
        const expressions: any[] = hook.namespaceSelector.matchExpressions;
        const byKey = (key: string): any => expressions.find((e) => e.key === key);
        const context: EntryContext = {
          defaultRole: byKey(LABEL_DEFAULT_ROLE)?.operator === 'In' && byKey(LABEL_DEFAULT_ROLE).values.includes('consumer') ? 'consumer' : undefined,
          podSecurityEnforced: byKey(LABEL_POD_SECURITY_ENFORCE)?.operator === 'In',
        };
        expect(entryForPath(hook.clientConfig.service.path), hook.name).toEqual(context);
        expect(byKey(LABEL_INJECTION)).toEqual({ key: LABEL_INJECTION, operator: 'In', values: ['enabled'] });
        expect(byKey('kubernetes.io/metadata.name')).toEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'dfs-system'] });
        expect(byKey(LABEL_POD_SECURITY_ENFORCE).values.sort()).toEqual(['baseline', 'restricted']);
        expect(hook.objectSelector.matchExpressions).toEqual(
          context.defaultRole === 'consumer'
            ? [{ key: LABEL_ROLE, operator: 'DoesNotExist' }]
            : [
                { key: LABEL_ROLE, operator: 'Exists' },
                { key: LABEL_ROLE, operator: 'NotIn', values: ['none'] },
              ],
        );
      }
    });

    // Every combination of the labels that matter: the API server must call at most one entry
    // per pod (a pod patched twice would be a bug), and exactly the one whose path is right. A
    // misspelt role is sent (the webhook refuses it with a message); role none never is, so it
    // does not depend on the webhook being up.
    it('send every pod to at most one entry, and to the one whose context matches its namespace', () => {
      const entries = hooks();
      const namespaces: Record<string, string>[] = [];
      for (const name of ['media', 'kube-system', 'dfs-system']) {
        for (const injection of [undefined, 'enabled', 'disabled']) {
          for (const defaultRole of [undefined, 'consumer']) {
            for (const enforce of [undefined, 'privileged', 'baseline', 'restricted']) {
              const labels: Record<string, string> = { 'kubernetes.io/metadata.name': name };
              if (injection !== undefined) labels[LABEL_INJECTION] = injection;
              if (defaultRole !== undefined) labels[LABEL_DEFAULT_ROLE] = defaultRole;
              if (enforce !== undefined) labels[LABEL_POD_SECURITY_ENFORCE] = enforce;
              namespaces.push(labels);
            }
          }
        }
      }
      let routed = 0;
      for (const ns of namespaces) {
        for (const role of [undefined, 'source', 'consumer', 'none', 'consumr']) {
          const pod: Record<string, string> = role === undefined ? { app: 'x' } : { app: 'x', [LABEL_ROLE]: role };
          const matched = entries.filter((h) => selectorMatches(h.namespaceSelector, ns) && selectorMatches(h.objectSelector, pod));
          const optedIn = ns[LABEL_INJECTION] === 'enabled' && !['kube-system', 'dfs-system'].includes(ns['kubernetes.io/metadata.name']!);
          const wanted = optedIn && role !== 'none' && (role !== undefined || ns[LABEL_DEFAULT_ROLE] === 'consumer');
          const where = `namespace ${JSON.stringify(ns)}, pod role ${role}`;
          expect(matched.length, where).toBe(wanted ? 1 : 0);
          if (!wanted) continue;
          routed++;
          const expected: EntryContext = {
            defaultRole: role === undefined ? 'consumer' : undefined,
            podSecurityEnforced: ['baseline', 'restricted'].includes(ns[LABEL_POD_SECURITY_ENFORCE] ?? ''),
          };
          expect(entryForPath(matched[0].clientConfig.service.path), where).toEqual(expected);
        }
      }
      expect(routed).toBeGreaterThan(0);
    });
  });

  describe('RBAC of the default overlay (certificate bootstrap)', () => {
    const rules = (kind: string, name: string): any[] => find(build('overlays/default'), kind, name).rules;

    it('lets the webhook get, update and patch only Secret dfs-injector-tls, and create Secrets only in its namespace', () => {
      const objects = build('overlays/default');
      const roles = objects.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
      const secretRules = roles.flatMap((r) => (r.rules as any[]).filter((rule) => rule.resources.includes('secrets')).map((rule) => ({ kind: r.kind, namespace: r.metadata.namespace, rule })));
      expect(secretRules.every((s) => s.kind === 'Role' && s.namespace === NAMESPACE)).toBe(true);
      const named = secretRules.filter((s) => s.rule.resourceNames !== undefined);
      expect(named.map((s) => s.rule)).toEqual([{ apiGroups: [''], resources: ['secrets'], resourceNames: [TLS_SECRET], verbs: ['get', 'update', 'patch'] }]);
      // create cannot be limited by resourceNames; it is the only verb granted without them.
      const unnamed = secretRules.filter((s) => s.rule.resourceNames === undefined);
      expect(unnamed.map((s) => s.rule)).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['create'] }]);
    });

    it('lets the webhook list EndpointSlices in its namespace only (to confirm a CA rotation), and nothing more on them', () => {
      const objects = build('overlays/default');
      const roles = objects.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
      const sliceRules = roles.flatMap((r) => (r.rules as any[]).filter((rule) => rule.resources.includes('endpointslices')).map((rule) => ({ kind: r.kind, namespace: r.metadata.namespace, rule })));
      expect(sliceRules).toEqual([{ kind: 'Role', namespace: NAMESPACE, rule: { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list'] } }]);
    });

    it('lets the webhook get and patch only MutatingWebhookConfiguration dfs-injector, and nothing else cluster-wide', () => {
      expect(rules('ClusterRole', 'dfs-injector-webhook-config')).toEqual([
        { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [WEBHOOK], verbs: ['get', 'patch'] },
      ]);
      const clusterRoles = build('overlays/default').filter((o) => o.kind === 'ClusterRole');
      expect(clusterRoles.map((r) => r.metadata.name)).toEqual(['dfs-injector-webhook-config']);
    });

    it('limits the webhook service account to caBundle changes with a ValidatingAdmissionPolicy bound in Deny mode', () => {
      const objects = build('overlays/default');
      const policy = find(objects, 'ValidatingAdmissionPolicy', 'dfs-injector-cabundle-only');
      const binding = find(objects, 'ValidatingAdmissionPolicyBinding', 'dfs-injector-cabundle-only');
      expect(binding.spec).toEqual({ policyName: policy.metadata.name, validationActions: ['Deny'] });
      expect(policy.spec.failurePolicy).toBe('Fail');
      // The same object the ClusterRole lets it patch.
      const [rule] = policy.spec.matchConstraints.resourceRules;
      const [granted] = rules('ClusterRole', 'dfs-injector-webhook-config');
      expect(rule.resources).toEqual(granted.resources);
      expect(rule.resourceNames).toEqual(granted.resourceNames);
      expect(rule.operations).toEqual(['UPDATE']);
      const account = find(objects, 'Deployment', WEBHOOK).spec.template.spec.serviceAccountName;
      const pattern = /matches\('(.*)'\)/.exec(policy.spec.matchConditions[0].expression)![1]!;
      expect(new RegExp(pattern).test(`system:serviceaccount:${NAMESPACE}:${account}`)).toBe(true);
      expect(new RegExp(pattern).test(`system:serviceaccount:${NAMESPACE}:default`)).toBe(false);
    });

    it('binds both roles to the webhook Deployment service account, and only to it', () => {
      const objects = build('overlays/default');
      const account = find(objects, 'Deployment', WEBHOOK).spec.template.spec.serviceAccountName;
      for (const binding of objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
        expect(binding.subjects, `${binding.kind}/${binding.metadata.name}`).toEqual([{ kind: 'ServiceAccount', name: account, namespace: NAMESPACE }]);
        find(objects, binding.roleRef.kind, binding.roleRef.name);
      }
    });

    it('runs serve with the bootstrap flags, writing the pair into an in-memory emptyDir', () => {
      const deployment = find(build('overlays/default'), 'Deployment', WEBHOOK);
      const c = container(deployment, 'webhook');
      expect(c.args).toEqual([
        'serve', '--config', '/etc/dfs-injector/config.yaml',
        '--tls-cert', '/var/run/dfs-injector/tls/tls.crt', '--tls-key', '/var/run/dfs-injector/tls/tls.key',
        '--tls-secret', TLS_SECRET, '--webhook-config', WEBHOOK, '--namespace', '$(POD_NAMESPACE)',
        '--port', '8443', '--metrics-port', '8080',
      ]);
      // $(POD_NAMESPACE) is expanded by the kubelet from this env var.
      expect(c.env.find((e: any) => e.name === 'POD_NAMESPACE').valueFrom.fieldRef.fieldPath).toBe('metadata.namespace');
      const tls = c.volumeMounts.find((m: any) => m.mountPath === '/var/run/dfs-injector/tls');
      const volume = deployment.spec.template.spec.volumes.find((v: any) => v.name === tls.name);
      expect(volume.emptyDir.medium).toBe('Memory');
      expect(deployment.spec.template.spec.automountServiceAccountToken).toBe(true);
    });
  });

  describe('the auditor role (manifests/auditor)', () => {
    it('is one ClusterRole that gets and lists, and never reaches Secrets', () => {
      const objects = build('auditor');
      expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['ClusterRole/dfs-injector-auditor']);
      const rules = objects[0]!.rules as { resources: string[]; verbs: string[] }[];
      expect([...new Set(rules.flatMap((r) => r.verbs))].sort()).toEqual(['get', 'list']);
      expect(rules.flatMap((r) => r.resources)).not.toContain('secrets');
    });

    it('gets what check reads on top in one role, and keeps the dry-run pod create and pods/exec in roles of their own (manifests/auditor-check)', () => {
      const objects = build('auditor-check');
      expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['ClusterRole/dfs-injector-checker', 'ClusterRole/dfs-injector-checker-dry-run', 'ClusterRole/dfs-injector-checker-exec']);
      const reads = objects[0]!.rules as { resources: string[]; verbs: string[] }[];
      expect([...new Set(reads.flatMap((r) => r.verbs))].sort()).toEqual(['get', 'list']);
      expect(reads.flatMap((r) => r.resources)).not.toContain('secrets');
      expect(objects[1]!.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['create'] }]);
      // Exec and nothing else: no pods, no attach or port-forward.
      expect(objects[2]!.rules).toEqual([{ apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] }]);
    });
  });

  describe('the cert-manager overlay', () => {
    it('serves the Secret that cert-manager issues, without bootstrap flags, token or RBAC', () => {
      const objects = build('overlays/cert-manager');
      const deployment = find(objects, 'Deployment', WEBHOOK);
      const c = container(deployment, 'webhook');
      for (const flag of ['--tls-secret', '--webhook-config', '--namespace']) expect(c.args).not.toContain(flag);
      const certPath = flagValue(c.args, '--tls-cert')!;
      const keyPath = flagValue(c.args, '--tls-key')!;
      const mount = c.volumeMounts.find((m: any) => certPath.startsWith(`${m.mountPath}/`));
      expect(keyPath.startsWith(`${mount.mountPath}/`)).toBe(true);
      const volume = deployment.spec.template.spec.volumes.find((v: any) => v.name === mount.name);
      expect(volume).toEqual({ name: mount.name, secret: { secretName: TLS_SECRET, defaultMode: 0o440 } });
      expect(deployment.spec.template.spec.automountServiceAccountToken).toBe(false);
      expect(objects.filter((o) => ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind))).toEqual([]);
    });

    it('issues dfs-injector-tls for the Service DNS names from a CA that cainjector puts into caBundle', () => {
      const objects = build('overlays/cert-manager');
      const config = find(objects, 'MutatingWebhookConfiguration', WEBHOOK);
      const from = config.metadata.annotations?.['cert-manager.io/inject-ca-from'];
      expect(from).toBe(`${NAMESPACE}/${TLS_SECRET}`);
      const serving = find(objects, 'Certificate', from!.split('/')[1]!);
      expect(serving.metadata.namespace).toBe(NAMESPACE);
      expect(serving.spec.secretName).toBe(TLS_SECRET);
      const service = find(objects, 'Service', WEBHOOK);
      // The API server dials <service>.<namespace>.svc.
      expect(serving.spec.dnsNames).toContain(`${service.metadata.name}.${service.metadata.namespace}.svc`);
      expect(serving.spec.usages).toContain('server auth');
      // Serving certificate <- CA issuer <- CA certificate <- self-signed issuer.
      const caIssuer = find(objects, 'Issuer', serving.spec.issuerRef.name);
      const ca = objects.find((o) => o.kind === 'Certificate' && o.spec.secretName === caIssuer.spec.ca.secretName)!;
      expect(ca.spec.isCA).toBe(true);
      expect(find(objects, 'Issuer', ca.spec.issuerRef.name).spec).toEqual({ selfSigned: {} });
    });
  });

  describe('the mounter DaemonSet', () => {
    const daemonSet = (): KubeObject => find(build('base'), 'DaemonSet', 'dfs-mounter');

    it('mounts in the host network namespace, privileged, through a Bidirectional hostPath at the configured host path', () => {
      const ds = daemonSet();
      const spec = ds.spec.template.spec;
      expect(ds.metadata.namespace).toBe(NAMESPACE);
      expect(spec.hostNetwork).toBe(true);
      expect(spec.dnsPolicy).toBe('ClusterFirstWithHostNet');
      expect(spec.priorityClassName).toBe('system-node-critical');
      expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
      expect(spec.automountServiceAccountToken).toBe(false);
      const c = container(ds, 'mounter');
      expect(c.securityContext.privileged).toBe(true);
      const hostPath = envValue(c, 'DFS_HOST_PATH');
      expect(hostPath).toBe(defaultConfig.hostPath);
      const mount = c.volumeMounts.find((m: any) => m.mountPath === hostPath);
      expect(mount.mountPropagation).toBe('Bidirectional');
      const volume = spec.volumes.find((v: any) => v.name === mount.name);
      expect(volume.hostPath).toEqual({ path: defaultConfig.hostPath, type: 'DirectoryOrCreate' });
      expect(c.resources.requests).toBeDefined();
      expect(c.resources.limits.memory).toBeDefined();
    });

    it('runs the script from the generated ConfigMap, which holds manifests/mounter/dfs-mounter.sh as it is', () => {
      const objects = build('base');
      const ds = find(objects, 'DaemonSet', 'dfs-mounter');
      const c = container(ds, 'mounter');
      const scriptPath: string = c.command[1];
      expect(c.command).toEqual(['/bin/sh', scriptPath]);
      const mount = c.volumeMounts.find((m: any) => scriptPath.startsWith(`${m.mountPath}/`));
      const volume = ds.spec.template.spec.volumes.find((v: any) => v.name === mount.name);
      // Hash-suffixed, so a changed script rolls the DaemonSet.
      expect(volume.configMap.name).toMatch(/^dfs-mounter-script-[a-z0-9]+$/);
      const configMap = find(objects, 'ConfigMap', volume.configMap.name);
      const key = scriptPath.slice(mount.mountPath.length + 1);
      expect(configMap.data[key]).toBe(readFileSync(join(MANIFESTS, 'mounter', 'dfs-mounter.sh'), 'utf8'));
      expect(c.readinessProbe.exec.command).toEqual(['/bin/sh', scriptPath, 'check-ready']);
      const readyFile = envValue(c, 'DFS_READY_FILE')!;
      expect(c.volumeMounts.some((m: any) => readyFile.startsWith(`${m.mountPath}/`))).toBe(true);
    });

    it('mounts read-only, nosuid, nodev, noexec with the SMB 3.1.1 options, and keeps the share on SIGTERM', () => {
      const c = container(daemonSet(), 'mounter');
      const options = envValue(c, 'DFS_MOUNT_OPTIONS')!.split(',');
      for (const wanted of ['ro', 'nosuid', 'nodev', 'noexec', 'vers=3.1.1', 'guest', 'soft', 'echo_interval=10', 'actimeo=1', 'cache=strict', 'noserverino']) expect(options).toContain(wanted);
      expect(options).not.toContain('rw');
      // They do nothing for this share (ARCHITECTURE.md, "Facts that decide the details"), and vers=3.0 is not NFS.
      for (const unwanted of ['nounix', 'reparse=nfs', 'vers=3.0']) expect(options).not.toContain(unwanted);
      expect(envValue(c, 'DFS_UNMOUNT_ON_EXIT')).toBe('false');
      expect(envValue(c, 'DFS_SHARE_NAME')).toBe(defaultConfig.source.shareName);
    });

    it('is denied by Pod Security baseline for exactly its host access, which is why dfs-system enforces privileged', () => {
      const violations = podSecurityViolations(daemonSet().spec.template.spec, 'baseline');
      expect(violations).toEqual([
        'hostNetwork=true: host namespaces are forbidden',
        'volumes[dfs].hostPath: hostPath volumes are forbidden',
        'containers[mounter].securityContext.privileged=true is forbidden',
      ]);
    });
  });

  describe('the examples overlay', () => {
    const objects = (): KubeObject[] => build('overlays/examples');

    it('holds only the application side, in the opted-in media namespace', () => {
      const all = objects();
      const ns = find(all, 'Namespace', 'media');
      expect(ns.metadata.labels?.[LABEL_INJECTION]).toBe('enabled');
      for (const o of all.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('media');
      for (const kind of ['MutatingWebhookConfiguration', 'DaemonSet', 'ClusterRole']) expect(all.some((o) => o.kind === kind)).toBe(false);
    });

    it('has the dfs-smb Service the mounter resolves, selecting the source pod on the sidecar port named smb', () => {
      const all = objects();
      const service = find(all, 'Service', 'dfs-smb');
      const mounter = container(find(build('base'), 'DaemonSet', 'dfs-mounter'), 'mounter');
      expect(envValue(mounter, 'DFS_SMB_SERVICE')).toBe(`${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`);
      expect(service.spec.type).toBe('ClusterIP');
      expect(service.spec.ports).toEqual([{ name: 'smb', port: 445, targetPort: 'smb', protocol: 'TCP' }]);
      const source = find(all, 'StatefulSet', 'decypharr');
      expect(selectorMatches({ matchLabels: service.spec.selector }, source.spec.template.metadata.labels)).toBe(true);
      const sonarr = find(all, 'Deployment', 'sonarr');
      expect(selectorMatches({ matchLabels: service.spec.selector }, sonarr.spec.template.metadata.labels)).toBe(false);
      // The port name exists only after injection: the sidecar brings it.
      const injected = injectDocument(source, defaultConfig);
      expect(injected.errors).toEqual([]);
      const ports = (injected.object as any).spec.template.spec.containers.flatMap((c: any) => c.ports ?? []);
      expect(ports).toContainEqual({ name: 'smb', containerPort: 445, protocol: 'TCP' });
    });

    it('admits port 445 of the source pods from an ipBlock (the nodes) only, and leaves their other ports as they were', () => {
      const all = objects();
      const policy = find(all, 'NetworkPolicy', 'dfs-smb');
      const service = find(all, 'Service', 'dfs-smb');
      // The pods the Service sends SMB to are the pods the policy guards.
      expect(policy.spec.podSelector).toEqual({ matchLabels: service.spec.selector });
      expect(policy.spec.policyTypes).toEqual(['Ingress']);
      const rulesFor445 = (policy.spec.ingress as any[]).filter((r) =>
        (r.ports ?? [{}]).some((p: any) => (p.protocol ?? 'TCP') === 'TCP' && (p.port === undefined || (p.port <= 445 && (p.endPort ?? p.port) >= 445))),
      );
      expect(rulesFor445).toHaveLength(1);
      expect(rulesFor445[0].from).toHaveLength(1);
      expect(Object.keys(rulesFor445[0].from[0])).toEqual(['ipBlock']);
      expect(rulesFor445[0].ports).toEqual([{ protocol: 'TCP', port: 445 }]);
      // Every other TCP port, and UDP, from anywhere.
      const open = (policy.spec.ingress as any[]).filter((r) => r.from === undefined).flatMap((r) => r.ports);
      expect(open).toContainEqual({ protocol: 'TCP', port: 1, endPort: 444 });
      expect(open).toContainEqual({ protocol: 'TCP', port: 446, endPort: 65535 });
      expect(open).toContainEqual({ protocol: 'UDP', port: 1, endPort: 65535 });
      expect(defaultConfig.source.sidecar.port).toBe(445);
    });

    it('routes the example pods to the /mutate entry of the webhook configuration', () => {
      const all = objects();
      const ns = find(all, 'Namespace', 'media');
      const nsLabels = { ...ns.metadata.labels, 'kubernetes.io/metadata.name': 'media' };
      const hooks: any[] = find(build('base'), 'MutatingWebhookConfiguration', WEBHOOK).webhooks;
      for (const workload of [find(all, 'StatefulSet', 'decypharr'), find(all, 'Deployment', 'sonarr')]) {
        const matched = hooks.filter((h) => selectorMatches(h.namespaceSelector, nsLabels) && selectorMatches(h.objectSelector, workload.spec.template.metadata.labels));
        expect(matched.map((h) => h.clientConfig.service.path), workload.metadata.name).toEqual(['/mutate']);
      }
    });

    it('turns Sonarr into a consumer through the webhook code, and the result is still a valid Deployment', () => {
      const sonarr = find(objects(), 'Deployment', 'sonarr');
      const result = injectDocument(sonarr, defaultConfig);
      expect(result.errors).toEqual([]);
      expect(result.changed).toBe(true);
      const out = result.object as KubeObject;
      new Deployment(out).validate();
      const spec = out.spec.template.spec;
      const volume = spec.volumes.find((v: any) => v.hostPath?.path === defaultConfig.hostPath);
      expect(volume.hostPath.type).toBe('Directory');
      expect(spec.containers[0].volumeMounts).toContainEqual({ name: volume.name, mountPath: defaultConfig.consumer.mountPath, readOnly: true, mountPropagation: 'HostToContainer' });
      // Consumers need hostPath: the namespace must not enforce baseline (ARCHITECTURE.md, "Facts that decide the details").
      expect(podSecurityViolations(spec, 'baseline')).toContain(`volumes[${volume.name}].hostPath: hostPath volumes are forbidden`);
      expect(find(objects(), 'Namespace', 'media').metadata.labels?.[LABEL_POD_SECURITY_ENFORCE]).toBe('privileged');
    });

    it('turns decypharr into a source (privileged, so Bidirectional is allowed), and the result is still a valid StatefulSet', () => {
      const decypharr = find(objects(), 'StatefulSet', 'decypharr');
      const result = injectDocument(decypharr, defaultConfig);
      expect(result.errors).toEqual([]);
      const out = result.object as KubeObject;
      new StatefulSet(out).validate();
      const fuse = out.spec.template.spec.containers[0];
      expect(fuse.securityContext.privileged).toBe(true);
      expect(fuse.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: defaultConfig.source.path, mountPropagation: 'Bidirectional' }));
      expect(out.spec.template.spec.containers.map((c: any) => c.name)).toContain(defaultConfig.source.sidecar.name);
    });
  });

  it('has a Pod Security checker that catches what restricted forbids', () => {
    // The mounter breaks nearly every rule; if the checker found nothing, its passes would mean nothing.
    const violations = podSecurityViolations(find(build('base'), 'DaemonSet', 'dfs-mounter').spec.template.spec, 'restricted');
    for (const rule of ['hostNetwork', 'hostPath', 'privileged=true', 'allowPrivilegeEscalation', 'runAsNonRoot', 'seccompProfile', 'capabilities.drop', 'type hostPath is not allowed']) {
      expect(violations.some((v) => v.includes(rule)), rule).toBe(true);
    }
  });
});
