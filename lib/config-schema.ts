import { z } from 'zod';

// Rules shared by config fields and per-pod annotations, so both reject the same values with the
// same words. Paths and share names end up in the smbd sidecar's environment, in smb.conf and in
// the wait-for-mount script: the sidecar's entrypoint (shim/image/entrypoint.sh) refuses what it
// cannot render safely, and a value the webhook admits must never be one the sidecar refuses
// (lib/sidecar-rules.test.ts runs both on one table of values).
export const FIELD_RULES = {
  absolutePath: 'must be an absolute path without "..", ":" or a trailing "/"',
  pathCharacters: `must be at most ${4095} characters of letters, digits and "_", ".", "/", "@", "+", ",", "=", "~" or "-"`,
  dns1123Label: 'must be a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  shareName: 'must be 1 to 80 characters of letters, digits, "_", "." or "-", and not a Samba special section (global, homes, printers, in any case)',
  image: 'must be a non-empty container image reference without whitespace',
} as const;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SHARE_NAME = /^[A-Za-z0-9_.-]{1,80}$/;
const SAMBA_SECTIONS = new Set(['global', 'homes', 'printers']);
/** The entrypoint's path characters, less ":" (Kubernetes refuses it in mount paths) and " " (mountinfo escapes it). */
const PATH_CHARACTERS = /^[A-Za-z0-9_./@+,=~-]*$/;
/** Exactly the entrypoint's check_path: what smb.conf can carry without quoting. */
const SMB_PATH = /^\/[A-Za-z0-9_./@+,:=~ -]*$/;
const MAX_PATH = 4095;

/** Structure only: absolute, no ".." segment, no ":" or NUL, no trailing "/". */
export function isAbsolutePath(value: string): boolean {
  if (!value.startsWith('/')) return false;
  if (value.length > 1 && value.endsWith('/')) return false;
  if (value.includes(':') || value.includes('\0')) return false;
  return !value.split('/').some((segment) => segment === '..');
}

/** Characters and length: a path the shell scripts and smb.conf carry unchanged. */
export function hasPathCharacters(value: string): boolean {
  return value.length <= MAX_PATH && PATH_CHARACTERS.test(value);
}

/** The first rule a path breaks, or undefined when it is a valid path for every consumer of it. */
export function pathProblem(value: string): string | undefined {
  if (!isAbsolutePath(value)) return FIELD_RULES.absolutePath;
  if (!hasPathCharacters(value)) return FIELD_RULES.pathCharacters;
  return undefined;
}

/** The sidecar entrypoint's own path rule (DFS_SHARE_PATH), for the test that holds both to one table. */
export function isSmbPath(value: string): boolean {
  return value.length <= MAX_PATH && SMB_PATH.test(value) && !value.endsWith(' ');
}

export function isDns1123Label(value: string): boolean {
  return DNS1123_LABEL.test(value);
}

/** The sidecar entrypoint's share-name rule: a section name smb.conf accepts and Samba does not reserve. */
export function isShareName(value: string): boolean {
  return SHARE_NAME.test(value) && !SAMBA_SECTIONS.has(value.toLowerCase());
}

const absolutePath = z.string().superRefine((value, ctx) => {
  const problem = pathProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});
const dns1123Label = z.string().refine(isDns1123Label, { message: FIELD_RULES.dns1123Label });
const image = z.string().regex(/^\S+$/, { message: FIELD_RULES.image });

const quantity = z.union([
  z.string().regex(/^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/, { message: 'must be a Kubernetes quantity such as "100m" or "64Mi"' }),
  z.number().nonnegative(),
]);

const resources = z
  .strictObject({
    requests: z.record(z.string(), quantity).optional(),
    limits: z.record(z.string(), quantity).optional(),
  })
  .describe('Kubernetes resource requests and limits');

const securityContext = z
  .strictObject({
    privileged: z.boolean().optional(),
    runAsUser: z.number().int().nonnegative().optional(),
    runAsGroup: z.number().int().nonnegative().optional(),
    runAsNonRoot: z.boolean().optional(),
    readOnlyRootFilesystem: z.boolean().optional(),
    allowPrivilegeEscalation: z.boolean().optional(),
    capabilities: z
      .strictObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() })
      .optional(),
    seccompProfile: z
      .strictObject({
        type: z.enum(['RuntimeDefault', 'Localhost', 'Unconfined']),
        localhostProfile: z.string().optional(),
      })
      .optional(),
  })
  .describe('Kubernetes container securityContext');

const pullPolicy = z.enum(['Always', 'IfNotPresent', 'Never']);

export const SHIM_MODES = ['image', 'init', 'off'] as const;

const waitForMountSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Add an init container that waits until the host mount is live, so the app never starts against an empty directory'),
  name: dns1123Label.default('dfs-wait-for-mount').describe('Name of the wait-for-mount init container'),
  image: image.default('busybox:1.37').describe('Image of the wait-for-mount init container; it needs sh, grep and sleep'),
  timeoutSeconds: z.number().int().min(1).max(86_400).default(300).describe('How long the init container waits before it fails the pod start'),
  resources: resources.default({ requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '32Mi' } }),
});

const consumerSchema = z.strictObject({
  mountPath: absolutePath.default('/mnt/dfs').describe('Where consumer containers see the share; per pod: annotation dfs-injector.io/mount-path'),
  volumeName: dns1123Label.default('dfs-injector-dfs').describe('Name of the injected hostPath volume'),
  containers: z
    .array(z.string().refine((v) => v === '*' || isDns1123Label(v), { message: `each entry must be "*" or a container name that ${FIELD_RULES.dns1123Label}` }))
    .min(1)
    .default(['*'])
    .describe('Containers that get the mount; "*" means every regular container; per pod: annotation dfs-injector.io/containers'),
  waitForMount: waitForMountSchema.prefault({}),
});

const sidecarSchema = z.strictObject({
  name: dns1123Label.default('dfs-smbd').describe('Name of the injected Samba sidecar container'),
  image: image.default('ghcr.io/dfs-injector/smbd:0.1.0').describe('Samba sidecar image; the default carries the nlink shim'),
  imagePullPolicy: pullPolicy.default('IfNotPresent').describe('Pull policy of the sidecar image'),
  port: z.number().int().min(1).max(65_535).default(445).describe('TCP port smbd listens on in the pod'),
  logLevel: z.number().int().min(0).max(10).default(1).describe('Samba log level'),
  guestAccount: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { message: 'must be a Unix user name' }).default('nobody').describe('Unix account guests are mapped to'),
  resources: resources.default({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } }),
  securityContext: securityContext.default({
    // smbd binds port 445 and switches to the guest account, so it runs as root, but with only
    // the capabilities for exactly that (the image tests run it so). Its state is in an emptyDir.
    runAsUser: 0,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SETGID', 'SETUID'] },
    seccompProfile: { type: 'RuntimeDefault' },
  }),
});

const shimSchema = z.strictObject({
  mode: z.enum(SHIM_MODES).default('image').describe('image: the sidecar image carries the shim; init: an init container copies it into an emptyDir, for your own Samba image; off: no shim'),
  path: absolutePath.default('/usr/local/lib/dfs/fix_nlink.so').describe('LD_PRELOAD path of the shim inside the sidecar (mode image)'),
  initImage: image.optional().describe('Image the init container copies the shim from (mode init); defaults to the sidecar image of this project'),
  initSourcePath: absolutePath.default('/usr/local/lib/dfs/glibc/fix_nlink.so').describe('Path of the shim inside initImage; use /usr/local/lib/dfs/musl/fix_nlink.so for an Alpine Samba image'),
  log: z.boolean().default(true).describe('Let the shim log once when the FUSE mount needed the fix (DFS_SHIM_LOG)'),
});

const sourceSchema = z.strictObject({
  container: dns1123Label.optional().describe('Container that holds the FUSE mount; default: the first container; per pod: dfs-injector.io/source-container'),
  path: absolutePath.default('/mnt/dfs').describe('Where the FUSE mount lives in the source container; per pod: dfs-injector.io/source-path'),
  shareName: z.string().refine(isShareName, { message: FIELD_RULES.shareName }).default('dfs').describe('SMB share name; per pod: dfs-injector.io/share-name'),
  volumeName: dns1123Label.default('dfs-injector-source').describe('Name of the emptyDir added when the source container has no volume at the source path'),
  sidecar: sidecarSchema.prefault({}),
  shim: shimSchema.prefault({}),
});

export const configSchema = z.strictObject({
  hostPath: absolutePath.default('/mnt/decypharr-dfs').describe('Host path where the mounter DaemonSet mounts the share on every node'),
  consumer: consumerSchema.prefault({}),
  source: sourceSchema.prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConsumerConfig = Config['consumer'];
export type SourceConfig = Config['source'];
export type ShimMode = (typeof SHIM_MODES)[number];
