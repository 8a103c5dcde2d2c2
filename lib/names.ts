// The names users see (ARCHITECTURE.md, "Names users see"). Everything user-facing is spelled here once.

export const DOMAIN = 'dfs-injector.io';

export const LABEL_INJECTION = `${DOMAIN}/injection`;
export const LABEL_DEFAULT_ROLE = `${DOMAIN}/default-role`;
export const LABEL_ROLE = `${DOMAIN}/role`;

export const ANNOTATION_STATUS = `${DOMAIN}/status`;

export const OVERRIDE_ANNOTATIONS = {
  mountPath: `${DOMAIN}/mount-path`,
  containers: `${DOMAIN}/containers`,
  sourceContainer: `${DOMAIN}/source-container`,
  sourcePath: `${DOMAIN}/source-path`,
  shareName: `${DOMAIN}/share-name`,
} as const;

export const ROLES = ['source', 'consumer', 'none'] as const;
export type Role = (typeof ROLES)[number];

/** Pod Security's namespace label; its enforce level decides whether a hostPath pod is admitted. */
export const LABEL_POD_SECURITY_ENFORCE = 'pod-security.kubernetes.io/enforce';
