// The README's troubleshooting entries a failing step points at, by the start of their symptom
// column without its code marks, so a reader finds the row with a search (check.test.ts holds the
// README to these).

export const TROUBLESHOOTING = {
  webhookUnreachable: 'README, Troubleshooting: "Pods with a role label are refused: failed calling webhook"',
  staleMount: 'README, Troubleshooting: "After the source pod restarts or moves, reads in /mnt/dfs hang or fail"',
  fuseMissing: 'README, Troubleshooting: "The dfs-smbd sidecar is not Ready, or check finds no FUSE mount in the source container"',
  nlinkShim: 'README, Troubleshooting: "ls -l /mnt/dfs in a consumer shows names with ????????? attributes"',
  mountOptions: `README, Troubleshooting: "check says a node's share is mounted without an option of DFS_MOUNT_OPTIONS, or mounts another share"`,
  emptyMount: 'README, Troubleshooting: "A consumer sees an empty /mnt/dfs"',
  notInjected: 'README, Troubleshooting: "A pod was not injected, the mount is missing in one container, or an annotation seems ignored"',
} as const;
