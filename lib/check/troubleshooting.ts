// The README's troubleshooting entries a failing step points at, by the start of their symptom
// column, so a reader finds the row with a search.

export const TROUBLESHOOTING = {
  webhookUnreachable: 'README, Troubleshooting: "Pods with a role label are refused: failed calling webhook"',
  staleMount: 'README, Troubleshooting: "After the source pod restarts or moves, /mnt/dfs hangs or returns errors"',
  emptyMount: 'README, Troubleshooting: "A consumer sees an empty /mnt/dfs"',
  notInjected: 'README, Troubleshooting: "A pod was not injected, the mount is missing in one container, or an annotation seems ignored"',
} as const;
