// The Pod Security Standards (kubernetes.io/docs/concepts/security/pod-security-standards), as
// the built-in PodSecurity admission applies them to a pod spec: baseline, and restricted on top.
// Each violation names the field and the rule, like PodSecurity's own messages.

export type Level = 'baseline' | 'restricted';

const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const SAFE_SYSCTLS = new Set(['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes']);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const RESTRICTED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

interface Ctx {
  spec: any;
  violations: string[];
}

function allContainers(spec: any): { where: string; c: any }[] {
  const groups: [string, any[] | undefined][] = [
    ['containers', spec.containers],
    ['initContainers', spec.initContainers],
    ['ephemeralContainers', spec.ephemeralContainers],
  ];
  return groups.flatMap(([field, list]) => (list ?? []).map((c: any) => ({ where: `${field}[${c.name}]`, c })));
}

function checkSeLinux(violations: string[], where: string, options: any): void {
  if (options === undefined) return;
  if (!SELINUX_TYPES.has(options.type ?? '')) violations.push(`${where}.seLinuxOptions.type=${options.type}: not an allowed SELinux type`);
  if (options.user !== undefined || options.role !== undefined) violations.push(`${where}.seLinuxOptions: user and role must not be set`);
}

function checkProfiles(violations: string[], where: string, sc: any): void {
  if (sc?.seccompProfile?.type === 'Unconfined') violations.push(`${where}.seccompProfile.type=Unconfined is forbidden`);
  if (sc?.appArmorProfile?.type === 'Unconfined') violations.push(`${where}.appArmorProfile.type=Unconfined is forbidden`);
  checkSeLinux(violations, where, sc?.seLinuxOptions);
}

function baselinePod({ spec, violations }: Ctx): void {
  for (const field of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[field] === true) violations.push(`${field}=true: host namespaces are forbidden`);
  }
  if (spec.securityContext?.windowsOptions?.hostProcess === true) violations.push('securityContext.windowsOptions.hostProcess=true is forbidden');
  for (const v of spec.volumes ?? []) {
    if (v.hostPath !== undefined) violations.push(`volumes[${v.name}].hostPath: hostPath volumes are forbidden`);
  }
  for (const s of spec.securityContext?.sysctls ?? []) {
    if (!SAFE_SYSCTLS.has(s.name)) violations.push(`securityContext.sysctls[${s.name}]: only the safe sysctls are allowed`);
  }
  checkProfiles(violations, 'securityContext', spec.securityContext);
}

function baselineContainer(violations: string[], where: string, c: any): void {
  const sc = c.securityContext ?? {};
  if (sc.privileged === true) violations.push(`${where}.securityContext.privileged=true is forbidden`);
  if (sc.windowsOptions?.hostProcess === true) violations.push(`${where}.securityContext.windowsOptions.hostProcess=true is forbidden`);
  for (const cap of sc.capabilities?.add ?? []) {
    if (!BASELINE_CAPABILITIES.has(cap)) violations.push(`${where}.securityContext.capabilities.add: ${cap} is not in the baseline set`);
  }
  for (const p of c.ports ?? []) {
    if ((p.hostPort ?? 0) !== 0) violations.push(`${where}.ports[${p.containerPort}].hostPort=${p.hostPort}: host ports are forbidden`);
  }
  if (sc.procMount !== undefined && sc.procMount !== 'Default') violations.push(`${where}.securityContext.procMount=${sc.procMount}: must be Default`);
  checkProfiles(violations, `${where}.securityContext`, sc);
}

function baseline(ctx: Ctx): void {
  baselinePod(ctx);
  for (const { where, c } of allContainers(ctx.spec)) baselineContainer(ctx.violations, where, c);
}

function restrictedContainer(violations: string[], where: string, c: any, pod: any): void {
  const sc = c.securityContext ?? {};
  if (sc.allowPrivilegeEscalation !== false) violations.push(`${where}.securityContext.allowPrivilegeEscalation must be false`);
  if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) violations.push(`${where}: runAsNonRoot must be true (pod or container)`);
  if (sc.runAsUser === 0) violations.push(`${where}.securityContext.runAsUser=0: must not run as root`);
  const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') violations.push(`${where}: seccompProfile.type must be RuntimeDefault or Localhost (pod or container), is ${seccomp}`);
  if (!((sc.capabilities?.drop ?? []) as string[]).includes('ALL')) violations.push(`${where}.securityContext.capabilities.drop must include ALL`);
  for (const cap of sc.capabilities?.add ?? []) {
    if (cap !== 'NET_BIND_SERVICE') violations.push(`${where}.securityContext.capabilities.add: only NET_BIND_SERVICE may be added, not ${cap}`);
  }
}

function restricted({ spec, violations }: Ctx): void {
  for (const v of spec.volumes ?? []) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (type === undefined || !RESTRICTED_VOLUMES.has(type)) violations.push(`volumes[${v.name}]: type ${type} is not allowed (allowed: ${[...RESTRICTED_VOLUMES].join(', ')})`);
  }
  const pod = spec.securityContext ?? {};
  if (pod.runAsUser === 0) violations.push('securityContext.runAsUser=0: must not run as root');
  for (const { where, c } of allContainers(spec)) restrictedContainer(violations, where, c, pod);
}

/** Every way `podSpec` breaks the given Pod Security level; empty when PodSecurity admits it. */
export function podSecurityViolations(podSpec: unknown, level: Level): string[] {
  const ctx: Ctx = { spec: podSpec ?? {}, violations: [] };
  baseline(ctx);
  if (level === 'restricted') restricted(ctx);
  return ctx.violations;
}
