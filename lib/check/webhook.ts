// Step 1 of `check`: the webhook. Each function turns what the CLI read into one StepResult.
import type { X509Certificate } from 'node:crypto';
import { chainsTo, namesHost, parseCertificates, splitPem } from './certificate.js';
import { TROUBLESHOOTING } from './troubleshooting.js';
import type { StepResult } from './types.js';

export interface WebhookEntryFacts {
  name: string;
  /** The decoded caBundle (PEM), or undefined when the entry has none. */
  caBundle: string | undefined;
  url?: string;
  service?: { namespace: string; name: string; port: number };
}

export interface WebhookConfigurationFacts {
  name: string;
  entries: WebhookEntryFacts[];
}

export interface DeploymentFacts {
  namespace: string;
  name: string;
  replicas: number;
  availableReplicas: number;
  conditions: { type: string; status: string; reason?: string; message?: string }[];
}

/** What a TLS connection to the webhook presented, leaf first; or why there was none. */
export type ServedCertificate =
  | { ok: true; address: string; chain: string[] }
  | { ok: false; address: string; error: string };

const DAY_MS = 24 * 60 * 60 * 1000;

/** The name the API server checks the served certificate against. */
export function webhookServerName(entry: WebhookEntryFacts): string | undefined {
  if (entry.service !== undefined) return `${entry.service.name}.${entry.service.namespace}.svc`;
  if (entry.url === undefined) return undefined;
  try {
    return new URL(entry.url).hostname;
  } catch {
    return undefined;
  }
}

export function checkWebhookConfiguration(name: string, configuration: WebhookConfigurationFacts | undefined): StepResult {
  if (configuration === undefined) {
    return {
      step: 'webhook-configuration',
      subject: `mutatingwebhookconfiguration/${name}`,
      status: 'fail',
      reason: `MutatingWebhookConfiguration ${name} not found: no pod is injected`,
      fix: 'kubectl apply -k manifests/overlays/default (or overlays/cert-manager)',
      troubleshooting: TROUBLESHOOTING.notInjected,
    };
  }
  if (configuration.entries.length === 0) {
    return { step: 'webhook-configuration', subject: `mutatingwebhookconfiguration/${name}`, status: 'fail', reason: `MutatingWebhookConfiguration ${name} has no webhooks`, fix: 'kubectl apply -k manifests/overlays/default', troubleshooting: TROUBLESHOOTING.notInjected };
  }
  const targets = [...new Set(configuration.entries.map((e) => (e.service === undefined ? (e.url ?? '(no clientConfig)') : `service ${e.service.namespace}/${e.service.name}:${e.service.port}`)))];
  return { step: 'webhook-configuration', subject: `mutatingwebhookconfiguration/${name}`, status: 'pass', reason: `${configuration.entries.length} webhook entr${configuration.entries.length === 1 ? 'y' : 'ies'}, calling ${targets.join(', ')}` };
}

export function checkWebhookDeployment(ref: { namespace: string; name: string }, deployment: DeploymentFacts | undefined): StepResult {
  const subject = `deployment ${ref.namespace}/${ref.name}`;
  const fix = `kubectl -n ${ref.namespace} describe deployment ${ref.name}; kubectl -n ${ref.namespace} logs deployment/${ref.name}`;
  if (deployment === undefined) {
    return { step: 'webhook-deployment', subject, status: 'fail', reason: 'not found: nothing answers the API server, and pods with a role label are refused', fix: 'kubectl apply -k manifests/overlays/default', troubleshooting: TROUBLESHOOTING.webhookUnreachable };
  }
  const available = deployment.conditions.find((c) => c.type === 'Available');
  if (deployment.availableReplicas < 1 || available?.status !== 'True') {
    const why = available?.message ?? available?.reason ?? 'no Available condition yet';
    return {
      step: 'webhook-deployment',
      subject,
      status: 'fail',
      reason: `not available: ${deployment.availableReplicas} of ${deployment.replicas} replicas available (${why})`,
      fix,
      troubleshooting: TROUBLESHOOTING.webhookUnreachable,
    };
  }
  return { step: 'webhook-deployment', subject, status: 'pass', reason: `available: ${deployment.availableReplicas} of ${deployment.replicas} replicas` };
}

function leafOf(served: ServedCertificate): { leaf?: X509Certificate; intermediates: X509Certificate[]; error?: string } {
  if (!served.ok) return { intermediates: [], error: served.error };
  const { certificates, errors } = parseCertificates(served.chain);
  const [leaf, ...intermediates] = certificates;
  if (leaf === undefined) return { intermediates: [], error: `the webhook at ${served.address} presented no readable certificate${errors.length > 0 ? ` (${errors.join('; ')})` : ''}` };
  return { leaf, intermediates };
}

const UNREACHABLE_FIX =
  'run check where the webhook Service is reachable (in the cluster), or forward it and say where: kubectl -n dfs-system port-forward svc/dfs-injector 8443:443, then --webhook-address 127.0.0.1:8443';

export function checkWebhookCertificate(served: ServedCertificate, now: Date, minDays: number): StepResult {
  const subject = `served at ${served.address}`;
  const { leaf, error } = leafOf(served);
  if (leaf === undefined) return { step: 'webhook-certificate', subject, status: 'skip', reason: `cannot read the served certificate: ${error ?? 'unknown'}`, fix: UNREACHABLE_FIX };
  const validTo = new Date(leaf.validTo);
  const validFrom = new Date(leaf.validFrom);
  const fix = 'the webhook renews its certificate with --tls-secret (check its log); with cert-manager, check the Certificate: kubectl -n dfs-system describe certificate';
  if (validTo.getTime() <= now.getTime()) {
    return { step: 'webhook-certificate', subject, status: 'fail', reason: `expired on ${validTo.toISOString()}: the API server refuses to call the webhook`, fix, troubleshooting: TROUBLESHOOTING.webhookUnreachable };
  }
  if (validFrom.getTime() > now.getTime()) {
    return { step: 'webhook-certificate', subject, status: 'fail', reason: `not valid before ${validFrom.toISOString()} (a clock is wrong)`, fix, troubleshooting: TROUBLESHOOTING.webhookUnreachable };
  }
  const days = Math.floor((validTo.getTime() - now.getTime()) / DAY_MS);
  if (days < minDays) {
    return { step: 'webhook-certificate', subject, status: 'fail', reason: `expires on ${validTo.toISOString()}, in ${days} day${days === 1 ? '' : 's'} (fewer than ${minDays})`, fix, troubleshooting: TROUBLESHOOTING.webhookUnreachable };
  }
  return { step: 'webhook-certificate', subject, status: 'pass', reason: `valid until ${validTo.toISOString()} (${days} days left)` };
}

/** Every entry's caBundle must verify the certificate the webhook serves, for the name the API server checks. */
export function checkCaBundle(configuration: WebhookConfigurationFacts, served: ServedCertificate): StepResult {
  const subject = `mutatingwebhookconfiguration/${configuration.name}`;
  const { leaf, intermediates, error } = leafOf(served);
  if (leaf === undefined) return { step: 'webhook-ca-bundle', subject, status: 'skip', reason: `cannot read the served certificate: ${error ?? 'unknown'}`, fix: UNREACHABLE_FIX };
  const problems: string[] = [];
  for (const entry of configuration.entries) {
    if (entry.caBundle === undefined || entry.caBundle.trim() === '') {
      problems.push(`${entry.name}: no caBundle`);
      continue;
    }
    const { certificates, errors } = parseCertificates(splitPem(entry.caBundle));
    if (certificates.length === 0) {
      problems.push(`${entry.name}: caBundle holds no readable certificate${errors.length > 0 ? ` (${errors.join('; ')})` : ''}`);
      continue;
    }
    if (!chainsTo(leaf, intermediates, certificates)) {
      problems.push(`${entry.name}: caBundle does not verify the served certificate (issued by ${leaf.issuer.replace(/\n/g, ', ')})`);
      continue;
    }
    const host = webhookServerName(entry);
    if (host !== undefined && !namesHost(leaf, host)) problems.push(`${entry.name}: the served certificate is not for ${host} (it names ${leaf.subjectAltName ?? 'no subject alternative name'})`);
  }
  if (problems.length > 0) {
    return {
      step: 'webhook-ca-bundle',
      subject,
      status: 'fail',
      reason: `${problems.length} of ${configuration.entries.length} entries would make the API server refuse the webhook: ${problems.join('; ')}`,
      fix: 'with --tls-secret the webhook patches caBundle itself (check its log and its RBAC on mutatingwebhookconfigurations); with cert-manager, check the cert-manager.io/inject-ca-from annotation',
      troubleshooting: TROUBLESHOOTING.webhookUnreachable,
    };
  }
  return { step: 'webhook-ca-bundle', subject, status: 'pass', reason: `every entry's caBundle verifies the served certificate` };
}

/** The result of a server-side dry-run create of a labelled consumer pod. */
export type DryRunOutcome =
  | { kind: 'injected'; namespace: string }
  | { kind: 'not-injected'; namespace: string }
  | { kind: 'refused'; namespace: string; message: string }
  | { kind: 'forbidden'; message: string }
  | { kind: 'no-namespace'; only?: string };

export function checkDryRunAdmission(outcome: DryRunOutcome): StepResult {
  const step = 'webhook-admission';
  switch (outcome.kind) {
    case 'injected':
      return { step, subject: `namespace ${outcome.namespace}`, status: 'pass', reason: 'a dry-run create of a consumer pod came back injected (nothing was created)' };
    case 'not-injected':
      return {
        step,
        subject: `namespace ${outcome.namespace}`,
        status: 'fail',
        reason: 'a dry-run create of a consumer pod was admitted without injection: the webhook was not called',
        fix: `dfs-injector explain -n ${outcome.namespace} -f <pod.yaml> walks the selectors; check the MutatingWebhookConfiguration's namespaceSelector and objectSelector`,
        troubleshooting: TROUBLESHOOTING.notInjected,
      };
    case 'refused':
      return { step, subject: `namespace ${outcome.namespace}`, status: 'fail', reason: `a dry-run create of a consumer pod was refused: ${outcome.message}`, fix: 'see the webhook steps above and the webhook log: kubectl -n dfs-system logs deployment/dfs-injector', troubleshooting: TROUBLESHOOTING.webhookUnreachable };
    case 'forbidden':
      return { step, subject: '', status: 'skip', reason: `not allowed to dry-run a pod create: ${outcome.message}`, fix: 'bind the dfs-injector-checker-dry-run ClusterRole (manifests/auditor-check) to run this step' };
    case 'no-namespace':
      if (outcome.only !== undefined) {
        return { step, subject: `namespace ${outcome.only}`, status: 'skip', reason: 'not opted in (dfs-injector.io/injection=enabled, not kube-system or dfs-system, no Pod Security baseline/restricted), so nothing there is sent to the webhook', fix: 'run check without --namespace, or with an opted-in one' };
      }
      return { step, subject: '', status: 'skip', reason: 'no namespace is labelled dfs-injector.io/injection=enabled (outside kube-system, dfs-system and Pod Security baseline/restricted)', fix: 'kubectl label namespace NS dfs-injector.io/injection=enabled' };
  }
}
