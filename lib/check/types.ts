// What `dfs-injector check` reports: one result per step and subject, in the order a data path is
// walked (webhook, source pods, the SMB Service, nodes), so the first failure is the one to fix first.

export type StepStatus = 'pass' | 'fail' | 'skip';

export const STEP_IDS = [
  'webhook-configuration',
  'webhook-deployment',
  'webhook-certificate',
  'webhook-ca-bundle',
  'webhook-admission',
  'source-sidecar',
  'source-fuse-mount',
  'source-smbd',
  'smb-endpoint',
  'node-mounter',
  'node-share',
  'consumer-mount',
] as const;
export type StepId = (typeof STEP_IDS)[number];

export interface StepResult {
  step: StepId;
  /** What was checked, e.g. "pod media/decypharr-0" or "node worker-1"; empty for cluster-wide steps. */
  subject: string;
  status: StepStatus;
  /** For pass: what was seen; for fail: what is wrong; for skip: why it could not be checked. */
  reason: string;
  /** What to do; set on every failure and on skips the user can lift. */
  fix?: string;
  /** The README troubleshooting entry this failure maps to. */
  troubleshooting?: string;
}

export interface CheckReport {
  results: StepResult[];
}
