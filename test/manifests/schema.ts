import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet, Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { z } from 'zod';
import type { KubeObject } from './kustomize.js';

interface Validatable {
  validate(): void;
}

type ModelClass = new (data: any) => Validatable;

// Every kind the manifests may render. A kind missing here fails the test on purpose: adding a
// kind means deciding how it is validated.
const MODELS: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': ValidatingAdmissionPolicy,
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': ValidatingAdmissionPolicyBinding,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

// cert-manager.io/v1 has no model in kubernetes-models: the fields cert-manager requires, and the
// ones these manifests rely on, checked by hand (cert-manager's CRD schema, v1.x).
const name = z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/).max(253);
const metadata = z.object({ name, namespace: name.optional() }).loose();
const issuerRef = z.strictObject({ name, kind: z.enum(['Issuer', 'ClusterIssuer']), group: z.literal('cert-manager.io').optional() });
const duration = z.string().regex(/^(\d+(\.\d+)?(h|m|s|ms|us|ns))+$/, 'must be a Go duration such as 2160h');
const KEY_USAGES = ['signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing', 'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc'] as const;

const certificate = z.strictObject({
  apiVersion: z.literal('cert-manager.io/v1'),
  kind: z.literal('Certificate'),
  metadata,
  spec: z
    .strictObject({
      secretName: name,
      issuerRef,
      isCA: z.boolean().optional(),
      commonName: z.string().max(64).optional(),
      dnsNames: z.array(z.string().min(1)).optional(),
      duration: duration.optional(),
      renewBefore: duration.optional(),
      usages: z.array(z.enum(KEY_USAGES)).optional(),
      privateKey: z
        .strictObject({
          algorithm: z.enum(['RSA', 'ECDSA', 'Ed25519']).optional(),
          size: z.number().int().optional(),
          encoding: z.enum(['PKCS1', 'PKCS8']).optional(),
          rotationPolicy: z.enum(['Never', 'Always']).optional(),
        })
        .optional(),
    })
    .refine((spec) => spec.commonName !== undefined || (spec.dnsNames?.length ?? 0) > 0, 'a Certificate needs commonName or dnsNames'),
});

const issuer = z.strictObject({
  apiVersion: z.literal('cert-manager.io/v1'),
  kind: z.literal('Issuer'),
  metadata,
  spec: z.union([z.strictObject({ selfSigned: z.strictObject({}) }), z.strictObject({ ca: z.strictObject({ secretName: name }) })]),
});

const CRD_SCHEMAS: Record<string, z.ZodType> = {
  'cert-manager.io/v1/Certificate': certificate,
  'cert-manager.io/v1/Issuer': issuer,
};

/** Throws, naming the object and the schema path, unless `object` is a valid instance of its kind. */
export function validateObject(object: KubeObject): void {
  const key = `${object.apiVersion}/${object.kind}`;
  const label = `${object.kind}/${object.metadata?.name ?? '(unnamed)'}`;
  const Model = MODELS[key];
  if (Model !== undefined) {
    try {
      new Model(object).validate();
    } catch (error) {
      throw new Error(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    }
    return;
  }
  const schema = CRD_SCHEMAS[key];
  if (schema === undefined) throw new Error(`${label}: no schema for ${key}; add it to test/manifests/schema.ts`);
  const result = schema.safeParse(object);
  if (!result.success) throw new Error(`${label}: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
}
